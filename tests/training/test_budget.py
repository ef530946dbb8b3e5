"""Training to a budget (thinkless/training/budget.py): the constraint's checks, the priced rewards and the multiplier's update
(dual ascent and the proportional term) on hand-computed cases, the derived gains, the multiplier's state, and the
unreachable-target warning of a real run. The update's resume in a real run is in
tests/runs/test_stage.py::test_resume_after_sigkill; on two processes in tests/test_multiprocess.py; a token budget on vLLM
rollouts in tests/training/test_vllm_cpu.py; the whole loop on the graded task in tests/test_bench.py."""

import json

import pytest
import torch
from omegaconf import OmegaConf

from thinkless.training.budget import STATE_FILE, Budget, make_budget
from thinkless.reporting.monitor import read_metrics
from thinkless.objectives import make_objective

from ..helpers import ROOT, run_train_cli


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
    ({"think_ratio": 0.3, "proportional": -1}, "rl.budget.proportional=-1: a number >= 0 (0: plain dual ascent)"),
    ({"think_ratio": 0.3, "derivative": -2}, "rl.budget.derivative=-2: a number >= 0 (0: off, the default)"),
    ({"think_ratio": 0.3, "derivative": None}, "rl.budget.derivative=None: a number >= 0"),
    ({"think_ratio": 0.3, "multiplier_init": 3.0}, "rl.budget.multiplier_init=3.0: a number in [-2, 2]"),
    ({"think_ratio": 0.3, "at_most": True, "multiplier_init": -0.5}, ">= 0 under at_most"),
    ({"think_ratio": 0.3, "at_most": "yes"}, "rl.budget.at_most='yes'"),
    ({"think_ratio": 0.3, "probe": -1}, "rl.budget.probe=-1: a number of training prompts >= 0"),
    ({"think_ratio": 0.3, "probe": 0.5}, "rl.budget.probe=0.5: a number of training prompts >= 0"),
    ({"tokens": 20, "probe": 64}, "rl.budget.probe=64: a token budget is measured on the batch's rollouts"),
])
def test_bad_budgets_fail_naming_the_key(cfg, message):
    with pytest.raises(ValueError, match=None) as e:
        budget(**cfg)
    assert message in str(e.value)


def test_no_target_is_no_budget_and_forcing_objectives_are_priced_on_the_probe_only():
    assert budget() is None and budget(think_ratio=None, tokens=None) is None
    adapt = make_objective({"name": "adaptthink"})
    b = make_budget({"think_ratio": 0.3}, objective=adapt, max_steps=100)  # auto: read on the probe
    assert b.probe == 512 and b.bound == pytest.approx(2.05)
    for cfg, key in (({"think_ratio": 0.3, "probe": 0}, "rl.budget.probe=0"), ({"tokens": 20}, "rl.budget.tokens")):
        with pytest.raises(ValueError, match=f"objective=adaptthink \\({key}\\): it forces the mode of every rollout"):
            make_budget(cfg, objective=adapt, max_steps=100)
    with pytest.raises(ValueError, match="set in epochs"):
        make_budget({"think_ratio": 0.3}, objective=make_objective({"name": "thinkless"}), max_steps=-1)
    # an upper bound above the length limit is legal (it never binds); only a target there is impossible
    assert budget(tokens=100, at_most=True).target == 100


