"""A task: what its problems are and how a run reads them. One ``Task`` subclass per task, one module each.

A task says how its problems are made (``make_problems``: generated tasks) or read (file-backed tasks: the loader in
``thinkless.tasks.data``), the prompt text and the gold answer of a problem, how its answers are graded (``exact``),
and how every statistic of it is split (``split``): by *level* (the fold chain's length, MATH's "Level 3") or by
*class* (the graded task's memo grade), with the key and the display name of each. Everything else (the RL prompts,
the SFT pairs, benchmarks, config checks, the mode report, the monitor's per-level keys) reads these; no other module
decides a task fact.

The registry (``TASKS``: name -> Task) is the one list of tasks: every module of this package is imported on first
use (``get_task``), and a registered ``Task`` subclass joins it (``@register``). Out of the tree: the folders in
``THINKLESS_TASKS`` (``os.pathsep``-separated) are searched too, as ``THINKLESS_OBJECTIVES`` is for objectives.
Generated tasks are chosen by name in the configs' ``variant`` key (``data.variant``, ``rl_data.variant``,
``benchmark.NAME.variant`` under ``source``/``type: synthetic``); file-backed ones by ``source: math`` /
``type: file``. docs/tasks.md: adding a task.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import random
import re
from dataclasses import dataclass
from typing import ClassVar

TASKS: dict[str, Task] = {}  # name -> the task (@register): the one list of tasks


@dataclass(frozen=True)
class Split:
    """How a task's statistics are split: its unit, the result files' key of its rows, its metrics' letter."""

    unit: str  # "level" | "class"
    report_key: str  # the rows' key in evaluation results and mode reports ("per_group": the file key of classes)
    metric_tag: str  # modes/think_ratio_<tag><key>: "L" levels, "C" classes


SPLITS = {"level": Split("level", "per_level", "L"), "class": Split("class", "per_group", "C")}


def split_of(keys) -> Split:
    """The split a result holds, read from its keys (a report's, or a metrics line's) where no task is at hand:
    classes where it has them, else levels (a task with classes also logs its levels)."""
    keys = list(keys)
    cls = SPLITS["class"]
    if cls.report_key in keys or split_metrics(keys, unit="class"):
        return cls
    return SPLITS["level"]


def split_metrics(keys, *, unit: str | None = None, stat: str = "think_ratio", prefix: str = "") -> dict[int, str]:
    """The per-level (or per-class) metric keys among ``keys``, by their level or class (``{3: "modes/..._L3"}``);
    ``unit`` None: the split of ``keys`` (``split_of``)."""
    unit = unit or split_of(keys).unit
    pat = re.compile(re.escape(prefix + "modes/" + stat + "_" + SPLITS[unit].metric_tag) + r"(\d+)")
    out = {int(m.group(1)): k for k in keys if (m := pat.fullmatch(k))}
    return dict(sorted(out.items()))


