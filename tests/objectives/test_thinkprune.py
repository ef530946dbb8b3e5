"""objective=thinkprune (UCSB-NLP-Chang/ThinkPrune at 0f7449b; docs/objectives.md cites the lines): the capped 0/1
reward and verl's GRPO advantage on hand-computed batches, the cap schedule of rounds and its resets, the configs
(the demo's and +experiment=thinkprune's, key by key) and bad knobs, the trainer cutting rollouts at the round's cap
and moving the mode decision to where a correct answer fits under it, and a short train.py run."""

import json
import math

import pytest
import torch

from thinkless.objectives import Rollouts, make_objective
from thinkless.objectives.thinkprune import ThinkPrune

from ..helpers import run_train_cli
from ..test_configs import check_mapping, compose_cfg
from .helpers import p_short_around_training, sampled_script, scripted_trainer, step_problems

NAN = float("nan")


def batch(correct, length, step=0, G=4, mode=None):
    n = len(correct)
    t = lambda x: torch.tensor(x, dtype=torch.float32)  # noqa: E731
    mode = t(mode if mode is not None else [1.0] * n)
    return Rollouts(correct=t(correct), mode=mode, graded_mode=mode.clone(), length=t(length),
                    truncated=torch.zeros(n), level=torch.ones(n), forced=torch.full((n,), -1.0), G=G, step=step)


# ---------------------------------------------------------------- the formulas, by hand

def test_capped_reward_and_grpo_advantage_by_hand():
    """Reward: the grader's 1/0 (main_ppo.py:131-180, qwen_math.py:37-66 with format_score=0), 0 past the cap of the
    round in force; advantage (r − mean)/(std + 1e-6), unbiased std, per group (core_algos.py:113-157)."""
    obj = ThinkPrune(cap=20, cap_schedule=[{"after_step": 2, "cap": 10}])
    b = batch([1, 0, 1, 1, 1, 1, 0, NAN], [12, 15, 20, 25, 8, 11, 30, 5])
    r = obj.rewards_for(b)
    # step 0, cap 20: the correct 25-token row is past the cap -> 0; 20 tokens is within it (the limit includes EOS)
    assert r[:7].tolist() == [1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0] and math.isnan(r[7])
    a = obj.advantages(r, b)
    # group 1 [1, 0, 1, 0]: mean 0.5, unbiased std sqrt(4 x 0.25 / 3) = 0.5773503 -> ±0.5 / 0.5773513 = ±0.8660239
    # group 2 [1, 1, 0, NaN]: mean 2/3, std sqrt((1/9 + 1/9 + 4/9) / 2) = 0.5773503 -> 0.5773493, 0.5773493,
    # -1.1546985; the ungradable row gets no advantage
    assert a.tolist() == pytest.approx([0.8660239, -0.8660239, 0.8660239, -0.8660239,
                                        0.5773493, 0.5773493, -1.1546985, 0.0], abs=1e-6)
    b.step = 2  # round 2, cap 10: only the 8-token and 5-token rows fit
    r = obj.rewards_for(b)
    assert r[:7].tolist() == [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0] and math.isnan(r[7])
    # group 1 all 0: no advantage; group 2 [1, 0, 0, NaN]: mean 1/3, std 0.5773503 -> 1.1546985, -0.5773493 x 2
    assert obj.advantages(r, b).tolist() == pytest.approx([0, 0, 0, 0, 1.1546985, -0.5773493, -0.5773493, 0.0],
                                                          abs=1e-6)
    # mode-agnostic: the same verdicts and lengths pay the same whatever the first token
    same = obj.rewards_for(batch([1, 0, 1, 1, 1, 1, 0, 1], [12, 15, 20, 25, 8, 11, 30, 5], mode=[0, 1] * 4))
    assert same.tolist() == [1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0]


