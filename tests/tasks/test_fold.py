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


def test_a_trace_is_written_at_several_lengths_by_restating_its_answer(tiny_tokenizer):
    """data.max_trace (an L1 warm-up's traces): the trace, then its answer restated; every length from the trace's
    own (4 symbols a fold) up to max_trace, in steps of 2; bad values name the key and the range."""
    import pytest

    p = FoldProblem((0, 4, 8, 7))
    assert long_teacher(p, restate=2) == "<think>0~4=4~8=7~7=5=5=5\n</think>\\boxed{5}"
    task = get_task("fold")
    assert task.stretched_responses(p, 24) == [long_teacher(p, restate=j) for j in range(7)]  # 12 symbols, up to 24
    six = FoldProblem((1,) * 7)
    assert task.stretched_responses(six, 24) == [long_teacher(six)]  # no room: its own
    tok = tiny_tokenizer  # control tokens added: one token each, as a run's tokenizer
    lengths = [[len(tok(r + tok.eos_token, add_special_tokens=False)["input_ids"]) for r in
                task.stretched_responses(q, 36)] for q in (FoldProblem((2, 3)), six)]
    assert lengths == [list(range(14, 47, 2)), list(range(34, 47, 2))]  # tokens with the EOS: level 1, level 6
    for bad in (23, 25, 7, 12):
        with pytest.raises(ValueError, match=rf"data.max_trace={bad}: 0 .* an even number of trace symbols >= 24"):
            task.stretched_responses(p, bad)