def test_the_step_size_is_derived_from_the_reward_range_and_the_run_length():
    b = budget(think_ratio=0.3)  # Thinkless 1 / 0.5 / -1: R = 2
    assert b.bound == 2.0 and b.step_size == pytest.approx(5 * 2.0 / 100) and b.patience == 10
    assert b.proportional == 2.0  # K = R
    assert budget(think_ratio=0.3, proportional=0).proportional == 0.0  # plain dual ascent
    sched = make_objective({"name": "thinkless", "rewards": {"wrong_think": -1.5},
                            "reward_schedule": [{"after_step": 5, "correct_short": 1.2}]})
    assert sched.reward_range() == pytest.approx(2.7)  # the widest values any step pays
    lp = make_budget({"tokens": 20}, objective=make_objective({"name": "length_penalty"}), max_steps=50)
    assert lp.bound == 1.0 and lp.step_size == pytest.approx(5 / 50) and lp.proportional == 1.0
    assert budget(think_ratio=0.3, step_size=0.2).step_size == 0.2
    # the probe: a think ratio is measured on 512 fixed training prompts unless told; a token budget on the batch
    assert b.probe == 512 and budget(think_ratio=0.3, probe=0).probe == 0 and budget(tokens=20).probe == 0
    # the proportional term averages only a noisy reading: the batch's, never the probe's
    assert b.smoothing == 0.0 and budget(think_ratio=0.3, probe=0).smoothing == budget(tokens=20).smoothing == 0.75
    # one dual update per generation batch: the official recipe generates once per 2 optimizer steps
    two = make_budget({"think_ratio": 0.3}, objective=make_objective({"name": "thinkless"}), max_steps=960,
                      steps_per_update=2.0)
    assert two.step_size == pytest.approx(5 * 2.0 / 480) and two.patience == 48  # a tenth of the updates
    # the derivative term: off unless asked; auto = K x the optimizer's momentum time 1/(1 - β1), in dual updates
    assert b.derivative == 0.0 and budget(think_ratio=0.3, derivative=3).derivative == 3.0
    assert budget(think_ratio=0.3, derivative="auto").derivative == pytest.approx(2.0 / (1 - 0.9))  # K = 2: 20
    auto2 = make_budget({"think_ratio": 0.3, "derivative": "auto"}, objective=make_objective({"name": "thinkless"}),
                        max_steps=960, steps_per_update=2.0, adam_beta1=0.8)
    assert auto2.derivative == pytest.approx(2.0 * 5 / 2)  # 5 optimizer steps of momentum = 2.5 dual updates


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


def test_the_proportional_term_by_hand():
    # λ = λ_I + K·ē: λ_I the dual ascent above, ē the violation averaged with weight 0.75 on the past
    b = Budget(cost="think_ratio", target=0.25, step_size=0.5, bound=2.0, proportional=1.0, multiplier=0.1)
    assert b.integral == 0.1  # the integral starts at the initial price
    b.update(0.5)  # e = 0.25, ē = 0.25 (the first batch), λ_I = 0.1 + 0.5·0.25
    assert (b.smoothed_error, b.integral, b.multiplier) == pytest.approx((0.25, 0.225, 0.475))
    b.update(0.0)  # e = −0.25, ē = 0.75·0.25 + 0.25·(−0.25)
    assert (b.smoothed_error, b.integral, b.multiplier) == pytest.approx((0.125, 0.1, 0.225))
    b.update(0.0)  # ē = 0.75·0.125 − 0.0625
    assert (b.smoothed_error, b.integral, b.multiplier) == pytest.approx((0.03125, -0.025, 0.00625))
    # read on a probe nothing is averaged: ē = e
    p = Budget(cost="think_ratio", target=0.25, step_size=0.5, bound=2.0, proportional=1.0, multiplier=0.1,
               smoothing=0.0)
    p.update(0.5)
    p.update(0.0)  # e = −0.25: λ_I = 0.225 − 0.125, λ = 0.1 − 0.25
    assert (p.smoothed_error, p.integral, p.multiplier) == pytest.approx((-0.25, 0.1, -0.15))
    # a large transient takes λ to the bound through K, not the integral: not yet a sign the target is out of reach
    big = Budget(cost="think_ratio", target=0.0, step_size=0.1, bound=2.0, proportional=10.0)
    big.update(0.9)
    assert big.multiplier == 2.0 and big.integral == pytest.approx(0.09) and big.saturated_steps == 0
    # under at_most neither part goes below 0
    cap = Budget(cost="think_ratio", target=0.5, step_size=0.5, bound=2.0, proportional=1.0, at_most=True)
    cap.update(0.0)
    assert cap.integral == 0.0 and cap.multiplier == 0.0


def test_the_derivative_term_by_hand():
    # λ = λ_I + K·ē + D·(ē − ē_prev); the first update has no previous ē: no derivative part
    b = Budget(cost="think_ratio", target=0.5, step_size=0.1, bound=2.0, proportional=1.0, derivative=10.0,
               smoothing=0.0)
    b.update(0.6)  # e = 0.1: λ_I = 0.01, λ = 0.01 + 0.1
    assert (b.integral, b.multiplier) == pytest.approx((0.01, 0.11))
    b.update(0.55)  # e = 0.05, falling by 0.05: λ_I = 0.015, λ = 0.015 + 0.05 − 10·0.05 (the lead: ease off early)
    assert (b.integral, b.multiplier) == pytest.approx((0.015, -0.435))
    b.update(0.55)  # steady: the derivative part is gone
    assert b.multiplier == pytest.approx(0.02 + 0.05)


