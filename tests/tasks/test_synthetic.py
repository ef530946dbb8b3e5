import pytest

from thinkless.format import render_prompt, short_target, think_target
from thinkless.reward import thinkless_reward
from thinkless.tasks.synthetic import (MAX_LEVEL, FoldProblem, fold, long_teacher, make_problems, paired_records,
                                 parse_prompt, short_teacher)

from ..conftest import TOKENIZERS


def test_fold_rule():
    assert fold(3, 4) == 7 and fold(4, 5) == 9
    assert fold(5, 5) == 9 and fold(9, 9) == 1 and fold(6, 7) == 6
    assert all(0 <= fold(a, b) <= 9 for a in range(10) for b in range(10))


def test_example_from_the_issue():
    p = FoldProblem((0, 4, 8, 7))
    assert p.level == 3 and p.answer == "5"
    assert long_teacher(p) == "<think>0~4=4~8=7~7=5\n</think>\\boxed{5}"
    assert short_teacher(p) == "<short>\\boxed{5}"


def test_prompts_have_fixed_width_and_round_trip():
    for p in make_problems(60, list(range(1, MAX_LEVEL + 1)), seed=3):
        assert len(p.prompt) == 4 * MAX_LEVEL + 1
        assert parse_prompt(p.prompt) == p


def test_levels_and_weights():
    probs = make_problems(700, [1, 2, 3, 4, 5, 6], seed=0, weights=[2, 1, 1, 1, 1, 1])
    counts = {lv: sum(p.level == lv for p in probs) for lv in range(1, 7)}
    assert counts[1] == 200 and all(counts[lv] == 100 for lv in range(2, 7))
    with pytest.raises(ValueError, match="out of range"):
        make_problems(3, [7], seed=0)
    with pytest.raises(ValueError, match="weights"):
        make_problems(3, [1, 2], seed=0, weights=[1])


def test_teachers_are_correct_and_well_formed():
    for r in paired_records(120, [1, 2, 3, 4, 5, 6], seed=1):
        assert thinkless_reward(r["long"], r["answer"], 0.5, exact=True) == 0.5
        assert thinkless_reward(r["short"], r["answer"], 0.5, exact=True) == 1.0
        assert think_target(r["long"]) == r["long"] and short_target(r["short"]) == r["short"]


def test_glance_teacher_keeps_short_answers_at_its_solve_rate_and_the_same_problems(tiny_tokenizer):
    from thinkless.tasks.data import DropStats, sft_table
    from thinkless.training.sft import PAIRED_FIELDS

    rates = [1.0, 0.5, 0.0, 0.0, 0.0, 0.25]
    oracle = paired_records(1200, [1, 2, 3, 4, 5, 6], seed=4)
    glance = paired_records(1200, [1, 2, 3, 4, 5, 6], seed=4, short_solve_rate=rates)
    assert [r["problem"] for r in glance] == [r["problem"] for r in oracle]  # only the short column changes
    assert all(g["long"] == o["long"] for g, o in zip(glance, oracle))
    kept = {lv: [r["short"] is not None for r in glance if r["level"] == lv] for lv in range(1, 7)}
    assert all(kept[1]) and not any(kept[3] + kept[4] + kept[5])
    assert 0.4 < sum(kept[2]) / len(kept[2]) < 0.6 and 0.15 < sum(kept[6]) / len(kept[6]) < 0.35
    assert all(r["short"] == o["short"] for r, o in zip(glance, oracle) if r["short"] is not None)
    stats = DropStats()
    rows = sft_table(glance[:120], "paired", PAIRED_FIELDS, tiny_tokenizer, stats)
    dropped = sum(r["short"] is None for r in glance[:120])
    assert stats["short_missing"] == dropped and len(rows) == 240 - dropped  # counted, not silently lost
    for bad in ([1.0] * 5, [1.0, 0.5, 0.2, 0.1, 0.0, 1.5], [1.0, "half", 0, 0, 0, 0], 0.5):
        with pytest.raises(ValueError, match="short_solve_rate"):
            paired_records(6, [1, 2], seed=0, short_solve_rate=bad)


def test_think_is_longer_on_hard_levels(tiny_tokenizer):
    p = make_problems(1, [6], seed=0)[0]
    n_long = len(tiny_tokenizer.encode(long_teacher(p)))
    n_short = len(tiny_tokenizer.encode(short_teacher(p)))
    assert n_long >= 3 * n_short


def test_tiny_tokenizer_splits_roles_and_answers_like_qwen_and_the_fold_text_per_character(tiny_tokenizer):
    from transformers import AutoTokenizer

    qwen = AutoTokenizer.from_pretrained(TOKENIZERS / "Qwen2.5-1.5B-Instruct")
    pieces = lambda tok, text: tok.convert_ids_to_tokens(tok.encode(text, add_special_tokens=False))  # noqa: E731
    for text in ("<|im_start|>user\n", "<|im_start|>assistant\n", "<|im_start|>system\n", "\\boxed{5}"):
        assert pieces(tiny_tokenizer, text) == pieces(qwen, text)
    p = FoldProblem((0, 4, 8, 7))
    prompt = render_prompt(tiny_tokenizer, p.prompt)
    ids = tiny_tokenizer.encode(prompt, add_special_tokens=False)
    # <|im_start|> user \n, the fold text one token per character, <|im_end|> \n <|im_start|> assistant \n
    assert len(ids) == 3 + len(p.prompt) + 5
    trace = tiny_tokenizer.encode(long_teacher(p), add_special_tokens=False)
    assert pieces(tiny_tokenizer, long_teacher(p))[1:5] == ["0", "~", "4", "="]
    assert tiny_tokenizer.decode(trace) == long_teacher(p) and tiny_tokenizer.decode(ids) == prompt
    # other words may merge in part ("has" -> h, as); any text still round-trips
    text = "the user has a system; assistants boxed 12 ~ 3"
    assert tiny_tokenizer.decode(tiny_tokenizer.encode(text, add_special_tokens=False)) == text


def test_parse_rejects_garbage():
    for bad in ["", "1+2", "1 ~ 2", "a ~ b . . . . . . . . . .", "1 ~ 2 ~ 3 ~ 4 ~ 5 ~ 6 ~ 7 ~ 8"]:
        with pytest.raises(ValueError):
            parse_prompt(bad)


# ---------------------------------------------------------------- the graded task


def test_graded_memo_is_right_at_its_grade_rate_and_the_glance_is_right_exactly_when_it_is():
    from thinkless.tasks.synthetic import GRADES, GradedProblem

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
    from thinkless.tasks.synthetic import GradedProblem, group_name

    p = GradedProblem((0, 4, 8, 7), "C", 3)  # 0~4=4, 4~8=7 (the true memo), 7~7=5; memo 3 says 3~7=9
    assert p.prompt == "0 ~ 4 ~ 8 ~ 7 . . . . . . | C 3 ~ 7" and p.level == 3 and p.group == 3
    assert p.answer == "5" and p.glance == "9" and group_name(p.group) == "C (80%)"
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
        assert r["group"] == p.group and r["level"] == p.level and r["problem"] == p.prompt
        assert (r["short"] is not None) == (p.glance == p.answer)
        assert thinkless_reward(r["long"], r["answer"], 0.5, exact=True) == 0.5
        if r["short"] is not None:
            assert thinkless_reward(r["short"], r["answer"], 0.5, exact=True) == 1.0
    with pytest.raises(ValueError, match="two folds"):
        make_problems(5, [1, 2], seed=0, variant="graded")
    with pytest.raises(ValueError, match="valid choices"):
        make_problems(5, [2], seed=0, variant="folded")
