import pytest

from thinkless.format import render_prompt, short_target, think_target
from thinkless.reward import thinkless_reward
from thinkless.tasks.synthetic import (MAX_LEVEL, FoldProblem, long_teacher, make_problems, paired_records,
                                       parse_prompt, short_teacher)

from ..conftest import TOKENIZERS


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


def test_max_trace_writes_each_long_response_at_a_drawn_length_and_nothing_else(tiny_tokenizer, monkeypatch):
    """data.max_trace: the same problems and short answers; each long response is its trace with the answer restated
    a drawn number of times (per problem, its own stream), the trace's own length the shortest; an L1 warm-up's
    budget prompts then state each one's own length. A task whose traces have one length: an error naming the key."""
    from thinkless.tasks import base, synthetic
    from thinkless.tasks.data import DropStats, sft_table
    from thinkless.training.sft import PAIRED_FIELDS, l1_exact_suffix

    plain = paired_records(600, [1, 2, 3, 4, 5, 6], seed=4)
    long = paired_records(600, [1, 2, 3, 4, 5, 6], seed=4, max_trace=36)
    assert [(r["problem"], r["short"], r["answer"]) for r in long] == [(r["problem"], r["short"], r["answer"])
                                                                      for r in plain]
    extra = []
    for r, q in zip(long, plain):
        head, tail = q["long"].split("\n")
        assert r["long"].startswith(head) and r["long"].endswith("\n" + tail)
        restated = r["long"][len(head):-len(tail) - 1]
        assert restated == f"={r['answer']}" * (len(restated) // 2)
        extra.append(len(restated) // 2)
    by_level = {lv: {e for e, r in zip(extra, long) if r["level"] == lv} for lv in range(1, 7)}
    assert by_level == {lv: set(range(0, (36 - 4 * lv) // 2 + 1)) for lv in range(1, 7)}
    assert paired_records(600, [1, 2, 3, 4, 5, 6], seed=4, max_trace=36) == long  # seeded
    graded = paired_records(60, [2, 6], seed=1, variant="graded", max_trace=30)
    assert any(r["long"] != long_teacher(synthetic.parse_prompt(r["problem"])) for r in graded)  # graded: fold's
    rows = sft_table(long[:200], "paired", PAIRED_FIELDS, tiny_tokenizer, DropStats(), budget=(1.0, 0, l1_exact_suffix))
    stated = {int(p.split("Think for ")[1].split(" ")[0]) for p, m in zip(rows["prompt"], rows["mode"]) if m == "think"}
    assert {14, 46} <= stated and len(stated) > 10  # the warm-up states many lengths, not one per level
    with pytest.raises(ValueError, match=r"data.max_trace=-2: a non-negative integer"):
        paired_records(6, [1, 2], seed=0, max_trace=-2)

    class OneLength(base.Task):
        name = "one_length"

        def draw(self, level, rng):
            return synthetic.FoldProblem((1, 2))

    monkeypatch.setattr(synthetic, "get_task", lambda *a, **k: OneLength())
    with pytest.raises(ValueError, match=r"data.max_trace=30: task 'one_length' writes each trace at one length .*"
                                         r"0 keeps each trace at its own length"):
        paired_records(6, [1], seed=0, max_trace=30)
