"""``objective=autothink``: AutoThink (Tu et al., arXiv 2505.10832; TU2021/AutoThink at be0bcb0, verl).

Their mode is read from the response's opening after the ellipsis prompt ``<think>\\n...\\n``: no-think iff it opens
with ``</think>\\n\\n`` (``deepscaler/rewards/math_reward.py:35-38``), anything else thinks. Ours is the first
generated token (``Rollouts.mode``): no-think is ``<short>`` (0); ``<think>`` and a response with neither control
token think, as their default does.

Their code, formula by formula (``verl/verl/trainer/main_ppo.py`` RewardManager unless named):

* base reward (``math_reward.py:42-50,78-81,108``; values ``reward_types.py:15-22``): think 1 (correct) / 0 (wrong),
  no-think 2 / −1, a format error (no ``</think>`` or no answer) 0 in either mode — here a response the strict
  grader cannot parse (``graded_mode`` −1).
* length shaping, per prompt (``:68-87``): over its correct responses, if more than one, ``r += exp(−α z) − 1``;
  over its wrong ones, if more than one, ``r += 1 − exp(−β z)``; ``z = (L − mean)/max(std, 1e-6)`` within that
  subset, unbiased std. α = β = 0 in stages 1-2, 0.05 in stage 3 (``train_stage{1,2,3}.sh:36-37``).
* batch balance, over the whole generation batch, after the shaping (``:89-124``): if a mode's share exceeds
  ``batch_balance_rate``, its rewards are blended toward penalty targets, ``r ← (1−f)·r + f·target``, with
  ``f = clip((share − rate)·2.0, 0, 1)`` (slope ``:49``); targets think 0 / −1, no-think 1 / −2 (correct / wrong).
  Rate 0.5 in stage 1, 1.0 (off) in stages 2-3 (``train_stage{1,2,3}.sh:38``).
* advantage ``(r − mean)/(std + 1e-6)`` per prompt, unbiased std (``verl/verl/trainer/ppo/core_algos.py:111-155``);
  loss PPO clip, token mean over the batch (``core_algos.py:216-217``, ``use_token_level_loss``): TRL's ``dapo``.

Not copied: their −2 for a wrong no-think response that loops or holds a 120-character word
(``math_reward.py:195-201``) needs the completion text, which the gathered batch does not carry.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Objective, Rollouts, register, verl_grpo_advantages

# RewardConfig (reward_types.py:15-22): correct / wrong per mode; a format error gets 0 whatever the mode
BASE = {"think": (1.0, 0.0), "short": (2.0, -1.0)}
FORMAT_ERROR = 0.0
# the batch balance's penalty targets (main_ppo.py:107,110,120,123): correct / wrong per over-used mode
TARGETS = {"think": (0.0, -1.0), "short": (1.0, -2.0)}


@register
@dataclass
class AutoThink(Objective):
    name = "autothink"
    citation = """@article{tu2025learning,
  title   = {Learning When to Think: Shaping Adaptive Reasoning in R1-Style Models via Multi-Stage RL},
  author  = {Tu, Songjun and Lin, Jiahao and Zhang, Qichao and Tian, Xiangyu and Li, Linjing and Lan, Xiangyuan and
             Zhao, Dongbin},
  journal = {arXiv preprint arXiv:2505.10832},
  year    = {2025}
}"""
    loss = "trl"

    batch_balance_rate: float = 0.5  # stage 1 (train_stage1.sh:38); 1.0 turns it off (stages 2-3, ppo_trainer.yaml:18)
    penalty_slope: float = 2.0  # fixed in their code (main_ppo.py:49)
    reward_alpha: float = 0.0  # length shaping of correct responses: 0.05 in stage 3 (train_stage3.sh:36)
    reward_beta: float = 0.0  # length shaping of wrong responses: 0.05 in stage 3 (train_stage3.sh:37)
    loss_type: str = "dapo"

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 <= self.batch_balance_rate <= 1.0:
            raise ValueError(f"objective.batch_balance_rate={self.batch_balance_rate}: a share of the batch in [0, 1] "
                             "is expected (1.0: no balance)")
        if self.penalty_slope <= 0:
            raise ValueError(f"objective.penalty_slope={self.penalty_slope}: a positive slope is expected")
        for k in ("reward_alpha", "reward_beta"):
            if getattr(self, k) < 0:
                raise ValueError(f"objective.{k}={getattr(self, k)}: a non-negative weight is expected (0: no length "
                                 "shaping)")
        self.balance = {"think": 0.0, "short": 0.0}  # the last batch's blend factors f (step_metrics)

    # ------------------------------------------------------------------ reward

    def base_rewards(self, batch: Rollouts) -> torch.Tensor:
        think, ok = batch.mode != 0, batch.correct == 1
        r = torch.where(think, torch.where(ok, BASE["think"][0], BASE["think"][1]),
                        torch.where(ok, BASE["short"][0], BASE["short"][1]))
        return torch.where((batch.graded_mode == -1) & ~ok, torch.full_like(r, FORMAT_ERROR), r)

    def length_shaping(self, batch: Rollouts) -> torch.Tensor:
        """Per row, what the shaping adds: z-scored lengths within the prompt's correct (weight α) and wrong (β)
        responses, each subset shaped only when it holds more than one response."""
        L = batch.grouped(batch.length.float())
        gradable = batch.grouped(~torch.isnan(batch.correct))
        ok = batch.grouped(batch.correct == 1)
        out = torch.zeros_like(L)
        for subset, w, sign in ((ok & gradable, self.reward_alpha, -1.0), (~ok & gradable, self.reward_beta, 1.0)):
            n = subset.sum(1, keepdim=True)
            mean = (L * subset).sum(1, keepdim=True) / n.clamp(min=1)
            var = (((L - mean) ** 2) * subset).sum(1, keepdim=True) / (n - 1).clamp(min=1)  # unbiased (torch.std)
            z = (L - mean) / var.sqrt().clamp(min=1e-6)
            # correct: exp(−αz) − 1; wrong: 1 − exp(−βz)
            out = torch.where(subset & (n > 1), sign * (1 - torch.exp(-w * z)), out)
        return out.flatten()

    def rewards_for(self, batch: Rollouts) -> torch.Tensor:
        r = self.base_rewards(batch) + self.length_shaping(batch)
        ok, n = batch.correct == 1, batch.correct.numel()
        for mode, rows in (("think", batch.mode != 0), ("short", batch.mode == 0)):
            share = rows.sum().item() / n  # every row counts, as their think_rate (modes are known without a gold)
            f = min(1.0, max(0.0, (share - self.batch_balance_rate) * self.penalty_slope)) \
                if share > self.batch_balance_rate else 0.0
            target = torch.where(ok, TARGETS[mode][0], TARGETS[mode][1])
            r = torch.where(rows, (1 - f) * r + f * target, r)
            self.balance[mode] = f
        r[torch.isnan(batch.correct)] = float("nan")
        return r

    def step_metrics(self, step: int) -> dict[str, float]:
        return {"rewards/balance_think": self.balance["think"], "rewards/balance_short": self.balance["short"]}

    # ------------------------------------------------------------------ advantage and loss

    def advantages(self, rewards: torch.Tensor, batch: Rollouts) -> torch.Tensor:
        return verl_grpo_advantages(rewards, batch)  # verl's grpo estimator: (r − mean)/(std + 1e-6)

    def standardises_groups(self, args) -> bool:
        return True  # divided by the group's std, whatever rl.args says

    def reward_range(self) -> float:
        # −2 (no-think wrong, fully balanced) .. 2 (no-think correct); the length shaping adds e^{α·z_max} − 1 above
        # and e^{β·z_max} − 1 below, z_max = (G−1)/√G (0.13 at α = 0.05, G = 8): left out, as it depends on G
        return 4.0

    def trl_overrides(self) -> dict:
        return {"loss_type": self.loss_type}

    def warn_if_odd(self, warn) -> None:
        if self.batch_balance_rate < 0.5:
            warn("objective.batch_balance_rate", self.batch_balance_rate, "below 0.5: both modes can exceed it in one "
                 "batch and both be pulled toward their penalty targets (the authors use 0.5, or 1.0 for none)")

    def label(self) -> str:
        return f"AutoThink (balance {self.batch_balance_rate:g}, α={self.reward_alpha:g}, β={self.reward_beta:g})"
