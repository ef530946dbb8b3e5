"""The oracle router: what a mode is worth at a given accuracy, and the best fixed mode.

The one owner of this arithmetic: the pipeline report's oracle router (``thinkless.reporting.report.pipeline_table``) and the
calibration's best mode and oracle threshold (``thinkless.evaluation.calibration``) both read it from here.
"""

from __future__ import annotations

MODES = ("think", "short")


def mode_reward(mode: str, acc: float, rewards) -> float:
    """Expected reward of answering in ``mode`` with accuracy ``acc``: ``acc·r_correct + (1−acc)·r_wrong`` under
    ``rewards`` (a ``thinkless.reward.RewardValues``)."""
    if mode == "short":
        return acc * rewards.correct_short + (1 - acc) * rewards.wrong_short
    if mode == "think":
        return acc * rewards.correct_think + (1 - acc) * rewards.wrong_think
    raise ValueError(f"mode {mode!r}: valid choices are {MODES}")


def oracle_choice(p_short: float, p_think: float, rewards) -> tuple[str, float]:
    """Best fixed mode for a level and its expected reward (a tie goes to think).

    E[short] = p_s·r_cs + (1−p_s)·r_ws and E[think] = p_t·r_ct + (1−p_t)·r_wt; with 1 / 1−γ / −1 short pays iff
    p_short > p_think·(2−γ)/2.
    """
    e_short, e_think = mode_reward("short", p_short, rewards), mode_reward("think", p_think, rewards)
    return ("short", e_short) if e_short > e_think else ("think", e_think)
