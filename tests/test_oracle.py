"""The oracle router (thinkless/oracle.py): the best fixed mode per level, and the one rule for averages over levels."""

import pytest

from thinkless.oracle import mean_over_problems, oracle_choice
from thinkless.reward import RewardValues

G05 = RewardValues(correct_think=0.5)


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


def test_mean_over_problems_weights_each_level_by_its_problems():
    # 100 problems worth 1.0 and 300 worth 0.5: E over the 400 problems = (100 + 150) / 400, not (1.0 + 0.5) / 2
    assert mean_over_problems([1.0, 0.5], [100, 300]) == pytest.approx(0.625)
    assert mean_over_problems([0.2, 0.9, 0.4], [1, 2, 7]) == pytest.approx((0.2 + 1.8 + 2.8) / 10)
    # equal levels: exactly the plain mean (the published tables' numbers, to the last bit)
    vals = [0.934, 0.475, 0.485, 0.47, 0.485, 0.494]
    assert mean_over_problems(vals, [100] * 6) == sum(vals) / 6
    assert mean_over_problems([0.1, 0.2], [50, 100]) == (0.1 + 0.2 * 2) / 3


@pytest.mark.parametrize("values,n", [([], []), ([1.0], [1, 2]), ([1.0], [0]), ([1.0], [-3]), ([1.0], [2.5]),
                                      ([1.0], [True]), ([1.0], [None])])
def test_mean_over_problems_needs_one_positive_count_per_value(values, n):
    with pytest.raises(ValueError):
        mean_over_problems(values, n)