def test_cap_schedule_rounds_and_resets():
    """Rounds: the cap of the last entry whose after_step is done (a new run from that checkpoint in theirs: a fresh
    AdamW, the reference = that policy)."""
    obj = ThinkPrune(cap=28, cap_schedule=[{"after_step": 174, "cap": 14, "reset_optimizer": True},
                                           {"after_step": 87, "cap": 21, "reset_optimizer": True,
                                            "reset_reference": True}])
    assert [obj.cap_at(s) for s in (0, 86, 87, 173, 174, 10_000)] == [28, 28, 21, 21, 14, 14]
    assert [obj.length_cap(s) for s in (0, 87, 174)] == [28, 21, 14]
    assert obj.caps() == [28, 21, 14] and obj.resets() == ((87, True, True), (174, False, True))
    assert obj.step_metrics(100) == {"thinkprune/cap": 21.0} and obj.trl_overrides() == {"loss_type": "dapo"}
    assert obj.reward_range() == 1.0 and obj.standardises_groups(None)
    assert obj.label() == "ThinkPrune (cap 28 → 21 → 14)"
    assert obj.max_tokens("think") is None  # not a per-mode limit for forced rows: every rollout, by round
    assert ThinkPrune().caps() == [4000] and ThinkPrune().resets() == ()  # their round 1 (multi_node_run_4k.sh:46)
    warned = []
    ThinkPrune(cap=10, cap_schedule=[{"after_step": 5, "cap": 20}]).warn_if_odd(lambda *a: warned.append(a))
    assert warned and warned[0][0] == "objective.cap_schedule"  # a cap that grows between rounds


# ---------------------------------------------------------------- configs

def test_configs_compose_and_bad_knobs_are_refused():
    from types import SimpleNamespace

    t = compose_cfg("train", ["objective=thinkprune"])
    obj = make_objective(t.objective)
    # the demo's scaling: 4 : 3 : 2 with the last cap at the level-1 think trace (14 tokens), rounds of 87 steps
    assert obj.caps() == [28, 21, 14] and [e.after_step for e in obj.schedule] == [87, 174]
    assert t.output_dir.endswith("train_thinkprune") and max(obj.caps()) <= t.rl.args.max_completion_length
    assert t.rl.args.beta == 0 and obj.resets() == ((87, False, True), (174, False, True))  # no reference to reset

    x = compose_cfg("train", ["+experiment=thinkprune"])
    assert check_mapping(x, lambda key: False) >= 15  # every mapped key of their script holds their value
    ex = make_objective(x.objective)
    assert ex.caps() == [4000, 3000, 2000] and x.rl.args.max_completion_length == 4000
    assert ex.resets() == ((180, True, True), (360, True, True)) and x.rl.args.beta > 0
    a, G = x.rl.args, x.rl.args.num_generations
    assert G == 16 and a.per_device_train_batch_size * 8 * a.steps_per_generation // G == 128
    assert a.steps_per_generation == a.gradient_accumulation_steps  # one update per rollout batch
    assert x.prompt.system.endswith("within 4000 tokens.")  # preprocess_past_aime_amc.py:75-80
    ex.check_args(SimpleNamespace(max_completion_length=a.max_completion_length))

    bad = [({"cap": 0}, r"objective.cap=0: a positive"),
           ({"cap": "x"}, r"objective.cap='x': an integer"),
           ({"cap": 2.5}, r"objective.cap=2.5: an integer"),
           ({"cap_schedule": {"after_step": 3}}, r"objective.cap_schedule=.*a list"),
           ({"cap_schedule": [5]}, r"objective.cap_schedule\[0\]=5: a mapping"),
           ({"cap_schedule": [{"after_step": 3, "cap": 0}]}, r"objective.cap_schedule\[0\].cap=0: a positive"),
           ({"cap_schedule": [{"after_step": 3, "cap": 2.5}]}, r"objective.cap_schedule\[0\].cap=2.5"),
           ({"cap_schedule": [{"cap": 10}]}, r"objective.cap_schedule\[0\] needs after_step"),
           ({"cap_schedule": [{"after_step": 3, "length": 10}]}, r"keys \['length'\].*'cap', 'reset_reference'"),
           ({"cap_schedule": [{"after_step": 3, "cap": 9}, {"after_step": 3, "cap": 8}]}, "after_step values must"),
           ({"cap_schedule": [{"after_step": 3, "cap": 9, "reset_optimizer": "yes"}]}, "reset_optimizer='yes'"),
           ({"lenght": 3}, r"unknown keys \['objective.lenght'\]")]
    for kw, msg in bad:
        with pytest.raises(ValueError, match=msg):
            make_objective({"name": "thinkprune", **kw})
    with pytest.raises(ValueError, match=r"caps \[48\] exceed rl.args.max_completion_length=40: each cap must be "
                                         r"in \[1, rl.args.max_completion_length\]"):
        ThinkPrune(cap=28, cap_schedule=[{"after_step": 3, "cap": 48}]).check_args(
            SimpleNamespace(max_completion_length=40))


# ---------------------------------------------------------------- the trainer: the cut, and where it pays

