"""The oracle router (thinkless/oracle.py): the best fixed mode per level, the one rule for averages over levels, and
the accuracy-token frontier of per-class routing."""

import itertools
import math
import random

import pytest

from thinkless.oracle import accuracy_frontier, frontier_accuracy, mean_over_problems, oracle_choice
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


def cls(n, short_acc, think_acc, short_tokens=5.0, think_tokens=25.0):
    return {"n": n, "short_acc": short_acc, "think_acc": think_acc, "short_tokens": short_tokens,
            "think_tokens": think_tokens}


# weights 1 : 1 : 2. Think gains 0.1 for 20 tokens on class 1 (0.005 per token), 0.4 for 20 on class 2 (0.02), nothing
# on class 3 (for 40 more tokens): all short (0.9 + 0.5 + 2·0.6)/4 = 0.65 at 5 tokens; class 2 first, (0.9 + 0.9 +
# 1.2)/4 = 0.75 at (5 + 25 + 2·5)/4 = 10; then class 1, (1.0 + 0.9 + 1.2)/4 = 0.775 at (25 + 25 + 10)/4 = 15; class 3
# never.
THREE = {"1": cls(100, 0.9, 1.0), "2": cls(100, 0.5, 0.9), "3": cls(200, 0.6, 0.6, think_tokens=45.0)}


def test_frontier_switches_classes_by_accuracy_gained_per_token():
    f = accuracy_frontier(THREE)
    assert [(v["tokens"], v["acc"], v["switched"]) for v in f] == [
        (pytest.approx(5.0), pytest.approx(0.65), None), (pytest.approx(10.0), pytest.approx(0.75), "2"),
        (pytest.approx(15.0), pytest.approx(0.775), "1")]
    assert [v["think_ratio"] for v in f] == [0.0, 0.25, 0.5]
    assert f[-1]["modes"] == {"1": "think", "2": "think", "3": "short"}  # think adds nothing on class 3: never
    assert frontier_accuracy(f, 7.5) == pytest.approx(0.70)  # half of class 2's problems thinking
    assert frontier_accuracy(f, 12.5) == pytest.approx(0.7625)
    assert frontier_accuracy(f, 10.0) == pytest.approx(0.75) and frontier_accuracy(f, 15.0) == pytest.approx(0.775)
    assert frontier_accuracy(f, 3.0) == pytest.approx(0.65)  # below the cheapest routing: its accuracy
    assert frontier_accuracy(f, 40.0) == pytest.approx(0.775)  # past the last vertex: more tokens buy nothing
    assert math.isnan(frontier_accuracy(f, math.nan))


def test_frontier_ties_and_a_cheaper_think():
    # classes 1 and 2 gain the same per token: they keep their order, and either order gives the same curve
    tied = {"1": cls(100, 0.9, 1.0), "2": cls(100, 0.8, 1.0, think_tokens=45.0), "3": cls(100, 0.5, 0.5)}
    f = accuracy_frontier(tied)
    assert [v["switched"] for v in f] == [None, "1", "2"]
    g = accuracy_frontier({k: tied[k] for k in ("2", "1", "3")})
    assert [v["switched"] for v in g] == [None, "2", "1"]
    for x in (5.0, 10.0, 12.0, 20.0, 30.0):
        assert frontier_accuracy(f, x) == pytest.approx(frontier_accuracy(g, x))
    # think cheaper and more accurate: that class starts in think (the cheapest routing is not all-short); equal
    # tokens: the more accurate mode first, short on a full tie; neither is ever switched back
    odd = {"1": cls(100, 0.5, 0.9, think_tokens=4.0), "2": cls(100, 0.4, 0.7, think_tokens=5.0),
           "3": cls(100, 0.6, 0.6, think_tokens=5.0), "4": cls(100, 0.2, 1.0)}
    f = accuracy_frontier(odd)
    assert f[0]["modes"] == {"1": "think", "2": "think", "3": "short", "4": "short"}
    assert [v["switched"] for v in f] == [None, "4"]
    assert f[0]["tokens"] == pytest.approx((4 + 5 + 5 + 5) / 4) and f[0]["acc"] == pytest.approx((0.9 + 0.7 + 0.6 + 0.2) / 4)
    with pytest.raises(ValueError):
        accuracy_frontier({})


def test_no_routing_lies_above_the_frontier():
    """The rule is the optimum: every one of the 2^k per-class routings (random classes, unequal sizes and
    lengths), and the oracle router at any γ, is at or below the frontier at its own token cost; every vertex is
    one of them."""
    rng = random.Random(0)
    for _ in range(200):
        k = rng.randint(1, 5)
        classes = {str(i): cls(rng.randint(1, 50), rng.random(), rng.random(), rng.uniform(2, 30),
                               rng.uniform(2, 30)) for i in range(k)}
        n = [c["n"] for c in classes.values()]
        f = accuracy_frontier(classes)
        routings = []
        for modes in itertools.product(("short", "think"), repeat=k):
            acc = mean_over_problems([c[f"{m}_acc"] for m, c in zip(modes, classes.values())], n)
            tokens = mean_over_problems([c[f"{m}_tokens"] for m, c in zip(modes, classes.values())], n)
            assert acc <= frontier_accuracy(f, tokens) + 1e-12, (classes, modes)
            routings.append((round(tokens, 9), round(acc, 9)))
        assert all((round(v["tokens"], 9), round(v["acc"], 9)) in routings for v in f)
        assert all(a["tokens"] < b["tokens"] and a["acc"] < b["acc"] for a, b in zip(f, f[1:]))
        g = rng.random()
        picks = [oracle_choice(c["short_acc"], c["think_acc"], RewardValues(correct_think=1 - g))[0]
                 for c in classes.values()]
        acc = mean_over_problems([c[f"{m}_acc"] for m, c in zip(picks, classes.values())], n)
        tokens = mean_over_problems([c[f"{m}_tokens"] for m, c in zip(picks, classes.values())], n)
        assert acc <= frontier_accuracy(f, tokens) + 1e-12
