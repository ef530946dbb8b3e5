"""What an adaptive-thinking objective is, and the one registry that names them (``objective=NAME``).

An objective owns what makes a method different and nothing else; everything else (generation on HF or vLLM,
DeepSpeed, resume, validation, monitoring, export) is the trainer's (``thinkless.training.trainer``). Its hooks, by
purpose (docs/objectives.md, "What an objective owns", has the same list; only ``rewards_for`` has no default):

identity and knobs
  ``name`` — ``objective=NAME`` (``@register`` enters it in ``OBJECTIVES``); dataclass fields are its knobs, each
  checked against its type before any work (``make_objective``), errors naming ``objective.<knob>``
rewards
  ``rewards_for(batch)`` — its rewards, on the *gathered* generation batch (``Rollouts``: groups of ``G`` consecutive
  rows, possibly spanning processes) from the grader's verdicts, never from another reward
  ``needs_problems`` — gather each row's problem text into ``batch.problems`` for ``rewards_for``
  ``reward_range()`` — largest minus smallest reward: the units ``rl.budget`` prices in (required by it, but for an
  objective that standardises its groups, priced in its advantages' units)
advantages
  ``advantages(rewards, batch)`` — its advantage estimator; ``None``: TRL's group-relative one
  ``standardises_groups(args)`` — whether a group's rewards are divided by their std (``rl.budget`` then prices
  its advantages, after the division)
loss
  ``loss`` — the name of its loss shape (``thinkless.training.losses``): ``"decoupled"`` (DeGRPO), ``"sequence"``
  (AdaptThink) or ``"trl"`` (TRL's own)
  ``loss_kwargs()`` — its own knobs its loss shape takes as keyword arguments (Thinkless: ``alpha``, ``response_norm``)
  ``trl_overrides()`` — the ``AdaptiveGRPOConfig`` fields it fixes (e.g. ``loss_type``); set in ``rl.args`` too: an error
rollouts and prompting
  ``first_tokens(G)`` — force each group position's control token, with the forcing's behaviour log-probability
  ``max_tokens(mode)`` — a tighter length limit for completions forced to ``mode``
  ``length_cap(step)`` — a length limit for every rollout generated at that step (ThinkPrune's cap)
  ``prompt_extra(rng)`` — a per-prompt extra (L1's target length): its text appended to the user turn when
  ``thinkless.training.rl.rl_prompts`` builds the rows, its number carried to ``rewards_for`` as ``Rollouts.target``
  ``prepare(ctx)`` — a pre-pass over the run's prompts before training (AdaptThink's reference accuracy)
  ``warmup`` — ``distill.py`` overrides of the warm-up its policy needs first (L1's ``data.budget_prompts``)
schedule and resets
  ``resets()`` — ``(after_step, reset_reference, reset_optimizer)``: what the trainer resets, and when
checks
  ``check_args(args)`` — refuse trainer arguments it cannot honour; ``warn_if_odd(warn)`` — legal but odd knobs
reporting and the model card
  ``step_metrics(step)`` — extra per-step metrics; ``label()`` — its name in titles and reports; ``knobs()`` — its
  knobs as the card and result JSON print them; ``yardstick()`` — the reward the pipeline report's oracle uses;
  ``citation`` — its paper's BibTeX; ``hub_tags`` / ``tags()`` — the card's tags; ``__name__`` — TRL's name for it
  as a reward function
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, fields
from typing import ClassVar

import torch

from ..format import render_prompt
from ..runs.checks import FLOAT32_MAX
from ..reward import RewardValues
from ..training.losses import LOSS_SHAPES

logger = logging.getLogger(__name__)
OBJECTIVES: dict[str, type] = {}  # name -> class, by name (@register): the one list of objectives

# The columns of a generation batch every objective sees (one row per completion).
COLUMNS = ("correct", "mode", "graded_mode", "length", "truncated", "level", "forced", "problem_class", "target")


@dataclass
class Rollouts:
    """One generation batch as the grader saw it: 1-D tensors, groups of ``G`` consecutive rows.

    ``correct``: 1/0, NaN where the gold answer cannot be graded (no reward, no advantage). ``mode``: the first
    generated token (1 ``<think>``, 0 ``<short>``, -1 neither), what the loss's column 0 decided. ``graded_mode``:
    the mode the strict grader parsed from the text (same codes; -1 also for a malformed response's missing tag).
    ``length``: completion tokens (EOS included). ``truncated``: 1 when the completion hit the length limit without
    EOS. ``forced``: the mode an objective forced the first token to (1 think, 0 short), -1 sampled freely.
    ``problems``: each row's problem text (only gathered for objectives that look prompts up). ``problem_class``: the
    problem's class where its task has classes beyond levels (``thinkless.tasks.base.Task.problem_class``; not a
    GRPO group: those are ``G`` consecutive rows, ``grouped``).
    ``target``: the number ``Objective.prompt_extra`` drew for the row's prompt (L1: the target length), NaN none.
    """

    correct: torch.Tensor
    mode: torch.Tensor
    graded_mode: torch.Tensor
    length: torch.Tensor
    truncated: torch.Tensor
    level: torch.Tensor
    forced: torch.Tensor
    G: int
    step: int = 0
    problems: list[str] | None = None
    problem_class: torch.Tensor | None = None  # the problem's class (graded: the grade index, 1..6); -1/None: none
    target: torch.Tensor | None = None  # the prompt's extra number (Objective.prompt_extra); NaN or None: none

    def __post_init__(self):
        n = self.correct.numel()
        if self.problem_class is None:
            self.problem_class = torch.full_like(self.correct, -1.0)
        if self.target is None:
            self.target = torch.full_like(self.correct, math.nan)
        if self.G < 1 or n % self.G:
            raise ValueError(f"a generation batch of {n} rows does not split into groups of G={self.G}")

    @classmethod
    def from_rows(cls, rows: torch.Tensor, G: int, step: int = 0, problems=None) -> "Rollouts":
        """From a [N, len(COLUMNS)] tensor (what the trainer gathers across processes)."""
        cols = rows.float().unbind(1)
        return cls(**dict(zip(COLUMNS, cols)), G=G, step=step, problems=problems)

    def grouped(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(-1, self.G)



@dataclass
class PrepareContext:
    """What an objective's pre-pass (``Objective.prepare``) may use: the training rows, the starting model as a
    generator, the prompt renderer, and the run's log."""

    rows: list[dict]
    generator: object
    tokenizer: object
    model_stamp: dict
    max_completion_length: int
    seed: int
    instruction: str | None = None
    system: str | None = None

    def render(self, problem: str, prefill: str = "") -> str:
        return render_prompt(self.tokenizer, problem, instruction=self.instruction, system=self.system,
                             prefill=prefill)

    def log(self, msg: str) -> None:
        logger.info(msg)
        print(msg, flush=True)


