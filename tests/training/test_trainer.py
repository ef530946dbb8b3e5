"""AdaptiveGRPOTrainer: one real step, normalization invariance, the loss and its gradient as the trainer computes them,
the control-token safeguards, and bad-input behaviour."""

import hashlib

import pytest
import torch
from datasets import Dataset

from thinkless.objectives.grpo import CoupledGRPO
from thinkless.objectives.thinkless import Thinkless
from thinkless.tasks.synthetic import build_tiny_model, build_tiny_tokenizer, make_problems
from thinkless.tokens import add_control_tokens
from thinkless.training.trainer import AdaptiveGRPOConfig, AdaptiveGRPOTrainer


def hashed_reward(prompts, completions, **kw):
    """Deterministic pseudo-random rewards in [-1, 1]: non-zero advantages even for a random model."""
    out = []
    for c in completions:
        text = c if isinstance(c, str) else c[-1]["content"]
        out.append(int(hashlib.md5(text.encode()).hexdigest()[:4], 16) / 0xFFFF * 2 - 1)
    return out


def constant_reward(prompts, completions, **kw):
    return [1.0] * len(completions)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import AutoModelForCausalLM

    tok = build_tiny_tokenizer()
    add_control_tokens(tok)
    model = build_tiny_model(len(tok), hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1,
                             intermediate_size=64, seed=0, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    path = tmp_path_factory.mktemp("tiny_policy")
    model.save_pretrained(path)  # loaded from a folder, so TRL can build the frozen reference from it (beta > 0)
    model = AutoModelForCausalLM.from_pretrained(path)
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": p.prompt}], "answer": p.answer}
                            for p in make_problems(64, [1, 3, 6], seed=0)])
    return model, tok, ds


def make_trainer(tiny, tmp_path, reward=hashed_reward, objective=None, budget=None, **kw):
    """``reward=None``: the objective grades and rewards (its own path); else ``reward`` replaces its reward."""
    model, tok, ds = tiny
    import copy

    objective = objective if objective is not None else Thinkless()

    args = dict(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=8, num_generations=4,
                gradient_accumulation_steps=1, learning_rate=1.0, optim="sgd", max_completion_length=12,
                temperature=1.0, use_cpu=True, bf16=False, report_to=[], logging_steps=1, save_strategy="no",
                seed=7, shuffle_dataset=False, disable_tqdm=True, beta=0.0,
                max_grad_norm=0.0)  # no clipping: it would hide a wrong loss scale
    args.update(objective.trl_overrides())
    args.update(kw)
    return AdaptiveGRPOTrainer(model=copy.deepcopy(model), reward_funcs=None if reward is None else [reward],
                         args=AdaptiveGRPOConfig(**args), objective=objective, budget=budget, train_dataset=ds,
                         processing_class=tok)


def params(trainer):
    return torch.cat([p.detach().flatten().clone() for p in trainer.model.parameters()])


def test_one_step_logs_split_losses(tiny, tmp_path):
    tr = make_trainer(tiny, tmp_path, objective=Thinkless(alpha=0.5), beta=0.01)
    before = params(tr)
    tr.train()
    logs = {k: v for h in tr.state.log_history for k, v in h.items()}
    for key in ("loss/control", "loss/response", "kl", "clip_ratio/region_mean", "entropy"):
        assert key in logs and logs[key] == logs[key]  # present and not NaN
    assert not torch.equal(before, params(tr))


@pytest.mark.parametrize("norm", ["sequence", "token"])
def test_update_is_invariant_to_batch_split(tiny, tmp_path, norm):
    """8 completions per step as 8x1, 4x2, 2x4 (per-device batch x accumulation): the same SGD update."""
    results = []
    for bs, ga in ((8, 1), (4, 2), (2, 4)):
        tr = make_trainer(tiny, tmp_path / f"{bs}x{ga}", per_device_train_batch_size=bs, gradient_accumulation_steps=ga,
                          objective=Thinkless(alpha=0.3, response_norm=norm))
        tr.train()
        results.append(params(tr))
    base = params(make_trainer(tiny, tmp_path / "init"))
    assert not torch.allclose(results[0], base)  # the step did something
    for other in results[1:]:
        assert torch.allclose(results[0], other, atol=1e-6, rtol=1e-5)