def test_a_standardising_objective_is_priced_on_its_advantages_and_logs_the_price_paid():
    """AdaptiveGRPOTrainer._priced: an objective that divides each group by its std (Ada-GRPO, always) keeps its
    rewards and is charged λ·(cost − the group's mean cost) on its advantages (Budget.centred; a row without a
    reward gets none); one that does not (DeGRPO under scale_rewards=none) pays r − λ·cost. The multiplier's own
    update is the same either way (λ ← 0.1 + 0.5·(0.75 − 0.25) = 0.35 on the batch's think ratio); budget/multiplier
    logs the price paid. make_budget sets the mode and the units: the standardised advantages' range, √G (√8: a lone
    right answer, (7/8)·√8 against −(1/8)·√8), for the bound and the auto gains (η = 5·√8/100, K = √8), the
    objective's reward range otherwise (the trainer's refusal of a budget built for the other kind:
    tests/training/test_trainer.py)."""
    import math
    from collections import defaultdict
    from types import SimpleNamespace

    from thinkless.objectives.ada_grpo import AdaGRPO
    from thinkless.training.trainer import AdaptiveGRPOTrainer

    from ..objectives.helpers import batch

    b = Budget(cost="think_ratio", target=0.25, step_size=0.5, bound=2.0, multiplier=0.1, in_advantages=True)
    me = SimpleNamespace(budget=b, objective=AdaGRPO(total_steps=10), accelerator=SimpleNamespace(is_main_process=True))
    rollouts = batch([1, 1, 1, 0, 1, 1, 1, 1], [1, 1, 1, 0, 1, 1, 0, 0], step=0)
    rewards = torch.tensor([2.0, 2.0, math.nan, 0.0, 1.0, 1.0, 1.0, 1.0])
    metrics = defaultdict(list)
    priced = AdaptiveGRPOTrainer._priced(me, rollouts, rewards, metrics)
    assert priced is rewards  # untouched
    # group 1: valid rows 0, 1, 3 with thinks 1, 1, 0 (mean 2/3); the NaN row none; group 2: thinks 1, 1, 0, 0
    assert me._price.tolist() == pytest.approx([0.1 / 3, 0.1 / 3, 0.0, -0.2 / 3, 0.05, 0.05, -0.05, -0.05])
    assert metrics["budget/multiplier"] == [pytest.approx(0.1)] and b.multiplier == pytest.approx(0.1 + 0.5 * (0.625 - 0.25))
    b.in_advantages, b.multiplier, me._price = False, 0.1, None  # priced on the rewards
    priced = AdaptiveGRPOTrainer._priced(me, rollouts, torch.tensor([2.0, 2.0, 2.0, 0.0] * 2), metrics)
    assert priced.tolist() == pytest.approx([1.9, 1.9, 1.9, 0.0, 1.9, 1.9, 2.0, 0.0]) and me._price is None

    ada, dg = make_objective({"name": "ada_grpo", "total_steps": 100}), make_objective({"name": "thinkless"})
    std = make_budget({"think_ratio": 0.5}, objective=ada, max_steps=100, standardised=True, num_generations=8)
    r8 = (7 / 8) * 8 ** 0.5 + (1 / 8) * 8 ** 0.5
    assert (std.in_advantages, std.bound, std.step_size, std.proportional) == pytest.approx((True, r8, 0.05 * r8, r8))
    assert make_budget({"think_ratio": 0.5}, objective=ada, max_steps=100, standardised=True,
                       num_generations=16).bound == pytest.approx(4.0)
    plain = make_budget({"think_ratio": 0.5}, objective=ada, max_steps=100)
    assert (plain.in_advantages, plain.bound, plain.step_size) == pytest.approx((False, 1.0, 0.05))
    with pytest.raises(ValueError, match="multiplier_init=3: a number in \\[-2, 2\\] \\(the standardised advantages"):
        make_budget({"think_ratio": 0.5, "multiplier_init": 3}, objective=dg, max_steps=100, standardised=True,
                    num_generations=4)


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


