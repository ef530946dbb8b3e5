import threading

import pytest

from thinkless import thinkless_reward
from thinkless.monitor import ThinklessRewardFunc, mode_metrics
from thinkless.reward import REWARD_STATS, gold_is_gradable, make_reward_func, split_response

CASES = [
    # (response, gold, expected reward at gamma=0.5)
    ("<short>\\boxed{5}", "5", 1.0),
    ("<short>The answer is \\boxed{4}", "5", -1.0),
    ("<think>0~4=4\n</think>\\boxed{5}", "5", 0.5),
    ("<think>0~4=4\n</think>\\boxed{6}", "5", -1.0),
    ("<think>reasoning that ran out of budget", "5", -1.0),                     # truncated: no </think>
    ("\\boxed{5}", "5", -1.0),                                                   # no control token
    ("<short>", "5", -1.0),                                                      # no boxed answer
    ("<short>reason</think>\\boxed{5}", "5", -1.0),                              # tag in a short response
    ("<short><think>a</think>\\boxed{5}", "5", -1.0),                            # the gaming pattern
    ("<think>a</think><think>b</think>\\boxed{5}", "5", -1.0),                   # second <think>
    ("<think>a</think>b</think>\\boxed{5}", "5", -1.0),                          # second </think>
    ("<think>a<short></think>\\boxed{5}", "5", -1.0),                            # <short> in a think response
    ("<think>\\boxed{5}</think>\\boxed{7}", "5", -1.0),                           # graded after </think> only
    ("<think>\\boxed{7}</think>so \\boxed{5}", "5", 0.5),
    ("<short>\\boxed{\\frac{1}{2}}", "0.5", 1.0),                                # math-verify equivalence
    ("<short>\\boxed{\\dfrac{1}{2}}", "\\frac12", 1.0),
]


@pytest.mark.parametrize("resp,gold,expected", CASES)
def test_reward_cases(resp, gold, expected):
    assert thinkless_reward(resp, gold, gamma=0.5) == expected


def test_gamma_and_exact_mode():
    assert thinkless_reward("<think>x</think>\\boxed{3}", "3", gamma=0.2) == pytest.approx(0.8)
    # synthetic answers are graded exactly: "03" is not "3" there, but math-verify would accept it
    assert thinkless_reward("<short>\\boxed{03}", "3", exact=True) == -1.0
    assert thinkless_reward("<short>\\boxed{03}", "3") == 1.0


def test_split_response():
    assert split_response("<short>\\boxed{1}") == ("short", "\\boxed{1}")
    assert split_response("<think>a</think>b") == ("think", "b")
    assert split_response("<think>a") == ("think", None)
    assert split_response("x") == (None, None)


def test_reward_works_in_threads():
    out = []
    ts = [threading.Thread(target=lambda: out.append(thinkless_reward("<short>\\boxed{\\frac{2}{4}}", "1/2")))
          for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert out == [1.0] * 8


def test_reward_works_in_processes():
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as ex:
        got = list(ex.map(thinkless_reward, ["<short>\\boxed{\\sqrt{4}}"] * 4, ["2"] * 4))
    assert got == [1.0] * 4


def test_trl_reward_function_and_unparseable_gold():
    f = make_reward_func(0.5)
    comps = [[{"role": "assistant", "content": "<short>\\boxed{1}"}], "<think>x</think>\\boxed{2}", "<short>\\boxed{1}"]
    before = REWARD_STATS["unparseable_gold"]
    got = f(prompts=[None] * 3, completions=comps, answer=["1", "2", ""], task=["synthetic", "math", "math"])
    assert got == [1.0, 0.5, None]   # None: skipped (TRL gives it zero advantage), not -1
    assert REWARD_STATS["unparseable_gold"] == before + 1
    assert gold_is_gradable("\\frac{1}{2}") and gold_is_gradable("5", exact=True)
    assert not gold_is_gradable("") and not gold_is_gradable(None)


def test_mode_metrics_groups():
    import torch

    f = ThinklessRewardFunc(gamma=0.5, num_generations=2)
    comps = ["<short>\\boxed{1}", "<short>\\boxed{1}", "<think>a</think>\\boxed{2}", "<think>b</think>\\boxed{2}",
             "<short>\\boxed{9}", "<think>c"]
    r = f(prompts=[None] * 6, completions=comps, answer=["1", "1", "2", "2", "3", "3"],
          completion_ids=[[0] * 2, [0] * 2, [0] * 6, [0] * 6, [0] * 2, [0] * 9], task=["synthetic"] * 6,
          level=[1, 1, 6, 6, 3, 3])
    assert r == [1.0, 1.0, 0.5, 0.5, -1.0, -1.0]
    stats = torch.tensor([[0, 1, 1, 2, 1], [0, 1, 1, 2, 1], [1, 1, .5, 6, 6], [1, 1, .5, 6, 6], [0, 0, -1, 2, 3],
                          [1, 0, -1, 9, 3]], dtype=torch.float32)
    m = mode_metrics(stats, 2)
    assert m["modes/think_ratio"] == pytest.approx(0.5)
    assert m["modes/groups_all_correct_short"] == pytest.approx(1 / 3)
    assert m["modes/groups_all_correct_think"] == pytest.approx(1 / 3)
    assert m["modes/groups_all_wrong"] == pytest.approx(1 / 3)
    assert m["modes/think_ratio_L1"] == 0 and m["modes/think_ratio_L6"] == 1 and m["modes/think_ratio_L3"] == 0.5
    assert m["modes/acc_short"] == pytest.approx(2 / 3) and m["modes/len_think"] == pytest.approx(7.0)
