"""The Thinkless reward: correct-short 1.0, correct-think 1−γ, wrong −1 (the official code's four values).

Pure: imports nothing from monitoring or training. The format check is strict on purpose (``strict`` grading
policy, ``thinkless.grading``): a prototype with a looser one was gamed within ~150 steps (coupled GRPO learned to
write ``<short>``, then a full trace and ``</think>``, then the answer). A response without a leading control token,
or a malformed one, is wrong; its mode for the reward is its leading control token.

``ThinklessReward`` is the TRL reward function: stateless (no back-reference to a trainer, no global counters); the
values in effect at a step come from the schedule and TRL's ``trainer_state``, so a resumed run uses exactly the
values the uninterrupted run would.

``RewardValues`` is the one owner of the table: what one graded response earns (``of``) and what a mode is worth at
an accuracy (``expected``); the objectives, the oracle router and the evaluation read it from there. Grading a
completion is ``thinkless.grading``'s (``grade_completions``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .format import MODES
from .grading import Grader, Verdict, grade_completions

REWARD_KEYS = ("correct_short", "correct_think", "wrong_short", "wrong_think")


@dataclass(frozen=True)
class RewardValues:
    correct_short: float = 1.0
    correct_think: float = 0.5  # 1 - γ
    wrong_short: float = -1.0
    wrong_think: float = -1.0  # also: no control token, malformed, truncated

    def __post_init__(self):
        if not (self.correct_short > self.wrong_short and self.correct_think > self.wrong_think):
            raise ValueError(f"rewards {self}: a correct answer must pay more than a wrong one in each mode "
                             "(correct_short > wrong_short and correct_think > wrong_think)")

    @property
    def gamma(self) -> float:
        """The paper's think penalty γ = correct_short − correct_think."""
        return self.correct_short - self.correct_think

    def of(self, mode: str | None, correct: bool) -> float:
        """The reward of one graded response: its mode (leading control token) and whether its answer is right.
        Without a control token (``None``) it is paid as a wrong think response, whatever its answer."""
        if mode == "short":
            return self.correct_short if correct else self.wrong_short
        return self.correct_think if correct and mode == "think" else self.wrong_think

    def expected(self, mode: str, acc: float) -> float:
        """What answering in ``mode`` is worth at accuracy ``acc``: ``acc·r_correct + (1−acc)·r_wrong`` (the oracle
        router's and the calibration's arithmetic, ``thinkless.oracle``)."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: valid choices are {MODES}")
        return acc * self.of(mode, True) + (1 - acc) * self.of(mode, False)


def _number(v, key: str) -> float:
    from .runs.checks import FLOAT32_MAX  # reward.py stays light for TRL reward workers: checks loads omegaconf

    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{key}={v!r}: a finite number is expected")
    if abs(v) > FLOAT32_MAX:  # rewards become float32 tensors: 1e39 would be inf there
        raise ValueError(f"{key}={v!r}: a number within float32's range (|x| <= {FLOAT32_MAX:.4g}) is expected")
    return float(v)


def reward_values(cfg=None, *, key: str = "objective.rewards") -> RewardValues:
    """``RewardValues`` from a config mapping; unknown keys and non-numbers fail naming the key."""
    d = dict(cfg or {})
    unknown = set(d) - set(REWARD_KEYS)
    if unknown:
        raise ValueError(f"{key}: unknown keys {sorted(unknown)}; valid keys are {list(REWARD_KEYS)}")
    return RewardValues(**{k: _number(v, f"{key}.{k}") for k, v in d.items()})


RESET_KEYS = ("reset_reference", "reset_optimizer")


@dataclass(frozen=True)
class ScheduleEntry:
    after_step: int  # applies once this many optimizer steps are done (TRL's trainer_state.global_step)
    values: dict
    # done by the trainer once after_step optimizer steps are done (``AdaptiveGRPOTrainer``): the second phase as the
    # authors ran it, a new run from the switch checkpoint (a fresh AdamW state, the KL reference = that policy)
    reset_reference: bool = False
    reset_optimizer: bool = False


def reward_schedule(entries, *, key: str = "objective.reward_schedule",
                    keys: tuple[str, ...] = REWARD_KEYS) -> tuple[ScheduleEntry, ...]:
    """Validated, sorted schedule from ``[{after_step: 300, correct_think: 0.8, reset_reference: true}, ...]``;
    ``keys``: the numbers an entry may set (ThinkPrune's schedule sets ``cap``)."""
    out = []
    valid = [*keys, *RESET_KEYS]
    for i, e in enumerate(entries or []):
        e = dict(e)
        if "after_step" not in e or isinstance(e["after_step"], bool) or not isinstance(e["after_step"], int) \
                or e["after_step"] < 0:
            raise ValueError(f"{key}[{i}] needs after_step: a non-negative integer (got {e})")
        step = e.pop("after_step")
        unknown = set(e) - set(valid)
        if unknown or not e:
            raise ValueError(f"{key}[{i}]: keys {sorted(unknown) or '(none)'}; each entry sets some of {valid}")
        resets = {k: e.pop(k) for k in RESET_KEYS if k in e}
        for k, v in resets.items():
            if not isinstance(v, bool):
                raise ValueError(f"{key}[{i}].{k}={v!r}: true or false is expected")
        out.append(ScheduleEntry(step, {k: _number(v, f"{key}[{i}].{k}") for k, v in e.items()}, **resets))
    steps = [e.after_step for e in out]
    if len(set(steps)) != len(steps):  # one switch per step: two entries there would be ambiguous about resets
        raise ValueError(f"{key}: after_step values must differ (got {sorted(steps)})")
    return tuple(sorted(out, key=lambda e: e.after_step))


def thinkless_reward(response: str, gold, gamma: float | None = None, *, values: RewardValues | None = None,
                     exact: bool = False, grader: Grader | None = None) -> float:
    """Reward of one completion (decoded with the control tokens kept) against its gold answer.

    ``gamma`` is a shorthand for ``values=RewardValues(correct_think=1 - gamma)``.
    """
    if values is None:
        values = RewardValues() if gamma is None else RewardValues(correct_think=1.0 - gamma)
    grader = grader or Grader("strict", exact=exact)
    v = grader.grade(response, gold)
    return values.of(v.mode, v.correct)


class ThinklessReward:
    """TRL reward function: ``(prompts, completions, answer, task=None, trainer_state=None, **kw) -> rewards``.

    ``answer`` and the optional ``task`` (``"synthetic"``: exact match) are dataset columns that TRL passes through.
    A gold answer that cannot be graded yields ``None`` (TRL gives that completion no advantage); the trainer counts
    them. Grading is ``strict``.
    """

    __name__ = "thinkless"

    def __init__(self, values: RewardValues = RewardValues(), schedule=(), *, timeout: float = 5.0):
        self.values, self.schedule, self.timeout = values, tuple(schedule), timeout
        self.final_values()  # validate every scheduled combination now, not at step 300

    def values_at(self, step: int) -> RewardValues:
        """The values in effect when the policy has taken ``step`` optimizer steps."""
        values = self.values
        for e in self.schedule:
            if step >= e.after_step:
                values = replace(values, **e.values)
        return values

    def final_values(self) -> RewardValues:
        """The values once every schedule entry applies: what the policy was trained towards last."""
        return self.values_at(max((e.after_step for e in self.schedule), default=0))

    def verdicts(self, completions, answer, task=None) -> list[Verdict | None]:
        return grade_completions(completions, answer, task, timeout=self.timeout)

    def __call__(self, prompts, completions, answer, task=None, trainer_state=None, **kwargs):
        values = self.values_at(trainer_state.global_step if trainer_state is not None else 0)
        return [None if v is None else values.of(v.mode, v.correct) for v in self.verdicts(completions, answer, task)]
