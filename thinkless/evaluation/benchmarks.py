"""Benchmarks: a list of problems (text, gold answer, optional level) from the Hub, a local file, or the synthetic task.

A benchmark config (``conf/benchmark/*.yaml``) says where the rows come from and which fields to read:

* ``path``: a local JSON (list) / JSONL / parquet / CSV file; wins over everything else;
* ``file``: the file name inside the run's ``data_dir`` (``data_dir=DIR`` makes every benchmark load its
  local copy);
* ``name`` / ``subset`` / ``split``: a Hugging Face Hub dataset, used when neither of the above applies;
* ``problem_field``, ``answer_field``, ``level_field``: column names (dotted for nested dicts); ``answer_field`` may
  be a list, the first non-empty one wins; an answer containing ``\\boxed{}`` (a worked solution) is reduced to its
  last boxed expression, and GSM8K's ``#### N`` is handled by the grader;
* ``limit``: the first N rows only.
* ``exact``: true grades by exact match of the boxed answer, false with math-verify (default: the task's own,
  ``Task.exact``): mapped once to ``BenchmarkData.task`` (``Task.grading``), graded through
  ``thinkless.grading.is_exact``.

``type: synthetic`` generates a task instead (``variant``: its name in ``thinkless.tasks.base.TASKS``, fold by
default; ``levels``, ``n_per_level``, ``seed``); the graded task's problems carry their class in ``problem_class``.
A file's rows are the math sets' task (``thinkless.tasks.math_sets``). Which task a benchmark holds is
``BenchmarkData.task_name`` (its levels or classes, their names: ``Task.split``). Rows without a problem or an answer
are dropped and counted (``BenchmarkData.dropped``).
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..tasks.base import Task, get_task
from ..tasks.data import check_drop_share, get_field, load_rows, parse_level
from ..grading import extract_boxed

BENCHMARK_TYPES = ("file", "synthetic")
_KEYS = {"type", "name", "subset", "split", "path", "file", "problem_field", "answer_field", "level_field", "limit",
         "instruction", "max_new_tokens", "batch_size", "exact", "levels", "n_per_level", "seed", "description",
         "variant"}


@dataclass
class Problem:
    uid: str  # "<index>-<hash of the problem text>": stable across runs, distinct for duplicated problems
    index: int
    problem: str
    answer: object  # str, number or list of accepted answers
    level: int | None = None  # thinkless.tasks.data.parse_level ("Level 3" -> 3); None: none, or not a level
    problem_class: int | None = None  # the problem's class where its task has classes (graded: the grade, 1..6)
    suffix: str = ""  # appended to the user turn as training appended it (``stated``: L1's stated budget)


@dataclass
class BenchmarkData:
    name: str
    problems: list[Problem]
    source: str  # what was loaded: a path, "hub:<name>", or "synthetic"
    task: str = "math"  # how answers are graded (thinkless.grading.TASKS, is_exact; Task.grading)
    dropped: Counter = field(default_factory=Counter)
    task_name: str = "math"  # the task its problems belong to (thinkless.tasks.base.TASKS)

    @property
    def kind(self) -> Task:
        """Its task: how its statistics are split (by level or by class) and how each is named."""
        return get_task(self.task_name)

    @property
    def has_levels(self) -> bool:
        return any(p.level is not None for p in self.problems)


def problem_uid(index: int, text: str) -> str:
    return f"{index}-{hashlib.sha1(text.encode()).hexdigest()[:10]}"


def stated(bench: BenchmarkData, objective, seed: int) -> BenchmarkData:
    """``bench`` asked as ``objective`` trained its policy: each problem with its own ``Objective.prompt_extra``
    (L1's stated budget, drawn as training draws it, from the report's own stream of ``seed``) appended to the user
    turn, its uid over the asked text (a generation store never mixes it with the bare problem's); ``bench`` itself
    when the objective has no extra."""
    rng = random.Random(f"{seed}/report")
    extras = [objective.prompt_extra(rng) for _ in bench.problems]
    if not any(extras):
        return bench
    problems = [replace(p, uid=problem_uid(p.index, p.problem + x[1]), suffix=x[1])
                for p, x in zip(bench.problems, extras)]
    return replace(bench, problems=problems)


def _answer(row: dict, fields):
    for f in [fields] if isinstance(fields, str) else list(fields or []):
        v = get_field(row, f)
        if v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, (list, tuple)) and not v):
            continue
        if isinstance(v, str) and "\\boxed" in v and not v.lstrip().startswith("\\boxed"):
            boxed = extract_boxed(v)  # a worked solution: its final boxed answer
            if boxed:
                return boxed
        return v
    return None


def resolve_source(name: str, bcfg, data_dir: str | None) -> tuple[str, str]:
    """(kind, where): ("local", path) or ("hub", dataset name); raises naming what is missing."""
    if bcfg.get("path"):
        return "local", str(bcfg.path)
    if data_dir and bcfg.get("file"):
        path = Path(data_dir).expanduser() / bcfg.file
        if not path.exists():
            raise FileNotFoundError(f"benchmark {name!r}: data_dir={data_dir!r} has no {bcfg.file!r} ({path}); "
                                    f"set benchmark.{name}.path=<file> or drop data_dir to load {bcfg.get('name')!r} "
                                    "from the Hub")
        return "local", str(path)
    if bcfg.get("name"):
        return "hub", str(bcfg.name)
    raise ValueError(f"benchmark {name!r} has no data source: set benchmark.{name}.path=<file>, "
                     f"or data_dir=<folder> with benchmark.{name}.file, or benchmark.{name}.name=<Hub dataset>")


def rows_to_problems(rows: list[dict], bcfg, dropped: Counter) -> list[Problem]:
    problems = []
    pf, af, lf = bcfg.get("problem_field", "problem"), bcfg.get("answer_field", "answer"), bcfg.get("level_field")
    for row in rows:
        text = get_field(row, pf)
        if not isinstance(text, str) or not text.strip():
            dropped["no_problem"] += 1
            continue
        ans = _answer(row, af)
        if ans is None:
            dropped["no_answer"] += 1
            continue
        if isinstance(ans, (list, tuple)):
            ans = [a for a in ans if a is not None and str(a).strip()]
        i = len(problems)
        level = parse_level(get_field(row, lf), missing=None) if lf else None
        problems.append(Problem(problem_uid(i, text), i, text, ans, level))
    return problems


def synthetic_benchmark(name: str, levels, n_per_level: int, seed: int, *, limit: int | None = None,
                        exact: bool | None = None, variant: str = "fold") -> BenchmarkData:
    """A generated task (``variant``: its name) as a benchmark: ``n_per_level`` problems per level (round robin),
    from stream ``seed``; ``exact`` None: graded as the task says."""
    task = get_task(variant, key=f"benchmark.{name}.variant", generated=True)
    probs = task.make_problems(n_per_level * len(levels), list(levels), seed)
    problems = [Problem(problem_uid(i, task.prompt(p)), i, task.prompt(p), task.gold(p), task.level(p),
                        task.problem_class(p)) for i, p in enumerate(probs)]
    return BenchmarkData(name, problems[:limit] if limit is not None else problems, "synthetic",
                         task=task.grading(exact), task_name=task.name)


def load_benchmark(name: str, bcfg, *, data_dir: str | None = None, limit: int | None = None) -> BenchmarkData:
    """Problems of one benchmark config (``limit`` applies when the benchmark has no ``limit`` of its own)."""
    unknown = set(bcfg.keys()) - _KEYS
    if unknown:
        raise ValueError(f"benchmark {name!r}: unknown keys {sorted(unknown)}; valid keys are {sorted(_KEYS)}")
    btype = bcfg.get("type", "file")
    if btype not in BENCHMARK_TYPES:
        raise ValueError(f"benchmark.{name}.type={btype!r}: valid choices are {BENCHMARK_TYPES}")
    lim = bcfg.get("limit") if bcfg.get("limit") is not None else limit
    dropped: Counter = Counter()
    if btype == "synthetic":
        task = get_task(bcfg.get("variant", "fold"), key=f"benchmark.{name}.variant", generated=True)
        return synthetic_benchmark(name, list(bcfg.get("levels") or task.levels()), int(bcfg.get("n_per_level", 100)),
                                   int(bcfg.get("seed", 20_000)), limit=lim, exact=bcfg.get("exact"),
                                   variant=task.name)
    kind, where = resolve_source(name, bcfg, data_dir)
    fields = {"problem": bcfg.get("problem_field", "problem"), "answer": bcfg.get("answer_field", "answer"),
              "level": bcfg.get("level_field")}
    if kind == "local":
        rows = load_rows(where, limit=lim, stats=dropped, fields=fields)
    else:
        rows = load_rows(where, split=bcfg.get("split") or "test", subset=bcfg.get("subset"), limit=lim,
                         stats=dropped, fields=fields)
    problems = rows_to_problems(rows, bcfg, dropped)
    if not problems:
        raise ValueError(f"benchmark {name!r} ({where}) has no usable rows: dropped {dict(dropped)}; check "
                         f"benchmark.{name}.problem_field / answer_field (rows have keys "
                         f"{sorted(rows[0]) if rows else []})")
    check_drop_share(f"benchmark {name!r} ({where})", len(problems),
                     {k: dropped[k] for k in ("no_problem", "no_answer")},
                     hint=f"check benchmark.{name}.problem_field / answer_field")
    return BenchmarkData(name, problems, where if kind == "local" else f"hub:{where}",
                         task=get_task("math").grading(bcfg.get("exact")), dropped=dropped)
