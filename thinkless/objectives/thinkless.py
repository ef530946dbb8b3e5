"""``objective=thinkless``: DeGRPO (Thinkless, arXiv 2505.13379; VainF/Thinkless). The default.

Reward 1 (correct, short), 1−γ (correct, think), −1 (wrong) from the strict grader's verdict, with an optional
schedule of values by optimizer step (``thinkless.reward``); TRL's group-relative advantages
(``rl.args.scale_rewards``); the decoupled loss: the control token its own term weighted by ``alpha``, the response
tokens normalised separately (``response_norm``: ``token`` as the official code, ``sequence`` as the paper).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..training.losses import CLIP_LOSS_TYPES, RESPONSE_NORMS
from ..reward import RESET_KEYS, REWARD_KEYS, RewardValues, ThinklessReward, reward_schedule, reward_values
from .base import Objective, Rollouts, register


@dataclass
class ThinklessRewards(Objective):
    """The Thinkless reward on the strict grader's verdicts (shared by ``thinkless`` and its ``grpo`` ablation)."""

    rewards: dict = field(default_factory=dict)  # some of correct_short / correct_think / wrong_short / wrong_think
    reward_schedule: list = field(default_factory=list)  # [{after_step: 600, correct_think: 0.8, reset_*: true}, ...]

    def __post_init__(self):
        super().__post_init__()
        # validated here, not at step 600: every scheduled combination must keep correct above wrong
        self.reward = ThinklessReward(reward_values(self.rewards, key="objective.rewards"),
                                      reward_schedule(self.reward_schedule, key="objective.reward_schedule"))

    def rewards_at(self, step: int) -> RewardValues:
        return self.reward.values_at(step)

    def rewards_for(self, batch: Rollouts) -> torch.Tensor:
        v = self.rewards_at(batch.step)
        short, think = batch.graded_mode == 0, batch.graded_mode == 1
        ok = batch.correct == 1
        r = torch.full_like(batch.correct, v.of(None, False))  # no control token, malformed: paid by the table too
        for mode, m in (("short", short), ("think", think)):
            r[m] = v.of(mode, False)
            r[m & ok] = v.of(mode, True)
        r[torch.isnan(batch.correct)] = float("nan")
        return r

    def yardstick(self) -> RewardValues:
        return self.reward.final_values()

    def reward_range(self) -> float:
        sets = [self.reward.values] + [self.reward.values_at(e.after_step) for e in self.reward.schedule]
        vals = [getattr(v, k) for v in sets for k in REWARD_KEYS]
        return max(vals) - min(vals)

    def resets(self) -> tuple[tuple[int, bool, bool], ...]:
        return tuple((e.after_step, e.reset_reference, e.reset_optimizer) for e in self.reward.schedule
                     if e.reset_reference or e.reset_optimizer)

    def step_metrics(self, step: int) -> dict[str, float]:
        v = self.rewards_at(step)
        return {f"rewards/{k}": getattr(v, k) for k in REWARD_KEYS}

    def knobs(self) -> dict:
        v = self.reward.values
        return {"gamma": round(v.gamma, 6), "rewards": {k: getattr(v, k) for k in REWARD_KEYS},
                "reward_schedule": [{"after_step": e.after_step, **e.values,
                                     **{k: True for k in RESET_KEYS if getattr(e, k)}} for e in self.reward.schedule]}


@register
@dataclass
class Thinkless(ThinklessRewards):
    name = "thinkless"
    hub_tags = ("thinkless", "degrpo")  # DeGRPO is the Thinkless paper's own (its citation: every card's)
    loss = "decoupled"

    alpha: float = 1e-3  # thinkless_alpha in the official script; the CPU demo sets 1.0 (conf/objective)
    response_norm: str = "token"

    def __post_init__(self):
        super().__post_init__()
        if self.response_norm not in RESPONSE_NORMS:
            raise ValueError(f"objective.response_norm={self.response_norm!r}: valid choices are {RESPONSE_NORMS}")

    def warn_if_odd(self, warn) -> None:
        if self.alpha < 0:  # legal, but it pushes the mode decision away from the better-paid mode
            warn("objective.alpha", self.alpha, "negative: the control-token term then trains the mode token away "
                 "from the mode that earned more reward (α > 0; the paper uses 1e-3)")

    def loss_kwargs(self) -> dict:
        return {"alpha": self.alpha, "response_norm": self.response_norm}

    def check_args(self, args) -> None:
        if args.loss_type not in CLIP_LOSS_TYPES:
            raise ValueError(f"rl.args.loss_type={args.loss_type!r} with objective=thinkless: DeGRPO aggregates "
                             f"TRL's clipped surrogate; valid choices are {CLIP_LOSS_TYPES}")
        if getattr(args, "use_adaptive_entropy", False):
            raise ValueError("rl.args.use_adaptive_entropy is not supported with objective=thinkless; use a fixed "
                             "rl.args.entropy_coef (the official recipe's 0.001)")
        if self.response_norm == "token" and args.mask_truncated_completions:
            raise ValueError("objective.response_norm=token needs the global response-token count, which "
                             "rl.args.mask_truncated_completions=true hides; use objective.response_norm=sequence "
                             "or unmask")

    def label(self) -> str:
        return "DeGRPO"

    def knobs(self) -> dict:
        return {"alpha": self.alpha, "response_norm": self.response_norm, **super().knobs()}
