"""objective=ada_grpo (ARM's Ada-GRPO, thinkless/objectives/ada_grpo.py): the scaled reward and its advantage on
hand-computed cases from their code (that the loss is TRL's: tests/objectives/test_base.py), a step moving the mode
where it pays, and the reward range rl.budget reads. docs/objectives.md cites the lines."""

import math
from types import SimpleNamespace

import pytest

from thinkless.objectives.ada_grpo import AdaGRPO

from .helpers import batch, check_moves_to_short, from_train_config, two_sgd_steps


def test_ada_grpo_scaled_reward_and_advantage():
    """core_algos.py:187-190, 213, 222-226: r·(1 + ½(G/F − 1)(1 + cos(π t/T))), t = step + 1; z-score with the
    unbiased std + 1e-6. Worked by hand for G=4, modes short×3 / think×1, T=10, t=1."""
    obj = AdaGRPO(total_steps=10)
    b = batch([1, 0, 1, 1], [0, 0, 0, 1], step=0)
    d = 0.5 * (1 + math.cos(math.pi / 10))  # 0.97552826
    assert obj.scale(b).tolist() == pytest.approx([1 + d / 3] * 3 + [1 + 3 * d])
    r = obj.rewards_for(b)
    assert r.tolist() == pytest.approx([1.3251760860, 0.0, 1.3251760860, 3.9265847744])
    assert obj.advantages(r, b).tolist() == pytest.approx([-0.1939782916, -0.9996477055, -0.1939782916,
                                                           1.3876042886], abs=1e-6)
    b.step = 9  # the last update (t = T): every format paid alike
    assert obj.scale(b).tolist() == pytest.approx([1.0] * 4)
    assert obj.rewards_for(batch([float("nan"), 1, 1, 1], [0, 0, 1, -1]))[0].isnan()  # ungradable stays out


def test_ada_grpo_format_frequency_is_counted_per_group():
    """F counts the row's format within its own group (core_algos.py:198, 209: id2format[uid], uid the prompt), not
    within the batch: two groups with different mode mixes. Worked by hand for G=4, T=10, t=1, d = ½(1 + cos(π/10)):
    group A short×3 / think×1 gives F = 3, 3, 3, 1; group B think×2 / short / none gives F = 2, 2, 1, 1. Counted over
    the batch (short 4, think 3, none 1) every F here would differ (4, 4, 4, 3 | 3, 3, 4, 1)."""
    obj = AdaGRPO(total_steps=10)
    b = batch([1, 0, 1, 1, 1, 1, 1, 0], [0, 0, 0, 1, 1, 1, 0, -1], step=0)
    d = 0.5 * (1 + math.cos(math.pi / 10))  # 0.97552826
    assert obj.scale(b).tolist() == pytest.approx([1 + d / 3] * 3 + [1 + 3 * d] + [1 + d] * 2 + [1 + 3 * d] * 2)
    r = obj.rewards_for(b)
    assert r.tolist() == pytest.approx([1.3251760860, 0.0, 1.3251760860, 3.9265847744,
                                        1.9755282581, 1.9755282581, 3.9265847744, 0.0])
    assert obj.advantages(r, b).tolist() == pytest.approx([-0.1939782916, -0.9996477055, -0.1939782916, 1.3876042886,
                                                           0.0038164629, 0.0038164629, 1.2209157518, -1.2285486777],
                                                          abs=1e-6)


def test_ada_grpo_knobs_are_checked():
    with pytest.raises(ValueError, match="objective.total_steps"):
        AdaGRPO(total_steps=0)


def test_a_step_moves_the_mode_decision_where_ada_grpo_pays(tiny_trainer_parts, tmp_path, monkeypatch):
    """The rare mode (short: one of four per group) is paid up to G/F times more early on."""
    check_moves_to_short(*two_sgd_steps(tiny_trainer_parts, tmp_path, monkeypatch, AdaGRPO(total_steps=100)))


def test_ada_grpo_reward_range_and_group_standardisation():
    """The 0/1 accuracy (the rarity scaling decays to 1); its advantage standardises each group, whatever rl.args
    says."""
    obj = from_train_config("ada_grpo")  # T = rl.args.max_steps
    assert obj.total_steps > 0 and obj.reward_range() == pytest.approx(1.0)
    assert obj.standardises_groups(SimpleNamespace(scale_rewards="group"))
    assert obj.standardises_groups(SimpleNamespace(scale_rewards="none"))
