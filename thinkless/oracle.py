"""The oracle router: the best fixed mode per level (class) and its averages over an evaluation set.

The one owner of this arithmetic: the pipeline report's oracle router (``thinkless.reporting.report.pipeline_table``),
the calibration's best mode (``thinkless.evaluation.calibration``) and the gym's oracle point and run summaries
(``bench/gym.py``) read it from here. What a mode is worth at an accuracy is the reward table's
(``thinkless.reward.RewardValues.expected``).

Averages over levels follow one rule, ``mean_over_problems``: each level counts by its number of problems, so a
mean is the expectation over the evaluation set's problems (what the calibration's expected reward and the
evaluation's overall accuracy are too); with equal levels it is the plain mean of the per-level numbers.
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
