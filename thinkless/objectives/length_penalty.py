"""``objective=length_penalty``: Arora & Zanette, "Training Language Models to Reason Efficiently" (arXiv
2502.04463; Zanette-Labs/efficient-reasoning at e3611e4). Mode-agnostic: it shortens responses, it does not
switch modes — the baseline an adaptive-thinking objective has to beat.

Their code, formula by formula:

* reward (``reward_server/math_server.py:59-63``): a correct response ending in EOS gets ``1 − α·σ(z)``, with
  ``z = (L − mean L_c) / (std L_c + 1e-7)`` over the correct, EOS-terminated responses of its prompt (population
  std, ``np.std``); wrong and truncated responses get 0 (``check_eos``, ``:86-88``). ``α`` = 0.1 in both of their
  scripts (``run_rloo_1.5B.sh:19``; the server's own default is 1).
* advantage: OpenRLHF's ``rloo`` estimator — ``r_i`` minus the mean of the other ``G−1`` rewards of its prompt —
  then whitened over all tokens of the rollout (token-weighted mean and std, ``replay_buffer.py:208-237``): a long
  response counts once per token. No per-group std (an all-correct group's rewards differ by ~0.09 at α = 0.1;
  per-group scaling would blow that up to unit advantages).
* loss: PPO clip, token mean per sequence, mean over sequences: TRL's ``loss_type=grpo``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Objective, Rollouts, register


@register
@dataclass
class LengthPenalty(Objective):
    name = "length_penalty"
    citation = """@article{arora2025training,
  title   = {Training Language Models to Reason Efficiently},
  author  = {Arora, Daman and Zanette, Andrea},
  journal = {arXiv preprint arXiv:2502.04463},
  year    = {2025}
}"""
    loss = "trl"

    alpha: float = 0.1
    loss_type: str = "grpo"

    def __post_init__(self):
        super().__post_init__()
        if self.alpha < 0:
            raise ValueError(f"objective.alpha={self.alpha}: a non-negative penalty weight is expected")

    def rewards_for(self, batch: Rollouts) -> torch.Tensor:
        ok = (batch.correct == 1) & (batch.truncated == 0)
        L, okg = batch.grouped(batch.length.float()), batch.grouped(ok)
        n = okg.sum(1, keepdim=True).clamp(min=1)
        mean = (L * okg).sum(1, keepdim=True) / n
        std = (((L - mean) ** 2) * okg).sum(1, keepdim=True).div(n).sqrt()  # population std (np.std)
        z = (L - mean) / (std + 1e-7)
        r = torch.where(okg, 1 - self.alpha * torch.sigmoid(z), torch.zeros_like(L)).flatten()
        r[torch.isnan(batch.correct)] = float("nan")
        return r

    def standardises_groups(self, args) -> bool:
        return False  # leave-one-out baseline, whitened over the whole batch

    def reward_range(self) -> float:
        return 1.0  # 0 (wrong, truncated) .. 1 (a correct response with no length penalty)

    def advantages(self, rewards: torch.Tensor, batch: Rollouts) -> torch.Tensor:
        G = batch.G
        r = rewards.view(-1, G)
        valid = ~torch.isnan(r)
        n = valid.sum(1, keepdim=True)
        total = torch.nan_to_num(r).sum(1, keepdim=True)
        # leave-one-out baseline: the mean of the other valid rewards of the prompt
        a = torch.where(valid & (n > 1), r - (total - torch.nan_to_num(r)) / (n - 1).clamp(min=1),
                        torch.zeros_like(r)).flatten()
        w = batch.length.float() * valid.flatten()  # token-weighted whitening over the whole rollout
        mean = (a * w).sum() / w.sum().clamp(min=1)
        var = (((a - mean) ** 2) * w).sum() / w.sum().clamp(min=1)
        out = (a - mean) * var.clamp(min=1e-8).rsqrt()
        return torch.where(valid.flatten(), out, torch.zeros_like(out))

    def trl_overrides(self) -> dict:
        return {"loss_type": self.loss_type}

    def label(self) -> str:
        return f"length penalty (α={self.alpha:g})"