def test_coupled_ablation_differs_from_decoupled(tiny, tmp_path):
    a = make_trainer(tiny, tmp_path / "a", objective=Thinkless(alpha=1.0))
    b = make_trainer(tiny, tmp_path / "b", objective=CoupledGRPO())
    a.train(), b.train()
    assert not torch.allclose(params(a), params(b))


def test_equal_rewards_give_zero_advantage_and_no_nan(tiny, tmp_path):
    tr = make_trainer(tiny, tmp_path, reward=constant_reward)
    before = params(tr)
    tr.train()
    after = params(tr)
    assert torch.isfinite(after).all()
    assert torch.allclose(before, after)  # zero advantage, no KL: nothing to learn
    losses = [h["loss"] for h in tr.state.log_history if "loss" in h]
    assert all(loss == loss for loss in losses)


def fake_batch(tok, B=6, P=5, T=7, seed=0):
    """A generation batch as ``_compute_loss`` receives it: random prompts/completions, some right-padded."""
    g = torch.Generator().manual_seed(seed)
    completion_mask = torch.ones(B, T, dtype=torch.long)
    completion_mask[1, 4:] = 0
    completion_mask[3, 2:] = 0
    return {"prompt_ids": torch.randint(3, 200, (B, P), generator=g), "prompt_mask": torch.ones(B, P, dtype=torch.long),
            "completion_ids": torch.randint(3, 200, (B, T), generator=g), "completion_mask": completion_mask,
            "advantages": torch.randn(B, generator=g), "num_items_in_batch": completion_mask.sum()}


def test_entropy_bonus_is_the_official_token_mean_over_the_whole_completion(tiny, tmp_path):
    """loss(c) = loss(0) - c * H, H = mean entropy over all completion tokens, the control token one among them."""
    tr0 = make_trainer(tiny, tmp_path / "a", entropy_coef=0.0)
    trc = make_trainer(tiny, tmp_path / "b", entropy_coef=0.25)
    inputs = fake_batch(tiny[1])
    for tr in (tr0, trc):
        tr.model.train()
        tr.current_gradient_accumulation_steps = 1  # set by Trainer.train() for each step
    l0, lc = tr0._compute_loss(tr0.model, inputs), trc._compute_loss(trc.model, inputs)
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
    mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
    _, ent, _ = tr0._get_per_token_logps_and_entropies(tr0.model, ids, mask, 7, compute_entropy=True)
    m = inputs["completion_mask"].float()
    h = (ent * m).sum() / m.sum()
    assert (lc - l0).item() == pytest.approx(-0.25 * h.item(), rel=1e-5, abs=1e-7)
    # the gradient of the bonus reaches the control-token position too (weight 1/sum|o|, not 1)
    assert trc.entropy_coef == 0.25 and tr0.entropy_coef == 0.0


def test_mode_usage_is_computed_by_the_trainer_from_what_it_holds(tiny, tmp_path):
    objective = Thinkless(reward_schedule=[{"after_step": 1, "correct_think": 0.8}])
    tr = make_trainer(tiny, tmp_path, reward=None, objective=objective, max_steps=2)
    tr.train()
    logs = [h for h in tr.state.log_history if "modes/think_ratio" in h]
    assert [h["step"] for h in logs] == [1, 2]
    assert [h["rewards/correct_think"] for h in logs] == [0.5, 0.8]  # the schedule, logged per step
    for key in ("modes/invalid_format", "modes/accuracy", "modes/reward", "modes/tokens", "rewards/ungradable_gold_frac",
                "modes/groups_all_wrong"):
        assert key in logs[0], key
    # a random model rarely starts with a control token: counted, on every rank alike (1 process here)
    assert 0.0 <= logs[0]["modes/invalid_format"] <= 1.0


