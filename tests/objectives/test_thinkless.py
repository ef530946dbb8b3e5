"""objective=thinkless (DeGRPO, thinkless/objectives/thinkless.py): its reward and schedule, its decoupled loss as the
trainer computes it (value and gradient on a fixed batch; the control-token safeguards), a step moving the mode where
it pays, and the reward range rl.budget reads. docs/objectives.md cites the authors' lines."""

import math
from types import SimpleNamespace

import pytest
import torch

from thinkless.objectives.thinkless import Thinkless

from .helpers import batch, check_moves_to_short, fixed_batch, from_train_config, loss_and_grad, trainer_for, \
    two_sgd_steps


def test_thinkless_reward_from_verdicts_and_schedule():
    obj = Thinkless(reward_schedule=[{"after_step": 3, "correct_think": 0.8}])
    b = batch([1, 0, 1, 0, float("nan"), 1, 1, 0], [0, 0, 1, 1, 1, -1, 1, 0], G=4)
    r = obj.rewards_for(b)
    assert r[:4].tolist() == [1.0, -1.0, 0.5, -1.0] and math.isnan(r[4])
    assert r[5:].tolist() == [-1.0, 0.5, -1.0]  # no control token: wrong_think, whatever it answered
    b.step = 3
    assert obj.rewards_for(b)[2].item() == pytest.approx(0.8)
    assert obj.yardstick().correct_think == pytest.approx(0.8) and obj.advantages(r, b) is None


def test_thinkless_reward_reads_all_four_values_of_the_table():
    """Four distinct values: each (mode, correct) cell of the batch gets its own, as RewardValues.of says; no control
    token or a malformed response (graded mode -1) is paid wrong_think, even when its answer is right."""
    from thinkless.reward import RewardValues

    values = {"correct_short": 2.0, "correct_think": 0.5, "wrong_short": -3.0, "wrong_think": -1.0}
    obj = Thinkless(rewards=values)
    correct, mode = [1, 0, 1, 0, 1, 0], [0, 0, 1, 1, -1, -1]
    r = obj.rewards_for(batch(correct, mode, G=3))
    assert r.tolist() == [2.0, -3.0, 0.5, -1.0, -1.0, -1.0]
    table = RewardValues(**values)
    names = {0: "short", 1: "think", -1: None}
    assert r.tolist() == [table.of(names[m], bool(c)) for c, m in zip(correct, mode)]


def test_thinkless_knobs_are_checked():
    with pytest.raises(ValueError, match="objective.rewards.correct_think='x'"):
        Thinkless(rewards={"correct_think": "x"})


@pytest.mark.parametrize("alpha", [0.5, 2.0])
@pytest.mark.parametrize("T", [3, 9])
def test_degrpo_control_token_gradient_is_alpha_over_rows(tiny_trainer_parts, tmp_path, alpha, T):
    """On-policy (ratio 1): ∂loss/∂logp[i,0] = −α·A_i/B whatever the response length, and ∂loss/∂logp[i,t≥1] =
    −A_i/N_resp (response_norm=token). With α replaced by 1, or the control token divided by all tokens (the coupled
    weighting), this fails."""
    tr = trainer_for(tiny_trainer_parts, tmp_path, Thinkless(alpha=alpha))
    inputs, lp = fixed_batch(T=T, lengths=[T, T - 1, 2, T, 1, T, T, 2])
    loss, grad = loss_and_grad(tr, inputs, lp)
    A, mask = inputs["advantages"], inputs["completion_mask"].float()
    n_resp = mask[:, 1:].sum()
    assert grad[:, 0].tolist() == pytest.approx((-alpha * A / 8).tolist(), rel=1e-5)
    torch.testing.assert_close(grad[:, 1:], -A[:, None] * mask[:, 1:] / n_resp, rtol=1e-5, atol=1e-8)
    assert loss.item() == pytest.approx((-alpha * A.sum() / 8 - (A[:, None] * mask[:, 1:]).sum() / n_resp).item(),
                                        rel=1e-5)


