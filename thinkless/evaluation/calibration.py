"""Calibration of the mode decision: P(think) per difficulty level beside what thinking buys, and the oracle threshold.

For every problem the model's log-odds of thinking, ``z = log p(<think>) − log p(<short>)`` at the first generated
position of the adaptive prompt, are read from its distribution (one forward pass; no sampling). Per level:

* ``p_think``: the mean of ``sigmoid(z)`` — how often the model would think;
* ``acc_gain``: forced-think accuracy − forced-short accuracy (from the same run's forced methods) — what thinking
  buys there; a calibrated router thinks where the gain is large;
* the best fixed mode under the reward values (``thinkless.oracle``, as the pipeline report's oracle router).

The *oracle threshold* is the single think bias ``b*`` (``thinkless.serving.mode_control``) that maximises the expected
reward ``E[r](b) = mean_i σ(z_i + b)·E_think(L_i) + (1 − σ(z_i + b))·E_short(L_i)``, with ``E_mode(L)`` from the
forced accuracies of level ``L`` (``thinkless.reward.RewardValues.expected``). It *exists* when the best bias is
interior (not "always think" / "always short" at the ends of the search range); then ``E[r](b*)`` is the most one
model's router can earn by moving its threshold.
"""

from __future__ import annotations

import math

from ..oracle import oracle_choice

BIAS_RANGE = (-20.0, 20.0)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x > -60 else 0.0


def expected_reward(z: list[float], levels: list, e_think: dict, e_short: dict, bias: float) -> float:
    total = 0.0
    for zi, lv in zip(z, levels):
        q = _sigmoid(zi + bias)
        total += q * e_think[lv] + (1 - q) * e_short[lv]
    return total / len(z)


def calibrate(z: list[float], levels: list, forced: dict | None, rewards) -> dict:
    """``z``: per-problem log-odds of thinking; ``levels``: per problem; ``forced``: ``{level: (acc_think,
    acc_short)}`` or None. Returns per-level statistics and (with ``forced``) the oracle threshold."""
    lv_keys = sorted({lv for lv in levels}, key=lambda v: (v is None, str(v)))
    out: dict = {"per_level": {}}
    for lv in lv_keys:
        zs = [zi for zi, li in zip(z, levels) if li == lv]
        row = {"n": len(zs), "p_think": sum(_sigmoid(zi) for zi in zs) / len(zs),
               "mean_log_odds": sum(zs) / len(zs)}
        if forced and lv in forced:
            at, ast = forced[lv]
            row.update(acc_think=at, acc_short=ast, acc_gain=at - ast, best_mode=oracle_choice(ast, at, rewards)[0])
        out["per_level"][str(lv)] = row
    if forced and all(lv in forced for lv in lv_keys):
        e_think = {lv: rewards.expected("think", a) for lv, (a, _) in forced.items()}
        e_short = {lv: rewards.expected("short", s) for lv, (_, s) in forced.items()}
        lo, hi = BIAS_RANGE
        grid = [lo + 0.1 * i for i in range(int(round((hi - lo) / 0.1)) + 1)]
        scores = [expected_reward(z, levels, e_think, e_short, b) for b in grid]
        best = max(range(len(grid)), key=lambda i: (scores[i], -abs(grid[i])))
        b = grid[best]
        interior = 0 < best < len(grid) - 1 and scores[best] > max(scores[0], scores[-1]) + 1e-9
        out["oracle_threshold"] = {
            "exists": interior, "bias": round(b, 2) if interior else None,
            "reward": scores[best], "reward_at_0": expected_reward(z, levels, e_think, e_short, 0.0),
            "reward_always_think": scores[-1], "reward_always_short": scores[0],
            "think_ratio_per_level": {str(lv): sum(_sigmoid(zi + b) for zi, li in zip(z, levels) if li == lv)
                                      / max(1, sum(li == lv for li in levels)) for lv in lv_keys},
        }
    return out
