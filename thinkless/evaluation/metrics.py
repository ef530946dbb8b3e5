"""Scoring: pass@k, majority vote, confidence selection, and the per benchmark x method summary.

Each metric's definition (``pass@k`` is Chen et al.'s unbiased estimator; ``tokens`` counts response tokens only):
docs/evaluation.md, "Metrics". The mode-usage statistics (think ratio, invalid mode, reward, tokens and accuracy per
mode) come from ``mode_usage``, the same function behind the RL trainer's ``modes/*`` curves
(``thinkless.reporting.monitor.mode_metrics``), so evaluation and training count alike; the lengths and the invalid
mode keep their evaluation names here (``RESULT_NAMES``: ``tokens_*``, ``invalid_mode_ratio``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..grading import Grader, canonical_answer
from ..tasks.base import SPLITS
from ..tokens import MODE_CODES  # else -1: no control token


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k: 1 - C(n-c, k) / C(n, k), computed as a stable product."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def default_ks(n: int) -> list[int]:
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return ks + [n]


def majority_vote(answers: list[str | None], equivalent=None) -> int | None:
    """Index of a sample holding the most frequent answer (``None`` answers do not vote; ``None`` if no votes).

    Answers are grouped by ``canonical_answer``; ``equivalent(a, b)`` (e.g. math-verify) also merges groups whose
    representatives are equivalent. Ties go to the group whose first member came first.
    """
    groups: list[list[int]] = []
    reps: list[str] = []
    by_key: dict[str, int] = {}
    for i, a in enumerate(answers):
        if a is None:
            continue
        key = canonical_answer(a)
        if not key:
            continue
        g = by_key.get(key)
        if g is None and equivalent is not None:
            g = next((j for j, r in enumerate(reps) if equivalent(a, r)), None)
        if g is None:
            g = len(groups)
            groups.append([])
            reps.append(a)
        by_key[key] = g
        groups[g].append(i)
    if not groups:
        return None
    best = max(range(len(groups)), key=lambda j: (len(groups[j]), -groups[j][0]))
    return groups[best][0]


def confidence_select(answers: list[str | None], scores: list[float | None]) -> int | None:
    """Index of the highest-confidence sample among those with an answer and a score (ties: the earliest)."""
    cands = [i for i, (a, s) in enumerate(zip(answers, scores)) if a is not None and s is not None]
    if not cands:
        return None
    return max(cands, key=lambda i: (scores[i], -i))


# ------------------------------------------------------------------ grading of samples


@dataclass
class Graded:
    correct: bool
    answer: str | None  # the extracted final answer
    mode: str | None
    tokens: int
    gen_tokens: int
    finished: bool
    self_certainty: float | None


# ------------------------------------------------------------------ mode usage


def mode_usage(mode: torch.Tensor, correct: torch.Tensor | None, tokens: torch.Tensor,
               reward: torch.Tensor | None = None) -> dict[str, float]:
    """Mode-usage statistics of a set of samples (1-D tensors of one float dtype; the means are taken in it).

    ``mode``: 1 think, 0 short, -1 no control token; ``correct``: 1/0, None when unknown (the accuracy keys are then
    absent); ``tokens``: response tokens; ``reward``: optional. Keys: ``think_ratio``, ``invalid_format``, ``reward``,
    ``tokens``, ``accuracy``, and for a mode with samples ``len_<mode>`` (mean), ``len_<mode>_p90``, ``len_<mode>_max``
    and ``acc_<mode>``. Empty: ``{}``.
    """
    out: dict[str, float] = {}
    if mode.numel() == 0:
        return out
    think, short = mode == 1, mode == 0
    out["think_ratio"] = think.to(tokens.dtype).mean().item()
    out["invalid_format"] = (mode == -1).to(tokens.dtype).mean().item()
    if reward is not None:
        out["reward"] = reward.mean().item()
    out["tokens"] = tokens.mean().item()
    if correct is not None:
        out["accuracy"] = correct.mean().item()
    for name, m in (("think", think), ("short", short)):
        if m.any():
            out[f"len_{name}"] = tokens[m].mean().item()
            # the distribution, not only the mean: short-mode hacking (reasoning in plain prose after <short>,
            # which the strict format check cannot see) shows as a long tail of short lengths
            out[f"len_{name}_p90"] = torch.quantile(tokens[m].double(), 0.9).item()
            out[f"len_{name}_max"] = tokens[m].max().item()
            if correct is not None:
                out[f"acc_{name}"] = correct[m].mean().item()
    return out


LONG_SHORT_MULTIPLE = 3.0  # default of rl.args.long_short_multiple and eval's long_short_multiple


def long_short_share(mode: torch.Tensor, tokens: torch.Tensor, groups: torch.Tensor,
                     multiple: float = LONG_SHORT_MULTIPLE) -> float | None:
    """Share of short responses longer than ``multiple`` x the median short length of their group (the samples of
    one prompt; ``groups``: a group id per row). A short answer that keeps reasoning in plain prose lights this up
    while its group's other short answers stay short; a group where every short answer does it does not (that
    shows in ``len_short_p90``/``_max`` beside the think mode's). None without short responses."""
    short = mode == 0
    if not short.any():
        return None
    over = 0
    for g in torch.unique(groups[short]):
        lengths = tokens[short & (groups == g)].double()
        # the lower median (torch's): with two short answers the longer one can still stand out
        over += (lengths > multiple * lengths.median()).sum().item()
    return over / short.sum().item()


