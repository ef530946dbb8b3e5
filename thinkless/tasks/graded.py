"""The *graded* task: fold chains with a graded memo; its classes are the memo's grades (A..F), not its levels.

The prompt also shows the running value before the last operation, with a grade saying how often such memos are
right (``GRADES``: A always, B 90%, ..., E 60%, F 20%), and the last operand beside it. Short mode answers at a
glance from the memo (one fold); think mode traces the whole chain and ignores it. So whether a problem needs thought
is written in its text (the grade), not in its length (every prompt has one width) or its level (chain lengths 2..6
in every class), and the oracle's choice for grades B..E moves as γ does: short pays iff ``p_short > p_think·(2−γ)/2``,
i.e. at ``p_think = 1`` for γ above 0.2, 0.4, 0.6, 0.8. A problem's class (``problem_class``) is its grade's index,
1..6, named ``"B (90%)"`` in tables.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .base import register
from .fold import MAX_LEVEL, OP, Fold, FoldProblem, fold, parse_fold

# grade -> how often a memo of that grade is right. Short pays iff p_short > p_think·(2−γ)/2: B..E flip at
# γ = 0.2, 0.4, 0.6, 0.8 (at p_think = 1), one between each two points of the γ sweep 0.1, 0.3, ..., 0.9.
GRADES = {"A": 1.0, "B": 0.9, "C": 0.8, "D": 0.7, "E": 0.6, "F": 0.2}


@dataclass(frozen=True)
class GradedProblem:
    """A fold chain with a graded memo: ``memo`` is shown as the value before the last fold (right or wrong)."""

    digits: tuple[int, ...]
    grade: str
    memo: int

    @classmethod
    def draw(cls, digits, grade: str, rng: random.Random) -> GradedProblem:
        """The memo is the true running value with probability ``GRADES[grade]``; otherwise one of the values
        whose fold with the last operand is *not* the answer, so the glance is right exactly when the memo is."""
        fp = FoldProblem(tuple(digits))
        true, last = fp.partials()[-2], digits[-1]
        if rng.random() < GRADES[grade]:
            return cls(fp.digits, grade, true)
        wrong = [m for m in range(10) if fold(m, last) != fold(true, last)]
        return cls(fp.digits, grade, rng.choice(wrong))

    @property
    def level(self) -> int:
        return len(self.digits) - 1

    @property
    def problem_class(self) -> int:
        """The class every statistic is split by: the grade's index, 1 (A) .. 6 (F)."""
        return list(GRADES).index(self.grade) + 1

    @property
    def prompt(self) -> str:
        # the fold prompt (its trace alignment untouched), then the memo at a fixed place: "| B 6 ~ 7"
        return f"{FoldProblem(self.digits).prompt} | {self.grade} {self.memo} {OP} {self.digits[-1]}"

    def partials(self) -> list[int]:
        return FoldProblem(self.digits).partials()

    @property
    def answer(self) -> str:
        return FoldProblem(self.digits).answer

    @property
    def glance(self) -> str:
        return str(fold(self.memo, self.digits[-1]))


def parse_graded(prompt: str) -> GradedProblem:
    """Inverse of ``GradedProblem.prompt``."""
    toks = prompt.split()
    if len(toks) != 2 * MAX_LEVEL + 6 or toks[-5] != "|":
        raise ValueError(f"not a graded prompt: {prompt!r}")
    grade, memo, op, last = toks[-4:]
    fp = parse_fold(" ".join(toks[:-5]))
    if grade not in GRADES or not memo.isdigit() or len(memo) != 1 or op != OP or last != str(fp.digits[-1]):
        raise ValueError(f"not a graded prompt: {prompt!r}")
    return GradedProblem(fp.digits, grade, int(memo))


@register
class Graded(Fold):
    """Levels 2..6 (a memo needs two folds or more), split by class: the six grades (``data=graded``, the gym's)."""

    name = "graded"
    unit = "class"
    lowest_level = 2
    level_note = "a memo needs two folds or more"

    def make_problems(self, n: int, levels, seed: int, weights=None) -> list:
        """The fold task's chains for the same seed, a memo each from a stream of its own; the grades in a round
        robin of their own, one grade per round of the level cycle (every grade sees every level equally often)."""
        cycle = self.level_cycle(levels, weights)
        folds = Fold.make_problems(self, n, levels, seed, weights)
        mrng = random.Random(seed + 104729)
        grades = list(GRADES)
        return [GradedProblem.draw(p.digits, grades[(i // len(cycle)) % len(grades)], mrng)
                for i, p in enumerate(folds)]

    def class_name(self, key: int) -> str:
        """``"B (90%)"`` for class 2."""
        grade = list(GRADES)[key - 1]
        return f"{grade} ({GRADES[grade]:.0%})"