def test_degrpo_sequence_norm_gradient(tiny_trainer_parts, tmp_path):
    tr = trainer_for(tiny_trainer_parts, tmp_path, Thinkless(alpha=0.5, response_norm="sequence"))
    inputs, lp = fixed_batch(T=6, lengths=[6, 3, 2, 6, 1, 6, 4, 2])
    _, grad = loss_and_grad(tr, inputs, lp)
    A, mask = inputs["advantages"], inputs["completion_mask"].float()
    rows = (mask[:, 1:].sum(1) > 0).float()
    expect = -A[:, None] * mask[:, 1:] / mask[:, 1:].sum(1, keepdim=True).clamp(min=1) / rows.sum()
    assert grad[:, 0].tolist() == pytest.approx((-0.5 * A / 8).tolist(), rel=1e-5)
    torch.testing.assert_close(grad[:, 1:], expect, rtol=1e-5, atol=1e-8)


def test_safeguard_truncated_rows_keep_their_control_loss(tiny_trainer_parts, tmp_path):
    """mask_truncated_completions zeroes a truncated row's mask (TRL): its control token still learns."""
    tr = trainer_for(tiny_trainer_parts, tmp_path, Thinkless(alpha=1.0, response_norm="sequence"),
                     mask_truncated_completions=True)
    inputs, lp = fixed_batch(T=5)
    inputs["completion_mask"][2] = 0  # what TRL does to a truncated completion
    _, grad = loss_and_grad(tr, inputs, lp)
    A = inputs["advantages"]
    assert grad[2, 0].item() == pytest.approx(-A[2].item() / 8, rel=1e-5) and grad[2, 0] != 0
    assert torch.all(grad[2, 1:] == 0)


def test_safeguard_column_0_survives_entropy_masking(tiny_trainer_parts, tmp_path):
    """top_entropy_quantile keeps the highest-entropy tokens only; the control token is never dropped."""
    tr = trainer_for(tiny_trainer_parts, tmp_path, Thinkless(alpha=1.0), top_entropy_quantile=0.2)
    inputs, lp = fixed_batch(T=5)
    ent = torch.rand(8, 5) + 1.0
    ent[:, 0] = 0.0  # the lowest entropy of all: an entropy mask alone would drop every control token
    _, grad = loss_and_grad(tr, inputs, lp, ent)
    assert grad[:, 0].tolist() == pytest.approx((-inputs["advantages"] / 8).tolist(), rel=1e-5)


def test_safeguard_column_0_keeps_its_own_ratio_under_sequence_importance_sampling(tiny_trainer_parts, tmp_path):
    """importance_sampling_level=sequence: the response tokens share one ratio (here e^0.5, clipped at 1.2 for
    A > 0), the control token keeps its own (here 1): its gradient is −α·A/B, not 0."""
    tr = trainer_for(tiny_trainer_parts, tmp_path, Thinkless(alpha=1.0), importance_sampling_level="sequence")
    A = torch.tensor([1.0, 0.5, 2.0, 1.0, 0.3, 1.0, 0.7, 1.0])
    inputs, lp = fixed_batch(T=5, adv=A)
    old = lp.clone()
    old[:, 1:] -= 0.5  # the policy moved on the response tokens only
    inputs["old_per_token_logps"] = old
    _, grad = loss_and_grad(tr, inputs, lp)
    assert grad[:, 0].tolist() == pytest.approx((-A / 8).tolist(), rel=1e-5)
    assert torch.all(grad[:, 1:] == 0)  # clipped: the sequence ratio e^0.5 > 1.2 with A > 0


def test_a_step_moves_the_mode_decision_where_thinkless_pays(tiny_trainer_parts, tmp_path, monkeypatch):
    """Correct short pays 1, correct think 1 − γ: two SGD steps raise p(<short>)."""
    check_moves_to_short(*two_sgd_steps(tiny_trainer_parts, tmp_path, monkeypatch, Thinkless(alpha=1.0)))


def test_thinkless_reward_range_and_group_standardisation():
    """rl.budget's units (largest minus smallest reward, schedule included) and whether the price survives the
    advantage: TRL's, standardised only with rl.args.scale_rewards=group."""
    assert from_train_config("thinkless").reward_range() == pytest.approx(2.0)
    sched = Thinkless(reward_schedule=[{"after_step": 3, "correct_think": 1.5}])
    assert sched.reward_range() == pytest.approx(2.5)
    obj = Thinkless()
    assert obj.standardises_groups(SimpleNamespace(scale_rewards="group"))
    assert not obj.standardises_groups(SimpleNamespace(scale_rewards="none"))
