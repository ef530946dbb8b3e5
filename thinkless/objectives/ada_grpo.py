"""``objective=ada_grpo``: Ada-GRPO of ARM (Wu et al., arXiv 2505.20258; TEAM-ARM/ARM at cee2053). ARM's formats
(direct answer, short CoT, code, long CoT) are the modes here: ``<short>``, ``<think>``, and a third category for a
response with neither (their UNKNOWN).

Their code (``verl/verl/trainer/ppo/core_algos.py:170-229``): the 0/1 accuracy reward of a response is multiplied by
``1 + ½(G/F − 1)(1 + cos(π t/T))`` (``:187-190``, ``:213``), F the responses of its group in the same format, t the
global step counting from 1 at the first update (``ray_trainer.py:875``), T the run's total steps (``:530-535``):
a rare mode is paid up to G/F times more early on, decaying to 1. Scaling comes before the group statistics, so an
all-correct group with mixed modes still favours the rarer one. Advantage ``(r − mean)/(std + 1e-6)`` per group with
the unbiased std (``:222-226``; TRL's own uses 1e-4); the loss PPO clip averaged over tokens (verl's token-mean:
TRL's ``dapo`` here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .base import Objective, Rollouts, register, verl_grpo_advantages


@register
@dataclass
class AdaGRPO(Objective):
    name = "ada_grpo"
    citation = """@article{wu2025arm,
  title   = {ARM: Adaptive Reasoning Model},
  author  = {Wu, Siye and Xie, Jian and Zhang, Yikai and Chen, Aili and Zhang, Kai and Su, Yu and Xiao, Yanghua},
  journal = {arXiv preprint arXiv:2505.20258},
  year    = {2025}
}"""
    loss = "trl"

    total_steps: int = 0  # T; 0: rl.args.max_steps (set by conf/objective/ada_grpo.yaml)
    loss_type: str = "dapo"

    def __post_init__(self):
        super().__post_init__()
        if self.total_steps < 1:
            raise ValueError(f"objective.total_steps={self.total_steps}: a positive integer (the run's optimizer "
                             "steps, T of the cosine decay) is expected")

    def rarity(self, G_over_F, step: int):
        """``1 + ½(G/F − 1)(1 + cos(π t/T))``, t = step + 1 (a number or a tensor of G/F)."""
        return 1 + 0.5 * (G_over_F - 1) * (1 + math.cos(math.pi * (step + 1) / self.total_steps))

    def scale(self, batch: Rollouts) -> torch.Tensor:
        """Per row: the rarity factor of its mode in its group."""
        m = batch.grouped(batch.mode)
        F = (m.unsqueeze(2) == m.unsqueeze(1)).sum(2).float()  # responses of the group in the row's mode
        return self.rarity(batch.G / F, batch.step).flatten()

    def rewards_for(self, batch: Rollouts) -> torch.Tensor:
        return batch.correct * self.scale(batch)  # NaN (ungradable gold) stays NaN

    def standardises_groups(self, args) -> bool:
        return True  # (r − mean)/(std + 1e-6) per group, whatever rl.args says

    def reward_range(self) -> float:
        return 1.0  # the 0/1 accuracy; the rarity scaling (up to G/F early on) decays to 1 by the run's end (rl.budget
        # prices its standardised advantages, not these)

    def advantages(self, rewards: torch.Tensor, batch: Rollouts) -> torch.Tensor:
        return verl_grpo_advantages(rewards, batch)

    def trl_overrides(self) -> dict:
        return {"loss_type": self.loss_type}

    def label(self) -> str:
        return "Ada-GRPO"
