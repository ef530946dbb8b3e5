"""Batched sampling behind one interface: vLLM when installed (GPU), Hugging Face ``generate`` otherwise.

Prompts are *rendered text* (chat template applied, any prefill appended), so forced modes, NoThinking and
budget forcing are all just different prompt strings. Completions are decoded with
``skip_special_tokens=True`` (control tokens are not special and survive, like in TRL's reward path).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass, field

import torch

from .serving.mode_control import ThinkBiasProcessor, vllm_logits_processors
from .tokens import control_token_ids

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
    think_bias: float = 0.0  # added to the <think> logit at the first generated position (thinkless.serving.mode_control)


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
    """vLLM is installed (its CUDA build, or the CPU build the tests use)."""
    return importlib.util.find_spec("vllm") is not None


def gpu_visible() -> bool:
    return torch.cuda.is_available()


class HFGenerator:
    """Left-padded batched ``model.generate``; ``batch_size`` counts sequences (prompts × n)."""

    backend = "hf"  # what resolve_backend named it: callers ask this, not the class

    def __init__(self, model, tokenizer, batch_size: int = 64):
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self.eos_ids = _eos_ids(model, tokenizer)

    @property
    def context_length(self) -> int | None:
        """Prompt + response tokens the model can attend over (its position embeddings)."""
        return getattr(self.model.config, "max_position_embeddings", None)

    @torch.no_grad()
    def first_logits(self, prompts: list[str] | list[list[int]]) -> torch.Tensor:
        """Next-token logits at the first generated position, ``[len(prompts), vocab]`` float32 on the CPU (one
        forward pass per prompt: what sampling the first token n times needs, without n forwards). ``prompts``:
        rendered text, or token ids (what the RL trainer's rollouts start from)."""
        tok, model = self.tokenizer, self.model
        side, tok.padding_side = tok.padding_side, "left"
        was_training = model.training
        model.eval()
        out = []
        try:
            for start in range(0, len(prompts), max(1, self.batch_size)):
                chunk = prompts[start:start + self.batch_size]
                enc = (tok.pad({"input_ids": chunk}, padding=True, return_tensors="pt") if chunk and
                       not isinstance(chunk[0], str) else
                       tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False)).to(model.device)
                out.append(model(**enc, logits_to_keep=1).logits[:, -1].float().cpu())  # not [batch, len, vocab]
        finally:
            tok.padding_side = side
            model.train(was_training)
        return torch.cat(out) if out else torch.empty(0)

    def mode_log_odds(self, prompts: list[str]) -> list[float]:
        """``log p(<think>) − log p(<short>)`` at the first generated position of each prompt (one forward pass)."""
        ids = control_token_ids(self.tokenizer)
        logp = torch.log_softmax(self.first_logits(prompts), dim=-1)
        return (logp[:, ids.think] - logp[:, ids.short]).tolist()

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
                extra, processors = {}, []
                if cfg.self_certainty:  # first: self-certainty scores the model's own (raw) distribution
                    sc = SelfCertaintyProcessor()
                    processors.append(sc)
                if cfg.think_bias:
                    processors.append(ThinkBiasProcessor(tok, cfg.think_bias, enc["input_ids"].shape[1]))
                if processors:
                    from transformers import LogitsProcessorList

                    extra["logits_processor"] = LogitsProcessorList(processors)
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
                batch_out = [completion_from_ids(tok, ids, self.eos_ids, cfg.stop) for ids in new]
                if cfg.self_certainty:
                    for c, v in zip(batch_out, sc.per_sequence([c.num_tokens for c in batch_out])):
                        c.self_certainty = v
                out.extend(batch_out)
        finally:
            tok.padding_side = side
            model.train(was_training)
        return [out[i * cfg.n:(i + 1) * cfg.n] for i in range(len(prompts))]