def scripted_run(parts, tmp_path, monkeypatch, objective, steps=2):
    """``steps`` SGD steps of the real trainer on level-2 fold problems with the sampled script per group: correct
    short (7 tokens with EOS), correct think x2 (18), wrong think (10). Returns the trainer, p(<short>) at the mode
    position before and after, and the logged rows."""
    from thinkless.format import render_prompt

    model, tok = parts
    tr = scripted_trainer(parts, tmp_path, monkeypatch, objective, sampled_script(tok), steps=steps)
    return (tr, *p_short_around_training(tr, tok, [render_prompt(tok, p.prompt) for p in step_problems()]))


def test_trainer_cuts_rollouts_at_the_round_cap_and_short_pays(tiny_trainer_parts, tmp_path, monkeypatch):
    """Round 1 (cap 12): the 18-token correct think traces are cut at 12 tokens, lose their answer and grade 0, so
    only the short answer pays and p(<short>) rises; round 2 (cap 6, from step 1): every rollout is cut, the 7-token
    short answer loses only its EOS and, as their grader reads the cut text, still grades correct. The cut is the
    trainer's (the logged lengths), not only the reward's."""
    obj = ThinkPrune(cap=12, cap_schedule=[{"after_step": 1, "cap": 6}])
    tr, before, after, logs = scripted_run(tiny_trainer_parts, tmp_path, monkeypatch, obj)
    assert [h["thinkprune/cap"] for h in logs] == [12.0, 6.0]
    assert [h["completions/max_length"] for h in logs] == [12.0, 6.0]  # cut by the trainer at each round's cap
    first, second = logs
    # round 1: short 7 tokens, correct -> 1; think traces cut at 12 -> 0; the wrong think (8 tokens) -> 0
    assert first["modes/acc_short"] == 1.0 and first["modes/acc_think"] == 0.0 and first["reward"] == 0.25
    assert first["completions/clipped_ratio"] == 0.5  # the two 18-token traces of every group
    assert second["completions/clipped_ratio"] == 1.0 and second["modes/acc_short"] == 1.0
    assert second["reward"] == 0.25 and second["modes/acc_think"] == 0.0
    assert after > before, (before, after)


def test_without_the_cut_thinking_pays_as_much_as_short(tiny_trainer_parts, tmp_path, monkeypatch):
    """The control: a cap above every scripted length cuts nothing: correct think traces pay 1 like the short answer,
    and the step moves p(<short>) less than under the cap of the test above."""
    tr, before, after, logs = scripted_run(tiny_trainer_parts, tmp_path, monkeypatch, ThinkPrune(cap=24), steps=1)
    assert logs[0]["completions/max_length"] == 18.0 and logs[0]["completions/clipped_ratio"] == 0.0
    assert logs[0]["modes/acc_think"] == pytest.approx(2 / 3) and logs[0]["reward"] == 0.75
    _, before_c, after_c, _ = scripted_run(tiny_trainer_parts, tmp_path / "capped", monkeypatch, ThinkPrune(cap=12),
                                           steps=1)
    assert after_c - before_c > after - before


# ---------------------------------------------------------------- end to end

def test_train_cli_runs_three_rounds(distilled, tmp_path):
    """python train.py objective=thinkprune from the suite's distilled model: three rounds in three steps (the demo's
    caps 28 -> 21 -> 14, an optimizer reset at each switch), every rollout within its round's cap."""
    from ..test_metrics_page import logged_keys, undocumented

    out = tmp_path / "tp"
    run_train_cli(out, distilled / "model", "rl.args.max_steps=3", "rl.args.per_device_train_batch_size=16",
                  "rl.args.num_generations=4", "rl.args.max_completion_length=40", "rl.args.save_steps=100",
                  "rl_data.validation=null", "report.enabled=false", "objective=thinkprune",
                  "objective.cap_schedule=[{after_step:1,cap:21,reset_optimizer:true},"
                  "{after_step:2,cap:14,reset_optimizer:true}]")
    recs = [r for r in (json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines())
            if "modes/think_ratio" in r]
    assert [r["thinkprune/cap"] for r in recs] == [28.0, 21.0, 14.0]
    assert all(r["completions/max_length"] <= r["thinkprune/cap"] for r in recs)
    assert not undocumented(logged_keys(out / "metrics.jsonl"))
    card = (out / "model" / "README.md").read_text()
    assert "ThinkPrune (cap 28 → 21 → 14)" in card and "| objective | `thinkprune` |" in card