def test_the_probe_reads_the_policys_think_probability(monkeypatch):
    """The probe's cost: the mean over its prompts of p(<think> first) under the rollouts' sampling settings, the
    model forwarded directly here; the prompts drawn once by the seed; shared by ranks, each forwarding the same
    number of prompts (a wrap-around row weighs 0), the sums gathered: every rank reads the whole probe's mean."""
    from thinkless.tasks.synthetic import build_tiny_model, build_tiny_tokenizer
    from thinkless.tokens import add_control_tokens, control_token_ids
    from thinkless.training import budget
    from thinkless.training.budget import probe_rows, probe_think_ratio

    tok = build_tiny_tokenizer()
    add_control_tokens(tok)
    model = build_tiny_model(len(tok), hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1,
                             intermediate_size=64, seed=0, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    with torch.no_grad():  # a policy with a real preference: <think> first more often than at random
        model.lm_head.weight[control_token_ids(tok).think] += 0.5
    prompts = [tok.encode(t, add_special_tokens=False) for t in ("1 + 2", "3 ~ 4 ~ 5", "6", "7 + 8 + 9")]
    think = control_token_ids(tok).think
    with torch.no_grad():
        p = [torch.softmax(model(torch.tensor([ids])).logits[0, -1] / 0.7, -1)[think].item() for ids in prompts]
    made = []
    real = budget.make_generator  # generation.make_generator, the one backend selector, as the budget imports it
    monkeypatch.setattr(budget, "make_generator", lambda *a, **k: made.append(a) or real(*a, **k))
    got = probe_think_ratio(model, tok, prompts, think, temperature=0.7, batch_size=2)
    assert made == [("hf",)]  # the one backend selector builds its generator
    assert got == pytest.approx(sum(p) / 4, rel=1e-5)
    # three prompts on two ranks: rank 0 forwards 0 and 2, rank 1 forwards 1 and a zero-weight repeat of 0
    sums = []
    for rank in (0, 1):
        probe_think_ratio(model, tok, prompts[:3], think, temperature=0.7, rank=rank, world=2,
                          gather=lambda x: sums.append(x) or x)
    assert sums[0][1].item() == 2 and sums[1][1].item() == 1
    assert (sums[0][0] + sums[1][0]).item() / 3 == pytest.approx(sum(p[:3]) / 3, rel=1e-5)
    # the probe's prompts: drawn once by the seed, the same on a resume
    assert probe_rows(100, 5, seed=3) == probe_rows(100, 5, seed=3) != probe_rows(100, 5, seed=4)
    assert len(set(probe_rows(100, 5, seed=3))) == 5 and sorted(probe_rows(3, 512, seed=0)) == [0, 1, 2]


def test_the_multiplier_is_saved_and_restored(tmp_path):
    b = Budget(cost="think_ratio", target=0.3, step_size=0.05, bound=2.0, proportional=4.0, derivative=2.0,
               multiplier=0.1234567890123, saturated_steps=3)
    b.update(0.5)
    b.update(0.4567)
    b.saturated_steps = 3  # mid-count at the checkpoint
    b.save(str(tmp_path))
    c = Budget(cost="think_ratio", target=0.3, step_size=0.05, bound=2.0, proportional=4.0, derivative=2.0)
    c.load(str(tmp_path))
    assert (c.multiplier, c.integral, c.smoothed_error, c.saturated_steps) == (
        b.multiplier, b.integral, b.smoothed_error, 3)
    b.update(0.1), c.update(0.1)  # the next step prices alike, its derivative part included (D = 2 here)
    assert c.multiplier == b.multiplier
    (tmp_path / STATE_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="lacks its multiplier"):
        c.load(str(tmp_path))
    card = b.card()
    assert card["final_multiplier"] == b.multiplier and card["target"] == 0.3
    assert card["proportional"] == 4.0
    assert card["derivative"] == 2.0
    assert not {"saturated_steps", "patience", "integral", "smoothed_error"} & set(card)


def test_an_unreachable_target_warns_in_the_log_and_the_result(distilled, tmp_path):
    # the policy all but frozen (lr 1e-6) keeps thinking on some prompts: think_ratio=0 stays out of reach while the
    # multiplier's integral sits at its bound from the first update; patience is 10 updates (a tenth of 10, at least 10)
    out = tmp_path / "t"
    data = ["rl_data.num_problems=96", "rl_data.validation=null"]
    proc = run_train_cli(out, distilled / "model", "rl.budget.think_ratio=0.0", "rl.budget.step_size=10",
                         "rl.budget.probe=500", "rl.args.max_steps=10", "rl.args.learning_rate=1e-6",
                         "rl.args.per_device_train_batch_size=8", "rl.args.num_generations=4",
                         "rl.args.max_completion_length=16", "rl.args.save_steps=100", "rl.args.scale_rewards=none",
                         "report.enabled=false", *data)
    message = "rl.budget.think_ratio=0.0: unreachable so far: the multiplier's dual-ascent part has sat at its bound (+2"
    assert message in proc.stdout + proc.stderr and message in (out / "train.log").read_text()
    res = json.loads((out / "train_result.json").read_text())
    assert [w["key"] for w in res["warnings"]] == ["rl.budget.think_ratio"]
    assert res["budget"]["final_multiplier"] == 2.0 and res["budget"]["probe"] == 500
    # the cost the multiplier saw is the probe's: here every training prompt (500 > 96), the distilled policy's
    # probability of drawing <think> first at the rollouts' temperature 1, averaged — recomputed from scratch
    rows, p = probe_by_hand(distilled, data)
    assert len(rows) == 96
    first = next(r for r in read_metrics(out / "metrics.jsonl") if "budget/cost" in r)
    assert first["budget/cost"] == pytest.approx(sum(p) / len(p), abs=1e-4)
    assert first["budget/cost"] == pytest.approx(sum(p) / len(p), abs=1e-4)
    assert 0.05 < first["budget/cost"] < 0.95  # a probability, not a 0/1 batch count (the check can fail)


def probe_by_hand(distilled, data, objective=None, asked=lambda row: row["prompt"]):
    """The RL rows of ``data`` (``objective``'s prompts) and the distilled policy's p(<think> first) on
    ``asked(row)`` for each, one prompt at a time."""
    from hydra import compose, initialize_config_dir

    from thinkless.modeling import load_checkpoint
    from thinkless.tasks.data import DropStats
    from thinkless.tokens import control_token_ids
    from thinkless.training.rl import rl_prompts

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        cfg = compose("train", overrides=data)
    model, tok = load_checkpoint(str(distilled / "model"))
    rows = rl_prompts(cfg.rl_data, DropStats(), instruction=cfg.prompt.instruction, system=cfg.prompt.system,
                      objective=objective)
    p = []
    with torch.no_grad():
        for r in rows:
            ids = tok.apply_chat_template(asked(r), add_generation_prompt=True, tokenize=True, return_dict=True)
            logits = model(input_ids=torch.tensor([ids["input_ids"]])).logits[0, -1]
            p.append(torch.softmax(logits.float(), -1)[control_token_ids(tok).think].item())
    return rows, p


def test_the_probe_asks_as_the_report_does_with_the_objectives_prompt_suffix(distilled, tmp_path):
    """L1's training prompts end with a stated budget and its report after RL asks each problem with one too
    (``benchmarks.stated``), so the probe — which the loop steers — asks the rows' own prompts, budget included:
    its reading is the policy's p(<think> first) on the suffixed prompts, not on the bare questions."""
    from thinkless.format import messages

    out = tmp_path / "t"
    data = ["rl_data.num_problems=96", "rl_data.validation=null"]
    run_train_cli(out, distilled / "model", "objective=l1", "rl.budget.think_ratio=0.5", "rl.budget.probe=500",
                  "rl.args.max_steps=1", "rl.args.per_device_train_batch_size=8", "rl.args.num_generations=4",
                  "rl.args.scale_rewards=none", "rl.args.save_steps=100", "report.enabled=false", *data)
    first = next(r for r in read_metrics(out / "metrics.jsonl") if "budget/cost" in r)
    l1 = make_objective(OmegaConf.load(ROOT / "conf" / "objective" / "l1.yaml"))  # the run's: its target range
    rows, bare = probe_by_hand(distilled, data, l1, lambda r: messages(r["problem"]))
    _, suffixed = probe_by_hand(distilled, data, l1)
    assert all(r["prompt"][-1]["content"].startswith(r["problem"]) and "Think for" in r["prompt"][-1]["content"]
               for r in rows)
    assert first["budget/cost"] == pytest.approx(sum(suffixed) / len(suffixed), abs=1e-4)
    assert abs(sum(suffixed) / len(suffixed) - sum(bare) / len(bare)) > 1e-3  # the two readings differ here
