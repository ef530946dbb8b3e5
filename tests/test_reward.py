import threading

import pytest

from thinkless import thinkless_reward
from thinkless.grading import gold_is_gradable
from thinkless.reward import RewardValues, ThinklessReward, reward_schedule, reward_values

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


def test_reward_values_and_validation():
    v = RewardValues()
    assert (v.of("short", True), v.of("think", True), v.of("short", False), v.of("think", False), v.of(None, True)) \
        == (1.0, 0.5, -1.0, -1.0, -1.0)
    assert v.gamma == 0.5
    assert reward_values({"correct_think": 0.8}).gamma == pytest.approx(0.2)
    with pytest.raises(ValueError, match="valid keys"):
        reward_values({"gamma": 0.5})
    with pytest.raises(ValueError, match="pay more"):
        RewardValues(correct_think=-2.0)


def test_expected_reward_of_a_mode_at_an_accuracy():
    """What a mode is worth at accuracy p, from the same table as one response's reward: p·r_correct + (1−p)·r_wrong."""
    v = RewardValues(correct_short=1.0, correct_think=0.8, wrong_short=-2.0, wrong_think=-1.0)
    assert v.expected("short", 0.75) == pytest.approx(0.75 * 1.0 + 0.25 * -2.0)
    assert v.expected("think", 0.5) == pytest.approx(0.5 * 0.8 - 0.5)
    assert v.expected("think", 1.0) == 0.8 and v.expected("short", 0.0) == -2.0
    for mode in ("short", "think"):
        assert v.expected(mode, 1.0) == v.of(mode, True) and v.expected(mode, 0.0) == v.of(mode, False)
    with pytest.raises(ValueError, match="valid choices"):
        v.expected("auto", 0.5)
    with pytest.raises(ValueError, match="valid choices"):
        v.expected(None, 0.5)


def test_schedule_applies_after_its_step_and_is_validated():
    f = ThinklessReward(RewardValues(), reward_schedule([{"after_step": 300, "correct_think": 0.8}]))
    assert f.values_at(0).correct_think == 0.5 and f.values_at(299).correct_think == 0.5
    assert f.values_at(300).correct_think == 0.8 and f.values_at(480).correct_think == 0.8
    with pytest.raises(ValueError, match="after_step"):
        reward_schedule([{"correct_think": 0.8}])
    with pytest.raises(ValueError, match="each entry sets"):
        reward_schedule([{"after_step": 3, "gamma": 0.1}])
    with pytest.raises(ValueError, match="pay more"):  # a scheduled combination is checked at construction
        ThinklessReward(RewardValues(), reward_schedule([{"after_step": 3, "correct_think": -3}]))



def test_schedule_resets_are_parsed_and_checked():
    (e,) = reward_schedule([{"after_step": 600, "correct_think": 0.8, "reset_reference": True, "reset_optimizer": True}])
    assert (e.after_step, e.values, e.reset_reference, e.reset_optimizer) == (600, {"correct_think": 0.8}, True, True)
    (e,) = reward_schedule([{"after_step": 5, "reset_optimizer": True}])  # a reset alone, no new values
    assert e.values == {} and not e.reset_reference and e.reset_optimizer
    with pytest.raises(ValueError, match=r"reward_schedule\[0\].reset_reference=1: true or false"):
        reward_schedule([{"after_step": 5, "reset_reference": 1}])
    with pytest.raises(ValueError, match="reset_reference"):  # the error lists the valid keys, resets included
        reward_schedule([{"after_step": 5, "reset_ref": True}])
    with pytest.raises(ValueError, match="must differ"):
        reward_schedule([{"after_step": 5, "reset_optimizer": True}, {"after_step": 5, "correct_think": 0.8}])

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


def test_trl_reward_function_is_stateless_and_follows_the_trainer_step():
    from types import SimpleNamespace

    f = ThinklessReward(RewardValues(), reward_schedule([{"after_step": 10, "correct_think": 0.8}]))
    comps = [[{"role": "assistant", "content": "<short>\\boxed{1}"}], "<think>x</think>\\boxed{2}", "<short>\\boxed{1}"]
    kw = dict(prompts=[None] * 3, completions=comps, answer=["1", "2", ""], task=["synthetic", "math", "math"])
    assert f(**kw) == [1.0, 0.5, None]   # None: ungradable gold, skipped (TRL gives it zero advantage), not -1
    assert f(**kw, trainer_state=SimpleNamespace(global_step=10)) == [1.0, 0.8, None]
    assert f(**kw) == [1.0, 0.5, None]   # no state kept between calls
    assert gold_is_gradable("\\frac{1}{2}") and gold_is_gradable("5", exact=True)
    assert not gold_is_gradable("") and not gold_is_gradable(None)


def test_reward_imports_no_monitoring_or_training():
    import subprocess
    import sys

    code = ("import sys, thinkless.reward; bad = [m for m in sys.modules if m.startswith(('thinkless.reporting.monitor', "
            "'thinkless.training.trainer', 'thinkless.training.rl', 'thinkless.runs.stage', 'trl'))]; print(bad); sys.exit(bool(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
