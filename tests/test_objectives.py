"""thinkless/objectives: each objective's reward and advantage on a hand-computed case taken from its authors'
code (docs/objectives.md cites the lines), the registry and config errors, AdaptThink's reference cache, and each
objective's loss as the trainer computes it (value and gradient on a fixed batch; the control-token safeguards)."""

import json
import math

import pytest
import torch

from thinkless.objectives import OBJECTIVES, Rollouts, make_objective
from thinkless.objectives.ada_grpo import AdaGRPO
from thinkless.objectives.adaptthink import AdaptThink, load_ref_results, write_ref_results
from thinkless.objectives.grpo import CoupledGRPO
from thinkless.objectives.length_penalty import LengthPenalty
from thinkless.objectives.thinkless import Thinkless


def batch(correct, mode, length=None, truncated=None, forced=None, G=4, step=0, problems=None, graded_mode=None):
    n = len(correct)
    t = lambda x, d: torch.tensor(x if x is not None else [d] * n, dtype=torch.float32)  # noqa: E731
    return Rollouts(correct=t(correct, 0), mode=t(mode, 0), graded_mode=t(graded_mode or mode, 0),
                    length=t(length, 10), truncated=t(truncated, 0), level=t(None, 1), forced=t(forced, -1), G=G,
                    step=step, problems=problems)


# ---------------------------------------------------------------- registry and config errors

def test_registry_and_config_errors():
    assert sorted(OBJECTIVES) == ["ada_grpo", "adaptthink", "grpo", "l1", "length_penalty", "thinkless"]
    with pytest.raises(ValueError, match="valid choices are .*adaptthink"):
        make_objective({"name": "adathink"})
    with pytest.raises(ValueError, match=r"unknown keys \['objective.alhpa'\]"):
        make_objective({"name": "thinkless", "alhpa": 1.0})
    with pytest.raises(ValueError, match="objective.delta='abc': a finite number"):
        make_objective({"name": "adaptthink", "delta": "abc"})
    with pytest.raises(ValueError, match="objective.alpha=nan"):
        make_objective({"name": "length_penalty", "alpha": float("nan")})
    with pytest.raises(ValueError, match="objective.nothinking_ratio"):
        AdaptThink(nothinking_ratio=1.5)
    with pytest.raises(ValueError, match="objective.rewards.correct_think='x'"):
        Thinkless(rewards={"correct_think": "x"})
    with pytest.raises(ValueError, match="objective.total_steps"):
        AdaGRPO(total_steps=0)
    assert make_objective({"name": "grpo", "run_dir": "train_grpo", "loss_type": "bnpo"}).trl_overrides() == \
        {"loss_type": "bnpo"}


def test_every_config_in_conf_objective_builds():
    from pathlib import Path

    from omegaconf import OmegaConf

    for f in sorted(Path(__file__).resolve().parents[1].glob("conf/objective/*.yaml")):
        cfg = OmegaConf.to_container(OmegaConf.load(f), resolve=False)
        for k, v in (("ref_results", "ref.json"), ("total_steps", 10)):  # interpolations into the run's config
            if k in cfg:
                cfg[k] = v
        obj = make_objective(cfg)
        assert obj.name == cfg["name"] and obj.knobs()


# ---------------------------------------------------------------- Thinkless / coupled GRPO

def test_thinkless_reward_from_verdicts_and_schedule():
    obj = Thinkless(reward_schedule=[{"after_step": 3, "correct_think": 0.8}])
    b = batch([1, 0, 1, 0, float("nan"), 1, 1, 0], [0, 0, 1, 1, 1, -1, 1, 0], G=4)
    r = obj.rewards_for(b)
    assert r[:4].tolist() == [1.0, -1.0, 0.5, -1.0] and math.isnan(r[4])
    assert r[5:].tolist() == [-1.0, 0.5, -1.0]  # no control token: wrong_think, whatever it answered
    b.step = 3
    assert obj.rewards_for(b)[2].item() == pytest.approx(0.8)
    assert obj.yardstick().correct_think == pytest.approx(0.8) and obj.advantages(r, b) is None
    ablation = CoupledGRPO(reward_schedule=[{"after_step": 3, "correct_think": 0.8}])
    assert ablation.rewards_for(b)[:4].tolist() == pytest.approx([1.0, -1.0, 0.8, -1.0])  # the ablation: same reward


# ---------------------------------------------------------------- AdaptThink

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
    assert obj.max_tokens("short") == 4096 and obj.max_tokens("think") is None
    b.problems = ["p"] * 4 + ["unknown"] * 4
    with pytest.raises(KeyError, match="1 problems have no reference accuracy"):
        obj.rewards_for(b)


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