@dataclass
class Objective:
    """Base class: a TRL GRPO objective with Thinkless's grading, monitoring and trainer (see the module doc)."""

    name: ClassVar[str] = ""
    loss: ClassVar[str] = "trl"
    needs_problems: ClassVar[bool] = False  # gather each row's problem text for ``rewards_for``
    citation: ClassVar[str] = ""  # BibTeX of the paper it implements (the model card cites it beside Thinkless)
    hub_tags: ClassVar[tuple[str, ...]] = ()  # the model card's tags; none: the name, hyphenated
    # distill.py overrides for a warm-up its RL cannot do without (L1: prompts that state a length, so the student
    # reads a budget before RL pays for meeting one); the gym and the budget bench distil its start with them
    warmup: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def tags(cls) -> tuple[str, ...]:
        return cls.hub_tags or (cls.name.replace("_", "-"),)

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            key = f"objective.{f.name}"
            if f.type in ("float", float):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise ValueError(f"{key}={v!r}: a finite number is expected")
                if abs(v) > FLOAT32_MAX:  # its rewards and losses are float32 tensors: 1e39 would be inf there
                    raise ValueError(f"{key}={v!r}: a number within float32's range (|x| <= {FLOAT32_MAX:.4g}) is "
                                     "expected")
                setattr(self, f.name, float(v))
            elif f.type in ("int", int):
                if isinstance(v, bool) or not isinstance(v, int):
                    raise ValueError(f"{key}={v!r}: an integer is expected")
            elif f.type in ("str", str) and not isinstance(v, str):
                raise ValueError(f"{key}={v!r}: a string is expected")

    # ------------------------------------------------------------------ what an objective defines

    def rewards_for(self, batch: Rollouts) -> torch.Tensor:
        """Per-row rewards of the gathered batch; NaN where the gold answer cannot be graded."""
        raise NotImplementedError

    def advantages(self, rewards: torch.Tensor, batch: Rollouts) -> torch.Tensor | None:
        """Per-row advantages from the gathered rewards, or None for TRL's (``rl.args.scale_rewards``)."""
        return None

    def first_tokens(self, G: int) -> tuple[list[str], list[float]] | None:
        """Per position of a group: the mode its first token is forced to and the log-probability of that forcing
        under the behaviour policy; None: the first token is sampled (the default)."""
        return None

    def max_tokens(self, mode: str) -> int | None:
        """A tighter length limit for completions forced to ``mode`` (forced token included); None: none."""
        return None

    def length_cap(self, step: int) -> int | None:
        """A length limit for every training rollout generated once ``step`` optimizer steps are done (ThinkPrune's
        cap, tightened by rounds): completions are cut there as if generation stopped; None: none."""
        return None

    def reward_range(self) -> float:
        """Largest minus smallest reward a rollout can get (``rl.budget`` prices its cost in these units, unless the
        objective standardises its groups)."""
        raise NotImplementedError(f"objective={self.name} does not declare its reward range (Objective.reward_range), "
                                  "which rl.budget needs")

    def standardises_groups(self, args) -> bool:
        """Whether each group's rewards are divided by their std before the loss (a price on the rewards would lose
        its size there: ``rl.budget`` charges it on the advantages instead). Objectives with TRL's advantages:
        ``rl.args.scale_rewards=group``."""
        return str(getattr(args, "scale_rewards", "none")) == "group"

    def step_metrics(self, step: int) -> dict[str, float]:
        """Extra per-step metrics (e.g. the reward values in effect)."""
        return {}

    def resets(self) -> tuple[tuple[int, bool, bool], ...]:
        """``(after_step, reset_reference, reset_optimizer)`` the trainer performs once ``after_step`` optimizer
        steps are done; none by default."""
        return ()

    def prepare(self, ctx) -> None:
        """A pre-pass before training (``ctx``: ``PrepareContext``)."""

    def prompt_extra(self, rng) -> tuple[float, str] | None:
        """A per-prompt extra rendered into the prompt: for one RL prompt (training or validation), drawn once with
        ``rng`` (a ``random.Random`` seeded by the run's seed), the number its rows carry in ``Rollouts.target`` and
        the text appended to its user turn (``thinkless.format.messages``' ``suffix``); None: none (the default)."""
        return None

    def loss_kwargs(self) -> dict:
        """The knobs its loss shape (``loss``) takes as keyword arguments, e.g. ``{"alpha": ..., "response_norm": ...}``
        for the decoupled shape; none by default (the shape's settings are the trainer's)."""
        return {}

    def trl_overrides(self) -> dict:
        """AdaptiveGRPOConfig fields this objective fixes (its aggregation); setting one in rl.args too is an error."""
        return {}

    def warn_if_odd(self, warn) -> None:
        """Knob values that are legal but likely a mistake: ``warn(key, value, message)`` (``thinkless.runs.checks.warn``:
        the run's log, result JSON and wandb summary)."""

    def check_args(self, args) -> None:
        """Refuse trainer arguments this objective cannot honour (before any work)."""

    # ------------------------------------------------------------------ reporting

    def knobs(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    def label(self) -> str:
        return self.name

    def yardstick(self) -> RewardValues:
        """The reward that the pipeline report's oracle router and E[r] are measured with: the Thinkless reward
        (1 / 1−γ / −1) at its default γ = 0.5 for every objective but Thinkless's own, which uses its final values."""
        return RewardValues()

    # ------------------------------------------------------------------ standalone use as a reward function

    @property
    def __name__(self) -> str:  # TRL names reward functions by __name__ (the rewards/<name>/mean metric)
        return self.name


def _plain(v):
    if dataclasses.is_dataclass(v):
        return dataclasses.asdict(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def verl_grpo_advantages(rewards: torch.Tensor, batch: Rollouts) -> torch.Tensor:
    """verl's ``grpo`` estimator (``verl/trainer/ppo/core_algos.py``): ``(r − mean)/(std + 1e-6)`` per group with the
    unbiased std (TRL's own uses 1e-4); NaN rewards (ungradable gold) get no advantage. ARM, AutoThink and ThinkPrune
    all run it."""
    r = rewards.view(-1, batch.G)
    mean = torch.nanmean(r, 1, keepdim=True)
    valid = ~torch.isnan(r)
    n = valid.sum(1, keepdim=True)
    var = (torch.nan_to_num(r - mean) ** 2).sum(1, keepdim=True) / (n - 1).clamp(min=1)
    a = (r - mean) / (var.sqrt() + 1e-6)
    return torch.nan_to_num(a, nan=0.0).flatten()


def register(cls):
    """Class decorator: make ``cls`` selectable as ``objective=<cls.name>``."""
    if not cls.name or cls.name in OBJECTIVES:
        raise ValueError(f"objective name {cls.name!r} is empty or taken")
    if cls.loss not in LOSS_SHAPES:
        raise ValueError(f"{cls.__name__}.loss={cls.loss!r}: valid choices are {sorted(LOSS_SHAPES)}")
    OBJECTIVES[cls.name] = cls
    for name in sorted(OBJECTIVES):  # by name, whatever the import order: the order every list of them shows
        OBJECTIVES[name] = OBJECTIVES.pop(name)
    return cls


def make_objective(cfg) -> Objective:
    """The objective of a config mapping ``{name: NAME, <knob>: value, ...}`` (``conf/objective/NAME.yaml``): every
    key but ``name`` is a knob (where a run writes is train.yaml's ``output_dir``, from ``objective.name``)."""
    from omegaconf import OmegaConf

    d = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg or {})
    name = d.pop("name", None)
    if name not in OBJECTIVES:
        raise ValueError(f"objective={name!r}: valid choices are {sorted(OBJECTIVES)}")
    cls = OBJECTIVES[name]
    valid = [f.name for f in fields(cls)]
    unknown = sorted(set(d) - set(valid))
    if unknown:
        raise ValueError(f"objective={name}: unknown keys {['objective.' + k for k in unknown]}; its keys are "
                         f"{['objective.' + k for k in valid]}")
    return cls(**d)