def test_config_validation():
    args = dict(output_dir="/tmp/x", use_cpu=True, bf16=False)
    with pytest.raises(ValueError, match="objective.response_norm"):
        Thinkless(response_norm="bogus")
    with pytest.raises(ValueError, match="loss_type"):
        Thinkless().check_args(AdaptiveGRPOConfig(loss_type="sapo", **args))
    with pytest.raises(ValueError, match="use_adaptive_entropy"):
        Thinkless().check_args(AdaptiveGRPOConfig(use_adaptive_entropy=True, **args))
    with pytest.raises(ValueError, match="mask_truncated_completions"):
        Thinkless(response_norm="token").check_args(AdaptiveGRPOConfig(mask_truncated_completions=True, **args))
    with pytest.raises(ValueError, match="objective.alpha"):
        Thinkless(alpha="abc")
    # the trainer names no objective of its own: the caller passes one (make_objective, as train.py does)
    with pytest.raises(TypeError, match="a thinkless.objectives.Objective is expected"):
        AdaptiveGRPOTrainer(model=None, objective=None)


def test_schedule_resets_reference_and_optimizer_at_their_step(tiny, tmp_path):
    """reset_reference/reset_optimizer (the authors' second phase): at the end of step 1 the reference holds the
    policy's weights and AdamW's moments and step are zero; step 2 then moves the policy away from it again."""
    from transformers import TrainerCallback

    seen = {}

    class Look(TrainerCallback):  # added after the trainer's reset callback: sees the state a step ends with
        def on_step_end(self, args, state, control, **kw):
            opt = tr.optimizer.optimizer
            seen[state.global_step] = (
                params(tr), torch.cat([p.detach().flatten().clone() for p in tr.ref_model.parameters()]),
                [(v["step"].item(), v["exp_avg"].abs().sum().item(), v["exp_avg_sq"].abs().sum().item())
                 for v in opt.state.values()])

    objective = Thinkless(reward_schedule=[{"after_step": 1, "reset_reference": True, "reset_optimizer": True}])
    tr = make_trainer(tiny, tmp_path, objective=objective, max_steps=2, beta=0.1, optim="adamw_torch",
                      learning_rate=1e-2)
    start_ref = torch.cat([p.detach().flatten().clone() for p in tr.ref_model.parameters()])
    tr.add_callback(Look())
    tr.train()
    policy1, ref1, moments1 = seen[1]
    assert not torch.equal(policy1, start_ref) and torch.equal(ref1, policy1)
    assert moments1 and all(m == (0.0, 0.0, 0.0) for m in moments1)  # AdamW's fresh state
    policy2, ref2, moments2 = seen[2]
    assert torch.equal(ref2, policy1) and not torch.equal(policy2, policy1)
    assert all(step == 1.0 and a > 0 for step, a, _ in moments2)  # one step counted since the reset
    with pytest.raises(ValueError, match="reset_reference needs a reference model.*beta"):
        make_trainer(tiny, tmp_path, objective=Thinkless(reward_schedule=[{"after_step": 1, "reset_reference": True}]))
    with pytest.raises(ValueError, match="rl.args.optim='adafactor': valid choices"):
        make_trainer(tiny, tmp_path, optim="adafactor",
                     objective=Thinkless(reward_schedule=[{"after_step": 1, "reset_optimizer": True}]))