# ---------------------------------------------------------------- length penalty (Arora & Zanette)

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


# ---------------------------------------------------------------- Ada-GRPO (ARM)

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


# ---------------------------------------------------------------- the loss, as the trainer computes it

@pytest.fixture(scope="module")
def tiny_trainer_parts(tmp_path_factory):
    from thinkless.synthetic import build_tiny_model, build_tiny_tokenizer
    from thinkless.tokens import add_control_tokens

    tok = build_tiny_tokenizer()
    add_control_tokens(tok)
    model = build_tiny_model(len(tok), hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1,
                             intermediate_size=64, seed=0, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return model, tok


def trainer_for(parts, tmp_path, objective, **kw):
    import copy

    from datasets import Dataset

    from thinkless.trainer import DeGRPOConfig, DeGRPOTrainer

    model, tok = parts
    args = dict(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=8, num_generations=4,
                use_cpu=True, bf16=False, report_to=[], save_strategy="no", beta=0.0, max_completion_length=12)
    args.update(objective.trl_overrides())
    args.update(kw)
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": "1 ~ 2"}], "answer": "3"}] * 8)
    tr = DeGRPOTrainer(model=copy.deepcopy(model), args=DeGRPOConfig(**args), objective=objective, train_dataset=ds,
                       processing_class=tok)  # a copy: TRL and the tests must not touch the shared model
    tr.model.train()
    tr.current_gradient_accumulation_steps = 1  # set by Trainer.train() for each step
    return tr


def loss_and_grad(tr, inputs, logps, entropies=None):
    """The trainer's own ``_compute_loss`` with the policy's per-token log-probs replaced by the leaf ``logps``:
    the gradient it returns is the trainer's weighting of every token."""
    lp = logps.clone().requires_grad_(True)
    ent = torch.ones_like(lp) if entropies is None else entropies
    tr._get_per_token_logps_and_entropies = lambda *a, **k: (lp, ent, None)
    loss = tr._compute_loss(tr.model, inputs)
    loss.backward()
    return loss.detach(), lp.grad


def fixed_batch(B=8, T=5, adv=None, seed=0, lengths=None):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(B, T, dtype=torch.long)
    for i, n in enumerate(lengths or []):
        mask[i, n:] = 0
    return {"prompt_ids": torch.full((B, 3), 5), "prompt_mask": torch.ones(B, 3, dtype=torch.long),
            "completion_ids": torch.randint(3, 200, (B, T), generator=g), "completion_mask": mask,
            "advantages": torch.randn(B, generator=g) if adv is None else adv,
            "num_items_in_batch": mask.sum()}, -torch.rand(B, T, generator=g)


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


@pytest.mark.parametrize("objective", [CoupledGRPO(), LengthPenalty(), AdaGRPO(total_steps=5)],
                         ids=["grpo", "length_penalty", "ada_grpo"])
def test_trl_loss_objectives_use_trls_own_loss(tiny_trainer_parts, tmp_path, objective):
    from trl import GRPOTrainer

    tr = trainer_for(tiny_trainer_parts, tmp_path, objective)
    assert tr.loss_type == objective.loss_type
    inputs, _ = fixed_batch(T=5)
    ours = tr._compute_loss(tr.model, inputs)
    theirs = GRPOTrainer._compute_loss(tr, tr.model, inputs)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)


# ---------------------------------------------------------------- a CPU run moves the policy where it pays

