"""vLLM (v1) logits processor for the think threshold (see ``thinkless.serving.mode_control``); imports vLLM.

Offline: ``LLM(..., logits_processors=[ThinkBias])`` with ``SamplingParams(extra_args={"think_bias": b})``.
Served: ``vllm serve <model> --logits-processors thinkless.vllm_think_bias:ThinkBias --middleware
thinkless.serving.check_request`` (requests it cannot honour get a 400: ``thinkless.serving.requests``) and, per request,
``extra_body={"vllm_xargs": {"think_bias": b}}``. Requests without ``think_bias`` are untouched.
"""

from __future__ import annotations

import torch
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
from vllm.v1.sample.logits_processor.builtin import process_dict_updates

from ..tokens import control_token_ids
from .requests import bias_problem


class ThinkBias(LogitsProcessor):
    """``logits[<think>] += think_bias`` at a request's first generated position only."""

    @classmethod
    def validate_params(cls, params):
        why = bias_problem((params.extra_args or {}).get("think_bias"))
        if why:  # a 400 for the request; NaN would act as +inf and force thinking
            raise ValueError(why)

    def __init__(self, vllm_config, device: torch.device, is_pin_memory: bool):
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(vllm_config.model_config.tokenizer)
        try:
            ids = control_token_ids(tok)
            self.think_id, self.mode_ids = ids.think, {ids.think, ids.short}
        except ValueError:  # not a Thinkless tokenizer: a request with think_bias gets an error in apply
            self.think_id, self.mode_ids = None, set()
        self.reqs: dict[int, tuple[float, list[int]]] = {}  # batch row -> (bias, the request's output ids, live)

    def is_argmax_invariant(self) -> bool:
        return False  # it changes greedy decoding

    def _state(self, params, prompt_ids, output_ids):
        bias = (params.extra_args or {}).get("think_bias")
        if prompt_ids and prompt_ids[-1] in self.mode_ids:
            return None  # the mode is prefilled (thinking=on|off): the first position is not the mode decision
        return None if not bias else (float(bias), output_ids)

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        process_dict_updates(self.reqs, batch_update, self._state)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        for row, (bias, out) in self.reqs.items():
            if not out:  # first generated position
                if self.think_id is None:
                    raise ValueError("think_bias needs a tokenizer with the <think> control token")
                logits[row, self.think_id] += bias
        return logits
