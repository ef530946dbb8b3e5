"""``AdaptiveGRPOTrainer``: TRL's ``GRPOTrainer`` driven by an adaptive-thinking objective (``thinkless.objectives``).

Every objective (``objective=NAME``) trains on this one trainer: the objective says what differs (reward, advantage,
loss shape, rollout interventions), the trainer does the rest with TRL's machinery — generation (HF or vLLM), the
frozen reference model, old log-probs, DeepSpeed/DDP, evaluation and checkpointing are inherited. Like TRL's own GMPO
trainer it overrides a few steps, each calling TRL's:

* ``_calculate_rewards`` grades every completion once and asks the objective for the rewards on the gathered
  generation batch (group shaping sees whole groups even when a group spans processes); the mode-usage statistics
  come from the same verdicts. Explicit ``reward_funcs`` replace the objective's reward (tests, research).
* ``_generate_and_score_completions`` replaces TRL's group advantages by the objective's estimator, if it has one.
* ``_generate_single_turn`` forces the first token of some rows when the objective asks (AdaptThink) and cuts
  training rollouts at the objective's ``length_cap(step)`` (ThinkPrune); with ``share_prompts`` HF generation
  prefills each distinct prompt once (``shared_prompts.generate_sharing_prompts``).
* ``_get_per_token_logps_and_entropies`` scores rows of similar length together, each bucket cut to its own
  padding (``length_bucket_rows``; ``length_buckets``), or each distinct prompt once (``share_prompts``;
  ``shared_prompts``), when the batch is text-only.
* ``_compute_loss`` only dispatches: the objective's loss shape (``thinkless.training.losses``, by
  ``Objective.loss``) with the objective's knobs (``Objective.loss_kwargs``); the trainer logs what it returns.
* the objective's resets (a new KL reference, a fresh optimizer state) at their step, kept across a resume; the
  budget's price (``rl.budget``) on the rewards.

How each piece works and why: docs/pipeline.md ("Stage 2") and docs/objectives.md ("The loss shapes"; the resets:
docs/reproducing.md, "The second RL phase").
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property, partial

import torch
from accelerate.utils import gather_object
from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer
from trl.trainer.callbacks import SyncRefModelCallback

from .budget import Budget, probe_think_ratio
from .buckets import check_rotary, length_buckets
from .fused_head import score_labelled_positions
from .shared_prompts import caches_every_token, check_scoring, generate_sharing_prompts, score_shared
from .losses import LossInputs, importance_sampling_stats, loss_shape
from ..reporting.monitor import mode_metrics
from ..objectives import Objective, Rollouts
from ..grading import grade_completions
from ..tokens import MODE_CODES, control_token_ids
from ..runs.checks import check_trainer_args, warn

REF_WEIGHTS = "ref_model.safetensors"  # in checkpoints written after a reference reset
RESETTABLE_OPTIMS = ("adamw_torch", "adamw_torch_fused", "sgd")
FRESH_ZERO = {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer"}  # Adam(W)/SGD: fresh = 0


@dataclass
class AdaptiveGRPOConfig(GRPOConfig):
    grading_timeout: float = field(default=5.0, metadata={"help": "Seconds per math-verify answer check."})
    long_short_multiple: float = field(default=3.0, metadata={
        "help": "modes/long_short_share counts short responses longer than this multiple of their group's median "
                "short length (short-mode hacking)."})
    length_bucket_rows: int = field(default=0, metadata={
        "help": "Score a batch (the loss's forward, old and reference log-probs) in buckets of this many rows of "
                "similar length, each cut to its own padding; 0: TRL's one forward over the batch padded to its "
                "longest row. The same log-probs at every unmasked token (float rounding aside) for a model with rotary "
                "positions (checked). Under DeepSpeed ZeRO-3 each bucket gathers the weights again."})

    share_prompts: bool = field(default=False, metadata={
        "help": "Score each distinct prompt of a batch once (the loss's forward, old and reference log-probs) and, "
                "in HF generation, prefill it once: its keys and values are shared by the rows asking it, each row's "
                "completion scored (or sampled) on them. The same log-probs and samples (float rounding aside) with "
                "G times less prompt to compute; exclusive with length_bucket_rows."})

    def __post_init__(self):
        # the range the run checks hold before any work (runs/checks.ARG_MINIMUMS), for configs built in Python
        check_trainer_args(type(self), {"length_bucket_rows": self.length_bucket_rows,
                                        "share_prompts": self.share_prompts}, "rl.args")
        check_scoring(self.length_bucket_rows, self.share_prompts)
        super().__post_init__()


class AdaptiveGRPOTrainer(GRPOTrainer):
    """``AdaptiveGRPOTrainer(model, args=..., objective=..., train_dataset=..., processing_class=...)``.

    ``objective``: a ``thinkless.objectives.Objective`` (required; e.g. ``make_objective({"name": "thinkless"})``).
    ``reward_funcs``: leave unset; the objective grades and rewards. Given, they replace its reward (tests, research).
    ``probe_prompts``: the prompts ``budget``'s probe reads (required when it has one; ``rl.probe_prompts``).
    """

    _tag_names = ["trl", "grpo", "degrpo", "thinkless"]

    def __init__(self, model, reward_funcs=None, args: AdaptiveGRPOConfig | None = None, *, objective: Objective,
                 budget: Budget | None = None, probe_prompts: list | None = None, **kwargs):
        if not isinstance(objective, Objective):
            raise TypeError(f"objective={objective!r}: a thinkless.objectives.Objective is expected (e.g. "
                            "make_objective({'name': 'thinkless'}))")
        self.objective = objective
        self.budget = budget
        if budget is not None and budget.probe and not probe_prompts:
            raise ValueError(f"rl.budget.probe={budget.probe}: the trainer needs the probe's prompts (probe_prompts; "
                             "thinkless.training.rl.probe_prompts builds them)")
        self._probe_prompts = probe_prompts
        if budget is not None and args is not None and budget.in_advantages != objective.standardises_groups(args):
            raise ValueError(f"rl.budget priced on the {'advantages' if budget.in_advantages else 'rewards'} but "
                             f"objective={objective.name} with rl.args.scale_rewards={args.scale_rewards} "
                             f"{'does not divide' if budget.in_advantages else 'divides'} each group by its std: build "
                             "the budget with make_budget(..., standardised=objective.standardises_groups(args))")
        if budget is not None and reward_funcs is not None:
            raise ValueError("rl.budget prices the objective's reward; it cannot shape explicit reward_funcs")
        self._custom_rewards = reward_funcs is not None
        if args is not None:
            self.objective.check_args(args)
        self._forced = None  # this process's forced rows of the current generation batch
        self._rollouts = None  # the gathered batch and rewards of the current generation batch
        self._price = None  # rl.budget's price on each row's advantage (Budget.in_advantages), gathered batch
        score_labelled_positions()  # TRL's fused head: a CPU scores the completions, not the prompts (fused_head.py)
        super().__init__(model=model, reward_funcs=reward_funcs if self._custom_rewards else [_RewardName(self.objective)],
                         args=args, **kwargs)
        self._resets = tuple(self.objective.resets())
        if any(ref for _, ref, _ in self._resets) and self.ref_model is None:
            raise ValueError("objective.reward_schedule: reset_reference needs a reference model, i.e. rl.args.beta "
                             f"> 0 and no PEFT adapter (rl.args.beta={self.beta}); drop reset_reference or set beta")
        ds = self.accelerator.state.deepspeed_plugin
        if any(ref for _, ref, _ in self._resets) and ds is not None and ds.zero_stage == 3:
            raise ValueError("objective.reward_schedule: reset_reference is not supported under DeepSpeed ZeRO-3 "
                             "(the reference's weights are checkpointed unsharded); use ZeRO-2 "
                             "(accelerate/zero2.yaml, the recipe's) or drop reset_reference")
        optim = str(getattr(self.args.optim, "value", self.args.optim))
        if any(opt for _, _, opt in self._resets) and optim not in RESETTABLE_OPTIMS:
            raise ValueError(f"objective.reward_schedule: reset_optimizer with rl.args.optim={optim!r}: valid choices "
                             f"are {list(RESETTABLE_OPTIMS)} (optimizers whose fresh state is all zeros)")
        if self._resets:
            self.add_callback(_ResetCallback(self))
        config = self.accelerator.unwrap_model(self.model).config
        check_rotary(config, "rl.args.length_bucket_rows", self.args.length_bucket_rows)
        # a cache that keeps only a window would not hold a shared prompt: TRL's forward, without a wasted prompt pass
        self._share_prompts = self.args.share_prompts and caches_every_token(config)
        if self.args.share_prompts and not self._share_prompts and self.accelerator.is_main_process:
            warn("rl.args.share_prompts", True, f"the model's layers {sorted(set(config.layer_types))} do not all "
                 "cache every past token (a sliding window's keeps only its last ones): every batch is scored by "
                 "TRL's one forward")

    @cached_property
    def _control_ids(self):
        return control_token_ids(self.processing_class)

    # ------------------------------------------------------------------ rollouts: forced first tokens

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        rollout = self.model.training and not self._custom_rewards
        plan = self.objective.first_tokens(num_generations) if rollout else None
        limit = (self.objective.length_cap(self.state.global_step) if rollout else None) or math.inf
        if plan is None:
            self._forced = None
            with self._prefill_shared(images, multimodal_fields):
                completion_ids, logprobs = super()._generate_single_turn(prompt_ids, images, multimodal_fields,
                                                                         num_generations, has_tool_images)
            if limit < self.max_completion_length:  # cut as if generation stopped there (ThinkPrune's cap)
                completion_ids = [list(c)[:limit] for c in completion_ids]
                logprobs = None if logprobs is None else [list(lp)[:limit] for lp in logprobs]
            return completion_ids, logprobs
        modes, logps = plan
        ids = {"think": self._control_ids.think, "short": self._control_ids.short}
        offset = self.accelerator.process_index * len(prompt_ids)  # groups are consecutive in the global batch
        pos = [(offset + i) % num_generations for i in range(len(prompt_ids))]
        head = [ids[modes[p]] for p in pos]
        # num_generations=1: every row is its own prompt now (vLLM's server mode would otherwise dedupe groups)
        with self._prefill_shared(images, multimodal_fields):
            completion_ids, logprobs = super()._generate_single_turn(
                [list(p) + [t] for p, t in zip(prompt_ids, head)], images, multimodal_fields, 1, has_tool_images)
        out_ids, out_lps = [], []
        for i, (t, c) in enumerate(zip(head, completion_ids)):
            cap = min(self.max_completion_length, self.objective.max_tokens(modes[pos[i]]) or math.inf, limit)
            out_ids.append(([t] + list(c))[:cap])
            if logprobs is not None:
                out_lps.append(([logps[pos[i]]] + list(logprobs[i]))[:cap])
        self._forced = (torch.tensor([MODE_CODES[modes[p]] for p in pos]), torch.tensor([logps[p] for p in pos]))
        return out_ids, (out_lps if logprobs is not None else None)

    @contextmanager
    def _prefill_shared(self, images, multimodal_fields):
        """``share_prompts`` in HF generation: TRL's generate call prefills each distinct prompt once
        (``shared_prompts.generate_sharing_prompts``); vLLM caches prefixes itself, and images stay TRL's path."""
        if not self._share_prompts or self.use_vllm or self.use_transformers_continuous_batching or \
                images or multimodal_fields:
            yield
            return
        model = self.accelerator.unwrap_model(self.model)  # the module TRL's unwrap_model_for_generation yields
        model.generate = partial(generate_sharing_prompts, model, model.generate)
        try:
            yield
        finally:
            del model.generate  # the class's own again

    # ------------------------------------------------------------------ rewards (the objective's) and mode usage

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        mode_key = "train" if self.model.training else "eval"
        G = self.num_generations if mode_key == "train" else self.num_generations_eval
        if self._custom_rewards:
            rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            batch = self._gather_rollouts(inputs, completions, completion_ids_list, G, grade=False)
            self._log_mode_usage(batch, rewards_per_func.nansum(1).float().cpu(), mode_key)
            return rewards_per_func
        batch = self._gather_rollouts(inputs, completions, completion_ids_list, G, grade=True)
        rewards = self.objective.rewards_for(batch).float()
        m = self._metrics[mode_key]
        priced = self._priced(batch, rewards, m) if self.budget is not None and mode_key == "train" else rewards
        self._rollouts = (batch, priced)
        m["rewards/ungradable_gold_frac"].append(torch.isnan(batch.correct).float().mean().item())
        for k, v in self.objective.step_metrics(batch.step).items():
            m[k].append(v)
        self._log_mode_usage(batch, rewards, mode_key)  # the objective's reward, unpriced
        return priced.unsqueeze(1).to(self.accelerator.device)

    def _priced(self, batch: Rollouts, rewards: torch.Tensor, metrics) -> torch.Tensor:
        """``rl.budget``: the rewards minus the multiplier times each rollout's cost, then one multiplier update on
        the measured cost — the probe's (``budget.probe_think_ratio``) or the batch's (``Budget.measure``). Every rank holds
        the same gathered batch and the same probe sums, so the same λ."""
        b = self.budget
        free = batch.forced < 0
        if b.probe:
            t0 = time.perf_counter()
            measured = self._probe_think_ratio()
            metrics["budget/probe_seconds"].append(time.perf_counter() - t0)  # its share of step_time, per run
        else:
            measured = b.measure(batch.mode, batch.length, free)
        if b.in_advantages:  # after the objective's std division (_generate_and_score_completions), which keeps its size
            self._price, priced = b.centred(batch.mode, batch.length, ~torch.isnan(rewards), batch.G), rewards
        else:
            priced = b.shape(rewards, batch.mode, batch.length)
        metrics["budget/multiplier"].append(b.multiplier)  # the price this batch paid
        metrics["budget/cost"].append(measured)
        metrics["budget/target"].append(b.target)
        b.update(measured)
        if b.unreachable() and self.accelerator.is_main_process:
            warn(f"rl.budget.{b.cost}", b.target, f"unreachable so far: the multiplier's dual-ascent part has sat at "
                 f"its bound ({b.integral:+g}) for {b.patience} updates and the batch cost "
                 f"is still {measured:.3g} at step {self.state.global_step}; no price moves this policy to the target "
                 "on this data")
        return priced

    @cached_property
    def _probe_ids(self) -> list[list[int]]:
        """The probe's prompts (``probe_prompts``), tokenized as the rollouts' are."""
        return self._tokenize_prompts(self._probe_prompts)[0]

    def _probe_think_ratio(self) -> float:
        """The budget's probe (``budget.probe_think_ratio``) on the policy, with the rollouts' sampling settings."""
        acc = self.accelerator
        return probe_think_ratio(acc.unwrap_model(self.model), self._tokenizer, self._probe_ids,
                                 self._control_ids.think, temperature=self.temperature, top_p=self.top_p,
                                 top_k=self.top_k, min_p=self.min_p,
                                 batch_size=self.args.per_device_train_batch_size, rank=acc.process_index,
                                 world=acc.num_processes, gather=lambda x: acc.gather(x.to(acc.device)))

    def _gather_rollouts(self, inputs, completions, completion_ids_list, G: int, *, grade: bool) -> Rollouts:
        """The generation batch of every process as the grader sees it (``objectives.base.COLUMNS``)."""
        ids = self._control_ids
        stop = {*self.eos_token_ids, self._tokenizer.pad_token_id}
        if grade:
            verdicts = grade_completions(completions, [x["answer"] for x in inputs], [x.get("task") for x in inputs],
                                         timeout=self.args.grading_timeout)
        else:
            verdicts = [None] * len(inputs)
        forced = self._forced[0].tolist() if self._forced is not None else [-1.0] * len(inputs)
        local = []
        for x, c, v, f in zip(inputs, completion_ids_list, verdicts, forced):
            first = c[0] if len(c) else None
            lv, gr, tg = x.get("level"), x.get("problem_class"), x.get("target")
            local.append([math.nan if v is None else float(v.correct),
                          1.0 if first == ids.think else 0.0 if first == ids.short else -1.0,
                          MODE_CODES.get(v.mode, -1.0) if v is not None else -1.0,
                          float(len(c)), float(not len(c) or c[-1] not in stop),
                          float(lv) if lv is not None and lv >= 0 else -1.0, f,
                          float(gr) if gr is not None and gr >= 0 else -1.0,
                          math.nan if tg is None else float(tg)])  # the prompt's extra (Objective.prompt_extra)
        rows = self.accelerator.gather(torch.tensor(local, dtype=torch.float32, device=self.accelerator.device)).cpu()
        problems = None
        if grade and self.objective.needs_problems:
            problems = gather_object([x.get("problem", _last_user_turn(x["prompt"])) for x in inputs])
        return Rollouts.from_rows(rows, G, step=self.state.global_step, problems=problems)

    def _log_mode_usage(self, batch: Rollouts, reward: torch.Tensor, mode_key: str) -> None:
        """Think ratio, accuracy, reward and length per mode, per level and per class: global on every rank."""
        for k, v in mode_metrics(batch.mode, batch.correct, reward.cpu(), batch.length, batch.level, batch.G,
                                 self.args.long_short_multiple, problem_class=batch.problem_class).items():
            self._metrics[mode_key][k].append(v)

    # ------------------------------------------------------------------ resets of the schedule (module docstring)

    def _reference_was_reset(self, step: int) -> bool:
        return any(ref and 0 < after <= step for after, ref, _ in self._resets)

    def _reset(self, reference: bool, optimizer: bool) -> None:
        if reference:
            SyncRefModelCallback.sync_target_model(self.accelerator.unwrap_model(self.model),
                                                   self.accelerator.unwrap_model(self.ref_model), 1.0)
        if optimizer:
            opt = self.optimizer
            while hasattr(opt, "optimizer"):  # accelerate's / DeepSpeed's wrappers: the torch optimizer inside
                opt = opt.optimizer
            # zeroed in place, not cleared: a fresh AdamW's moments and step, in the structure checkpoints expect
            for state in opt.state.values():
                for k, v in state.items():
                    if k not in FRESH_ZERO:  # e.g. an 8-bit optimizer's quantization maps: zero is not fresh there
                        raise ValueError(f"objective.reward_schedule reset_optimizer: optimizer state {k!r} of "
                                         f"{type(opt).__name__} has no known fresh value; valid for states of "
                                         f"{sorted(FRESH_ZERO)} (rl.args.optim: adamw_torch, the recipe's)")
                    if torch.is_tensor(v):
                        v.zero_()
                    else:
                        state[k] = 0
            for group in opt.param_groups:  # DeepSpeed's FusedAdam counts steps per group
                if "step" in group:
                    group["step"] = 0

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        """Beside the optimizer (so before ``trainer_state.json``, the mark of a complete checkpoint): the budget's
        multiplier and, after a reference reset, the reference's weights."""
        super()._save_optimizer_and_scheduler(output_dir)
        if not self.accelerator.is_main_process:
            return
        import os

        if self.budget is not None:  # the multiplier the next step prices with
            self.budget.save(output_dir)
        if self._reference_was_reset(self.state.global_step):  # the reference no longer comes from model.path
            from safetensors.torch import save_model

            save_model(self.accelerator.unwrap_model(self.ref_model), os.path.join(output_dir, REF_WEIGHTS))

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is not None and self.budget is not None:
            self.budget.load(checkpoint)
        if checkpoint is None or not self._reference_was_reset(self.state.global_step):
            return
        import os

        from safetensors.torch import load_model

        path = os.path.join(checkpoint, REF_WEIGHTS)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: the reference was reset before step {self.state.global_step} "
                                    "(objective.reward_schedule reset_reference) but this checkpoint lacks its weights")
        load_model(self.accelerator.unwrap_model(self.ref_model), path, device=str(self.accelerator.device))

    # ------------------------------------------------------------------ scoring: rows of similar length together

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, batch_size=None,
                                           compute_entropy=False, compute_aux_loss=False, **extra):
        if self.mask_truncated_completions and self.objective.loss == "decoupled":
            # TRL masks a truncated completion out of attention, and its fused head scores an unattended token 0
            # (label -100, no gradient); the decoupled loss keeps such a row's column 0, its mode decision
            # (losses._surrogate), so column 0 is attended: it is predicted from the prompt's last position, and
            # only the row's later columns, masked from every loss, see it
            attention_mask = attention_mask.clone()
            attention_mask[:, input_ids.size(1) - logits_to_keep] = 1
        rows = self.args.length_bucket_rows
        # TRL's own path for images, MoE aux losses, and checkpointed forwards under grad (each bucket's backward
        # would reach a weight's gradient hook again: DDP and DeepSpeed refuse a second call; and a checkpointed
        # forward returns no cache to share)
        trl_only = compute_aux_loss or any(v is not None for v in extra.values()) or \
            (torch.is_grad_enabled() and self.args.gradient_checkpointing)
        if self._share_prompts and not trl_only:
            return self._score_shared(model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy)
        if rows <= 0 or trl_only:
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, **extra)
        start = input_ids.size(1) - logits_to_keep
        logps = entropies = None
        for idx, lo, hi in length_buckets(attention_mask, start, min(rows, batch_size or rows)):
            lp, ent, _ = super()._get_per_token_logps_and_entropies(
                model, input_ids[idx, lo:hi], attention_mask[idx, lo:hi], hi - start, compute_entropy=compute_entropy)
            if logps is None:  # a cut-off position is padding: masked by every consumer, 0 like a masked log-prob
                logps = lp.new_zeros(input_ids.size(0), logits_to_keep)
                entropies = lp.new_zeros(input_ids.size(0), logits_to_keep) if compute_entropy else None
            logps[idx, :hi - start] = lp
            if compute_entropy:
                entropies[idx, :hi - start] = ent
        return logps, entropies, None

    def _score_shared(self, model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy):
        """``rl.args.share_prompts``: each chunk of ``batch_size`` rows (TRL's memory bound) scored with its distinct
        prompts computed once (``shared_prompts.score_shared``); TRL's forward for a chunk that shares none."""
        n = input_ids.size(0)
        chunk = batch_size or n
        logps, entropies = [], []
        for i in range(0, n, chunk):
            ids, mask = input_ids[i:i + chunk], attention_mask[i:i + chunk]
            with self.accelerator.autocast():
                got = score_shared(model, ids, mask, logits_to_keep, compute_entropy)
            if got is None:
                lp, ent, _ = super()._get_per_token_logps_and_entropies(model, ids, mask, logits_to_keep,
                                                                         compute_entropy=compute_entropy)
                got = (lp, ent)
            logps.append(got[0])
            entropies.append(got[1])
        return torch.cat(logps), (torch.cat(entropies) if compute_entropy else None), None

    # ------------------------------------------------------------------ the objective's advantages

    def _generate_and_score_completions(self, inputs):
        self._rollouts = self._price = None
        out = super()._generate_and_score_completions(inputs)
        n = len(inputs)
        local = slice(self.accelerator.process_index * n, (self.accelerator.process_index + 1) * n)
        if self._rollouts is not None:
            batch, rewards = self._rollouts
            adv = self.objective.advantages(rewards, batch)
            if adv is not None:
                out["advantages"] = torch.nan_to_num(adv[local], nan=0.0).to(out["advantages"])
        if self._price is not None:
            out["advantages"] = out["advantages"] - self._price[local].to(out["advantages"])
        if self._forced is not None and self.model.training:
            device = out["completion_ids"].device
            out["first_token_old_logp"] = self._forced[1].to(device)
            ratio = out.get("importance_sampling_ratio")
            if ratio is not None and ratio.shape[1] > 1:  # token-level: the forced token was sampled by the forcing
                ratio = ratio.clone()
                ratio[:, 0] = 1.0
                out["importance_sampling_ratio"] = ratio
        return out

    # ------------------------------------------------------------------ the loss: the objective's shape

    def _compute_loss(self, model, inputs):
        out = loss_shape(self.objective.loss)(self._loss_inputs(model, inputs), **self.objective.loss_kwargs())
        m = self._metrics["train" if self.model.training else "eval"]
        for key, (values, mask) in out.stats.items():
            m[key].append(self._global_mean(values, mask))
        sampling = inputs.get("sampling_per_token_logps")
        if out.old_logps is not None and sampling is not None and self.use_vllm and \
                self.vllm_importance_sampling_correction:
            self._log_importance_sampling(out.old_logps, sampling, inputs["completion_ids"], out.mask, m)
        return out.loss

    def _loss_inputs(self, model, inputs) -> LossInputs:
        """The micro-batch and this trainer's settings as every loss shape takes them (``losses.LossInputs``)."""
        prompt_ids, prompt_mask = inputs["prompt_ids"], inputs["prompt_mask"]
        completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]

        def forward():
            per_token_logps, entropies, _ = self._get_per_token_logps_and_entropies(
                model, torch.cat([prompt_ids, completion_ids], dim=1),
                torch.cat([prompt_mask, completion_mask], dim=1), completion_ids.size(1), compute_entropy=True,
                **{k: inputs.get(k) for k in ("pixel_values", "image_grid_thw", "num_images", "pixel_attention_mask",
                                              "image_sizes", "token_type_ids", "mm_token_type_ids")
                   if inputs.get(k) is not None},
            )
            return per_token_logps, entropies

        training = self.model.training
        correct = self.use_vllm and self.vllm_importance_sampling_correction
        return LossInputs(
            forward=forward, trl_loss=lambda: super(AdaptiveGRPOTrainer, self)._compute_loss(model, inputs),
            advantages=inputs["advantages"],
            mask=completion_mask if "tool_mask" not in inputs else completion_mask * inputs["tool_mask"],
            num_items_in_batch=inputs.get("num_items_in_batch"), old_logps=inputs.get("old_per_token_logps"),
            ref_logps=inputs.get("ref_per_token_logps"), sampling_logps=inputs.get("sampling_per_token_logps"),
            is_ratio=inputs["importance_sampling_ratio"] if correct else None,
            first_token_old_logp=inputs.get("first_token_old_logp"), high_entropy_mask=self.get_high_entropy_mask,
            epsilon_low=self.epsilon_low, epsilon_high=self.epsilon_high, delta=self.args.delta, beta=self.beta,
            kl_bias_correction=self.args.use_bias_correction_kl,
            importance_sampling_level=self.importance_sampling_level,
            off_policy_mask_threshold=self.off_policy_mask_threshold, top_entropy_quantile=self.top_entropy_quantile,
            entropy_coef=self.entropy_coef, is_clip_min=self.vllm_importance_sampling_clip_min,
            is_clip_max=self.vllm_importance_sampling_clip_max, training=training,
            accumulation_steps=self.current_gradient_accumulation_steps if training else 1.0,
            steps_per_generation=self.args.steps_per_generation,
            generation_batch_size=self.args.generation_batch_size, num_processes=self.accelerator.num_processes)

    # ------------------------------------------------------------------ monitoring helpers

    def _global_mean(self, x: torch.Tensor, mask: torch.Tensor) -> float:
        x = x.expand_as(mask) if x.shape != mask.shape else x
        totals = self.accelerator.reduce(torch.stack([(x * mask).sum(), mask.sum().float()]), reduction="sum")
        return (totals[0] / totals[1].clamp(min=1.0)).item()

    def _log_importance_sampling(self, trainer_logps, sampling_logps, completion_ids, mask, metrics) -> None:
        """What the vLLM importance-sampling correction did to think and to short samples (global counts)."""
        ids = self._control_ids
        modes = {"think": completion_ids[:, 0] == ids.think, "short": completion_ids[:, 0] == ids.short}
        counts = importance_sampling_stats(trainer_logps, sampling_logps, mask, modes,
                                           self.vllm_importance_sampling_mode,
                                           self.vllm_importance_sampling_clip_min,
                                           self.vllm_importance_sampling_clip_max)
        keys = sorted(counts)
        totals = self.accelerator.reduce(torch.tensor([counts[k] for k in keys], dtype=torch.float64,
                                                      device=mask.device), reduction="sum").tolist()
        totals = dict(zip(keys, totals))
        verb = "masked" if self.vllm_importance_sampling_mode.endswith("mask") else "truncated"
        for mode_name in modes:
            for unit in ("samples", "tokens"):
                n = totals[f"{mode_name}/{unit}"]
                if n > 0:
                    metrics[f"sampling/is_{verb}_{unit}_{mode_name}"].append(
                        totals[f"{mode_name}/affected_{unit}"] / n)


class _ResetCallback(TrainerCallback):
    """The schedule's resets at the end of their optimizer step, before that step's checkpoint is written."""

    def __init__(self, trainer: AdaptiveGRPOTrainer):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        for after, reference, optimizer in self.trainer._resets:
            if after > 0 and state.global_step == after:  # at step 0 both are already fresh
                self.trainer._reset(reference, optimizer)


class _RewardName:
    """What TRL holds as the reward function while the objective rewards: TRL names its metrics after it
    (``rewards/<objective>/mean``) and never calls it (``AdaptiveGRPOTrainer._calculate_rewards`` does the work)."""

    def __init__(self, objective: Objective):
        self.__name__ = objective.name
        self.objective = objective

    def __call__(self, *args, **kwargs):
        raise RuntimeError("the objective's rewards are computed by AdaptiveGRPOTrainer on the gathered batch")


def _last_user_turn(prompt) -> str:
    return prompt if isinstance(prompt, str) else prompt[-1]["content"]
