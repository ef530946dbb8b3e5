"""The oracle router (thinkless/oracle.py): a mode's expected reward from its accuracy, the best fixed mode."""

import pytest

from thinkless.oracle import mode_reward, oracle_choice
from thinkless.reward import RewardValues

G05 = RewardValues(correct_think=0.5)


def test_mode_reward():
    v = RewardValues(correct_short=1.0, correct_think=0.8, wrong_short=-2.0, wrong_think=-1.0)
    assert mode_reward("short", 0.75, v) == pytest.approx(0.75 * 1.0 + 0.25 * -2.0)
    assert mode_reward("think", 0.5, v) == pytest.approx(0.5 * 0.8 - 0.5)
    assert mode_reward("think", 1.0, v) == 0.8 and mode_reward("short", 0.0, v) == -2.0
    with pytest.raises(ValueError, match="valid choices"):
        mode_reward("auto", 0.5, v)


def test_oracle_rule():
    # short pays iff p_short > p_think * (2 - gamma) / 2  (0.75 when think is always right, gamma = 0.5)
    assert oracle_choice(0.76, 1.0, G05)[0] == "short"
    assert oracle_choice(0.74, 1.0, G05)[0] == "think"
    mode, r = oracle_choice(1.0, 1.0, G05)
    assert mode == "short" and r == pytest.approx(1.0)
    mode, r = oracle_choice(0.2, 1.0, G05)
    assert mode == "think" and r == pytest.approx(0.5)
    assert oracle_choice(0.5, 0.6, RewardValues(correct_think=1.0))[0] == "think"  # gamma 0: short must win outright
    assert oracle_choice(0.5, 0.5, RewardValues(correct_think=1.0))[0] == "think"  # a tie goes to think
    # general values: E[short] = 0.8*1 + 0.2*(-2) = 0.4 vs E[think] = 1*0.8 = 0.8
    assert oracle_choice(0.8, 1.0, RewardValues(correct_think=0.8, wrong_short=-2.0)) == ("think", pytest.approx(0.8))
