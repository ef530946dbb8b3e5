"""Training to a budget (thinkless/budget.py): the constraint's checks, the priced rewards and the dual update on
hand-computed cases, the derived step size, the multiplier's state. The update's resume in a real run is in
tests/test_stage.py::test_resume_after_sigkill; the whole loop on the graded task in tests/test_bench.py."""

import pytest
import torch

from thinkless.budget import STATE_FILE, Budget, make_budget
from thinkless.objectives import make_objective


def budget(**kw):
    return make_budget(kw, objective=make_objective({"name": "thinkless"}), max_steps=100, max_completion_length=48)


@pytest.mark.parametrize("cfg, message", [
    ({"think_ratio": 1.5}, "rl.budget.think_ratio=1.5: a think ratio is a share of the rollouts, in [0, 1]"),
    ({"think_ratio": -0.1}, "rl.budget.think_ratio=-0.1"),
    ({"tokens": -5}, "rl.budget.tokens=-5: a mean response length in tokens must be positive"),
    ({"tokens": 1}, "no policy can meet it — every complete response has at least 2 tokens"),
    ({"tokens": 100}, "no policy can meet it — responses stop at rl.args.max_completion_length=48"),
    ({"think_ratio": 0.3, "tokens": 200}, "one constraint per run"),
    ({"think_ratio": "half"}, "rl.budget.think_ratio='half': expected a number"),
    ({"think_ratio": 0.3, "multiplier_init": "none"}, "rl.budget.multiplier_init='none': expected a number"),
    ({"think_ratio": 0.3, "ratio": 0.3}, "unknown keys ['rl.budget.ratio']"),
    ({"think_ratio": 0.3, "step_size": 0}, "rl.budget.step_size=0: a positive number or 'auto'"),
    ({"think_ratio": 0.3, "multiplier_init": 3.0}, "rl.budget.multiplier_init=3.0: a number in [-2, 2]"),
    ({"think_ratio": 0.3, "at_most": True, "multiplier_init": -0.5}, ">= 0 under at_most"),
    ({"think_ratio": 0.3, "at_most": "yes"}, "rl.budget.at_most='yes'"),
])
def test_bad_budgets_fail_naming_the_key(cfg, message):
    with pytest.raises(ValueError, match=None) as e:
        budget(**cfg)
    assert message in str(e.value)


def test_no_target_is_no_budget_and_forcing_objectives_are_refused():
    assert budget() is None and budget(think_ratio=None, tokens=None) is None
    with pytest.raises(ValueError, match="objective=adaptthink: it forces the mode of every rollout"):
        make_budget({"think_ratio": 0.3}, objective=make_objective({"name": "adaptthink"}), max_steps=100)
    with pytest.raises(ValueError, match="set in epochs"):
        make_budget({"think_ratio": 0.3}, objective=make_objective({"name": "thinkless"}), max_steps=-1)
    # an upper bound above the length limit is legal (it never binds); only a target there is impossible
    assert budget(tokens=100, at_most=True).target == 100


def test_the_step_size_is_derived_from_the_reward_range_and_the_run_length():
    b = budget(think_ratio=0.3)  # Thinkless 1 / 0.5 / -1: R = 2
    assert b.bound == 2.0 and b.step_size == pytest.approx(2.5 * 2.0 / 100) and b.patience == 10
    sched = make_objective({"name": "thinkless", "rewards": {"wrong_think": -1.5},
                            "reward_schedule": [{"after_step": 5, "correct_short": 1.2}]})
    assert sched.reward_range() == pytest.approx(2.7)  # the widest values any step pays
    lp = make_budget({"tokens": 20}, objective=make_objective({"name": "length_penalty"}), max_steps=50)
    assert lp.bound == 1.0 and lp.step_size == pytest.approx(2.5 / 50)
    assert budget(think_ratio=0.3, step_size=0.2).step_size == 0.2
    # one dual update per generation batch: the official recipe generates once per 2 optimizer steps
    two = make_budget({"think_ratio": 0.3}, objective=make_objective({"name": "thinkless"}), max_steps=960,
                      steps_per_update=2.0)
    assert two.step_size == pytest.approx(2.5 * 2.0 / 480) and two.patience == 48  # a tenth of the updates