@pytest.mark.parametrize("scale, price", [("none", 0.0), ("group", 0.0), ("none", 0.3), ("group", 0.3)])
def test_degrpo_loss_receives_reward_minus_group_mean(tiny, tmp_path, monkeypatch, scale, price):
    """objective=thinkless rewards the graded completions itself and leaves the advantage to TRL: the advantages
    ``_compute_loss`` receives are each reward minus its group's mean, divided by the group's unbiased std + 1e-4
    under rl.args.scale_rewards=group (degrpo_cpu.yaml) and not divided under none (degrpo_official.yaml). Scripted
    completions, two groups of 4 with different mixes, rewards 1 / 0.5 / -1 (correct short / correct think / wrong):
    group 1 [1, .5, .5, -1], mean 0.25, std √0.75; group 2 [1, 1, -1, .5], mean 0.375, std √(2.6875/3). Without the
    baseline, or with the batch's mean (0.3125), every advantage here would differ.
    With rl.budget's price λ = 0.3 per think, each advantage loses λ times its think less its group's think share
    (0.75 and 0.25): under none from the rewards, under group after the std division (Budget.in_advantages), so the
    division does not shrink it — priced before it, the price would be divided by the priced rewards' std."""
    from trl import GRPOTrainer

    from thinkless.tasks import synthetic
    from thinkless.training.budget import Budget

    model, tok, _ = tiny
    problems = synthetic.make_problems(2, [2], seed=3)
    assert problems[0].prompt != problems[1].prompt

    def wrong(mode):
        def script(p):
            trace = f"{p.digits[0]}\n</think>" if mode == "think" else ""
            return f"<{mode}>{trace}\\boxed{{{(int(p.answer) + 1) % 10}}}"
        return script

    scripts = [[synthetic.short_teacher, synthetic.long_teacher, synthetic.long_teacher, wrong("think")],
               [synthetic.short_teacher, synthetic.short_teacher, wrong("short"), synthetic.long_teacher]]
    centred = [[0.75, 0.25, 0.25, -1.25], [0.625, 0.625, -1.375, 0.125]]  # reward − group mean, by hand
    div = [0.75 ** 0.5 + 1e-4, (2.6875 / 3) ** 0.5 + 1e-4] if scale == "group" else [1.0, 1.0]
    thinks = [[-0.75, 0.25, 0.25, 0.25], [-0.25, -0.25, -0.25, 0.75]]  # think − the group's think share
    expect = {}  # (problem, completion ids) -> advantage
    for k, p in enumerate(problems):
        for script, c, t in zip(scripts[k], centred[k], thinks[k]):
            expect[k, tuple(tok.encode(script(p), add_special_tokens=False) + [tok.eos_token_id])] = (
                c / div[k] - price * t)

    def scripted(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        out = []
        for i, p_ids in enumerate(prompt_ids):
            k = next(k for k, p in enumerate(problems) if p.prompt in tok.decode(p_ids))
            j = (self.accelerator.process_index * len(prompt_ids) + i) % num_generations
            out.append(tok.encode(scripts[k][j](problems[k]), add_special_tokens=False) + [tok.eos_token_id])
        return out, None

    monkeypatch.setattr(GRPOTrainer, "_generate_single_turn", scripted)
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": p.prompt}], "answer": p.answer,
                             "task": "synthetic", "level": p.level} for p in problems])
    budget = Budget(cost="think_ratio", target=0.5, step_size=0.1, bound=2.0, multiplier=price,
                    in_advantages=scale == "group") if price else None
    tr = make_trainer((model, tok, ds), tmp_path, reward=None, objective=Thinkless(alpha=1.0), scale_rewards=scale,
                      max_completion_length=48, budget=budget)
    seen = []
    compute_loss = tr._compute_loss

    def spy(model, inputs):  # what the loss receives, after TRL shuffled the generation batch
        seen.append((inputs["prompt_ids"], inputs["completion_ids"], inputs["completion_mask"],
                     inputs["advantages"].detach().clone()))
        return compute_loss(model, inputs)

    tr._compute_loss = spy
    tr.train()
    got = {}
    for prompt_ids, completion_ids, mask, adv in seen:
        for p_ids, c_ids, m, a in zip(prompt_ids, completion_ids, mask, adv):
            k = next(k for k, p in enumerate(problems) if p.prompt in tok.decode(p_ids))
            got.setdefault((k, tuple(c_ids[m.bool()].tolist())), []).append(a.item())
    assert sorted(got) == sorted(expect) and sum(map(len, got.values())) == 8  # every scripted row reached the loss
    for key, advs in got.items():
        assert advs == pytest.approx([expect[key]] * len(advs), abs=1e-5), (key, advs)


