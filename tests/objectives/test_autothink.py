"""objective=autothink (thinkless/objectives/autothink.py): each formula of TU2021/AutoThink's RewardManager
(verl/verl/trainer/main_ppo.py at be0bcb0; docs/objectives.md cites the lines) on a hand-computed batch, its
advantage, its configs (objective=autothink, the three +experiment stages key by key), a trainer step that moves the
mode and the length where it pays, and train.py end to end."""

import json
import math

import pytest
import torch

from thinkless.objectives import OBJECTIVES, Rollouts, make_objective
from thinkless.objectives.autothink import AutoThink

from ..helpers import run_train_cli
from .helpers import scripted_trainer, step_problems

NAN = float("nan")


def batch(correct, mode, length=None, graded_mode=None, G=4):
    n = len(correct)
    t = lambda x, d: torch.tensor(x if x is not None else [d] * n, dtype=torch.float32)  # noqa: E731
    return Rollouts(correct=t(correct, 0), mode=t(mode, 0), graded_mode=t(graded_mode or mode, 0),
                    length=t(length, 10), truncated=t(None, 0), level=t(None, 1), forced=t(None, -1), G=G)


# ---------------------------------------------------------------- the reward, formula by formula

def test_base_rewards_and_the_batch_balance():
    """math_reward.py:42-50,78-81,108 (think 1/0, no-think 2/−1, format error 0) and main_ppo.py:89-124 (a mode over
    the rate blended toward 0/−1 (think) or 1/−2 (no-think) with f = clip((share − rate)·2, 0, 1)). Worked by hand.

    Group A: short ✓, short ✗, think ✓, think ✗ -> base 2, −1, 1, 0.
    Group B: think ✓, think ✗, short ✗ unparseable (format error: 0, not −1), no control token ✗ (thinks, as their
    default; format error 0) -> base 1, 0, 0, 0.
    Think share 5/8 = 0.625 > 0.5: f = 0.125·2 = 0.25; think ✓ 0.75·1 + 0.25·0 = 0.75, think ✗ 0.75·0 + 0.25·(−1) =
    −0.25. Short share 3/8: untouched."""
    obj = AutoThink()
    b = batch([1, 0, 1, 0, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1, 0, -1], graded_mode=[0, 0, 1, 1, 1, 1, -1, -1])
    assert obj.base_rewards(b).tolist() == [2.0, -1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    r = obj.rewards_for(b)
    assert r.tolist() == pytest.approx([2.0, -1.0, 0.75, -0.25, 0.75, -0.25, 0.0, -0.25])
    assert obj.step_metrics(0) == {"rewards/balance_think": pytest.approx(0.25), "rewards/balance_short": 0.0}

    # the rate off (stages 2-3): the base rewards unchanged
    assert AutoThink(batch_balance_rate=1.0).rewards_for(b).tolist() == obj.base_rewards(b).tolist()

    # no-think over-used, f clipped at 1, and both modes over a rate below 0.5:
    # short share 3/4 > 0.2: f = min(1, 0.55·2) = 1 -> targets 1 (✓), −2 (✗);
    # think share 1/4 > 0.2: f = 0.05·2 = 0.1 -> think ✓ 0.9·1 + 0.1·0 = 0.9
    low = AutoThink(batch_balance_rate=0.2)
    assert low.rewards_for(batch([1, 0, 1, 1], [0, 0, 0, 1])).tolist() == pytest.approx([1.0, -2.0, 1.0, 0.9])
    # rate 0.5: short share 3/4, f = 0.5 -> 0.5·2 + 0.5·1 = 1.5, 0.5·(−1) + 0.5·(−2) = −1.5; think share 1/4: untouched
    assert obj.rewards_for(batch([1, 0, 1, 1], [0, 0, 0, 1])).tolist() == pytest.approx([1.5, -1.5, 1.5, 1.0])


def test_length_shaping_on_z_scored_lengths():
    """main_ppo.py:68-87, stage 3's α = β = 0.05, balance off. Worked by hand, G = 5, every row thinks:
    correct lengths 10, 20, 30: mean 20, unbiased std 10, z = −1, 0, 1 -> + e^{0.05} − 1 = 0.0512711,
    0, e^{−0.05} − 1 = −0.0487706 on the base 1;
    wrong lengths 40, 60: mean 50, unbiased std √200 = 14.1421, z = ∓0.7071 -> 1 − e^{±0.05·0.7071} = −0.0359878,
    +0.0347376 on the base 0 (a longer wrong response is paid more: their "think harder when wrong")."""
    obj = AutoThink(batch_balance_rate=1.0, reward_alpha=0.05, reward_beta=0.05)
    b = batch([1, 1, 1, 0, 0], [1] * 5, length=[10, 20, 30, 40, 60], G=5)
    assert obj.length_shaping(b).tolist() == pytest.approx([0.0512710964, 0.0, -0.0487705755, -0.0359877703,
                                                             0.0347376401], abs=1e-7)
    assert obj.rewards_for(b).tolist() == pytest.approx([1.0512710964, 1.0, 0.9512294245, -0.0359877703,
                                                         0.0347376401], abs=1e-7)
    # a subset of one response is not shaped (len(group_pos) > 1); an ungradable gold is in neither subset, no reward
    one = batch([1, 0, 0, NAN], [0, 1, 1, 1], length=[5, 10, 30, 90])  # wrong 10, 30: z = ∓0.7071 as above
    assert obj.rewards_for(one)[:3].tolist() == pytest.approx([2.0, -0.0359877703, 0.0347376401], abs=1e-7)
    assert obj.rewards_for(one)[3].isnan()
    # α = β = 0 (stages 1-2): no shaping at all
    assert AutoThink(batch_balance_rate=1.0).rewards_for(b).tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_grpo_advantage_with_the_unbiased_std():
    """core_algos.py:111-155: (r − mean)/(std + 1e-6) per prompt, torch.std (unbiased). On the first test's rewards:
    A: 2, −1, 0.75, −0.25: mean 0.375, std √(5.0625/3) = 1.2990381 -> 1.2509246, −1.0584747, 0.2886749, −0.4811249;
    B: 0.75, −0.25, 0, −0.25: mean 0.0625, std 0.4732424 -> 1.4527409, −0.6603368, −0.1320674, −0.6603368."""
    obj = AutoThink()
    b = batch([1, 0, 1, 0, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1, 0, -1], graded_mode=[0, 0, 1, 1, 1, 1, -1, -1])
    a = obj.advantages(obj.rewards_for(b), b)
    assert a.tolist() == pytest.approx([1.2509246203, -1.0584746787, 0.2886749124, -0.4811248540,
                                        1.4527409257, -0.6603367844, -0.1320673569, -0.6603367844], abs=1e-6)
    from types import SimpleNamespace

    assert obj.standardises_groups(SimpleNamespace(scale_rewards="none"))  # whatever rl.args says
    assert obj.reward_range() == 4.0  # −2 (no-think ✗, fully balanced) .. 2 (no-think ✓)


# ---------------------------------------------------------------- configs

def test_knob_errors_name_the_key_and_range():
    assert "autothink" in OBJECTIVES
    for kw, msg in [({"batch_balance_rate": 1.5}, r"objective.batch_balance_rate=1.5: a share of the batch in \[0, 1\]"),
                    ({"batch_balance_rate": -0.1}, r"objective.batch_balance_rate=-0.1"),
                    ({"penalty_slope": 0}, r"objective.penalty_slope=0.0: a positive slope"),
                    ({"reward_alpha": -0.05}, r"objective.reward_alpha=-0.05: a non-negative weight"),
                    ({"reward_beta": "x"}, r"objective.reward_beta='x': a finite number"),
                    ({"batch_balance_rate": NAN}, r"objective.batch_balance_rate=nan")]:
        with pytest.raises(ValueError, match=msg):
            make_objective({"name": "autothink", **kw})
    warned = []
    AutoThink(batch_balance_rate=0.3).warn_if_odd(lambda k, v, m: warned.append(k))
    AutoThink().warn_if_odd(lambda k, v, m: warned.append(k))
    assert warned == ["objective.batch_balance_rate"]  # below 0.5 only


def test_objective_autothink_composes_in_train_yaml():
    from ..test_configs import compose_cfg

    c = compose_cfg("train", ["objective=autothink"])
    obj = make_objective(c.objective)
    assert isinstance(obj, AutoThink) and obj.knobs() == {"batch_balance_rate": 0.5, "penalty_slope": 2.0,
                                                          "reward_alpha": 0.0, "reward_beta": 0.0, "loss_type": "dapo"}
    assert c.output_dir.endswith("train_autothink") and obj.trl_overrides() == {"loss_type": "dapo"}
    assert c.rl.args == compose_cfg("train", []).rl.args  # equal terms: the demo's rl config


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_stage_experiments_match_their_scripts_key_by_key(stage):
    """+experiment=autothink_stage{1,2,3}: every mapped key of train_stage{N}.sh holds their value; the batch
    arithmetic (prompts per rollout, per optimizer step) and the chain of checkpoints."""
    from ..test_configs import check_mapping, compose_cfg

    t = compose_cfg("train", [f"+experiment=autothink_stage{stage}"])
    assert check_mapping(t, lambda key: "in optimizer steps" in key) >= 20
    a, G = t.rl.args, t.rl.args.num_generations
    prompts = {1: 128, 2: 64, 3: 64}[stage]
    assert a.per_device_train_batch_size * 8 * a.steps_per_generation // G == prompts          # data.train_batch_size
    assert a.per_device_train_batch_size * 8 * a.gradient_accumulation_steps // G == 64        # ppo_mini_batch_size
    assert a.max_steps == 2 * (40315 // prompts) * (prompts // 64)                             # total_epochs=2
    obj = make_objective(t.objective)
    assert (obj.batch_balance_rate, obj.reward_alpha, obj.reward_beta) == \
        {1: (0.5, 0.0, 0.0), 2: (1.0, 0.0, 0.0), 3: (1.0, 0.05, 0.05)}[stage]
    assert t.output_dir.endswith(f"train_autothink_stage{stage}")
    start = {1: "distill/model", 2: "train_autothink_stage1/model", 3: "train_autothink_stage2/model"}[stage]
    assert t.model.path == f"runs/autothink-1.5b/{start}"


# ---------------------------------------------------------------- the trainer: a step moves the policy where it pays

def logp(tr, tok, problems, completion):
    """Mean over problems of log π(completion(p) | prompt(p)), summed over the completion's tokens."""
    from thinkless.format import render_prompt

    total = 0.0
    for p in problems:
        prompt = tok.encode(render_prompt(tok, p.prompt), add_special_tokens=False)
        comp = tok.encode(completion(p), add_special_tokens=False) + [tok.eos_token_id]
        ids = torch.tensor([prompt + comp])
        with torch.no_grad():
            lp = torch.log_softmax(tr.model(input_ids=ids).logits[0, len(prompt) - 1:-1], -1)
        total += lp.gather(1, torch.tensor(comp)[:, None]).sum().item()
    return total / len(problems)


def test_the_loss_is_trls_dapo(tiny_trainer_parts, tmp_path, monkeypatch):
    """verl's token mean over the batch (core_algos.py:216-217) is TRL's dapo: the trainer computes TRL's own loss."""
    from trl import GRPOTrainer

    tr = scripted_trainer(tiny_trainer_parts, tmp_path, monkeypatch, AutoThink(), lambda p, j, _: "")
    assert tr.loss_type == "dapo"
    g = torch.Generator().manual_seed(0)
    mask = torch.ones(8, 5, dtype=torch.long)
    mask[1, 2:] = 0
    inputs = {"prompt_ids": torch.full((8, 3), 5), "prompt_mask": torch.ones(8, 3, dtype=torch.long),
              "completion_ids": torch.randint(3, 200, (8, 5), generator=g), "completion_mask": mask,
              "advantages": torch.randn(8, generator=g), "num_items_in_batch": mask.sum()}
    tr.model.train()
    tr.current_gradient_accumulation_steps = 1
    assert tr._compute_loss(tr.model, inputs).item() == \
        pytest.approx(GRPOTrainer._compute_loss(tr, tr.model, inputs).item(), rel=1e-6)


def test_a_step_moves_the_mode_to_the_mode_that_pays(tiny_trainer_parts, tmp_path, monkeypatch):
    """Per group: correct short, correct think ×3 (stage 1's knobs). Think share 3/4 > 0.5, f = 0.5: the rewards are
    2, 0.5, 0.5, 0.5: the short answer pays more, and its likelihood rises. (With the modes' base rewards swapped,
    every row would get 1: no signal, no change.)"""
    from thinkless.tasks import synthetic

    model, tok = tiny_trainer_parts
    problems = step_problems()

    def script(p, j, _):
        return synthetic.short_teacher(p) if j == 0 else synthetic.long_teacher(p)

    tr = scripted_trainer(tiny_trainer_parts, tmp_path, monkeypatch, AutoThink(), script)
    before = logp(tr, tok, problems, synthetic.short_teacher)
    tr.train()
    after = logp(tr, tok, problems, synthetic.short_teacher)
    log = next(h for h in tr.state.log_history if "modes/think_ratio" in h)
    assert log["modes/think_ratio"] == pytest.approx(0.75) and log["modes/accuracy"] == 1.0
    assert log["rewards/balance_think"] == pytest.approx(0.5) and log["rewards/balance_short"] == 0.0
    assert after > before, (before, after)


def test_a_stage3_step_moves_the_length_to_the_shorter_correct_trace(tiny_trainer_parts, tmp_path,
                                                                      monkeypatch):
    """Per group, all thinking and correct: the full trace ×2 and a trace of one step ×2 (shorter). Stage 3's shaping
    (α = 1 here, to see it in two steps; balance off) pays the shorter correct ones more (z < 0: e^{−αz} − 1 > 0), so
    the short trace's likelihood rises relative to the long one's. Without the shaping every reward is 1: no signal."""
    from thinkless.tasks import synthetic

    model, tok = tiny_trainer_parts
    problems = step_problems()

    def brief(p):  # a correct think response with one reasoning line
        return "<think>%s\n</think>\\boxed{%s}" % (p.digits[0], p.answer)

    def script(p, j, _):
        return [synthetic.long_teacher(p), brief(p), synthetic.long_teacher(p), brief(p)][j]

    tr = scripted_trainer(tiny_trainer_parts, tmp_path, monkeypatch,
                          AutoThink(batch_balance_rate=1.0, reward_alpha=1.0, reward_beta=1.0), script)
    assert len(tok.encode(brief(problems[0]))) < len(tok.encode(synthetic.long_teacher(problems[0])))
    gap = lambda: logp(tr, tok, problems, brief) - logp(tr, tok, problems, synthetic.long_teacher)  # noqa: E731
    before = gap()
    tr.train()
    log = next(h for h in tr.state.log_history if "modes/think_ratio" in h)
    assert log["modes/think_ratio"] == 1.0 and log["modes/accuracy"] == 1.0
    assert log["modes/len_think"] < 24  # the scripted lengths, none cut
    assert gap() > before


# ---------------------------------------------------------------- train.py end to end

FAST = ["rl.args.max_steps=3", "rl.args.per_device_train_batch_size=16", "rl.args.num_generations=4",
        "rl.args.max_completion_length=40", "rl.args.save_steps=100", "rl_data.validation=null"]


def test_train_py_objective_autothink_end_to_end(distilled, tmp_path):
    from ..test_metrics_page import logged_keys, undocumented

    bad = run_train_cli(tmp_path / "bad", distilled / "model", *FAST, "objective=autothink",
                        "objective.batch_balance_rate=1.5", check=False, timeout=120)
    assert bad.returncode != 0 and "objective.batch_balance_rate=1.5" in bad.stderr + bad.stdout
    assert not (tmp_path / "bad" / "metrics.jsonl").exists()  # refused before any work

    out = tmp_path / "train"
    run_train_cli(out, distilled / "model", *FAST, "objective=autothink", "report.enabled=false")
    recs = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "modes/think_ratio" in r]
    assert [r["step"] for r in recs] == [1, 2, 3]
    for r in recs:  # the logged blend factors are those the batch's mode shares imply (stage 1: rate 0.5)
        think = r["modes/think_ratio"] + r["modes/invalid_format"]  # a row without a control token thinks (theirs)
        assert r["rewards/balance_think"] == pytest.approx(min(1.0, max(0.0, (think - 0.5) * 2)), abs=1e-6)
        assert r["rewards/balance_short"] == pytest.approx(min(1.0, max(0.0, (0.5 - think) * 2)), abs=1e-6)
        assert math.isfinite(r["modes/reward"])
    assert not undocumented(logged_keys(out / "metrics.jsonl"))
    assert "AutoThink (balance 0.5" in (out / "model" / "README.md").read_text()
