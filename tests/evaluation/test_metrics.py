"""pass@k against brute force, majority vote and confidence selection on fixed samples, summaries."""

from __future__ import annotations

import itertools
import math

import pytest

from thinkless.evaluation.metrics import (Graded, confidence_select, default_ks, majority_vote, mode_usage, pass_at_k,
                                         summarize)
from thinkless.grading import Grader


def brute_pass_at_k(correct: list[bool], k: int) -> float:
    subsets = list(itertools.combinations(range(len(correct)), k))
    return sum(any(correct[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_pass_at_k_matches_enumeration(n):
    for c in range(n + 1):
        correct = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(correct, k), abs=1e-12), (n, c, k)
            assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), abs=1e-12)


def test_pass_at_k_edges():
    assert pass_at_k(16, 0, 8) == 0.0 and pass_at_k(16, 16, 1) == 1.0 and pass_at_k(16, 9, 8) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    for bad in ((4, 5, 1), (4, 1, 0), (4, 1, 5)):
        with pytest.raises(ValueError):
            pass_at_k(*bad)
    assert default_ks(8) == [1, 2, 4, 8] and default_ks(6) == [1, 2, 4, 6] and default_ks(1) == [1]


def test_majority_vote_on_fixed_samples():
    answers = ["3", "\\frac{1}{2}", "0.5", "3", "\\dfrac12", None, "1/2"]
    # by normalized string only, "3" (twice) beats each spelling of one half (once each)
    assert majority_vote(answers) == 0
    # with math-verify equivalence the four spellings of 1/2 form one group of 4 and win
    assert majority_vote(answers, Grader().equivalent) == 1
    assert majority_vote(["7", "8", "8", "7"]) == 0  # tie: the answer seen first
    assert majority_vote(["025", "25", "24"]) == 0  # normalized: AIME leading zeros vote together
    assert majority_vote(["1,234", "1234", "999", "999", "999"]) == 2
    assert majority_vote([None, None]) is None and majority_vote([]) is None


def test_confidence_selection_on_fixed_samples():
    answers = ["1", "2", None, "3", "2"]
    scores = [0.5, 2.0, 9.0, 2.0, 1.0]
    assert confidence_select(answers, scores) == 1  # the unanswered sample is skipped; tie 2.0: earliest
    assert confidence_select(answers, [0.1, 0.2, 0.3, 0.4, 5.0]) == 4
    assert confidence_select([None, None], [1.0, 2.0]) is None
    assert confidence_select(["1", "2"], [None, 0.3]) == 1


def test_mode_usage_is_one_computation_for_training_and_evaluation():
    """The statistics behind the trainer's ``modes/*`` curves and the evaluation's columns, in the inputs' dtype."""
    import torch

    t = lambda xs, dt=torch.float64: torch.tensor(xs, dtype=dt)  # noqa: E731
    mode, correct, tokens, reward = t([1, 1, 0, -1]), t([1, 0, 1, 0]), t([10, 20, 3, 7]), t([0.5, -1, 1, -1])
    u = mode_usage(mode, correct, tokens, reward)
    assert u == {"think_ratio": 0.5, "invalid_format": 0.25, "reward": -0.125, "tokens": 10.0, "accuracy": 0.5,
                 "len_think": 15.0, "len_think_p90": 19.0, "len_think_max": 20.0, "acc_think": 0.5,
                 "len_short": 3.0, "len_short_p90": 3.0, "len_short_max": 3.0, "acc_short": 1.0}
    assert list(u) == ["think_ratio", "invalid_format", "reward", "tokens", "accuracy", "len_think", "len_think_p90",
                       "len_think_max", "acc_think", "len_short", "len_short_p90", "len_short_max",
                       "acc_short"]  # the order the trainer logs them in
    # unknown correctness: no accuracy keys; no reward: no reward key; a mode without samples: no keys of its own
    assert mode_usage(t([0, 0]), None, t([2, 4])) == {"think_ratio": 0.0, "invalid_format": 0.0, "tokens": 3.0,
                                                    "len_short": 3.0, "len_short_p90": 3.8, "len_short_max": 4.0}
    assert mode_usage(t([]), None, t([])) == {}
    f32 = mode_usage(t([1, 0, 0], torch.float32), None, t([1, 1, 1], torch.float32))["think_ratio"]
    assert f32 == torch.tensor(1 / 3, dtype=torch.float32).item() != 1 / 3  # training's float32, evaluation's float64


