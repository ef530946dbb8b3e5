"""Batched sampling behind one interface: vLLM when installed (GPU), Hugging Face ``generate`` otherwise.

Prompts are *rendered text* (chat template applied, any prefill appended), so forced modes, NoThinking and
budget forcing are all just different prompt strings. Completions are decoded with
``skip_special_tokens=True`` (control tokens are not special and survive, like in TRL's reward path).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field

import torch

logger = logging.getLogger(__name__)


@dataclass
class SamplingConfig:
    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = 512
    n: int = 1
    seed: int = 0
    stop: list[str] = field(default_factory=list)
    self_certainty: bool = False  # also score each completion's self-certainty (HF backend; see below)


@dataclass
class Completion:
    text: str
    num_tokens: int
    finished: bool  # ended on EOS (or a stop string) rather than the token limit
    token_ids: list[int] = field(default_factory=list)
    self_certainty: float | None = None  # mean over generated tokens of KL(uniform || p); None if not computed


class SelfCertaintyProcessor:
    """A pass-through logits processor recording, per sequence and step, KL(U || p) of the model's distribution.

    Self-certainty (Kang et al., 2025, arXiv 2502.18581) is the mean over response tokens of
    ``KL(U || p) = -log V - (1/V) * sum_j log p_j`` over the full vocabulary (V = the logits' width), computed from
    the *raw* next-token logits (before temperature / top-p); higher means more confident. The processor sits
    before the sampling warpers, so it sees the raw logits; entries another processor has masked to -inf are
    left out of the mean. Memory is one float per sequence and step.
    """

    def __init__(self):
        self.steps: list[torch.Tensor] = []

    def __call__(self, input_ids, scores):
        logp = torch.log_softmax(scores.float(), dim=-1)
        finite = torch.isfinite(logp)
        v = finite.sum(dim=-1).clamp(min=1).float()
        mean_logp = torch.where(finite, logp, torch.zeros_like(logp)).sum(dim=-1) / v
        self.steps.append(-torch.log(v) - mean_logp)  # stays on the device: no per-step sync
        return scores

    def per_sequence(self, lengths: list[int]) -> list[float | None]:
        """Mean over the first ``lengths[i]`` steps (at least one) of sequence ``i``."""
        if not self.steps:
            return [None] * len(lengths)
        mat = torch.stack(self.steps, dim=1).float().cpu()  # (batch, steps)
        out = []
        for i, n in enumerate(lengths):
            n = max(1, min(n, mat.shape[1]))
            out.append(float(mat[i, :n].mean()))
        return out


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()


class HFGenerator:
    """Left-padded batched ``model.generate``; ``batch_size`` counts sequences (prompts × n)."""

    def __init__(self, model, tokenizer, batch_size: int = 64):
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self.eos_ids = _eos_ids(model, tokenizer)

    @torch.no_grad()
    def generate(self, prompts: list[str], cfg: SamplingConfig, *, progress: bool = False,
                 desc: str = "generate") -> list[list[Completion]]:
        from tqdm.auto import tqdm

        tok, model = self.tokenizer, self.model
        side, tok.padding_side = tok.padding_side, "left"
        was_training = model.training
        model.eval()
        flat = [p for p in prompts for _ in range(cfg.n)]
        out: list[Completion] = []
        per_batch = max(1, self.batch_size)
        try:
            for b, start in enumerate(tqdm(range(0, len(flat), per_batch), disable=not progress, desc=desc)):
                chunk = flat[start:start + per_batch]
                enc = tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
                torch.manual_seed(cfg.seed * 1_000_003 + b)
                extra = {}
                if cfg.self_certainty:
                    from transformers import LogitsProcessorList

                    sc = SelfCertaintyProcessor()
                    extra["logits_processor"] = LogitsProcessorList([sc])
                gen = model.generate(
                    **enc,
                    do_sample=cfg.temperature > 0,
                    temperature=cfg.temperature if cfg.temperature > 0 else None,
                    top_p=cfg.top_p if cfg.temperature > 0 else None,
                    top_k=None,
                    max_new_tokens=cfg.max_new_tokens,
                    eos_token_id=self.eos_ids,
                    pad_token_id=tok.pad_token_id,
                    stop_strings=cfg.stop or None,
                    tokenizer=tok if cfg.stop else None,
                    **extra,
                )
                new = gen[:, enc["input_ids"].shape[1]:].tolist()
                batch_out = []
                for ids in new:
                    ids, finished = _trim(ids, self.eos_ids, tok.pad_token_id)
                    text = tok.decode(ids, skip_special_tokens=True)
                    if cfg.stop and not finished:
                        finished = any(s in text for s in cfg.stop)
                    batch_out.append(Completion(text, len(ids), finished, ids))
                if cfg.self_certainty:
                    for c, v in zip(batch_out, sc.per_sequence([c.num_tokens for c in batch_out])):
                        c.self_certainty = v
                out.extend(batch_out)
        finally:
            tok.padding_side = side
            model.train(was_training)
        return [out[i * cfg.n:(i + 1) * cfg.n] for i in range(len(prompts))]


class VLLMGenerator:
    def __init__(self, model_path: str, tokenizer, *, dtype="bfloat16", gpu_memory_utilization=0.9,
                 tensor_parallel_size=1, max_model_len=None):
        from vllm import LLM

        self.tokenizer = tokenizer
        self.llm = LLM(model=model_path, tokenizer=model_path, dtype=dtype, seed=0,
                       gpu_memory_utilization=gpu_memory_utilization, tensor_parallel_size=tensor_parallel_size,
                       max_model_len=max_model_len)

    def generate(self, prompts: list[str], cfg: SamplingConfig, *, progress: bool = False,
                 desc: str = "generate") -> list[list[Completion]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if cfg.self_certainty:
            raise NotImplementedError("self-certainty needs full-vocabulary log-probs at every step, which vLLM does "
                                      "not return; use generation.backend=hf for confidence selection")

        params = SamplingParams(n=cfg.n, temperature=cfg.temperature, top_p=cfg.top_p, seed=cfg.seed,
                                max_tokens=cfg.max_new_tokens, stop=cfg.stop or None, skip_special_tokens=True)
        ids = [TokensPrompt(prompt_token_ids=self.tokenizer(p, add_special_tokens=False)["input_ids"])
               for p in prompts]
        results = self.llm.generate(ids, params, use_tqdm=progress)
        return [[Completion(o.text, len(o.token_ids), o.finish_reason == "stop", list(o.token_ids))
                 for o in r.outputs] for r in results]


def make_generator(backend: str, *, model=None, tokenizer=None, model_path: str | None = None,
                   batch_size: int = 64, **vllm_kwargs):
    """``backend`` is ``auto`` (vLLM when installed and a GPU is present), ``vllm`` or ``hf``."""
    valid = ("auto", "vllm", "hf")
    if backend not in valid:
        raise ValueError(f"generation.backend={backend!r}: valid choices are {valid}")
    if backend == "vllm" or (backend == "auto" and vllm_available() and model_path is not None):
        if not vllm_available():
            raise RuntimeError("generation.backend=vllm but vLLM is not installed or no GPU is visible; "
                               "install the extra (pip install 'thinkless[vllm]') or use backend=hf")
        return VLLMGenerator(model_path, tokenizer, **vllm_kwargs)
    if model is None:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(model_path)
    return HFGenerator(model, tokenizer, batch_size=batch_size)


def _eos_ids(model, tokenizer) -> list[int]:
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = [] if ids is None else ([ids] if isinstance(ids, int) else list(ids))
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def _trim(ids: list[int], eos_ids: list[int], pad_id: int | None) -> tuple[list[int], bool]:
    for i, t in enumerate(ids):
        if t in eos_ids:
            return ids[:i], True
    if pad_id is not None:
        while ids and ids[-1] == pad_id:
            ids = ids[:-1]
    return ids, False