@pytest.mark.parametrize("name", ["thinkless", "grpo", "adaptthink", "length_penalty", "ada_grpo"])
def test_a_step_moves_the_mode_decision_where_the_objective_pays(tiny_trainer_parts, tmp_path, monkeypatch, name):
    """Two SGD steps of the real trainer (rewards from the objective on graded completions, its advantages, its
    loss) on scripted completions where `<short>` is what this objective pays for: p(<short>) at the mode position
    rises. Scripts per group: correct short, correct think ×2, wrong think (Ada-GRPO: the rare mode is short;
    length penalty: the short answer is the shortest correct one); AdaptThink forces the modes itself, every
    continuation is correct and the reference accuracy is 1, so only the no-think bonus δ pays."""
    from trl import GRPOTrainer

    from thinkless import synthetic
    from thinkless.format import render_prompt

    model, tok = tiny_trainer_parts
    problems = synthetic.make_problems(8, [2], seed=3)
    texts = {p.prompt: p for p in problems}
    ids = {"<short>": tok.convert_tokens_to_ids("<short>"), "<think>": tok.convert_tokens_to_ids("<think>")}

    def scripted(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        out = []
        offset = self.accelerator.process_index * len(prompt_ids)
        for i, p_ids in enumerate(prompt_ids):
            text = tok.decode(p_ids)
            p = next(v for k, v in texts.items() if k in text)
            if p_ids[-1] in ids.values():  # forced by the objective: continue the forced mode, correctly
                body = (synthetic.short_teacher(p) if p_ids[-1] == ids["<short>"] else synthetic.long_teacher(p))
                body = body.split(">", 1)[1]
            else:
                j = (offset + i) % num_generations
                wrong = str((int(p.answer) + 1) % 10)
                body = [synthetic.short_teacher(p), synthetic.long_teacher(p), synthetic.long_teacher(p),
                        "<think>%s\n</think>\\boxed{%s}" % (p.digits[0], wrong)][j]
            out.append(tok.encode(body, add_special_tokens=False) + [tok.eos_token_id])
        return out, None

    monkeypatch.setattr(GRPOTrainer, "_generate_single_turn", scripted)
    objective = {"thinkless": Thinkless(alpha=1.0), "grpo": CoupledGRPO(), "adaptthink": AdaptThink(),
                 "length_penalty": LengthPenalty(alpha=0.5), "ada_grpo": AdaGRPO(total_steps=100)}[name]
    if name == "adaptthink":
        objective.ref_acc = {p.prompt: 1.0 for p in problems}
    from datasets import Dataset

    from thinkless.trainer import DeGRPOConfig, DeGRPOTrainer

    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": p.prompt}], "problem": p.prompt,
                             "answer": p.answer, "task": "synthetic", "level": p.level} for p in problems])
    args = dict(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=16, num_generations=4,
                use_cpu=True, bf16=False, report_to=[], save_strategy="no", beta=0.0, max_completion_length=24,
                learning_rate=0.5, optim="sgd", max_grad_norm=0.0, seed=0, shuffle_dataset=False, logging_steps=1,
                disable_tqdm=True)
    args.update(objective.trl_overrides())
    import copy

    tr = DeGRPOTrainer(model=copy.deepcopy(model), args=DeGRPOConfig(**args), objective=objective, train_dataset=ds,
                       processing_class=tok)
    prompts = [render_prompt(tok, p.prompt) for p in problems]

    def p_short():
        enc = tok(prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
        with torch.no_grad():
            logits = tr.model(**enc).logits[:, -1]
        return torch.softmax(logits, -1)[:, ids["<short>"]].mean().item()

    before = p_short()
    tr.train()
    after = p_short()
    logs = [h for h in tr.state.log_history if "modes/think_ratio" in h]
    # the mode statistics by value, from the grader's verdicts under every objective (swapping the modes fails)
    expect = (0.5, 1.0, 1.0, 1.0) if name == "adaptthink" else (0.75, 0.75, 1.0, 2 / 3)
    got = tuple(logs[0][k] for k in ("modes/think_ratio", "modes/accuracy", "modes/acc_short", "modes/acc_think"))
    assert got == pytest.approx(expect), (name, got)
    assert logs[0]["modes/len_short"] < logs[0]["modes/len_think"] and logs[0]["modes/groups_all_wrong"] == 0.0
    assert after > before, (name, before, after)


def test_reward_ranges_and_group_standardisation_that_rl_budget_reads():
    """The units rl.budget prices in (largest minus smallest reward) and whether the price's size survives the
    advantage estimator, per objective, from each reward's definition."""
    from types import SimpleNamespace

    R = {n: make_objective({"name": n, **kw}).reward_range() for n, kw in
         [("thinkless", {}), ("grpo", {"rewards": {"correct_short": 1.5}}), ("length_penalty", {}),
          ("ada_grpo", {"total_steps": 10}), ("adaptthink", {"delta": 0.05})]}
    assert R == pytest.approx({"thinkless": 2.0, "grpo": 2.5, "length_penalty": 1.0, "ada_grpo": 1.0,
                               "adaptthink": 2.05})
    group, none = SimpleNamespace(scale_rewards="group"), SimpleNamespace(scale_rewards="none")
    std = {n: [make_objective({"name": n, **({"total_steps": 10} if n == "ada_grpo" else {})}).standardises_groups(a)
               for a in (group, none)] for n in ("thinkless", "grpo", "length_penalty", "ada_grpo", "adaptthink")}
    assert std == {"thinkless": [True, False], "grpo": [True, False], "length_penalty": [False, False],
                   "ada_grpo": [True, True], "adaptthink": [False, False]}