class VLLMGenerator:
    """vLLM's offline engine. On a CPU (vLLM's CPU build) the engine runs in this process
    (``VLLM_ENABLE_V1_MULTIPROCESSING=0``: it starts in ~2 s and needs no ``__main__`` guard), in eager mode, with an
    explicit KV-cache size (``kv_cache_memory_bytes``, default 1 GiB) instead of a fraction of the device memory."""

    backend = "vllm"

    def __init__(self, model_path: str, tokenizer, *, dtype: str = "auto", gpu_memory_utilization: float = 0.9,
                 tensor_parallel_size: int = 1, max_model_len: int | None = None,
                 kv_cache_memory_bytes: int | None = None, enforce_eager: bool | None = None, seed: int = 0):
        cpu = not gpu_visible()
        if cpu:
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        from vllm import LLM  # vLLM is optional and heavy: imported only to run it

        kw = {}
        if kv_cache_memory_bytes or cpu:
            kw["kv_cache_memory_bytes"] = int(kv_cache_memory_bytes or 2**30)
        else:
            kw["gpu_memory_utilization"] = gpu_memory_utilization
        if dtype == "auto":  # the checkpoint's dtype, as HF's "auto": vLLM's own "auto" runs fp32 weights in fp16/bf16
            from transformers import AutoConfig

            dtype = str(AutoConfig.from_pretrained(model_path).dtype or "auto").removeprefix("torch.")
        self.tokenizer = tokenizer
        self.eos_ids = _eos_ids(None, tokenizer)
        self.llm = LLM(model=model_path, tokenizer=model_path, dtype=dtype, seed=seed,
                       tensor_parallel_size=tensor_parallel_size, max_model_len=max_model_len,
                       enforce_eager=cpu if enforce_eager is None else enforce_eager,
                       logits_processors=vllm_logits_processors(), **kw)

    @property
    def context_length(self) -> int:
        return self.llm.llm_engine.model_config.max_model_len

    def mode_log_odds(self, prompts: list[str]) -> list[float]:
        """``log p(<think>) − log p(<short>)`` at the first position, from vLLM's top-20 log-probs (a control token
        outside them is given the 20th log-prob as an upper bound)."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        ids = control_token_ids(self.tokenizer)
        params = SamplingParams(n=1, temperature=1.0, max_tokens=1, logprobs=20)  # no seed: see generate()
        res = self.llm.generate([TokensPrompt(prompt_token_ids=self.tokenizer(p, add_special_tokens=False)["input_ids"])
                                 for p in prompts], params, use_tqdm=False)
        out = []
        for r in res:
            top = r.outputs[0].logprobs[0]
            floor = min(lp.logprob for lp in top.values())
            get = lambda t: top[t].logprob if t in top else floor  # noqa: E731
            out.append(get(ids.think) - get(ids.short))
        return out

    def generate(self, prompts: list[str], cfg: SamplingConfig, *, progress: bool = False,
                 desc: str = "generate") -> list[list[Completion]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if cfg.self_certainty:
            raise NotImplementedError("self-certainty needs full-vocabulary log-probs at every step, which vLLM does "
                                      "not return; use generation.backend=hf for confidence selection")
        extra = {"think_bias": cfg.think_bias} if cfg.think_bias else None
        greedy_copies = cfg.n if cfg.temperature == 0 else 1  # vLLM refuses n > 1 when greedy: all n are equal
        n = 1 if greedy_copies > 1 else cfg.n
        # One seed per prompt: vLLM gives identical samples to identical prompts that share a seed. Not on a CPU:
        # vLLM 0.31's CPU runner cannot rewind a request's generator after a chunked prefill ("CPU Generator does
        # not use offset"); there the engine's own seeded generator draws (reproducible for the same batches).
        seeded = gpu_visible()
        params = [SamplingParams(n=n, temperature=cfg.temperature, top_p=cfg.top_p,
                                 seed=cfg.seed * 1_000_003 + i if seeded else None,
                                 max_tokens=cfg.max_new_tokens, stop=cfg.stop or None, skip_special_tokens=True,
                                 extra_args=extra) for i in range(len(prompts))]
        ids = [TokensPrompt(prompt_token_ids=self.tokenizer(p, add_special_tokens=False)["input_ids"])
               for p in prompts]
        results = self.llm.generate(ids, params, use_tqdm=progress)
        out = []
        for r in results:
            row = []
            for o in r.outputs:
                toks, finished = _trim(list(o.token_ids), self.eos_ids, None)  # the EOS is not a response token
                row.append(Completion(o.text, len(toks), finished or o.finish_reason == "stop", toks))
            out.append(row * greedy_copies)
        return out


BACKENDS = ("auto", "vllm", "hf")


def resolve_backend(backend: str, *, model_path: str | None = None, key: str = "generation.backend",
                    asked: str | None = None, instead: str | None = None) -> str:
    """The one choice between vLLM and HF generate: ``"vllm"`` or ``"hf"``. ``auto`` is vLLM when installed, a GPU
    is visible and there is a checkpoint path for it to load, else HF; ``vllm`` also runs vLLM's CPU build and fails
    when vLLM is missing. The messages name the setting that asked (``key``, or ``asked`` as written, e.g.
    ``rl.args.use_vllm=true``) and the way back to HF (``instead``)."""
    if backend not in BACKENDS:
        raise ValueError(f"{key}={backend!r}: valid choices are {BACKENDS}")
    if backend == "vllm" or (backend == "auto" and vllm_available() and gpu_visible() and model_path is not None):
        if not vllm_available():
            raise RuntimeError(f"{asked or key + '=vllm'} but vLLM is not installed: pip install 'thinkless[vllm]' "
                               f"(GPU), or bash scripts/setup.sh (its CPU build); or {instead or 'use ' + key + '=hf'}")
        return "vllm"
    return "hf"


def backend_of(generator) -> str | None:
    """``"hf"`` or ``"vllm"`` for this module's generators, None for another object that generates (a test's
    scripted generator): what callers ask instead of the class."""
    return getattr(generator, "backend", None)


def make_generator(backend: str, *, model=None, tokenizer=None, model_path: str | None = None,
                   batch_size: int = 64, key: str = "generation.backend", **vllm_kwargs):
    """A generator on the backend ``resolve_backend`` picks: every caller's way to one (a model in memory is HF's:
    ``make_generator("hf", model=..., tokenizer=...)``). HF loads ``model_path`` unless ``model`` is given; ``key``:
    the config key that chose ``backend``, for the messages."""
    if resolve_backend(backend, model_path=model_path, key=key) == "vllm":
        return VLLMGenerator(model_path, tokenizer, **vllm_kwargs)
    if model is None:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(model_path)
    return HFGenerator(model, tokenizer, batch_size=batch_size)


def _eos_ids(model, tokenizer) -> list[int]:
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None) if model is not None else None
    ids = [] if ids is None else ([ids] if isinstance(ids, int) else list(ids))
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def completion_from_ids(tok, ids: list[int], eos_ids: list[int], stop: list[str] | None = None) -> Completion:
    """New token ids as a ``Completion``: cut at the first EOS (finished), trailing pads dropped, decoded; a stop
    string in the text also counts as finished."""
    ids, finished = _trim(ids, eos_ids, tok.pad_token_id)
    text = tok.decode(ids, skip_special_tokens=True)
    if stop and not finished:
        finished = any(s in text for s in stop)
    return Completion(text, len(ids), finished, ids)


def _trim(ids: list[int], eos_ids: list[int], pad_id: int | None) -> tuple[list[int], bool]:
    for i, t in enumerate(ids):
        if t in eos_ids:
            return ids[:i], True
    if pad_id is not None:
        while ids and ids[-1] == pad_id:
            ids = ids[:-1]
    return ids, False
