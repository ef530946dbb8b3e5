"""``DeGRPOTrainer``: TRL's ``GRPOTrainer`` with the decoupled Thinkless loss and mode-usage statistics.

Like TRL's own GMPO trainer it overrides the loss, ``_compute_loss``; the one other override,
``_calculate_rewards``, calls TRL's and then derives the mode-usage statistics from what the trainer holds.
Generation (HF or vLLM), group advantages, the frozen reference model, old log-probs, DeepSpeed/DDP, evaluation
and checkpointing are inherited. The per-token policy loss is TRL's clipped surrogate (token- or sequence-level
importance ratio, optional ``delta`` two-sided clip, off-policy mask, vLLM importance-sampling correction) plus
β·KL; only the aggregation differs (``thinkless.loss.degrpo_loss``), with three control-token safeguards:

* ``mask_truncated_completions`` zeroes truncated rows; their control token keeps its loss, because "this
  prompt's thinking ran out of budget" is exactly what the mode decision must learn.
* ``top_entropy_quantile < 1`` never drops column 0.
* with vLLM's *sequence*-level importance sampling, column 0 is corrected by its own token ratio, not by
  the whole sequence's.

Entropy bonus (``entropy_coef``, the official recipe's 0.001): ``loss -= entropy_coef · H`` with H the mean
entropy over *all* completion tokens, the control token counted as one token among them (weight 1/Σ|o|) — the
official verl code's ``masked_mean(entropy, response_mask)`` and TRL's definition. It is deliberately not decoupled:
a bonus of weight ~1 on the mode token would push the mode decision towards 50/50.

Normalization follows TRL's scopes: ``response_norm="sequence"`` like loss_type ``grpo`` (micro-batch means
divided by the accumulation steps); ``"token"`` like ``dapo`` (global token counts of the generation batch),
so updates do not depend on how a batch is split across devices and accumulation steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import torch
from trl import GRPOConfig, GRPOTrainer

from .loss import RESPONSE_NORMS, clipped_surrogate, degrpo_loss, importance_sampling_stats, k3_kl
from .monitor import mode_metrics
from .reward import ThinklessReward
from .tokens import control_token_ids

CLIP_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")


@dataclass
class DeGRPOConfig(GRPOConfig):
    decoupled: bool = field(default=True, metadata={"help": "DeGRPO loss; False = TRL's coupled loss (ablation)."})
    degrpo_alpha: float = field(default=1e-3, metadata={"help": "Weight α of the control-token term."})
    response_norm: str = field(default="sequence", metadata={"help": "'sequence' (paper) or 'token' (official code)."})

    def __post_init__(self):
        super().__post_init__()
        if self.response_norm not in RESPONSE_NORMS:
            raise ValueError(f"response_norm={self.response_norm!r}: valid choices are {RESPONSE_NORMS}")
        if self.decoupled:
            if self.loss_type not in CLIP_LOSS_TYPES:
                raise ValueError(f"loss_type={self.loss_type!r} with decoupled=True: DeGRPO aggregates TRL's "
                                 f"clipped surrogate; valid choices are {CLIP_LOSS_TYPES}")
            if getattr(self, "use_adaptive_entropy", False):
                raise ValueError("use_adaptive_entropy is not supported with decoupled=True; use a fixed "
                                 "entropy_coef (the official recipe's 0.001)")
            if self.response_norm == "token" and self.mask_truncated_completions:
                raise ValueError("response_norm='token' needs the global response-token count, which "
                                 "mask_truncated_completions=True hides; use response_norm='sequence' or unmask")


class DeGRPOTrainer(GRPOTrainer):
    _tag_names = ["trl", "grpo", "degrpo", "thinkless"]

    # ------------------------------------------------------------------ mode usage (after TRL's rewards)

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._log_mode_usage(inputs, completion_ids_list, rewards_per_func)
        return rewards_per_func

    @cached_property
    def _control_ids(self):
        return control_token_ids(self.processing_class)

    @cached_property
    def _thinkless_reward(self) -> tuple[int, ThinklessReward] | None:
        return next(((i, f) for i, f in enumerate(self.reward_funcs) if isinstance(f, ThinklessReward)), None)

    def _log_mode_usage(self, inputs, completion_ids_list, rewards_per_func) -> None:
        """Think ratio, accuracy, reward and length per mode, per level and per group: global on every rank."""
        ids = self._control_ids
        local = []
        for x, c in zip(inputs, completion_ids_list):
            first = c[0] if len(c) else None
            m = 1.0 if first == ids.think else 0.0 if first == ids.short else -1.0
            lv = x.get("level")
            local.append([m, float(len(c)), float(lv) if lv is not None and lv >= 0 else -1.0])
        rows = self.accelerator.gather(torch.tensor(local, dtype=torch.float32, device=self.accelerator.device)).cpu()
        mode_col, length, level = rows.unbind(1)
        mode_key = "train" if self.model.training else "eval"
        found = self._thinkless_reward
        if found is not None:
            i, func = found
            values = func.values_at(self.state.global_step)
            reward = rewards_per_func[:, i].float().cpu()
            correct = torch.tensor([float(values.is_correct({1.0: "think", 0.0: "short"}.get(m), r))
                                    for m, r in zip(mode_col.tolist(), reward.tolist())])
            ungradable = torch.isnan(reward)
            correct[ungradable] = math.nan
            self._metrics[mode_key]["rewards/ungradable_gold_frac"].append(ungradable.float().mean().item())
            for k in ("correct_short", "correct_think", "wrong_short", "wrong_think"):
                self._metrics[mode_key][f"rewards/{k}"].append(getattr(values, k))
        else:  # a custom reward: correctness is unknown
            reward = rewards_per_func.nansum(1).float().cpu()
            correct = torch.full_like(reward, math.nan)
        G = self.num_generations if mode_key == "train" else self.num_generations_eval
        for k, v in mode_metrics(mode_col, correct, reward, length, level, G).items():
            self._metrics[mode_key][k].append(v)

    # ------------------------------------------------------------------ the decoupled loss

    def _compute_loss(self, model, inputs):
        if not self.args.decoupled:
            return super()._compute_loss(model, inputs)

        prompt_ids, prompt_mask = inputs["prompt_ids"], inputs["prompt_mask"]
        completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
        mask = completion_mask if "tool_mask" not in inputs else completion_mask * inputs["tool_mask"]
        # Every row has a generated first token; truncation masking must not hide it (see module docstring).
        mask = mask.clone()
        mask[:, 0] = 1

        per_token_logps, entropies, _ = self._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, completion_ids.size(1), compute_entropy=True,
            **{k: inputs.get(k) for k in ("pixel_values", "image_grid_thw", "num_images", "pixel_attention_mask",
                                          "image_sizes", "token_type_ids", "mm_token_type_ids")
               if inputs.get(k) is not None},
        )
        advantages = inputs["advantages"]
        if advantages.dim() == 1:
            advantages = advantages.unsqueeze(1)
        old = inputs.get("old_per_token_logps")
        old = per_token_logps.detach() if old is None else old
        log_ratio = per_token_logps - old
        if self.importance_sampling_level == "sequence":
            # column 0 keeps its own token ratio; the response shares the sequence ratio of its tokens
            resp_mask = mask[:, 1:]
            seq = (log_ratio[:, 1:] * resp_mask).sum(-1, keepdim=True) / resp_mask.sum(-1, keepdim=True).clamp(min=1)
            log_ratio = torch.cat([log_ratio[:, :1], seq.expand_as(log_ratio[:, 1:])], dim=1)
        per_token_loss, coef_1 = clipped_surrogate(log_ratio, advantages, self.epsilon_low, self.epsilon_high,
                                                   self.args.delta)

        if self.off_policy_mask_threshold is not None:
            sampling = inputs.get("sampling_per_token_logps", old)
            per_token_loss = per_token_loss * self.get_off_policy_mask(
                advantages, per_token_logps, sampling, mask, self.off_policy_mask_threshold)
        effective_mask = mask
        if self.top_entropy_quantile < 1.0:
            entropy_mask = self.get_high_entropy_mask(entropies, mask, 1 - self.top_entropy_quantile)
            entropy_mask[:, 0] = 1
            per_token_loss = per_token_loss * entropy_mask
            effective_mask = mask * entropy_mask
        if self.use_vllm and self.vllm_importance_sampling_correction:
            ratio = inputs["importance_sampling_ratio"]
            if ratio.shape[1] == 1 and "sampling_per_token_logps" in inputs:
                col0 = torch.exp(torch.nan_to_num(old[:, :1] - inputs["sampling_per_token_logps"][:, :1]))
                lo, hi = self.vllm_importance_sampling_clip_min, self.vllm_importance_sampling_clip_max
                col0 = col0.clamp(min=lo if lo is not None else 0.0, max=hi if hi is not None else math.inf)
                ratio = torch.cat([col0, ratio.expand(-1, per_token_loss.shape[1] - 1)], dim=1)
            per_token_loss = per_token_loss * ratio
        if self.beta != 0.0:
            per_token_kl = k3_kl(inputs["ref_per_token_logps"], per_token_logps)
            if self.args.use_bias_correction_kl:
                per_token_kl = per_token_kl * coef_1
            per_token_loss = per_token_loss + self.beta * per_token_kl

        mode = "train" if self.model.training else "eval"
        accum = self.current_gradient_accumulation_steps if mode == "train" else 1.0
        if self.args.response_norm == "sequence":  # TRL "grpo" scope: micro-batch means / accumulation steps
            loss = degrpo_loss(per_token_loss, mask, self.args.degrpo_alpha, "sequence") / accum
        else:  # TRL "dapo" scope: share of the generation batch's global counts
            scale = self.accelerator.num_processes
            if mode == "train":
                scale = scale / (self.current_gradient_accumulation_steps / self.args.steps_per_generation)
            n_rows = float(self.args.generation_batch_size if mode == "train" else
                           per_token_loss.shape[0] * self.accelerator.num_processes)
            n_resp = (inputs["num_items_in_batch"] - n_rows).clamp(min=1.0)
            loss = degrpo_loss(per_token_loss, mask, self.args.degrpo_alpha, "token",
                               control_denominator=n_rows / scale, response_denominator=n_resp / scale)
        if self.entropy_coef != 0.0:  # see the module docstring: all completion tokens, TRL's/official scope
            entropy = (entropies * effective_mask).sum() / effective_mask.sum().clamp(min=1.0)
            loss = loss - self.entropy_coef * entropy / accum

        m = self._metrics[mode]
        m["loss/control"].append(self._global_mean(per_token_loss[:, :1].detach(), mask[:, :1]))
        m["loss/response"].append(self._global_mean(per_token_loss[:, 1:].detach(), mask[:, 1:]))
        if self.beta != 0.0:
            m["kl"].append(self._global_mean(per_token_kl, mask))
        m["entropy"].append(self._global_mean(entropies, mask))
        low = (coef_1 < 1 - self.epsilon_low) & (advantages < 0)
        high = (coef_1 > 1 + self.epsilon_high) & (advantages > 0)
        m["clip_ratio/low_mean"].append(self._global_mean(low.float(), mask))
        m["clip_ratio/high_mean"].append(self._global_mean(high.float(), mask))
        m["clip_ratio/region_mean"].append(self._global_mean((low | high).float(), mask))
        if self.use_vllm and self.vllm_importance_sampling_correction and "sampling_per_token_logps" in inputs:
            self._log_importance_sampling(old, inputs["sampling_per_token_logps"], completion_ids, mask, m)
        return loss

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