# the results' (and tables', README's) names for three of mode_usage's keys (those are the trainer's wandb names)
RESULT_NAMES = {"len_think": "tokens_think", "len_short": "tokens_short", "invalid_format": "invalid_mode_ratio",
                **{f"len_{m}_{q}": f"tokens_{m}_{q}" for m in ("think", "short") for q in ("p90", "max")}}


def _mode_usage(modes, correct, tokens, reward) -> dict:
    """``mode_usage`` of graded samples, in float64 (as exact as Python's means), under the results' names."""
    t = lambda xs: torch.tensor(xs, dtype=torch.float64)  # noqa: E731
    usage = mode_usage(t([MODE_CODES.get(m, -1.0) for m in modes]), t(correct), t(tokens),
                       t(reward) if reward else None)
    return {RESULT_NAMES.get(k, k): v for k, v in usage.items()}


# ------------------------------------------------------------------ token budgets (an L1 policy, objective=l1)


def budget_adherence(problems: list[dict], budget: int) -> dict:
    """How an L1 policy honoured a requested token budget ``budget`` over every sample of ``problems`` (graded, as
    ``summarize`` takes them). A sample's length counts its EOS, as the objective's L does in training (and the
    authors' ``valid_response_length``): the eval's ``tokens`` + 1 for a sample that ended by itself.
    ``relative_error`` is the paper's mean error ``(E[n] − N)/N``; ``within_budget``: the share with n ≤ N (what an
    L1-Max policy promises). Where the problems have levels, ``per_level`` says the same per level (a task's levels
    may not all reach a budget: a level-6 fold trace is longer than 24 tokens)."""
    lengths = [(p.get("level"), s.tokens + int(s.finished)) for p in problems for s in p["samples"]]
    out = _adherence([n for _, n in lengths], budget)
    levels = sorted({p["level"] for p in problems if p.get("level") is not None}, key=lambda v: (isinstance(v, str), v))
    if levels and out["n"]:
        out["per_level"] = {str(lv): _adherence([n for v, n in lengths if v == lv], budget) for lv in levels}
    return out


def _adherence(lengths: list[int], budget: int) -> dict:
    if not lengths:
        return {"requested": budget, "n": 0}
    mean = sum(lengths) / len(lengths)
    return {"requested": budget, "n": len(lengths), "mean_tokens": mean,
            "mean_abs_error": sum(abs(n - budget) for n in lengths) / len(lengths),
            "relative_error": (mean - budget) / budget,
            "within_budget": sum(n <= budget for n in lengths) / len(lengths),
            "max_tokens": max(lengths)}


# ------------------------------------------------------------------ summaries


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return float(sum(xs) / len(xs)) if xs else None