def test_a_budget_built_for_the_other_normalisation_is_refused(tiny, tmp_path):
    """A price on the rewards where the objective divides each group by its std (or on the advantages where it does
    not) would be a different price than make_budget's units say: the trainer names the mismatch."""
    from thinkless.training.budget import Budget

    rewards = Budget(cost="think_ratio", target=0.5, step_size=0.1, bound=2.0)
    with pytest.raises(ValueError, match="rl.budget priced on the rewards but objective=thinkless with "
                                         "rl.args.scale_rewards=group divides each group by its std"):
        make_trainer(tiny, tmp_path, reward=None, budget=rewards, scale_rewards="group")
    rewards.in_advantages = True
    with pytest.raises(ValueError, match="priced on the advantages but .*scale_rewards=none does not divide"):
        make_trainer(tiny, tmp_path, reward=None, budget=rewards, scale_rewards="none")


def loss_gradient(trainer, inputs) -> torch.Tensor:
    """The weights' gradient of one training-mode loss on ``inputs`` (``_compute_loss``), flattened."""
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    trainer.model.zero_grad()
    trainer._compute_loss(trainer.model, inputs).backward()
    return torch.cat([p.grad.flatten() for p in trainer.model.parameters()])


@pytest.fixture
def scored_widths(monkeypatch):
    """The (rows, columns) of every batch TRL's scoring forward receives."""
    from trl import GRPOTrainer

    widths, real = [], GRPOTrainer._get_per_token_logps_and_entropies

    def spy(self, model, input_ids, *a, **kw):
        widths.append(tuple(input_ids.shape))
        return real(self, model, input_ids, *a, **kw)

    monkeypatch.setattr(GRPOTrainer, "_get_per_token_logps_and_entropies", spy)
    return widths


