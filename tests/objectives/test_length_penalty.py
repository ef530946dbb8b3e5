"""objective=length_penalty (Arora & Zanette, thinkless/objectives/length_penalty.py): reward and advantage on a
hand-computed case from their code (that the loss is TRL's: tests/objectives/test_base.py), a step moving the mode
where it pays, and the reward range rl.budget reads. docs/objectives.md cites the lines."""

from types import SimpleNamespace

import pytest

from thinkless.objectives import make_objective
from thinkless.objectives.length_penalty import LengthPenalty

from .helpers import batch, check_moves_to_short, two_sgd_steps


def test_length_penalty_reward_and_rloo_whitened_advantage():
    """math_server.py:59-63 (correct & EOS: 1 − α·σ(z), z over the group's correct EOS lengths, population std);
    rloo + token-weighted whitening (replay_buffer.py:208-237). Numbers worked by hand from those formulas."""
    obj = LengthPenalty()
    b = batch([1, 1, 1, 0], [1, 1, 1, 1], length=[10, 20, 30, 5], truncated=[0, 0, 1, 0])
    r = obj.rewards_for(b)  # L_c = [10, 20]: mean 15, std 5, z = -1, +1; the truncated correct one gets 0
    assert r.tolist() == pytest.approx([1 - 0.1 * 0.2689414214, 1 - 0.1 * 0.7310585786, 0.0, 0.0])
    a = obj.advantages(r, b)  # rloo: [0.66414114, 0.60252552, -0.63333333, -0.63333333], then whitened (w = L)
    assert a.tolist() == pytest.approx([1.1451382723, 1.0468125643, -0.9253609717, -0.9253609717], abs=1e-6)
    one = obj.rewards_for(batch([1, 0, 0, 0], [0, 0, 0, 0], length=[7, 9, 9, 9]))
    assert one.tolist() == pytest.approx([1 - 0.1 * 0.5, 0, 0, 0])  # one correct response: z = 0


def test_length_penalty_knobs_are_checked():
    with pytest.raises(ValueError, match="objective.alpha=nan"):
        make_objective({"name": "length_penalty", "alpha": float("nan")})


def test_a_step_moves_the_mode_decision_where_the_length_penalty_pays(tiny_trainer_parts, tmp_path, monkeypatch):
    """The short answer is the shortest correct one: with α = 0.5 it is paid most."""
    check_moves_to_short(*two_sgd_steps(tiny_trainer_parts, tmp_path, monkeypatch, LengthPenalty(alpha=0.5)))


def test_length_penalty_reward_range_and_group_standardisation():
    """0 (wrong, truncated) .. 1; the RLOO advantage is whitened over the batch, not standardised per group."""
    obj = make_objective({"name": "length_penalty"})
    assert obj.reward_range() == pytest.approx(1.0)
    assert not obj.standardises_groups(SimpleNamespace(scale_rewards="group"))
    assert not obj.standardises_groups(SimpleNamespace(scale_rewards="none"))
