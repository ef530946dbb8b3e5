"""The math sets (thinkless/tasks/math_sets.py): a file-backed task, graded with math-verify, split by level."""

import pytest

from thinkless.evaluation.benchmarks import load_benchmark
from thinkless.tasks.base import SPLITS, get_task

from ..conftest import DATA


def test_the_math_sets_are_read_not_made_and_graded_with_math_verify():
    task = get_task("math")
    assert not task.generated and not task.exact and task.split == SPLITS["level"]
    assert task.grading() == "math" and task.grading(exact=True) == "synthetic"  # a benchmark's `exact` wins
    with pytest.raises(NotImplementedError, match="generates no problems"):
        task.make_problems(1, [1], seed=0)
    with pytest.raises(ValueError, match="valid choices are \\('fold', 'graded'\\)"):
        get_task("math", key="rl_data.variant", generated=True)  # not a `variant`: rows come from a file


def test_a_file_benchmark_holds_the_math_task():
    from omegaconf import OmegaConf

    b = load_benchmark("math500", OmegaConf.create({"path": str(DATA / "math500_test.jsonl"), "level_field": "level",
                                                    "limit": 20}))
    assert b.task_name == "math" and b.kind is get_task("math") and b.task == "math"
    assert {p.level for p in b.problems} <= {1, 2, 3, 4, 5} and all(p.problem_class is None for p in b.problems)
