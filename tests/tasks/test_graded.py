"""The graded task (thinkless/tasks/graded.py): memos right at their grade's rate, classes named by grade."""

import pytest

from thinkless.reward import thinkless_reward
from thinkless.tasks.fold import MAX_LEVEL, FoldProblem, long_teacher, short_teacher
from thinkless.tasks.synthetic import make_problems, paired_records, parse_prompt


def test_graded_memo_is_right_at_its_grade_rate_and_the_glance_is_right_exactly_when_it_is():
    from thinkless.tasks.graded import GRADES, GradedProblem

    probs = make_problems(6000, [2, 3, 4, 5, 6], seed=5, variant="graded")
    assert all(isinstance(p, GradedProblem) for p in probs)
    for grade, q in GRADES.items():
        ps = [p for p in probs if p.grade == grade]
        right = [p.memo == p.partials()[-2] for p in ps]
        assert [p.glance == p.answer for p in ps] == right  # a wrong memo never folds to the answer by chance
        assert abs(sum(right) / len(ps) - q) < 0.045, grade
    # the class is in the text, not in the length or the level: every grade at every level, one prompt width
    assert {(p.grade, p.level) for p in probs} == {(g, lv) for g in GRADES for lv in range(2, 7)}
    assert {len(p.prompt) for p in probs} == {4 * MAX_LEVEL + 1 + 10}
    # the chains are the fold task's for the same seed: only the memo is new
    assert [p.digits for p in probs[:50]] == [p.digits for p in make_problems(50, [2, 3, 4, 5, 6], seed=5)]


def test_graded_example_by_hand():
    from thinkless.tasks.base import get_task
    from thinkless.tasks.graded import GradedProblem

    p = GradedProblem((0, 4, 8, 7), "C", 3)  # 0~4=4, 4~8=7 (the true memo), 7~7=5; memo 3 says 3~7=9
    assert p.prompt == "0 ~ 4 ~ 8 ~ 7 . . . . . . | C 3 ~ 7" and p.level == 3 and p.problem_class == 3
    assert p.answer == "5" and p.glance == "9" and get_task("graded").class_name(p.problem_class) == "C (80%)"
    assert long_teacher(p) == "<think>0~4=4~8=7~7=5\n</think>\\boxed{5}"  # the trace ignores the memo
    assert short_teacher(p) == "<short>\\boxed{9}"
    assert parse_prompt(p.prompt) == p and parse_prompt(FoldProblem((0, 4)).prompt) == FoldProblem((0, 4))
    for bad in ["0 ~ 4 ~ 8 ~ 7 . . . . . . | Q 3 ~ 7", "0 ~ 4 ~ 8 ~ 7 . . . . . . | C 3 ~ 6",
                "0 ~ 4 ~ 8 ~ 7 . . . . . . | C x ~ 7"]:
        with pytest.raises(ValueError):
            parse_prompt(bad)


def test_graded_records_keep_the_short_answer_only_where_the_memo_is_right():
    recs = paired_records(600, [2, 3, 4, 5, 6], seed=2, variant="graded")
    probs = make_problems(600, [2, 3, 4, 5, 6], seed=2, variant="graded")
    for r, p in zip(recs, probs):
        assert r["problem_class"] == p.problem_class and r["level"] == p.level and r["problem"] == p.prompt
        assert (r["short"] is not None) == (p.glance == p.answer)
        assert thinkless_reward(r["long"], r["answer"], 0.5, exact=True) == 0.5
        if r["short"] is not None:
            assert thinkless_reward(r["short"], r["answer"], 0.5, exact=True) == 1.0
    with pytest.raises(ValueError, match="two folds"):
        make_problems(5, [1, 2], seed=0, variant="graded")
    with pytest.raises(ValueError, match="valid choices"):
        make_problems(5, [2], seed=0, variant="folded")


def test_the_graded_task_is_split_by_class_and_names_each_by_its_grade():
    from thinkless.tasks.base import SPLITS, get_task
    from thinkless.tasks.graded import GRADES

    task = get_task("graded")
    assert task.split == SPLITS["class"] and task.levels() == [2, 3, 4, 5, 6]
    assert [task.split_name(str(k)) for k in range(1, 7)] == ["A (100%)", "B (90%)", "C (80%)", "D (70%)", "E (60%)",
                                                               "F (20%)"]
    probs = task.make_problems(600, [2, 3, 4, 5, 6], seed=2)
    assert {task.problem_class(p) for p in probs} == set(range(1, len(GRADES) + 1))
    assert [task.short_is_right(p) for p in probs] == [p.glance == p.answer for p in probs]