def g(correct, answer, mode, tokens, sc=None, finished=True):
    return Graded(correct, answer, mode, tokens, tokens, finished, sc)


def fixed_problems():
    return [
        {"level": 1, "seconds": 1.0, "samples": [g(True, "2", "short", 4, 0.9), g(True, "2", "short", 6, 0.8),
                                                  g(False, "3", "think", 20, 0.1), g(True, "2", "short", 2, 0.5)]},
        {"level": 2, "seconds": 3.0, "samples": [g(False, "5", "think", 30, 0.9), g(False, "5", "think", 10, 0.2),
                                                  g(True, "4", "think", 40, 0.3),
                                                  g(False, None, None, 50, 1.0, finished=False)]},
    ]


def test_summarize_single_sample_method():
    s = summarize(fixed_problems(), parallel=False, grader=Grader(exact=True))
    assert s["n_samples"] == 4 and s["ks"] == [1, 2, 4] and s["k"] == 4
    assert s["pass@1"] == pytest.approx((3 / 4 + 1 / 4) / 2) and s["acc"] == s["pass@1"]
    assert s["pass@k"] == 1.0 and s["maj@k"] == pytest.approx(0.5)  # "2" wins problem 1, "5" (wrong) problem 2
    assert s["pass_at"]["2"] == pytest.approx((pass_at_k(4, 3, 2) + pass_at_k(4, 1, 2)) / 2)
    assert s["think_ratio"] == pytest.approx(4 / 8)
    assert s["tokens"] == pytest.approx(162 / 8)
    assert s["tokens_think"] == pytest.approx((20 + 30 + 10 + 40) / 4)
    assert s["tokens_short"] == pytest.approx(12 / 3)
    assert s["cost_tokens"] == s["latency_tokens"] == pytest.approx(162 / 8)
    assert s["invalid_mode_ratio"] == pytest.approx(1 / 8) and s["truncated_ratio"] == pytest.approx(1 / 8)
    assert s["no_answer_ratio"] == pytest.approx(1 / 8)
    assert s["wall_s"] == 4.0 and s["generated_tokens"] == 162 and s["tokens_per_s"] == pytest.approx(162 / 4)
    assert s["per_level"]["1"]["acc"] == pytest.approx(0.75) and s["per_level"]["2"]["think_ratio"] == 0.75
    # conf@4: problem 1 -> sample 0 ("2", right); problem 2 -> sample 0 (0.9, "5", wrong; the 1.0 has no answer)
    assert s["conf_at"]["4"] == pytest.approx(0.5)


@pytest.mark.parametrize("selection,acc", [("majority", 0.5), ("confidence", 0.5), ("verifier", 1.0)])
def test_summarize_parallel_selection(selection, acc):
    s = summarize(fixed_problems(), parallel=True, selection=selection, grader=Grader(exact=True))
    assert s["acc"] == pytest.approx(acc) and s["selection"] == selection
    assert s["cost_tokens"] == pytest.approx((12 + 20 + 130) / 2)  # sum over the 4 samples, mean over problems
    assert s["latency_tokens"] == pytest.approx((20 + 50) / 2)  # the longest of the parallel samples


def test_summarize_groups_by_class_where_problems_have_one():
    probs = fixed_problems()
    probs[0]["problem_class"], probs[1]["problem_class"] = 3, 3
    s = summarize(probs, parallel=False, grader=Grader(exact=True))
    assert list(s["per_group"]) == ["3"] and s["per_group"]["3"]["acc"] == pytest.approx(s["acc"])
    assert "per_group" not in summarize(fixed_problems(), parallel=False, grader=Grader(exact=True))
