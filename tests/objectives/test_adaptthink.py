"""objective=adaptthink (AdaptThink, thinkless/objectives/adaptthink.py): reward, advantage and forcing on a
hand-computed case from their code, the reference-accuracy cache, their sequence-ratio loss as the trainer computes
it, a step moving the mode where it pays, and the reward range rl.budget reads. docs/objectives.md cites the lines."""

import json
import math
from types import SimpleNamespace

import pytest
import torch

from thinkless.objectives import make_objective
from thinkless.objectives.adaptthink import AdaptThink, load_ref_results, write_ref_results

from .helpers import batch, check_moves_to_short, fixed_batch, loss_and_grad, step_problems, trainer_for, \
    two_sgd_steps


def test_adaptthink_reward_advantage_and_forcing():
    """acc − ref_acc + δ·1[forced no-think] (adapt_think_reward_manager.py:186-189); naive advantage = reward."""
    obj = AdaptThink()
    obj.ref_acc = {"p": 0.25, "q": 1.0}
    b = batch([1, 0, 1, 1, 1, 1, 0, 1], [0, 0, 1, 1, 0, 0, 1, 1], forced=[0, 0, 1, 1, 0, 0, 1, 1],
              problems=["p"] * 4 + [" q\n"] * 4)
    r = obj.rewards_for(b)
    assert r.tolist() == pytest.approx([0.8, -0.2, 0.75, 0.75, 0.05, 0.05, -1.0, 0.0])
    assert torch.equal(obj.advantages(r, b), r)
    modes, logps = obj.first_tokens(16)  # n_nothinking = round(n * ratio): the first 8 of a group
    assert modes == ["short"] * 8 + ["think"] * 8 and logps == [math.log(0.5)] * 16
    modes, logps = AdaptThink(nothinking_ratio=0.25).first_tokens(8)
    assert modes == ["short"] * 2 + ["think"] * 6
    assert logps == pytest.approx([math.log(0.25)] * 2 + [math.log(0.75)] * 6)
    # an odd group (issue 38): the recorded forcing probability is the mix actually run, 2/3 short and 1/3 think
    modes, logps = obj.first_tokens(3)
    assert modes == ["short"] * 2 + ["think"] and logps == pytest.approx([math.log(2 / 3)] * 2 + [math.log(1 / 3)])
    assert obj.max_tokens("short") == 4096 and obj.max_tokens("think") is None
    b.problems = ["p"] * 4 + ["unknown"] * 4
    with pytest.raises(KeyError, match="1 problems have no reference accuracy"):
        obj.rewards_for(b)


def test_a_think_ratio_price_on_adaptthinks_forced_halves_is_a_moving_delta():
    """rl.budget on AdaptThink (read on the probe: its batches are forced): r − λ·1[think] = acc − ref − λ +
    (δ + λ)·1[short], i.e. AdaptThink at δ + λ less a constant λ, whose naive-estimator gradient is zero in
    expectation (the forced first token's importance weight π/q sums ∇π to 0). So the budget is a δ search."""
    from thinkless.training.budget import make_budget

    obj, moved = AdaptThink(), AdaptThink(delta=0.05 + 0.3)
    obj.ref_acc = moved.ref_acc = {"p": 0.25}
    b = batch([1, 0, 1, 0], [0, 0, 1, 1], forced=[0, 0, 1, 1], problems=["p"] * 4)
    budget = make_budget({"think_ratio": 0.4}, objective=obj, max_steps=100)
    budget.multiplier = 0.3
    priced = budget.shape(obj.rewards_for(b), b.mode, b.length)
    assert priced.tolist() == pytest.approx([0.8, -0.2, 0.45, -0.55])  # by hand: 1 − .25 + .05, ..., 1 − .25 − .3
    assert priced.tolist() == pytest.approx((moved.rewards_for(b) - 0.3).tolist())


def test_adaptthink_knobs_are_checked():
    with pytest.raises(ValueError, match="objective.delta='abc': a finite number"):
        make_objective({"name": "adaptthink", "delta": "abc"})
    with pytest.raises(ValueError, match="objective.nothinking_ratio"):
        AdaptThink(nothinking_ratio=1.5)


