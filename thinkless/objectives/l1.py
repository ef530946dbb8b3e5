"""``objective=l1``: L1 / LCPO (Aggarwal & Welleck, "L1: Controlling How Long A Reasoning Model Thinks With
Reinforcement Learning", arXiv 2503.04697; cmu-l3/l1 at 93dd330). The prompt states a token budget; the reward pays
for meeting it. Not a mode objective: it moves length, and the mode only as far as length does.

Their code, formula by formula (docs/objectives.md has the full table):

* the prompt (``scripts/data/deepscaler_dataset.py:68-84``): `` Think for N tokens.`` (Exact) or `` Think for maximum
  N tokens.`` (Max) appended to the user turn after their instruction, N drawn once per prompt when the data is
  built, ``random.randint(100, 4000)`` (``:63``, ``:67``); L1-Max's data (``--use_both_both``, ``README.md:41``)
  makes half of the prompts maximum constraints (``:62-65``), stored as ``num_tokens = −N`` (``:97``).
* Exact (``math_reward.py:94-100,187-191``, ``run_l1_exact.sh:67-72``: linear, additive, α = 0.0003):
  ``r = 1[correct] − α·|N − L|``, L the response's tokens (``main_ppo.py:68,82``).
* Max, on −N prompts (``math_reward.py:102-116,182-186``, the multiplier path):
  ``r = 1[correct] · (clip(α_max·(N − L), −1, 1) + 1)/2`` — the paper's Eq. 2 ``1[correct]·clip(α'(N − L) + δ, 0, 1)``
  with α' = α_max/2, δ = 0.5; α_max = 0.01 (``config/ppo_trainer.yaml:215``). Exact prompts keep the Exact reward
  (the paper's "dual objective"). ``run_l1_max.sh`` passes no ``reward_config``, under which ``math_reward.py:164``
  returns correctness alone; we follow the paper (docs/objectives.md).
* advantage: verl's GRPO, ``(r − mean)/(std + 1e-6)`` per group (``algorithm.adv_estimator=grpo``), ``base.verl_grpo_advantages``; loss: verl's token mean (TRL ``dapo``).

A trained policy keeps its budget sentence in its chat template (``budget_template``, added by ``prepare``): served,
``chat_template_kwargs={"token_budget": N}`` renders exactly the training sentence (``thinkless.serving.requests`` checks N).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..serving.requests import MAX_TOKEN_BUDGET
from .base import Objective, Rollouts, register, verl_grpo_advantages

VARIANTS = ("exact", "max")
# deepscaler_dataset.py:71,73: the sentence appended (after a space) to the user turn, per kind of constraint
SENTENCES = {"exact": "Think for {n} tokens.", "max": "Think for maximum {n} tokens."}
MAX_SHARE = 0.5  # deepscaler_dataset.py:64 (--use_both_both): share of L1-Max prompts with a maximum constraint
WARMUP_SHARE = 0.5  # the distillation's share of prompts that state a length (data.budget_prompts; bench/l1_budget.py's)
TEMPLATE_MARK = "{#- thinkless: token budget (objective=l1) #}"
TEMPLATE_END = "{#- thinkless: end of token budget #}"


def budget_suffix(target: float) -> str:
    """The text a prompt of target ``target`` ends with (N > 0: Exact, −N: Max; the authors' ``num_tokens``)."""
    kind = "max" if target < 0 else "exact"
    return " " + SENTENCES[kind].format(n=int(abs(target)))


def budget_template(template: str | None, variant: str) -> str | None:
    """``template`` that also renders a template variable ``token_budget`` = N as ``budget_suffix`` of the variant's
    kind (an L1-Max policy: the maximum sentence) appended to the last user turn, as training rendered it; an
    undefined or null ``token_budget`` renders as before; anything but an integer in [1, MAX_TOKEN_BUDGET] raises
    (one block: a template that has one, e.g. the L1-Exact checkpoint L1-Max starts from, gets the variant's)."""
    if template is None:
        return template
    if TEMPLATE_MARK in template:
        template = template.split(TEMPLATE_MARK, 1)[0] + template.split(TEMPLATE_END, 1)[1]
    head, tail = SENTENCES[variant].split("{n}")
    block = (
        TEMPLATE_MARK
        + "{%- if token_budget is defined and token_budget is not none %}"
        "{%- if token_budget is boolean or token_budget is not integer or token_budget < 1 or token_budget > "
        + str(MAX_TOKEN_BUDGET) + " %}"
        "{{- raise_exception('token_budget must be an integer in [1, " + str(MAX_TOKEN_BUDGET) + "], got ' ~ "
        "token_budget) }}{%- endif %}"
        "{%- set l1ns = namespace(last=-1, out=[]) %}"
        "{%- for m in messages %}{%- if m['role'] == 'user' %}{%- set l1ns.last = loop.index0 %}{%- endif %}"
        "{%- endfor %}"
        "{%- for m in messages %}{%- if loop.index0 == l1ns.last %}"
        "{%- set l1ns.out = l1ns.out + [{'role': m['role'], 'content': m['content'] ~ ' " + head + "' ~ token_budget"
        " ~ '" + tail + "'}] %}"
        "{%- else %}{%- set l1ns.out = l1ns.out + [m] %}{%- endif %}{%- endfor %}"
        "{%- set messages = l1ns.out %}"
        "{%- endif %}"
        + TEMPLATE_END
    )
    return block + template


@register
@dataclass
class L1(Objective):
    name = "l1"
    citation = """@article{aggarwal2025l1,
  title   = {L1: Controlling How Long A Reasoning Model Thinks With Reinforcement Learning},
  author  = {Aggarwal, Pranjal and Welleck, Sean},
  journal = {arXiv preprint arXiv:2503.04697},
  year    = {2025}
}"""
    loss = "trl"
    # the warm-up (docs/objectives.md, L1): half of the distillation's prompts state their response's own length in
    # L1's sentence, so the student reads a budget before RL (theirs starts from a model that reads English)
    warmup = (f"data.budget_prompts={WARMUP_SHARE}",)

    variant: str = "exact"  # exact: L1-Exact (run_l1_exact.sh); max: L1-Max (run_l1_max.sh, half maximum prompts)
    alpha: float = 0.0003  # Exact's penalty per token of |N − L| (run_l1_exact.sh:72)
    max_alpha: float = 0.01  # Max's slope (math_reward.py:102, config/ppo_trainer.yaml:215)
    min_target: int = 100  # N ~ randint(min_target, max_target) (deepscaler_dataset.py:67)
    max_target: int = 4000
    loss_type: str = "dapo"  # verl's token mean

    def __post_init__(self):
        super().__post_init__()
        if self.variant not in VARIANTS:
            raise ValueError(f"objective.variant={self.variant!r}: valid choices are {VARIANTS}")
        for k in ("alpha", "max_alpha"):
            if getattr(self, k) < 0:
                raise ValueError(f"objective.{k}={getattr(self, k)}: a non-negative penalty per token is expected")
        if not 1 <= self.min_target <= self.max_target <= MAX_TOKEN_BUDGET:
            raise ValueError(f"objective.min_target={self.min_target}, objective.max_target={self.max_target}: "
                             f"1 <= min_target <= max_target <= {MAX_TOKEN_BUDGET} is expected")

    # ------------------------------------------------------------------ the prompt's target

    def prompt_extra(self, rng) -> tuple[float, str]:
        n = rng.randint(self.min_target, self.max_target)  # their order: the length, then the kind (:63-65)
        target = -float(n) if self.variant == "max" and rng.random() < MAX_SHARE else float(n)
        return target, budget_suffix(target)

    def prepare(self, ctx) -> None:
        # the trained policy's tokenizer (saved with every checkpoint) renders a served token_budget as training did
        ctx.tokenizer.chat_template = budget_template(ctx.tokenizer.chat_template, self.variant)

    def check_args(self, args) -> None:
        if self.max_target > args.max_completion_length:
            raise ValueError(f"objective.max_target={self.max_target} > rl.args.max_completion_length="
                             f"{args.max_completion_length}: such targets cannot be met (theirs: 4000 of 4096)")

    # ------------------------------------------------------------------ reward and advantage

    def rewards_for(self, batch: Rollouts) -> torch.Tensor:
        n = batch.target
        if torch.isnan(n).any():
            raise ValueError("objective=l1: rows without a target length (Rollouts.target is NaN); build the prompts "
                             "with thinkless.training.rl.rl_prompts(..., objective=...), which draws and renders one per prompt")
        c, L = torch.nan_to_num(batch.correct), batch.length.float()
        exact = c - self.alpha * (n - L).abs()  # math_reward.py:96-100 (delta_score − 1) + correctness (:191)
        at_most = c * ((self.max_alpha * (n.abs() - L)).clamp(-1, 1) + 1) / 2  # :107-116, × correctness (:186)
        r = torch.where(n < 0, at_most, exact)
        r[torch.isnan(batch.correct)] = math.nan
        return r

    def advantages(self, rewards: torch.Tensor, batch: Rollouts) -> torch.Tensor:
        return verl_grpo_advantages(rewards, batch)  # verl's GRPO: (r − mean)/(std + 1e-6), unbiased std, per group

    def standardises_groups(self, args) -> bool:
        return True  # verl's GRPO divides by the group's std, whatever rl.args says

    def reward_range(self) -> float:
        # Exact: 1 at the target .. −α·max_target (responses cut near max_target, as theirs); Max: 0 .. 1
        return 1.0 + self.alpha * self.max_target

    def trl_overrides(self) -> dict:
        return {"loss_type": self.loss_type}

    def label(self) -> str:
        return f"L1-{self.variant.capitalize()} (α={self.alpha:g})"
