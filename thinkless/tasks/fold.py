"""The *fold* task: digit chains folded left to right; its level is the chain's number of folds (1..6).

``a ~ b`` is ``a+b`` when ``a+b <= 9`` and ``19-a-b`` otherwise; a problem of level k folds k+1 digits left to
right. One fold is answerable at a glance (short mode), six need the written trace (think mode), so *when to
think* is a real, level-dependent decision. Prompts are padded to a fixed width of ``MAX_LEVEL`` operations so
every step of the trace sits at a constant distance from its operand, which is what lets a 2-layer model learn
to copy operands in a couple of minutes on a CPU. Its teachers: the R1-style trace (``long_teacher``) and the
answer at a glance (``short_teacher``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..tokens import END_THINK, SHORT, THINK
from .base import Task, register

MAX_LEVEL = 6
PAD = "."
OP = "~"


def fold(a: int, b: int) -> int:
    s = a + b
    return s if s <= 9 else 19 - s


@dataclass(frozen=True)
class FoldProblem:
    digits: tuple[int, ...]

    @property
    def level(self) -> int:
        return len(self.digits) - 1

    @property
    def prompt(self) -> str:
        # 4 characters per operation (" ~ d"), like the trace ("~d=r"): every trace step sits at the same
        # distance from its operand, so one relative-attention pattern copies all of them.
        body = f" {OP} ".join(str(d) for d in self.digits)
        pad = " ".join([PAD] * (2 * (MAX_LEVEL - self.level)))
        return f"{body} {pad}".rstrip()

    def partials(self) -> list[int]:
        acc, out = self.digits[0], [self.digits[0]]
        for d in self.digits[1:]:
            acc = fold(acc, d)
            out.append(acc)
        return out

    @property
    def answer(self) -> str:
        return str(self.partials()[-1])

    @property
    def glance(self) -> str:
        """The short teacher's answer: fold's is always right (``short_solve_rate`` makes it miss)."""
        return self.answer

    problem_class = None  # fold has no classes beyond its levels


def long_teacher(p, restate: int = 0) -> str:
    """R1-style: the explicit left-to-right trace inside ``<think>…</think>``, then the boxed answer. ``restate``:
    the answer restated that many times at the trace's end (``=r``, a double check): the same trace, longer."""
    parts = p.partials()
    trace = str(p.digits[0]) + "".join(f"{OP}{d}={r}" for d, r in zip(p.digits[1:], parts[1:]))
    trace += f"={p.answer}" * restate
    return f"{THINK}{trace}\n{END_THINK}\\boxed{{{p.answer}}}"


def short_teacher(p) -> str:
    """Qwen-Math-Instruct-style: the boxed answer directly (graded: what the memo gives at a glance, right or not)."""
    return f"{SHORT}\\boxed{{{p.glance}}}"


def parse_fold(prompt: str) -> FoldProblem:
    """Inverse of ``FoldProblem.prompt``."""
    toks = prompt.split()
    digits = [t for t in toks[0::2] if t != PAD]
    ops = toks[1::2]
    if (len(toks) != 2 * MAX_LEVEL + 1 or not digits or not all(d.isdigit() and len(d) == 1 for d in digits)
            or any(o not in (OP, PAD) for o in ops) or len(digits) < 2):
        raise ValueError(f"not a fold prompt: {prompt!r}")
    return FoldProblem(tuple(int(d) for d in digits))


@register
class Fold(Task):
    """Levels 1..6 (folds per chain), graded exactly; the demo's task (``data=synthetic``, ``rl_data=synthetic``)."""

    name = "fold"
    lowest_level, highest_level = 1, MAX_LEVEL

    def draw(self, level: int, rng: random.Random) -> FoldProblem:
        return FoldProblem(tuple(rng.randrange(10) for _ in range(level + 1)))

    def long_response(self, p) -> str:
        return long_teacher(p)

    def short_response(self, p) -> str:
        return short_teacher(p)

    def stretched_responses(self, p, longest: int) -> list[str]:
        # a level-k trace writes 4k symbols after its first digit ("~d=r" a fold); restating its answer ("=r") adds 2
        if longest < 4 * MAX_LEVEL or longest % 2:
            raise ValueError(f"data.max_trace={longest}: 0 (each trace as its level writes it) or an even number of "
                             f"trace symbols >= {4 * MAX_LEVEL} (a level-{MAX_LEVEL} trace's own)")
        return [long_teacher(p, restate=j) for j in range((longest - 4 * p.level) // 2 + 1)]

    def short_is_right(self, p) -> bool:
        return p.glance == p.answer

    def describe(self) -> str:
        return f"the built-in synthetic {self.name} task (thinkless.tasks.synthetic; not a Hub dataset)"