def test_adaptthink_ref_results_format_and_cache(tmp_path):
    """Their postprocess_ref_results.py format (a list, __OVERALL__ first) reads; our cache refuses a mismatch."""
    theirs = tmp_path / "released.json"
    theirs.write_text(json.dumps([
        {"problem": "__OVERALL__", "answer": None, "metrics": {"avg_acc_thinking": 0.5}},
        {"problem": " What is 1+1? ", "answer": "2", "metrics": {"n_responses": 16, "avg_acc_thinking": 0.75,
                                                                 "avg_len_thinking": 900.0, "avg_clip_ratio": 0.0}}]))
    assert load_ref_results(theirs, {"model": "x"})["What is 1+1?"]["metrics"]["avg_acc_thinking"] == 0.75
    ours = tmp_path / "ours.json"
    meta = {"model": {"path": "m"}, "K": 4, "temperature": 0.6, "top_p": 0.95, "max_tokens": 48}
    recs = {"a": {"problem": "a", "answer": "1", "metrics": {"n_responses": 4, "avg_acc_thinking": 0.5,
                                                            "avg_len_thinking": 10.0, "avg_clip_ratio": 0.25}}}
    write_ref_results(ours, recs, meta)
    data = json.loads(ours.read_text())
    assert data[0]["problem"] == "__OVERALL__" and data[0]["metrics"]["avg_acc_thinking"] == 0.5
    assert load_ref_results(ours, meta) == recs
    with pytest.raises(ValueError, match="(?s)sampled differently.*K: 4 -> 8"):
        load_ref_results(ours, {**meta, "K": 8})
    (tmp_path / "bad.json").write_text('{"problem": 1}')
    with pytest.raises(ValueError, match="expected a JSON list"):
        load_ref_results(tmp_path / "bad.json")


def test_adaptthink_loss_is_their_sequence_ratio_with_the_forcing_old_logprob(tiny_trainer_parts, tmp_path):
    """adapt_think_core_algos.py:89-105: old log-prob of token 0 := log(ratio) / log(1 − ratio); ratio per sequence
    exp(masked_mean(logp − old')); −min(A·r, A·clip(r)) averaged over sequences — value and gradient."""
    tr = trainer_for(tiny_trainer_parts, tmp_path, AdaptThink(nothinking_ratio=0.25))
    inputs, lp = fixed_batch(T=6, lengths=[6, 2, 4, 6, 1, 6, 3, 6])
    forced = torch.tensor([math.log(0.25)] * 2 + [math.log(0.75)] * 6)
    inputs["first_token_old_logp"] = forced
    loss, grad = loss_and_grad(tr, inputs, lp)

    x = lp.clone().requires_grad_(True)  # their formula, written out
    mask = inputs["completion_mask"].float()
    old = lp.clone()
    old[:, 0] = forced
    r = torch.exp(((x - old) * mask).sum(1) / (mask.sum(1) + 1e-8))
    A = inputs["advantages"]
    expect = torch.maximum(-A * r, -A * torch.clamp(r, 0.8, 1.2)).mean()
    expect.backward()
    assert loss.item() == pytest.approx(expect.item(), rel=1e-5)
    torch.testing.assert_close(grad, x.grad, rtol=1e-4, atol=1e-7)


def test_a_step_moves_the_mode_decision_where_adaptthink_pays(tiny_trainer_parts, tmp_path, monkeypatch):
    """AdaptThink forces the modes itself (half of each group short), every continuation is correct and the
    reference accuracy is 1, so only the no-think bonus δ pays: p(<short>) rises."""
    obj = AdaptThink()
    obj.ref_acc = {p.prompt: 1.0 for p in step_problems()}
    check_moves_to_short(*two_sgd_steps(tiny_trainer_parts, tmp_path, monkeypatch, obj), expect=(0.5, 1.0, 1.0, 1.0))


def test_adaptthink_reward_range_and_group_standardisation():
    """acc − ref_acc ∈ [−1, 1] plus δ; the advantage is the reward itself (no group statistics)."""
    assert make_objective({"name": "adaptthink", "delta": 0.05}).reward_range() == pytest.approx(2.05)
    obj = AdaptThink()
    assert not obj.standardises_groups(SimpleNamespace(scale_rewards="group"))
    assert not obj.standardises_groups(SimpleNamespace(scale_rewards="none"))
