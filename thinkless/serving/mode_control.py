"""Thinking on demand: force a mode, or move the decision's threshold, at the model's first generated token.

* Forcing a mode needs no code: the chat templates we ship take ``thinking`` = ``auto`` | ``on`` | ``off``
  (``thinkless.tokens.fix_chat_template``), so ``apply_chat_template(..., thinking="off")``, vLLM's
  ``chat_template_kwargs`` or any server that passes template variables prefill ``<short>`` / ``<think>``.
* The think threshold: a bias ``b`` added to the ``<think>`` logit at the first generated position only, so the
  log-odds of thinking against answering short move by ``b`` while the response after the mode token is untouched
  (a bias on every position, like the OpenAI API's ``logit_bias``, makes a large ``b`` write ``<think>`` again and
  again). ``ThinkBiasProcessor`` does it for HF ``generate``; ``vllm_think_bias.ThinkBias`` for vLLM, offline
  (``SamplingParams(extra_args={"think_bias": b})``) and served (``vllm serve ... --logits-processors
  thinkless.vllm_think_bias:ThinkBias --middleware thinkless.serving.check_request``, per request
  ``extra_body={"vllm_xargs": {"think_bias": b}}``). A bias is a number within ``±thinkless.serving.requests.MAX_THINK_BIAS``.
"""

from __future__ import annotations

import math

import torch

from ..tokens import control_token_ids
from .requests import bias_problem


class ThinkBiasProcessor:
    """HF logits processor: ``scores[:, <think>] += bias`` at the first generated position of the batch."""

    def __init__(self, tokenizer, bias: float, prompt_length: int):
        why = bias_problem(bias)  # the served rule: 1e39 would be inf in the float32 scores, then NaN
        if why:
            raise ValueError(why)
        self.think_id = control_token_ids(tokenizer).think
        self.bias, self.prompt_length = float(bias), prompt_length

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[1] == self.prompt_length:  # nothing generated yet: the mode token
            scores = scores.clone()
            scores[:, self.think_id] += self.bias
        return scores


def vllm_logits_processors() -> list:
    """The logits processors every vLLM engine of ours registers (inert unless a request asks)."""
    from .vllm_think_bias import ThinkBias  # imports vLLM: only where an engine is built

    return [ThinkBias]


def bias_for_think_ratio(log_odds: list[float], ratio: float, temperature: float = 1.0,
                         bound: float = 20.0) -> float:
    """The think bias ``b`` at which a policy with these per-prompt log-odds of thinking (``log p(<think>) −
    log p(<short>)``, e.g. ``HFGenerator.mode_log_odds``) thinks on ``ratio`` of the prompts in expectation:
    ``mean_i σ((z_i + b)/T) = ratio``, solved by bisection (monotone in ``b``) within ``±bound``."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"think ratio {ratio}: a share in [0, 1] is expected")
    if not log_odds:
        raise ValueError("no log-odds to move")

    def expected(b: float) -> float:
        x = [max(-60.0, min(60.0, (z + b) / temperature)) for z in log_odds]
        return sum(1.0 / (1.0 + math.exp(-v)) for v in x) / len(x)

    lo, hi = -bound, bound
    if expected(lo) >= ratio:
        return lo
    if expected(hi) <= ratio:
        return hi
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if expected(mid) < ratio else (lo, mid)
    return (lo + hi) / 2


def sampled_token_prob(first_logits: torch.Tensor, token_id: int, temperature: float = 1.0, top_p: float = 1.0,
                       top_k: int | None = None, min_p: float | None = None) -> torch.Tensor:
    """Per row, the probability that sampling the first token with these settings draws ``token_id`` (the share of
    rollouts that start with it, in expectation): transformers' own temperature / top-k / top-p / min-p warpers on
    the raw logits, then a softmax. ``first_logits``: ``[prompts, vocab]``, e.g. ``HFGenerator.first_logits``."""
    from transformers.generation.logits_process import (MinPLogitsWarper, TemperatureLogitsWarper,
                                                        TopKLogitsWarper, TopPLogitsWarper)

    scores = first_logits.float()
    warpers = [TemperatureLogitsWarper(temperature)] if temperature and temperature != 1.0 else []
    if top_k:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p is not None and top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p))
    if min_p:
        warpers.append(MinPLogitsWarper(min_p))
    for w in warpers:  # generate's order (temperature, top-k, top-p, min-p)
        scores = w(None, scores)
    return torch.softmax(scores, dim=-1)[:, token_id]