def summarize(problems: list[dict], *, parallel: bool, selection: str | None = None, ks=None,
              grader: Grader | None = None, rewards=None, long_short_multiple: float = LONG_SHORT_MULTIPLE) -> dict:
    """Metrics of one benchmark x method. ``problems``: ``{"level", "problem_class"?, "samples": [Graded], "seconds"}``
    dicts (``problem_class``: the problem's class where the task has classes: ``per_group`` beside ``per_level``,
    the result files' key of classes, ``thinkless.tasks.base.SPLITS``).

    ``parallel``: the samples of a problem are alternatives for one answer (cost = their sum, latency = their max)
    and ``acc`` is the accuracy of ``selection``; otherwise each sample is an answer and ``acc`` = pass@1.
    """
    grader = grader or Grader()
    if not problems:
        return {"n_problems": 0}
    n = min(len(p["samples"]) for p in problems)
    ks = sorted({k for k in (ks or default_ks(n)) if 1 <= k <= n} | {n})
    rows = []
    for p in problems:
        s = p["samples"][:n]
        c = sum(x.correct for x in s)
        answers = [x.answer for x in s]
        r = {"level": p.get("level"), "problem_class": p.get("problem_class"), "pass@1": c / n}
        for k in ks:
            r[f"pass@{k}"] = pass_at_k(n, c, k)
            mi = majority_vote(answers[:k], grader.equivalent)
            r[f"maj@{k}"] = float(mi is not None and s[mi].correct)
            ci = confidence_select(answers[:k], [x.self_certainty for x in s[:k]])
            has_sc = all(x.self_certainty is not None for x in s[:k])
            r[f"conf@{k}"] = float(ci is not None and s[ci].correct) if has_sc else None
        r["correct"] = [x.correct for x in s]
        r["reward"] = [rewards.of(x.mode, x.correct) for x in s] if rewards is not None else []
        r["modes"] = [x.mode for x in s]
        r["tokens"] = [x.tokens for x in s]
        r["gen_tokens"] = sum(x.gen_tokens for x in s)
        r["truncated"] = [not x.finished for x in s]
        r["no_answer"] = [x.answer is None for x in s]
        r["seconds"] = p.get("seconds", 0.0)
        if parallel:
            r["acc"] = {"majority": r[f"maj@{n}"], "confidence": r[f"conf@{n}"], "verifier": r[f"pass@{n}"]}[selection]
            r["cost"] = sum(r["tokens"])
            r["latency"] = max(r["tokens"])
        else:
            r["acc"] = r["pass@1"]
            r["cost"] = sum(r["tokens"]) / n
            r["latency"] = sum(r["tokens"]) / n
        rows.append(r)
    out = _aggregate(rows, ks, long_short_multiple=long_short_multiple)
    out["n_samples"] = n
    out["ks"] = ks
    out["selection"] = selection if parallel else None
    levels = sorted({r["level"] for r in rows if r["level"] is not None}, key=lambda v: (isinstance(v, str), v))
    if levels:  # the split keys' one owner: thinkless.tasks.base.SPLITS ("per_level", "per_group")
        out[SPLITS["level"].report_key] = {str(lv): _aggregate([r for r in rows if r["level"] == lv], ks, brief=True)
                                           for lv in levels}
    classes = sorted({r["problem_class"] for r in rows if r["problem_class"] is not None})
    if classes:
        out[SPLITS["class"].report_key] = {str(c): _aggregate([r for r in rows if r["problem_class"] == c], ks,
                                                              brief=True) for c in classes}
    return out


def _aggregate(rows: list[dict], ks, *, brief: bool = False,
               long_short_multiple: float = LONG_SHORT_MULTIPLE) -> dict:
    flat = lambda key: [v for r in rows for v in r[key]]  # noqa: E731
    usage = _mode_usage(flat("modes"), flat("correct"), flat("tokens"), flat("reward"))
    out = {
        "n_problems": len(rows),
        "acc": _mean([r["acc"] for r in rows]),
        "pass@1": _mean([r["pass@1"] for r in rows]),
        **{k: usage.get(k) for k in ("think_ratio", "tokens", "tokens_think", "tokens_short", "acc_think",
                                     "acc_short", "invalid_mode_ratio")},
        "cost_tokens": _mean([r["cost"] for r in rows]),
    }
    if "reward" in usage:
        out["reward"] = usage["reward"]
    if brief:
        return out
    # the short-mode length distribution beside the think mode's, and short-mode hacking (the samples of a problem
    # are its group)
    out.update({k: usage.get(k) for k in RESULT_NAMES.values() if k.endswith(("_p90", "_max"))})
    t = lambda xs: torch.tensor(xs, dtype=torch.float64)  # noqa: E731
    out["long_short_share"] = long_short_share(t([MODE_CODES.get(m, -1.0) for m in flat("modes")]), t(flat("tokens")),
                                               t([i for i, r in enumerate(rows) for _ in r["modes"]]),
                                               long_short_multiple)
    k_max = max(ks) if ks else 1
    seconds = sum(r["seconds"] for r in rows)
    gen = sum(r["gen_tokens"] for r in rows)
    out.update({
        "k": k_max,
        "pass@k": _mean([r[f"pass@{k_max}"] for r in rows]),
        "maj@k": _mean([r[f"maj@{k_max}"] for r in rows]),
        "pass_at": {str(k): _mean([r[f"pass@{k}"] for r in rows]) for k in ks},
        "maj_at": {str(k): _mean([r[f"maj@{k}"] for r in rows]) for k in ks},
        "conf_at": {str(k): _mean([r[f"conf@{k}"] for r in rows]) for k in ks},
        "latency_tokens": _mean([r["latency"] for r in rows]),
        "truncated_ratio": _mean(flat("truncated")),
        "no_answer_ratio": _mean(flat("no_answer")),
        "wall_s": round(seconds, 2),
        "generated_tokens": gen,
        "tokens_per_s": gen / seconds if seconds > 0 else None,
    })
    return out


def fmt(v, spec: str = "{:.3f}") -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    return spec.format(v)
