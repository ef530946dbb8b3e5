"""What every objective's tests share: a generation batch by hand, the trainer's loss on a fixed batch, the real
trainer on scripted completions (two SGD steps, p(<short>) before and after), and an objective as train.py builds it
from its config."""

import copy

import pytest
import torch

from thinkless.objectives import Rollouts, make_objective


def batch(correct, mode, length=None, truncated=None, forced=None, G=4, step=0, problems=None, graded_mode=None):
    n = len(correct)
    t = lambda x, d: torch.tensor(x if x is not None else [d] * n, dtype=torch.float32)  # noqa: E731
    return Rollouts(correct=t(correct, 0), mode=t(mode, 0), graded_mode=t(graded_mode or mode, 0),
                    length=t(length, 10), truncated=t(truncated, 0), level=t(None, 1), forced=t(forced, -1), G=G,
                    step=step, problems=problems)


def from_train_config(name: str, *overrides: str):
    """``objective=NAME`` as train.py composes and builds it (its yaml's interpolations resolved)."""
    from ..test_configs import compose_cfg

    return make_objective(compose_cfg("train", [f"objective={name}", *overrides]).objective)


# ---------------------------------------------------------------- the loss, as the trainer computes it

def trainer_for(parts, tmp_path, objective, **kw):
    from datasets import Dataset

    from thinkless.training.trainer import AdaptiveGRPOConfig, AdaptiveGRPOTrainer

    model, tok = parts
    args = dict(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=8, num_generations=4,
                use_cpu=True, bf16=False, report_to=[], save_strategy="no", beta=0.0, max_completion_length=12)
    args.update(objective.trl_overrides())
    args.update(kw)
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": "1 ~ 2"}], "answer": "3"}] * 8)
    tr = AdaptiveGRPOTrainer(model=copy.deepcopy(model), args=AdaptiveGRPOConfig(**args), objective=objective,
                             train_dataset=ds, processing_class=tok)  # a copy: TRL and tests leave the model alone
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


# ---------------------------------------------------------------- a CPU run moves the policy where it pays

def step_problems():
    """The 8 problems the scripted steps train on."""
    from thinkless.tasks import synthetic

    return synthetic.make_problems(8, [2], seed=3)


def scripted_trainer(parts, tmp_path, monkeypatch, objective, script, rows=None, steps=2, **args):
    """The real trainer (its grading, the objective's rewards and advantages, TRL's loss), ``steps`` SGD steps, on
    step_problems() with completions from ``script(problem, j, prompt_ids)`` (j: the position in the group,
    prompt_ids ending in a control token where the objective forced the mode). ``rows``: the dataset (default: one
    row per problem); ``args``: AdaptiveGRPOConfig fields over the defaults. One builder: every objective's
    trainer-level tests run the same trainer, seeds and data order."""
    from datasets import Dataset
    from trl import GRPOTrainer

    from thinkless.training.trainer import AdaptiveGRPOConfig, AdaptiveGRPOTrainer

    model, tok = parts
    problems = step_problems()

    def scripted(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        out = []
        offset = self.accelerator.process_index * len(prompt_ids)
        for i, p_ids in enumerate(prompt_ids):
            text = tok.decode(p_ids)
            p = next(q for q in problems if q.prompt in text)
            body = script(p, (offset + i) % num_generations, p_ids)
            out.append(tok.encode(body, add_special_tokens=False) + [tok.eos_token_id])
        return out, None

    monkeypatch.setattr(GRPOTrainer, "_generate_single_turn", scripted)
    if rows is None:
        rows = [{"prompt": [{"role": "user", "content": p.prompt}], "problem": p.prompt, "answer": p.answer,
                 "task": "synthetic", "level": p.level} for p in problems]
    cfg = dict(output_dir=str(tmp_path), max_steps=steps, per_device_train_batch_size=16, num_generations=4,
               use_cpu=True, bf16=False, report_to=[], save_strategy="no", beta=0.0, max_completion_length=24,
               learning_rate=0.5, optim="sgd", max_grad_norm=0.0, seed=0, shuffle_dataset=False, logging_steps=1,
               disable_tqdm=True)
    cfg.update(args)
    cfg.update(objective.trl_overrides())
    return AdaptiveGRPOTrainer(model=copy.deepcopy(model), args=AdaptiveGRPOConfig(**cfg), objective=objective,
                               train_dataset=Dataset.from_list(rows), processing_class=tok)


def p_short_around_training(tr, tok, prompts):
    """Trains ``tr``; returns p(<short>) at the mode position (after each rendered prompt; the mean over ``prompts``)
    before and after, and the logged step rows."""
    short_id = tok.convert_tokens_to_ids("<short>")

    def p_short():
        enc = tok(prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
        with torch.no_grad():
            logits = tr.model(**enc).logits[:, -1]
        return torch.softmax(logits, -1)[:, short_id].mean().item()

    before = p_short()
    tr.train()
    after = p_short()
    return before, after, [h for h in tr.state.log_history if "modes/think_ratio" in h]


def sampled_script(tok):
    """The script per group: correct short, correct think ×2, wrong think; a first token the objective forces is
    continued correctly in its mode."""
    from thinkless.tasks import synthetic

    ids = {"<short>": tok.convert_tokens_to_ids("<short>"), "<think>": tok.convert_tokens_to_ids("<think>")}

    def script(p, j, p_ids):
        if p_ids[-1] in ids.values():  # forced by the objective: continue the forced mode, correctly
            body = (synthetic.short_teacher(p) if p_ids[-1] == ids["<short>"] else synthetic.long_teacher(p))
            return body.split(">", 1)[1]
        wrong = str((int(p.answer) + 1) % 10)
        return [synthetic.short_teacher(p), synthetic.long_teacher(p), synthetic.long_teacher(p),
                "<think>%s\n</think>\\boxed{%s}" % (p.digits[0], wrong)][j]

    return script


def two_sgd_steps(parts, tmp_path, monkeypatch, objective):
    """Two SGD steps of the real trainer (rewards from the objective on graded completions, its advantages, its
    loss) on the sampled script. Returns p(<short>) at the mode position before and after, and the first step's
    logged metrics."""
    from thinkless.format import render_prompt

    model, tok = parts
    tr = scripted_trainer(parts, tmp_path, monkeypatch, objective, sampled_script(tok))
    before, after, logs = p_short_around_training(tr, tok, [render_prompt(tok, p.prompt) for p in step_problems()])
    return before, after, logs[0]


# The first step's mode statistics of the sampled script: think ratio, accuracy, acc_short, acc_think.
SAMPLED_MODES = (0.75, 0.75, 1.0, 2 / 3)


def check_moves_to_short(before, after, log, expect=SAMPLED_MODES):
    """The mode statistics by value, from the grader's verdicts (swapping the modes fails), and p(<short>) up."""
    got = tuple(log[k] for k in ("modes/think_ratio", "modes/accuracy", "modes/acc_short", "modes/acc_think"))
    assert got == pytest.approx(expect), got
    assert log["modes/len_short"] < log["modes/len_think"] and log["modes/groups_all_wrong"] == 0.0
    assert after > before, (before, after)
