"""Inference methods: how the prompt is built and how the N samples of a problem are produced.

Every method is a config (``conf/method/*.yaml``) with a ``type``: ``prefill`` (a fixed string after the chat
prompt: adaptive, forced modes, NoThinking), ``budget_forcing`` (s1), ``mode_sampled`` (the control token sampled),
``threshold`` (a think-bias sweep), ``token_budgets`` (an L1 policy asked for budgets) and ``parallel`` (``n``
samples of a base method, one answer selected). What each does, its keys (``mode``, ``n``, ``grading``, ...) and
how its mode is counted: docs/evaluation.md, "Methods".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..generation import SamplingConfig, completion_from_ids
from ..grading import GRADING_POLICIES
from ..serving.mode_control import ThinkBiasProcessor
from ..serving.requests import bias_problem, token_budget_problem
from ..tokens import END_THINK, THINK

METHOD_TYPES = ("prefill", "mode_sampled", "budget_forcing", "parallel", "threshold", "token_budgets")
SELECTIONS = ("majority", "confidence", "verifier")
MODES = ("auto", "think", "short")
NOTHINKING_PREFILL = f"{THINK}\nOkay, I think I have finished thinking.\n{END_THINK}\n\n"


@dataclass(frozen=True)
class Method:
    name: str
    type: str = "prefill"
    prefill: str = ""
    mode: str = "auto"
    budget: float = 0.5
    num_wait: int = 0
    wait: str = "Wait"
    answer_prefix: str = "\n\nFinal Answer:"
    mode_temperature: float = 1.0
    think_bias: float = 0.0
    biases: tuple = ()
    token_budget: int = 0  # an L1 policy's requested budget, rendered by its chat template (0: none)
    budgets: tuple = ()
    base: str | None = None
    n: int | None = None
    selection: str | None = None
    grading: str | None = None
    description: str = ""

    @property
    def is_parallel(self) -> bool:
        return self.type == "parallel"

    def generation_fields(self) -> dict:
        """What determines the generated text (the fingerprint of its generations file)."""
        budget = {"token_budget": self.token_budget} if self.token_budget else {}
        if self.type == "prefill":
            return {"type": "prefill", "prefill": self.prefill, **({"think_bias": self.think_bias}
                                                                    if self.think_bias else {}), **budget}
        if self.type == "mode_sampled":
            return {"type": "mode_sampled", "mode_temperature": self.mode_temperature,
                    **({"think_bias": self.think_bias} if self.think_bias else {}), **budget}
        if self.type == "budget_forcing":
            return {"type": "budget_forcing", "prefill": self.prefill, "budget": self.budget,
                    "num_wait": self.num_wait, "wait": self.wait, "answer_prefix": self.answer_prefix}
        raise ValueError(f"method {self.name!r} ({self.type}) does not generate by itself")


_FIELDS = set(Method.__dataclass_fields__) - {"name"}


def method_from_cfg(name: str, cfg) -> Method:
    d = dict(cfg or {})
    unknown = set(d) - _FIELDS
    if unknown:
        raise ValueError(f"method {name!r}: unknown keys {sorted(unknown)}; valid keys are {sorted(_FIELDS)}")
    if d.get("type") == "budget_forcing" and d.get("prefill") is None:
        d["prefill"] = THINK  # budget forcing thinks first
    for k in ("biases", "budgets"):
        if k in d:
            d[k] = tuple(d[k] or ())
    m = Method(name=name, **{k: v for k, v in d.items() if v is not None or k in ("base", "n", "selection", "grading")})
    if m.type not in METHOD_TYPES:
        raise ValueError(f"method.{name}.type={m.type!r}: valid choices are {METHOD_TYPES}")
    if m.mode not in MODES:
        raise ValueError(f"method.{name}.mode={m.mode!r}: valid choices are {MODES}")
    if m.grading is not None and m.grading not in GRADING_POLICIES:
        raise ValueError(f"method.{name}.grading={m.grading!r}: valid choices are {GRADING_POLICIES}")
    if m.n is not None and (not isinstance(m.n, int) or m.n < 1):
        raise ValueError(f"method.{name}.n={m.n!r}: samples per problem must be a positive integer")
    if m.type == "mode_sampled" and not m.mode_temperature > 0:
        raise ValueError(f"method.{name}.mode_temperature={m.mode_temperature!r} must be > 0 (the mode is sampled)")
    if m.type == "threshold" and (not m.biases or not all(isinstance(b, (int, float)) for b in m.biases)):
        raise ValueError(f"method.{name}.biases={list(m.biases)!r}: a list of think biases (numbers), e.g. [-4, 0, 4]")
    for key, b in [("think_bias", m.think_bias), *((f"biases[{i}]", b) for i, b in enumerate(m.biases))]:
        why = bias_problem(b)  # the serving rule: a bias beyond float32's reach turns the logit into inf, then NaN
        if why:
            raise ValueError(f"method.{name}.{key}={b!r}: {why}")
    if m.think_bias and m.type not in ("prefill", "mode_sampled"):
        raise ValueError(f"method.{name}.think_bias applies to prefill methods (type {m.type!r})")
    if m.type == "token_budgets" and not m.budgets:
        raise ValueError(f"method.{name}.budgets=[]: a list of token budgets (integers), e.g. [512, 1024, 2048]")
    for key, b in [*((f"budgets[{i}]", b) for i, b in enumerate(m.budgets)),
                   *([("token_budget", m.token_budget)] if m.token_budget != 0 else [])]:
        why = token_budget_problem(b)  # the serving rule: what a server would refuse is refused here too
        if why:
            raise ValueError(f"method.{name}.{key}={b!r}: {why}")
    if m.token_budget and m.type not in ("prefill", "mode_sampled"):
        raise ValueError(f"method.{name}.token_budget applies to prefill methods (type {m.type!r})")
    if m.type == "parallel":
        if m.selection not in SELECTIONS:
            raise ValueError(f"method.{name}.selection={m.selection!r}: valid choices are {SELECTIONS}")
        if not isinstance(m.n, int) or m.n < 1:
            raise ValueError(f"method.{name}.n={m.n!r}: the number of parallel samples must be a positive integer")
        if not m.base:
            raise ValueError(f"method.{name}.base is required (the method sampled n times, e.g. adaptive)")
    if m.type == "budget_forcing":
        if not (isinstance(m.budget, int) and m.budget >= 1) and not (0 < float(m.budget) <= 1):
            raise ValueError(f"method.{name}.budget={m.budget!r}: a token count >= 1, or a fraction in (0, 1] of "
                             "max_new_tokens")
        if m.num_wait < 0:
            raise ValueError(f"method.{name}.num_wait={m.num_wait!r} must be >= 0")
    return m


def threshold_children(m: Method) -> dict[str, Method]:
    """A ``threshold`` method as one adaptive prefill method per bias, named ``<name>@<bias>``."""
    return {f"{m.name}@{b:+g}": Method(name=f"{m.name}@{b:+g}", type="prefill", prefill=m.prefill, mode="auto",
                                       think_bias=float(b), n=m.n, grading=m.grading,
                                       description=f"think bias {b:+g} ({m.name})") for b in m.biases}


def budget_children(m: Method) -> dict[str, Method]:
    """A ``token_budgets`` method as one adaptive prefill method per requested budget, named ``<name>@<N>``."""
    return {f"{m.name}@{b}": Method(name=f"{m.name}@{b}", type="prefill", prefill=m.prefill, mode="auto",
                                    token_budget=int(b), n=m.n, grading=m.grading,
                                    description=f"token budget {b} ({m.name})") for b in m.budgets}


def resolve_methods(names, method_cfgs) -> dict[str, Method]:
    """The requested methods (a threshold sweep expanded into one method per bias), validated; unknown names list
    the valid ones."""
    valid = sorted(method_cfgs.keys())
    names = list(names or [])
    if not names:
        raise ValueError(f"methods is empty: choose from {valid}")
    out = {}
    for n in names:
        if n not in method_cfgs:
            raise ValueError(f"unknown method {n!r}: valid choices are {valid} (add one as "
                             f"+method.{n}={{type: prefill, prefill: ...}})")
        m = method_from_cfg(n, method_cfgs[n])
        out.update(threshold_children(m) if m.type == "threshold" else
                   budget_children(m) if m.type == "token_budgets" else {n: m})
    for m in list(out.values()):
        if m.is_parallel:
            if m.base not in method_cfgs:
                raise ValueError(f"method.{m.name}.base={m.base!r} is not a method: valid choices are {valid}")
            base = method_from_cfg(m.base, method_cfgs[m.base])
            if base.is_parallel or base.type in ("threshold", "token_budgets"):
                raise ValueError(f"method.{m.name}.base={m.base!r} is itself {base.type}; use a single-sample method")
    return out


def base_method(method: Method, method_cfgs) -> Method:
    return method_from_cfg(method.base, method_cfgs[method.base]) if method.is_parallel else method


# ------------------------------------------------------------------ budget forcing


def budget_tokens(method: Method, max_new_tokens: int) -> int:
    b = method.budget
    if isinstance(b, float) and b <= 1:
        return max(1, int(round(b * max_new_tokens)))
    return int(b)


# ------------------------------------------------------------------ sampling


@dataclass
class Sample:
    response: str  # everything after the generation prompt, prefill and injected text included
    tokens: int  # response tokens (prefill/injections included, EOS excluded)
    gen_tokens: int  # tokens the model actually sampled
    finished: bool  # ended by EOS rather than by the token limit
    self_certainty: float | None = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = {"response": self.response, "tokens": self.tokens, "gen_tokens": self.gen_tokens,
             "finished": self.finished, "self_certainty": self.self_certainty}
        if self.extra:
            d["extra"] = self.extra
        return d


class _TokenCounter:
    def __init__(self, tokenizer):
        self.tok, self.cache = tokenizer, {}

    def __call__(self, text: str) -> int:
        if not text:
            return 0
        if text not in self.cache:
            self.cache[text] = len(self.tok(text, add_special_tokens=False)["input_ids"])
        return self.cache[text]


def sample_prefill(generator, tokenizer, prompts: list[str], method: Method, n: int,
                   sampling: SamplingConfig) -> list[list[Sample]]:
    count = _TokenCounter(tokenizer)
    cfg = SamplingConfig(**{**sampling.__dict__, "n": n, "think_bias": method.think_bias})
    outs = generator.generate([p + method.prefill for p in prompts], cfg)
    pre = count(method.prefill)
    return [[Sample(method.prefill + c.text, c.num_tokens + pre, c.num_tokens, c.finished, c.self_certainty)
             for c in o] for o in outs]


def sample_budget_forcing(generator, tokenizer, prompts: list[str], method: Method, n: int,
                          sampling: SamplingConfig) -> list[list[Sample]]:
    """s1 budget forcing, batched over all (problem, sample) pairs: each phase is one ``generate`` call.

    Thinking phases: every still-thinking sample continues for at most what is left of its budget. If its thinking
    closes within the budget, either its ``</think>`` is replaced by ``wait`` and it keeps thinking (while
    ``num_wait`` lasts), or what it wrote after ``</think>`` is the start of its answer. If the budget runs out (or
    the model stops without closing its thinking), ``</think>`` + ``answer_prefix`` is appended. Answer phase:
    samples without a finished answer continue with what is left of ``max_new_tokens``.
    """
    count = _TokenCounter(tokenizer)
    total = sampling.max_new_tokens
    budget = min(budget_tokens(method, total), total)
    end_ids = tokenizer(END_THINK, add_special_tokens=False)["input_ids"]
    closing = END_THINK + method.answer_prefix  # appended where budget forcing ends the thinking itself
    end_id = end_ids[0] if len(end_ids) == 1 else None
    states = [{"p": i, "text": "", "think": 0, "kept": 0, "injected": 0, "gen": 0, "waits": method.num_wait,
               "forced": False, "stage": "think", "finished": False, "sc": []}
              for i, p in enumerate(prompts) for _ in range(n)]

    def cut(c, limit):
        """Completion ``c`` cut to ``limit`` tokens: (text, token ids, finished)."""
        if c.num_tokens <= limit:
            return c.text, list(c.token_ids), c.finished
        ids = list(c.token_ids[:limit])
        return tokenizer.decode(ids, skip_special_tokens=True), ids, False

    def call(active, limits, phase, first=False):
        cfg = SamplingConfig(**{**sampling.__dict__, "n": n if first else 1, "max_new_tokens": max(limits),
                                "stop": [], "seed": sampling.seed + 7919 * phase})
        if first:  # n samples of each prompt: distinct random streams under any backend
            outs = generator.generate([p + method.prefill for p in prompts], cfg)
            comps = [c for o in outs for c in o]
        else:
            comps = [o[0] for o in generator.generate([prompts[s["p"]] + method.prefill + s["text"] for s in active],
                                                      cfg)]
        for s, c in zip(active, comps):
            s["gen"] += c.num_tokens
            if c.self_certainty is not None:
                s["sc"].append((c.self_certainty, c.num_tokens))
        return comps

    phase = 0
    while any(s["stage"] == "think" for s in states):
        active = [s for s in states if s["stage"] == "think"]
        limits = [budget - s["think"] for s in active]
        comps = call(active, limits, phase, first=phase == 0)
        for s, c, limit in zip(active, comps, limits):
            text, ids, finished = cut(c, limit)
            if END_THINK in text:  # thinking closed within the budget
                pre = text.split(END_THINK, 1)[0]
                k = ids.index(end_id) + 1 if end_id in ids else count(pre + END_THINK)  # tokens through </think>
                if s["waits"] > 0:  # s1: replace the end of thinking by "Wait" and go on thinking
                    s["text"] += pre + method.wait
                    s["kept"] += k - 1
                    s["injected"] += count(method.wait)
                    s["think"] += k - 1 + count(method.wait)
                    s["waits"] -= 1
                    if s["think"] >= budget:
                        s["text"] += closing
                        s["injected"] += count(closing)
                        s["forced"], s["stage"] = True, "answer"
                    continue
                s["text"] += text  # keep what follows </think>: the start of the answer
                s["kept"] += len(ids)
                s["think"] += k
                s["finished"] = finished
                s["stage"] = "done" if finished or s["kept"] + s["injected"] >= total else "answer"
            else:  # the budget ran out, or the model stopped inside its thinking: force the end of thinking
                s["text"] += text + closing
                s["kept"] += len(ids)
                s["think"] += len(ids)
                s["injected"] += count(closing)
                s["forced"], s["stage"] = True, "answer"
        phase += 1

    active = [s for s in states if s["stage"] == "answer"]
    if active:
        limits = [max(1, total - s["kept"] - s["injected"]) for s in active]
        comps = call(active, limits, phase)
        for s, c, limit in zip(active, comps, limits):
            text, ids, finished = cut(c, limit)
            s["text"] += text
            s["kept"] += len(ids)
            s["finished"] = finished

    out: list[list[Sample]] = [[] for _ in prompts]
    for s in states:
        w = sum(max(k, 1) for _, k in s["sc"])
        sc = sum(v * max(k, 1) for v, k in s["sc"]) / w if s["sc"] else None
        out[s["p"]].append(Sample(method.prefill + s["text"], count(method.prefill) + s["kept"] + s["injected"],
                                  s["gen"], s["finished"], sc,
                                  {"thinking_tokens": s["think"], "forced_end": s["forced"],
                                   "waits_used": method.num_wait - s["waits"]}))
    return out


def continue_texts(generator, texts: list[str], cfg: SamplingConfig, memo: dict | None = None) -> list:
    """One completion per text. A greedy continuation depends only on its text and settings, so each distinct one is
    generated once — across calls sharing ``memo`` (the reports' free choice and every threshold point continue the
    same ``prompt + <think>`` / ``prompt + <short>``). Sampled continuations are always drawn anew."""
    if cfg.temperature > 0:
        return [o[0] for o in generator.generate(texts, cfg)]
    memo = {} if memo is None else memo
    settings = tuple((k, repr(v)) for k, v in sorted(cfg.__dict__.items()) if k != "seed")
    keys = [(t, settings) for t in texts]
    todo = list(dict.fromkeys(k for k in keys if k not in memo))
    if todo:
        for k, o in zip(todo, generator.generate([t for t, _ in todo], cfg)):
            memo[k] = o[0]
    return [memo[k] for k in keys]


def sample_heads(generator, prompts: list[str], cfg: SamplingConfig, memo: dict | None = None) -> list:
    """The first generated token, ``cfg.n`` per prompt, as ``generate`` with ``max_new_tokens=1`` returns it. A
    generator with ``first_logits`` (HF) runs one forward pass per distinct prompt — once per ``memo``, so the
    reports' free choice and every threshold point share it — and the n tokens are drawn from those logits (think
    bias, temperature, top-p as in ``generate``); vLLM samples them itself."""
    import torch
    from transformers import TemperatureLogitsWarper, TopPLogitsWarper

    if not hasattr(generator, "first_logits") or cfg.self_certainty:
        return generator.generate(prompts, cfg)
    memo = {} if memo is None else memo
    todo = list(dict.fromkeys(p for p in prompts if ("first_logits", p) not in memo))
    if todo:
        for p, row in zip(todo, generator.first_logits(todo)):
            memo[("first_logits", p)] = row
    logits = torch.stack([memo[("first_logits", p)] for p in prompts])
    nothing_yet = torch.empty(len(prompts), 0, dtype=torch.long)  # the processors' view: the first position
    if cfg.think_bias:
        logits = ThinkBiasProcessor(generator.tokenizer, cfg.think_bias, 0)(nothing_yet, logits)
    if cfg.temperature > 0:  # HF generate's own warpers, in its order
        logits = TemperatureLogitsWarper(cfg.temperature)(nothing_yet, logits)
        if cfg.top_p < 1.0:
            logits = TopPLogitsWarper(cfg.top_p)(nothing_yet, logits)
        rng = torch.Generator().manual_seed(cfg.seed * 1_000_003)
        ids = torch.multinomial(torch.softmax(logits, dim=-1), cfg.n, replacement=True, generator=rng)
    else:
        ids = logits.argmax(dim=-1, keepdim=True).expand(-1, cfg.n)
    return [[completion_from_ids(generator.tokenizer, [t], generator.eos_ids) for t in row] for row in ids.tolist()]


def sample_mode_then(generator, tokenizer, prompts: list[str], method: Method, n: int,
                     sampling: SamplingConfig, memo: dict | None = None) -> list[list[Sample]]:
    """Sample the control token (one token, ``mode_temperature``, n per prompt), then continue each sample
    (greedy continuations through ``continue_texts``: each distinct one generated once per ``memo``)."""
    head_cfg = SamplingConfig(**{**sampling.__dict__, "temperature": method.mode_temperature, "top_p": 1.0,
                                 "max_new_tokens": 1, "n": n, "stop": [], "self_certainty": False,
                                 "seed": sampling.seed + 1, "think_bias": method.think_bias})
    heads = sample_heads(generator, prompts, head_cfg, memo)
    flat = [(i, c) for i, o in enumerate(heads) for c in o]
    rest_cfg = SamplingConfig(**{**sampling.__dict__, "n": 1, "max_new_tokens": max(1, sampling.max_new_tokens - 1)})
    rest = continue_texts(generator, [prompts[i] + h.text for i, h in flat], rest_cfg, memo)
    out: list[list[Sample]] = [[] for _ in prompts]
    for (i, h), c in zip(flat, rest):
        if h.finished and h.num_tokens == 0:  # the first token was the EOS: an empty response
            out[i].append(Sample("", 0, 0, True, None))
            continue
        out[i].append(Sample(h.text + c.text, h.num_tokens + c.num_tokens, h.num_tokens + c.num_tokens, c.finished,
                             c.self_certainty))
    return out


def sample(generator, tokenizer, prompts: list[str], method: Method, n: int,
           sampling: SamplingConfig, memo: dict | None = None) -> list[list[Sample]]:
    """``n`` samples per rendered prompt (generation prompt, no prefill: the method adds its own); ``memo``: greedy
    continuations shared across calls (``continue_texts``)."""
    if method.type == "prefill":
        return sample_prefill(generator, tokenizer, prompts, method, n, sampling)
    if method.type == "mode_sampled":
        return sample_mode_then(generator, tokenizer, prompts, method, n, sampling, memo)
    if method.type == "budget_forcing":
        return sample_budget_forcing(generator, tokenizer, prompts, method, n, sampling)
    raise ValueError(f"method {method.name!r} of type {method.type!r} is sampled through its base method")