class Task:
    """Base class of a task (see the module doc). Generated tasks define ``make_problems`` (or ``draw``) and the
    two teachers; a problem object has ``prompt``, ``answer`` and ``level`` (and ``problem_class`` with classes)."""

    name: ClassVar[str] = ""
    unit: ClassVar[str] = "level"  # "level" | "class": what every table and per-key metric splits it by
    exact: ClassVar[bool] = True  # answers compared as strings (math-verify otherwise); a benchmark's `exact` wins
    generated: ClassVar[bool] = True  # made by make_problems (False: rows read from a file or the Hub)
    lowest_level: ClassVar[int] = 1
    highest_level: ClassVar[int] = 1
    level_note: ClassVar[str] = ""  # why the levels start where they do (error messages)

    # ------------------------------------------------------------------ problems
    def draw(self, level: int, rng: random.Random):
        """One problem of ``level`` from ``rng`` (the default ``make_problems`` calls it in its level cycle)."""
        raise NotImplementedError(f"task {self.name!r} generates no problems")

    def make_problems(self, n: int, levels, seed: int, weights=None) -> list:
        """``n`` problems over ``levels`` in a fixed round robin (``level_cycle``), from stream ``seed``."""
        cycle = self.level_cycle(levels, weights)
        rng = random.Random(seed)
        return [self.draw(cycle[i % len(cycle)], rng) for i in range(n)]

    def level_cycle(self, levels, weights=None) -> list[int]:
        """One round of the levels: level i repeated ``weights[i]`` times (checked: ``ValueError`` naming what)."""
        for lv in levels:
            if not self.lowest_level <= lv <= self.highest_level:
                raise ValueError(f"synthetic level {lv} out of range {self.level_range()}"
                                 + (f" ({self.level_note})" if self.level_note else ""))
        weights = list(weights) if weights is not None else [1] * len(levels)
        if len(weights) != len(levels) or any(int(w) != w or w < 0 for w in weights) or sum(weights) == 0:
            raise ValueError(f"level weights {weights} must be non-negative integers, one per level {list(levels)}")
        return [lv for lv, w in zip(levels, weights) for _ in range(int(w))]

    def level_range(self) -> str:
        return f"{self.lowest_level}..{self.highest_level}"

    def levels(self) -> list[int]:
        return list(range(self.lowest_level, self.highest_level + 1))

    def prompt(self, p) -> str:
        return p.prompt

    def gold(self, p):
        return p.answer

    def level(self, p) -> int | None:
        return getattr(p, "level", None)

    def problem_class(self, p) -> int | None:
        """The problem's class (1, 2, ...) on a task split by class; None otherwise."""
        return getattr(p, "problem_class", None) if self.unit == "class" else None

    # ------------------------------------------------------------------ teachers (generated tasks: paired SFT data)
    def long_response(self, p) -> str:
        """The long teacher's response (``<think>…</think>`` then the boxed answer)."""
        raise NotImplementedError(f"task {self.name!r} has no built-in long teacher")

    def stretched_responses(self, p, longest: int) -> list[str]:
        """The long teacher's response at every length it comes in, its own first, up to ``longest`` (in the task's
        own unit; ``data.max_trace``): one problem's trace at several lengths, which an L1 warm-up needs to teach that
        a stated length is a choice (``paired_records`` draws one). A task whose traces have one length raises."""
        raise NotImplementedError(f"task {self.name!r} writes each trace at one length (no stretched_responses)")

    def short_response(self, p) -> str:
        """The short teacher's response (``<short>`` then the boxed answer; may be wrong)."""
        raise NotImplementedError(f"task {self.name!r} has no built-in short teacher")

    def short_is_right(self, p) -> bool:
        """Is the short teacher right on ``p``? A wrong short answer is dropped, as a real teacher's would be."""
        return True

    # ------------------------------------------------------------------ grading, splits, names
    def grading(self, exact: bool | None = None) -> str:
        """The grading kind of its problems (``thinkless.grading.TASKS``, the RL rows' ``task`` column):
        ``exact`` (a benchmark's own ``exact`` key) overrides the task's."""
        return "synthetic" if (self.exact if exact is None else exact) else "math"

    @property
    def split(self) -> Split:
        return SPLITS[self.unit]

    def class_name(self, key: int) -> str:
        """How tables name class ``key`` (a task with classes overrides it)."""
        return str(key)

    def split_name(self, key) -> str:
        """How tables name a row of the split: a level as is, a class by ``class_name``; "all" stays."""
        return self.class_name(int(key)) if self.unit == "class" and str(key).isdigit() else str(key)

    def describe(self) -> str:
        """The model card's data line for this task."""
        return f"the built-in synthetic {self.name} task (thinkless.tasks.{self.name}; not a Hub dataset)"


def register(cls):
    """Class decorator: ``cls`` (a ``Task`` subclass) joins ``TASKS`` under its ``name``, as one instance."""
    if not cls.name or cls.name in TASKS and type(TASKS[cls.name]) is not cls:
        raise ValueError(f"task {cls.__name__}: name {cls.name!r} is empty or already taken")
    if cls.unit not in SPLITS:
        raise ValueError(f"task {cls.name!r}: unit {cls.unit!r}: valid choices are {sorted(SPLITS)}")
    TASKS[cls.name] = cls()
    return cls


_FOUND = {"done": False}


def _discover() -> None:
    """Import every module of ``thinkless.tasks`` (and of the ``THINKLESS_TASKS`` folders) once: they register."""
    if _FOUND["done"]:
        return
    from .. import tasks as pkg  # the package this module is in: its folder is what discovery walks

    for d in filter(None, os.environ.get("THINKLESS_TASKS", "").split(os.pathsep)):
        if not os.path.isdir(d):
            raise ValueError(f"THINKLESS_TASKS: {d!r} is not a folder (folders of task modules, separated by "
                             f"{os.pathsep!r})")
        if os.path.abspath(d) not in pkg.__path__:
            pkg.__path__.append(os.path.abspath(d))
    for m in sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)):
        if not m.startswith("_"):
            importlib.import_module(f"{pkg.__name__}.{m}")
    _FOUND["done"] = True


def get_task(name: str, *, key: str = "task", generated: bool | None = None) -> Task:
    """The registered task ``name``; ``ValueError`` naming ``key`` and the valid choices (generated ones only with
    ``generated=True``)."""
    _discover()
    valid = [n for n, t in TASKS.items() if generated is None or t.generated == generated]
    if name not in valid:
        raise ValueError(f"{key}={name!r}: valid choices are {tuple(sorted(valid))}")
    return TASKS[name]


def task_names(*, generated: bool | None = None) -> list[str]:
    _discover()
    return sorted(n for n, t in TASKS.items() if generated is None or t.generated == generated)