def test_think_ratio_prices_and_dual_update_by_hand():
    b = Budget(cost="think_ratio", target=0.25, step_size=0.5, bound=2.0, multiplier=0.1)
    mode = torch.tensor([1.0, 0.0, 1.0, -1.0])  # -1: no control token (not thinking)
    length = torch.tensor([30.0, 5.0, 20.0, 7.0])
    rewards = torch.tensor([0.5, 1.0, float("nan"), -1.0])
    free = torch.tensor([True, True, True, True])
    assert b.measure(mode, length, free) == pytest.approx(0.5)
    shaped = b.shape(rewards, mode, length)  # r − λ·1[think]; NaN (ungradable) stays NaN
    assert shaped[:2].tolist() == pytest.approx([0.4, 1.0]) and torch.isnan(shaped[2]) and shaped[3] == -1.0
    b.update(0.5)  # λ ← 0.1 + 0.5·(0.5 − 0.25)
    assert b.multiplier == pytest.approx(0.225)
    b.update(0.0)  # under the target: the price falls, and may go below 0 (a subsidy) unless at_most
    assert b.multiplier == pytest.approx(0.1)
    b.update(0.0)
    assert b.multiplier == pytest.approx(-0.025)
    cap = Budget(cost="think_ratio", target=0.25, step_size=0.5, bound=2.0, at_most=True, multiplier=0.05)
    cap.update(0.0)
    assert cap.multiplier == 0.0  # a cap never pays for thinking
    # only freely sampled rows measure the policy (a forced row's mode is the forcing's)
    assert b.measure(mode, length, torch.tensor([False, True, False, True])) == 0.0


def test_token_budget_is_relative_to_its_target():
    b = Budget(cost="tokens", target=20.0, step_size=0.1, bound=2.0, multiplier=0.5)
    mode, length = torch.tensor([1.0, 0.0]), torch.tensor([30.0, 10.0])
    assert b.measure(mode, length, torch.tensor([True, True])) == pytest.approx(20.0)  # mean tokens
    assert b.shape(torch.tensor([1.0, 1.0]), mode, length).tolist() == pytest.approx([1 - 0.5 * 1.5, 1 - 0.5 * 0.5])
    b.update(30.0)  # 50% over: λ ← 0.5 + 0.1·0.5
    assert b.multiplier == pytest.approx(0.55)


def test_the_multiplier_stops_at_the_reward_range_and_says_when_the_target_is_out_of_reach():
    b = Budget(cost="think_ratio", target=0.0, step_size=10.0, bound=2.0, patience=3)
    for _ in range(2):
        b.update(0.9)
    assert b.multiplier == 2.0 and b.saturated_steps == 2 and not b.unreachable()
    b.update(0.9)
    assert b.unreachable()  # exactly once: the warning is not repeated every step
    b.update(0.9)
    assert not b.unreachable()
    b.update(0.0)  # on target again: the count restarts
    assert b.saturated_steps == 0


def test_the_multiplier_is_saved_and_restored(tmp_path):
    b = Budget(cost="think_ratio", target=0.3, step_size=0.05, bound=2.0, multiplier=0.1234567890123, saturated_steps=3)
    b.save(str(tmp_path))
    c = Budget(cost="think_ratio", target=0.3, step_size=0.05, bound=2.0)
    c.load(str(tmp_path))
    assert c.multiplier == b.multiplier and c.saturated_steps == 3
    (tmp_path / STATE_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="lacks its multiplier"):
        c.load(str(tmp_path))
    card = b.card()
    assert card["final_multiplier"] == b.multiplier and card["target"] == 0.3
    assert "saturated_steps" not in card and "patience" not in card
