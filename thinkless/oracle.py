"""The oracle router: the best fixed mode per level (class) and its averages over an evaluation set.

The one owner of this arithmetic: the pipeline report's oracle router (``thinkless.reporting.report.pipeline_table``),
the calibration's best mode (``thinkless.evaluation.calibration``) and the gym's oracle point and run summaries
(``bench/gym.py``) read it from here. What a mode is worth at an accuracy is the reward table's
(``thinkless.reward.RewardValues.expected``).

Averages over levels follow one rule, ``mean_over_problems``: each level counts by its number of problems, so a
mean is the expectation over the evaluation set's problems (what the calibration's expected reward and the
evaluation's overall accuracy are too); with equal levels it is the plain mean of the per-level numbers.

The accuracy-token frontier (``accuracy_frontier``, ``frontier_accuracy``) is the oracle without a price: the best
accuracy per-class routing of a model reaches at each mean token cost, whatever γ. The gym ranks every run by its
accuracy gap to it at the run's own token cost (``bench/gym.py``, docs/gym.md).
"""

from __future__ import annotations

import math


def oracle_choice(p_short: float, p_think: float, rewards) -> tuple[str, float]:
    """Best fixed mode for a level and its expected reward (a tie goes to think); ``rewards``: a
    ``thinkless.reward.RewardValues``.

    E[short] = p_s·r_cs + (1−p_s)·r_ws and E[think] = p_t·r_ct + (1−p_t)·r_wt; with 1 / 1−γ / −1 short pays iff
    p_short > p_think·(2−γ)/2.
    """
    e_short, e_think = rewards.expected("short", p_short), rewards.expected("think", p_think)
    return ("short", e_short) if e_short > e_think else ("think", e_think)


def mean_over_problems(values, n) -> float:
    """The mean over an evaluation set of a number known per level (class): ``values[i]`` weighted by ``n[i]``, the
    level's number of problems. The counts are reduced by their greatest common divisor first, so equal levels give
    exactly the plain mean ``sum(values) / len(values)`` (not one rounding step away from it)."""
    values, n = list(values), list(n)
    if not values or len(values) != len(n):
        raise ValueError(f"{len(values)} values and {len(n)} problem counts: one count per value is expected")
    if any(isinstance(k, bool) or not isinstance(k, int) or k <= 0 for k in n):
        raise ValueError(f"problem counts {n}: positive integers are expected")
    g = math.gcd(*n)
    w = [k // g for k in n]
    return sum(v * k for v, k in zip(values, w)) / sum(w)


def accuracy_frontier(classes) -> list[dict]:
    """The accuracy-token frontier of per-class routing: the best accuracy a router that sends each class's problems
    (or a share of them) to one forced mode can reach at each mean token cost, given what the model does per class in
    each mode. ``classes``: ``{class: {"n", "short_acc", "short_tokens", "think_acc", "think_tokens"}}`` (a pipeline
    report's rows, ``thinkless.reporting.report.rows_of``). Returns the vertices, cheapest first, each
    ``{"tokens", "acc", "think_ratio", "switched", "modes"}`` (means over problems, ``mean_over_problems``; the class
    switched to reach it, None for the first; every class's mode there).

    The rule (the exact optimum of the fractional routing problem, a fractional knapsack with two modes per class):
    each class starts in its cheaper mode (short unless think costs fewer tokens; equal tokens: the more accurate
    mode, short on a tie) -- the first vertex, the cheapest routing there is. A class whose other mode is more
    accurate is then switched to it, one class at a time, in order of accuracy gained per token added (ties: the
    classes' order; tied classes lie on one straight segment, so their order does not move the curve). A class whose
    other mode is no more accurate is never switched: it would add tokens and no accuracy. Between two vertices
    the frontier is linear: the class being switched sends that share of its problems to its other mode."""
    keys = list(classes)
    if not keys:
        raise ValueError("no classes: the frontier needs at least one class's forced accuracies and tokens")
    n = [classes[k]["n"] for k in keys]
    base, other, gain = {}, {}, []
    for k in keys:
        c = classes[k]
        think_first = (c["think_tokens"], -c["think_acc"]) < (c["short_tokens"], -c["short_acc"])
        base[k], other[k] = ("think", "short") if think_first else ("short", "think")
        d_acc = c[f"{other[k]}_acc"] - c[f"{base[k]}_acc"]
        if d_acc > 0:  # then d_tokens > 0 too: equal tokens put the more accurate mode first
            gain.append((d_acc / (c[f"{other[k]}_tokens"] - c[f"{base[k]}_tokens"]), k))
    order = [k for _, k in sorted(gain, key=lambda g: -g[0])]  # stable: ties keep the classes' order

    def vertex(modes, switched):
        mean = lambda x: mean_over_problems([classes[k][f"{modes[k]}_{x}"] for k in keys], n)  # noqa: E731
        return {"tokens": mean("tokens"), "acc": mean("acc"),
                "think_ratio": mean_over_problems([float(modes[k] == "think") for k in keys], n),
                "switched": switched, "modes": dict(modes)}

    modes = dict(base)
    out = [vertex(modes, None)]
    for k in order:
        modes[k] = other[k]
        out.append(vertex(modes, k))
    return out


def frontier_accuracy(frontier: list[dict], tokens: float) -> float:
    """The best accuracy per-class routing reaches at a mean cost of ``tokens`` (``frontier``: ``accuracy_frontier``'s
    vertices): linear between vertices; above the last vertex its accuracy (more tokens buy nothing more); below the
    first -- the cheapest routing -- the first vertex's accuracy, so that a policy cheaper than any routing is held to
    the cheapest routing's accuracy rather than to an extrapolation."""
    if math.isnan(tokens):
        return math.nan
    if tokens <= frontier[0]["tokens"]:
        return frontier[0]["acc"]
    for a, b in zip(frontier, frontier[1:]):
        if tokens <= b["tokens"]:
            return a["acc"] + (b["acc"] - a["acc"]) * (tokens - a["tokens"]) / (b["tokens"] - a["tokens"])
    return frontier[-1]["acc"]
