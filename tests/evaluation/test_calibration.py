"""The calibration of the mode decision and the oracle threshold (thinkless/evaluation/calibration.py)."""

import math

import pytest

from thinkless.evaluation.calibration import calibrate, expected_reward
from thinkless.reward import RewardValues


def test_oracle_threshold_where_thinking_pays_only_on_hard_levels():
    # level 1: short is right anyway (think buys nothing); level 2: only thinking is right
    forced = {1: (1.0, 1.0), 2: (1.0, 0.0)}
    z = [1.0] * 10 + [-1.0] * 10      # a miscalibrated model: it prefers thinking on the easy level
    levels = [1] * 10 + [2] * 10
    cal = calibrate(z, levels, forced, RewardValues())
    assert cal["per_level"]["1"]["p_think"] == pytest.approx(1 / (1 + math.exp(-1)))
    assert cal["per_level"]["1"]["best_mode"] == "short" and cal["per_level"]["2"]["best_mode"] == "think"
    th = cal["oracle_threshold"]
    # no single bias separates the levels (the easy one has the higher log-odds): the best is a corner
    assert not th["exists"] and th["reward"] == pytest.approx(max(th["reward_always_think"], th["reward_always_short"]))
    # a calibrated model (easy: log-odds -4, hard: +4): the best bias is interior and separates the levels
    good = calibrate([-4.0] * 10 + [4.0] * 10, levels, forced, RewardValues())["oracle_threshold"]
    assert good["exists"] and -4.0 < good["bias"] < 4.0
    assert good["reward"] >= good["reward_at_0"] and good["reward"] > good["reward_always_think"]
    assert good["think_ratio_per_level"]["2"] > 0.9 and good["think_ratio_per_level"]["1"] < 0.2


def test_expected_reward_formula():
    e_think, e_short = {1: 0.5}, {1: 1.0}
    # z = 0: think half of the time -> (0.5 + 1.0) / 2
    assert expected_reward([0.0], [1], e_think, e_short, 0.0) == pytest.approx(0.75)
    assert expected_reward([0.0], [1], e_think, e_short, 50.0) == pytest.approx(0.5)


def test_without_forced_results_only_p_think():
    cal = calibrate([0.0, 2.0], ["a", "a"], None, RewardValues())
    assert "oracle_threshold" not in cal and cal["per_level"]["a"]["n"] == 2
