"""The fold task (thinkless/tasks/fold.py): the rule, a worked example, its task object."""

from thinkless.tasks.base import get_task
from thinkless.tasks.fold import MAX_LEVEL, FoldProblem, fold, long_teacher, parse_fold, short_teacher


def test_fold_rule():
    assert fold(3, 4) == 7 and fold(4, 5) == 9
    assert fold(5, 5) == 9 and fold(9, 9) == 1 and fold(6, 7) == 6
    assert all(0 <= fold(a, b) <= 9 for a in range(10) for b in range(10))


def test_example_from_the_issue():
    p = FoldProblem((0, 4, 8, 7))
    assert p.level == 3 and p.answer == "5"
    assert long_teacher(p) == "<think>0~4=4~8=7~7=5\n</think>\\boxed{5}"
    assert short_teacher(p) == "<short>\\boxed{5}"



def test_the_fold_task_reads_its_problems_and_teaches_both_modes():
    task = get_task("fold")
    assert (task.name, task.unit, task.exact, task.levels()) == ("fold", "level", True, list(range(1, MAX_LEVEL + 1)))
    probs = task.make_problems(12, [1, 6], seed=2)
    assert [task.level(p) for p in probs] == [1, 6] * 6 and all(parse_fold(task.prompt(p)) == p for p in probs)
    p = FoldProblem((0, 4, 8, 7))
    assert (task.gold(p), task.problem_class(p), task.short_is_right(p)) == ("5", None, True)
    assert task.long_response(p) == long_teacher(p) and task.short_response(p) == short_teacher(p)
    assert task.describe() == "the built-in synthetic fold task (thinkless.tasks.synthetic; not a Hub dataset)"
