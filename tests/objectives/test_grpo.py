"""objective=grpo (the coupled ablation, thinkless/objectives/grpo.py): Thinkless's reward through TRL's own loss
(that the loss is TRL's: tests/objectives/test_base.py), a step moving the mode where it pays, its reward range."""

from types import SimpleNamespace

import pytest

from thinkless.objectives import make_objective
from thinkless.objectives.grpo import CoupledGRPO
from thinkless.objectives.thinkless import Thinkless

from .helpers import batch, check_moves_to_short, from_train_config, two_sgd_steps


def test_coupled_grpo_pays_thinkless_reward_and_fixes_its_loss_type():
    b = batch([1, 0, 1, 0], [0, 0, 1, 1], step=3)
    sched = [{"after_step": 3, "correct_think": 0.8}]
    ablation = CoupledGRPO(reward_schedule=sched)
    assert ablation.rewards_for(b).tolist() == pytest.approx([1.0, -1.0, 0.8, -1.0])  # the ablation: same reward
    assert ablation.rewards_for(b).tolist() == Thinkless(reward_schedule=sched).rewards_for(b).tolist()
    assert make_objective({"name": "grpo", "loss_type": "bnpo"}).trl_overrides() == {"loss_type": "bnpo"}


def test_a_step_moves_the_mode_decision_where_coupled_grpo_pays(tiny_trainer_parts, tmp_path, monkeypatch):
    check_moves_to_short(*two_sgd_steps(tiny_trainer_parts, tmp_path, monkeypatch, CoupledGRPO()))


def test_coupled_grpo_reward_range_and_group_standardisation():
    obj = from_train_config("grpo", "objective.rewards.correct_short=1.5")
    assert obj.reward_range() == pytest.approx(2.5)
    assert obj.standardises_groups(SimpleNamespace(scale_rewards="group"))
    assert not obj.standardises_groups(SimpleNamespace(scale_rewards="none"))