@pytest.mark.parametrize("rows", [1, 2, 4])
def test_bucketed_scoring_gives_trls_log_probs_and_update(tiny, tmp_path, rows, scored_widths):
    """length_bucket_rows: TRL's scoring forward on buckets of similar length, each cut to its own padding, gives the
    log-probs and entropies of TRL's one padded forward (0 at unattended tokens, as TRL's), and the same update."""
    inputs = fake_batch(tiny[1])
    inputs["prompt_mask"][0, :2] = 0  # left padding the buckets cut off
    inputs["prompt_mask"][2, :1] = 0
    inputs["completion_mask"][5] = 0  # e.g. masked as truncated: a row attending its prompt only
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
    mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
    base = make_trainer(tiny, tmp_path / "a", gradient_checkpointing=False)  # TRL's default: on (the fallback below)
    bucketed = make_trainer(tiny, tmp_path / "b", length_bucket_rows=rows, gradient_checkpointing=False)
    lp0, ent0, _ = base._get_per_token_logps_and_entropies(base.model, ids, mask, 7, compute_entropy=True)
    assert scored_widths == [(6, 12)]
    lp, ent, _ = bucketed._get_per_token_logps_and_entropies(bucketed.model, ids, mask, 7, compute_entropy=True)
    cut = scored_widths[1:]
    assert len(cut) == -(-6 // rows) and sum(r for r, _ in cut) == 6
    assert min(w for _, w in cut) < 12 or rows == 4  # cut to size (4 rows: both buckets hold a full-width row)
    assert torch.allclose(lp, lp0, atol=1e-5) and torch.allclose(ent, ent0, atol=1e-5) and lp.requires_grad
    scored_widths.clear()  # the old and reference log-probs: TRL's memory chunk (batch_size) bounds a bucket too
    lp3, _, _ = bucketed._get_per_token_logps_and_entropies(bucketed.model, ids, mask, 7, batch_size=3)
    assert all(r <= min(rows, 3) for r, _ in scored_widths) and torch.allclose(lp3, lp0, atol=1e-5)
    g0, g = (loss_gradient(tr, inputs) for tr in (base, bucketed))
    assert g0.abs().sum() > 0 and torch.allclose(g, g0, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("rows", [0, 2])
def test_a_truncated_rows_mode_decision_keeps_its_log_prob_under_truncation_masking(tiny, tmp_path, rows):
    """mask_truncated_completions: TRL zeroes a truncated row's completion mask, and its scoring forward then gives
    every token of that row log-prob 0 without gradient; the decoupled loss keeps the row's column 0 (its mode
    decision), so the trainer scores it: the log-prob of the unmasked forward, a gradient to the weights; the coupled
    shape masks the whole row (TRL's)."""
    inputs = fake_batch(tiny[1])
    inputs["completion_mask"][5] = 0  # truncated, masked by TRL
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
    mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
    full = mask.clone()
    full[5, 5] = 1  # column 0 attended
    tr = make_trainer(tiny, tmp_path, objective=Thinkless(response_norm="sequence"), mask_truncated_completions=True,
                      length_bucket_rows=rows, gradient_checkpointing=False)
    want, _, _ = tr._get_per_token_logps_and_entropies(tr.model, ids, full, 7)
    assert want[5, 0] < 0 and (want[5, 1:] == 0).all()
    lp, _, _ = tr._get_per_token_logps_and_entropies(tr.model, ids, mask, 7)
    assert torch.allclose(lp, want, atol=1e-6)
    tr.model.zero_grad()
    lp[5, 0].backward()
    assert sum(p.grad.abs().sum() for p in tr.model.parameters() if p.grad is not None) > 0
    coupled = make_trainer(tiny, tmp_path / "c", objective=CoupledGRPO(), mask_truncated_completions=True,
                           length_bucket_rows=rows, gradient_checkpointing=False)
    lp, _, _ = coupled._get_per_token_logps_and_entropies(coupled.model, ids, mask, 7)
    assert (lp[5] == 0).all()  # TRL's: a masked row scores nothing


def test_checkpointed_forwards_under_grad_are_not_bucketed(tiny, tmp_path, scored_widths):
    """With gradient checkpointing, a bucketed forward under grad would reach a weight's gradient hook once per bucket
    (DDP and DeepSpeed refuse it): TRL's one forward then; the no-grad old and reference log-probs still bucket."""
    inputs = fake_batch(tiny[1])
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
    mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
    tr = make_trainer(tiny, tmp_path, length_bucket_rows=2, gradient_checkpointing=True)
    tr._get_per_token_logps_and_entropies(tr.model, ids, mask, 7)
    assert scored_widths == [(6, 12)]
    with torch.no_grad():
        tr._get_per_token_logps_and_entropies(tr.model, ids, mask, 7)
    assert len(scored_widths) == 4


def test_length_bucket_rows_must_be_a_row_count_on_a_rotary_model(tiny, tmp_path):
    with pytest.raises(ValueError, match=r"rl.args.length_bucket_rows=-1: valid values are >= 0 \(rows per length bucket"):
        AdaptiveGRPOConfig(output_dir="/tmp/x", use_cpu=True, bf16=False, length_bucket_rows=-1)
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=len(tiny[1]), n_embd=16, n_layer=1, n_head=2))  # absolute positions
    with pytest.raises(ValueError, match=r"length_bucket_rows=4: .* needs rotary positions, and this 'gpt2' model"):
        make_trainer((gpt2, tiny[1], tiny[2]), tmp_path, length_bucket_rows=4)
    make_trainer((gpt2, tiny[1], tiny[2]), tmp_path)  # TRL's one padded forward: any model
