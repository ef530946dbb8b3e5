"""``objective=thinkprune``: ThinkPrune (Hou et al., arXiv 2504.01296; UCSB-NLP-Chang/ThinkPrune at 0f7449b).
Mode-agnostic, like the length penalty: a hard token limit, tightened in rounds (docs/objectives.md has it in full).

Their code, formula by formula:

* the cap is the rollout's length limit (``data.max_response_length=${LENGTH}``, ``LENGTH=4000``,
  ``local_scripts/multi_node_run_4k.sh:46,84``): a longer response is cut there, and the reward grades what is left
  — 1 for a correct extracted answer, else 0 (``verl/trainer/main_ppo.py:131-180``,
  ``verl/utils/reward_score/qwen_math.py:37-66``, ``format_score=0``). A cut trace has no final answer: 0. Here the
  trainer cuts every training rollout at ``length_cap(step)`` and the strict grader reads the cut text.
* rounds: a new run from the previous round's checkpoint with a smaller ``LENGTH`` (README.md:158-164,
  ``multi_node_run_3k_from4k.sh:46-48``: 3000 from the 4000 run's step 180; the paper's third round 2000). Here
  ``cap_schedule`` entries ``{after_step, cap}``; a new verl run loads weights only, so a fresh AdamW and the KL
  reference = that checkpoint (``verl/workers/fsdp_workers.py:368-372,489-490,561-563``): ``reset_optimizer`` /
  ``reset_reference``, as ``objective.reward_schedule`` does for Thinkless.
* advantage: verl's GRPO, ``(r − mean)/(std + 1e-6)`` per group, unbiased std (``verl/trainer/ppo/core_algos.py
  :113-157``) — ``base.verl_grpo_advantages`` (the same verl function ARM and AutoThink run).
* loss: PPO clip, ``masked_mean`` over the micro-batch's tokens (``core_algos.py:309-340``,
  ``verl/workers/actor/dp_actor.py:248-272``): TRL's ``dapo`` here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..reward import reward_schedule
from .base import Objective, Rollouts, register, verl_grpo_advantages


@register
@dataclass
class ThinkPrune(Objective):
    name = "thinkprune"
    citation = """@article{hou2025thinkprune,
  title   = {ThinkPrune: Pruning Long Chain-of-Thought of LLMs via Reinforcement Learning},
  author  = {Hou, Bairu and Zhang, Yang and Ji, Jiabao and Liu, Yujian and Qian, Kaizhi and Andreas, Jacob and
             Chang, Shiyu},
  journal = {arXiv preprint arXiv:2504.01296},
  year    = {2025}
}"""
    loss = "trl"

    cap: int = 4000  # LENGTH of the first round (multi_node_run_4k.sh:46); the CPU demo scales it (conf/objective)
    cap_schedule: list = field(default_factory=list)  # [{after_step: 180, cap: 3000, reset_optimizer: true, ...}]
    loss_type: str = "dapo"

    def __post_init__(self):
        super().__post_init__()
        if self.cap < 1:
            raise ValueError(f"objective.cap={self.cap}: a positive number of tokens is expected")
        if not isinstance(self.cap_schedule, (list, tuple)):
            raise ValueError(f"objective.cap_schedule={self.cap_schedule!r}: a list of {{after_step, cap}} entries "
                             "is expected")
        for i, e in enumerate(self.cap_schedule):
            if not isinstance(e, dict):
                raise ValueError(f"objective.cap_schedule[{i}]={e!r}: a mapping {{after_step, cap}} is expected")
            c = e.get("cap", 1)
            if isinstance(c, bool) or not isinstance(c, int) or c < 1:
                raise ValueError(f"objective.cap_schedule[{i}].cap={c!r}: a positive number of tokens is expected")
        # one parser for every schedule with after_step and resets (thinkless.reward)
        self.schedule = reward_schedule(self.cap_schedule, key="objective.cap_schedule", keys=("cap",))

    def cap_at(self, step: int) -> int:
        """The cap in effect once ``step`` optimizer steps are done."""
        cap = self.cap
        for e in self.schedule:
            if step >= e.after_step and "cap" in e.values:
                cap = int(e.values["cap"])
        return cap

    def caps(self) -> list[int]:
        return [self.cap] + [int(e.values["cap"]) for e in self.schedule if "cap" in e.values]

    def length_cap(self, step: int) -> int | None:
        return self.cap_at(step)

    def rewards_for(self, batch: Rollouts) -> torch.Tensor:
        r = batch.correct.clone()  # 1 / 0 from the grader's verdict on the (cut) text; NaN: ungradable gold
        # the trainer already cut at the cap; a row longer than it (rollouts not from this trainer) is a cut one
        r[(batch.length > self.cap_at(batch.step)) & ~torch.isnan(r)] = 0.0
        return r

    def advantages(self, rewards: torch.Tensor, batch: Rollouts) -> torch.Tensor:
        return verl_grpo_advantages(rewards, batch)  # verl's grpo estimator: (r − mean)/(std + 1e-6)

    def standardises_groups(self, args) -> bool:
        return True  # verl's GRPO divides by the group's std, whatever rl.args says

    def reward_range(self) -> float:
        return 1.0  # 0 (wrong, or cut at the cap) .. 1 (correct within the cap)

    def resets(self) -> tuple[tuple[int, bool, bool], ...]:
        return tuple((e.after_step, e.reset_reference, e.reset_optimizer) for e in self.schedule
                     if e.reset_reference or e.reset_optimizer)

    def step_metrics(self, step: int) -> dict[str, float]:
        return {"thinkprune/cap": float(self.cap_at(step))}

    def check_args(self, args) -> None:
        over = [c for c in self.caps() if c > args.max_completion_length]
        if over:  # their cap is the generation limit: one above ours would never cut
            raise ValueError(f"objective.cap / objective.cap_schedule caps {over} exceed rl.args.max_completion_length="
                             f"{args.max_completion_length}: each cap must be in [1, rl.args.max_completion_length]")

    def warn_if_odd(self, warn) -> None:
        caps = self.caps()
        if any(b > a for a, b in zip(caps, caps[1:])):
            warn("objective.cap_schedule", caps, "a cap grows between rounds; ThinkPrune tightens it each round "
                 "(4000 -> 3000 -> 2000)")

    def trl_overrides(self) -> dict:
        return {"loss_type": self.loss_type}

    def label(self) -> str:
        return f"ThinkPrune (cap {' → '.join(map(str, self.caps()))})"
