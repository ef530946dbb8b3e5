"""thinkless.grade: extraction, normalization, math-verify equivalence, timeouts, and every real gold answer."""

from __future__ import annotations

import json
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import thinkless
from thinkless import grading
from thinkless.grading import (GRADE_STATS, Grader, answers_match, extract_boxed, final_answer, grade,
                               normalize_gold)

from .conftest import DATA

CASES = [
    # leading zeros (AIME)
    (r"\boxed{025}", "025", True), (r"\boxed{25}", "025", True), (r"\boxed{025}", "25", True),
    (r"\boxed{26}", "025", False),
    # thousands separators, GSM8K golds
    (r"\boxed{1,234}", "#### 1234", True), (r"\boxed{1234}", "The total\n#### 1,234", True),
    (r"\boxed{1,\!234}", "1234", True), (r"\boxed{1{,}234}", "1234", True), (r"\boxed{1,234,567}", 1234567, True),
    (r"\boxed{12}", "1,2", False), (r"\boxed{1,2}", "12", False),  # a list of two numbers is not twelve
    # fractions
    (r"\boxed{\dfrac{1}{2}}", r"\frac12", True), (r"\boxed{\frac{1}{2}}", "0.5", True),
    (r"\boxed{\tfrac{3}{4}}", r"\frac{3}{4}", True), (r"\boxed{0.333}", r"\frac13", False),
    # tuples, intervals, sets
    (r"\boxed{(1, 2)}", "(1,2)", True), (r"\boxed{(2,1)}", "(1,2)", False),
    (r"\boxed{\left( 3, \frac{\pi}{2} \right)}", r"(3,\frac{\pi}{2})", True),
    (r"\boxed{[1, 3)}", "[1,3)", True), (r"\boxed{(1,3)}", "[1,3)", False),
    (r"\boxed{(-\infty, 3]}", r"(-\infty,3]", True),
    (r"\boxed{(-\infty,3)\cup(4,\infty)}", r"(-\infty,3)\cup(4,\infty)", True),
    (r"\boxed{\{2,1\}}", r"\{1,2\}", True), (r"\boxed{1, 2}", "2,1", True), (r"\boxed{\{1,3\}}", r"\{1,2\}", False),
    # symbolic, units, text, decorations
    (r"\boxed{x^2+2x+1}", "(x+1)^2", True), (r"\boxed{\sqrt{2}/2}", r"\frac{\sqrt2}{2}", True),
    (r"\boxed{\text{(C)}}", r"\text{(C)}", True), (r"\boxed{x=5}", "5", True), (r"\boxed{10\%}", "10", True),
    (r"\boxed{\$18}", "18", True), (r"\boxed{5\text{ cm}}", "5", True), (r"\boxed{18.00}", "18", True),
    (r"\boxed{2516_8}", "2516_8", True), (r"\boxed{2516_{8}}", "2516_8", True), (r"\boxed{2516_1}", "2516_8", False),
    (r"\boxed{-3}", "-3", True), (r"\boxed{3}", "-3", False), (r"\boxed{\infty}", r"\infty", True),
    # gold shapes: numbers, lists of accepted answers, boxed golds
    (r"\boxed{3}", 3, True), (r"\boxed{3}", 3.0, True), (r"\boxed{2.5}", 2.5, True), (r"\boxed{3}", ["4", "3"], True),
    (r"\boxed{5}", ["4", "3"], False), (r"\boxed{7}", r"\boxed{7}", True),
    # the last box wins; fallback: the last plain number
    (r"first \boxed{1} then \boxed{2}", "2", True), (r"first \boxed{1} then \boxed{2}", "1", False),
    (r"\boxed{\frac{1}{\sqrt{2}}}", r"\frac{\sqrt{2}}{2}", True),
    ("so the answer is 42.", 42, True), ("so the answer is 1,234.", "1234", True), ("it costs $3.50", "3.5", True),
    ("no answer here", "3", False), (r"\boxed{}", "3", False),
    (r"\boxed{2", "2", True), (r"\boxed{2", "3", False),  # unbalanced box: the last plain number
]


def lenient(response, gold, **kw):
    """Answer matching on plain text (no control tokens): the lenient policy."""
    return grade(response, gold, policy="lenient", **kw)


@pytest.mark.parametrize("response,gold,expected", CASES)
def test_grade_cases(response, gold, expected):
    assert lenient(response, gold) is expected


POLICY_CASES = [
    # response, gold, strict, lenient
    ("<short>\\boxed{5}", "5", True, True),
    ("<short>The answer is 5.", "5", False, True),                       # no box: strict reads nothing
    ("<think>so 4</think>\\boxed{5}", "5", True, True),
    ("<think>\\boxed{5}</think>\\boxed{7}", "5", False, False),           # both read after </think>
    ("<think>ran out \\boxed{5}", "5", False, False),                    # thinking never closed: no answer
    ("<short><think>a</think>\\boxed{5}", "5", False, True),              # malformed: strict says no
    ("<think>a</think>b</think>\\boxed{5}", "5", False, True),
    ("\\boxed{5}", "5", False, True),                                    # no control token (a baseline model)
    ("The answer is 5", "5", False, True),
]


@pytest.mark.parametrize("response,gold,strict,loose", POLICY_CASES)
def test_policies(response, gold, strict, loose):
    assert grade(response, gold) is strict  # strict is the default: the reward's policy
    assert grade(response, gold, policy="strict") is strict and lenient(response, gold) is loose
    assert Grader("strict").grade(response, gold).correct is strict


def test_verdict_and_policy_errors():
    v = Grader("strict").grade("<think>x</think>\\boxed{3}", "3")
    assert (v.correct, v.answer, v.mode, v.well_formed) == (True, "3", "think", True)
    assert Grader("strict", exact=True).grade("<short>\\boxed{03}", "3").correct is False  # exact: no math
    # a task decides which: is_exact is the one map from a task to Grader(exact=)
    assert grading.is_exact("synthetic") and not any(grading.is_exact(t) for t in ("math", None))
    assert set(grading.TASKS) == {"math", "synthetic"}
    assert Grader("lenient").grade("<short>\\boxed{03}", "3").correct is True
    with pytest.raises(ValueError, match="valid choices"):
        Grader("loose")


def test_grade_completions_of_an_rl_batch():
    """The strict grader over a batch as the reward function and the trainer get it: text or conversational
    completions, the task choosing exact match or math-verify, None where the gold cannot be graded."""
    from thinkless.grading import grade_completions

    completions = ["<short>\\boxed{03}", [{"role": "assistant", "content": "<think>x</think>\\boxed{03}"}],
                   "<short>\\boxed{3}", "<short>\\boxed{3}", "\\boxed{3}"]
    v = grade_completions(completions, ["3", "3", "", 3, "3"], ["synthetic", "math", "math", None, "math"])
    assert (v[0].correct, v[0].mode) == (False, "short")  # synthetic: "03" is not "3"
    assert (v[1].correct, v[1].mode, v[1].answer) == (True, "think", "03")  # math-verify accepts it
    assert v[2] is None  # no gold to grade against: no verdict (TRL then gives no advantage)
    assert v[3].correct and v[3].well_formed
    assert (v[4].correct, v[4].mode) == (False, None)  # no control token: strict grading reads no answer
    assert [x.correct for x in grade_completions(["<short>\\boxed{03}"], ["3"])] == [True]  # no task column: math


def test_exported_from_package_root():
    assert thinkless.grade is grade


def test_extraction_and_gold_normalization():
    assert extract_boxed(r"a \boxed{\frac{1}{2}} b \boxed{x^{2}}") == "x^{2}"
    assert extract_boxed(r"a \boxed{\frac{1}{2}} b \boxed{x^{2}}", last=False) == r"\frac{1}{2}"
    assert extract_boxed(r"\fbox{7}") == "7" and extract_boxed("none") is None
    assert final_answer("x = 12, y = 1,000, so 3.25") == "3.25"
    assert final_answer("totals: 1,234") == "1,234" and final_answer("values 12,5") == "5"
    assert final_answer("nothing") is None
    assert normalize_gold("Natalia sold 48+24 = 72 clips.\n#### 72") == ["72"]
    assert normalize_gold(7.0) == ["7"] and normalize_gold(2.5) == ["2.5"] and normalize_gold(None) == []
    assert normalize_gold(["1", ["2", 3]]) == ["1", "2", "3"] and normalize_gold("  ") == []
    assert normalize_gold(r"\boxed{\frac12}") == [r"\frac12"]


def test_pathological_latex_times_out_as_wrong_and_is_counted():
    before = GRADE_STATS["timeout"]
    t0 = time.time()
    assert lenient(r"\boxed{9^{9^{9^{9}}}}", "7", timeout=1.0) is False
    assert GRADE_STATS["timeout"] == before + 1
    assert time.time() - t0 < 30
    # the stuck check was killed: grading goes on normally (and fast) afterwards
    t1 = time.time()
    assert lenient(r"\boxed{\frac{4}{2}}", "2", timeout=5.0) is True
    assert lenient(r"\boxed{(1,2)}", "(2,1)", timeout=5.0) is False
    assert time.time() - t1 < 20


def test_over_long_answers_are_counted():
    before = GRADE_STATS["too_long"]
    assert lenient(r"\boxed{" + "1+" * 600 + "1}", "7") is False
    assert GRADE_STATS["too_long"] == before + 1


def test_thread_isolation_fallback_and_concurrency():
    grading.set_isolation("thread")
    try:
        assert answers_match(r"\frac{2}{4}", "0.5") is True
        assert answers_match("0.4", "0.5") is False
    finally:
        grading.set_isolation("process")
    with pytest.raises(ValueError, match="valid choices"):
        grading.set_isolation("fork")
    cases = [c for c in CASES if c[0].startswith("\\boxed")]
    with ThreadPoolExecutor(4) as ex:  # grading from several threads at once (reward workers, thread pools)
        results = list(ex.map(lambda c: lenient(c[0], c[1]), cases))
    assert results == [c[2] for c in cases]


# ------------------------------------------------------------------ every gold answer in tests/fixtures/data

FILES = {  # file -> (answer field, loader)
    "gsm8k_test.jsonl": "answer",
    "math500_test.jsonl": "answer",
    "aime24_test.jsonl": "answer",
    "math_algebra_test.jsonl": "answer",
    "math_train.json": "answer",
}


def load(name):
    text = (DATA / name).read_text()
    return json.loads(text) if name.endswith(".json") else [json.loads(x) for x in text.splitlines() if x.strip()]


def test_every_data_file_is_covered():
    assert sorted(p.name for p in DATA.iterdir() if p.suffix in (".json", ".jsonl")) == sorted(FILES)


def perturb(gold: str) -> str | None:
    """A different answer: the first digit changed (None when the gold has no digit)."""
    m = re.search(r"\d", gold)
    if not m:
        return None
    i = m.start()
    return gold[:i] + str((int(gold[i]) + 3) % 10) + gold[i + 1:]


@pytest.mark.parametrize("name", sorted(FILES))
def test_real_gold_answers(name):
    rows = load(name)
    assert rows
    failures, empty = [], 0
    for r in rows:  # every row: its own gold, boxed, is correct
        gold = r[FILES[name]]
        if not normalize_gold(gold):
            empty += 1  # no gold at all: benchmarks drop (and count) such rows
            continue
        final = normalize_gold(gold)[0]
        if not lenient(f"The answer is $\\boxed{{{final}}}$.", gold):
            failures.append(gold)
    assert not failures, failures[:10]
    assert empty == (4 if name == "math_train.json" else 0)  # four rows of math_train have no answer (null / "")

    rng = random.Random(0)
    sample = rng.sample([r for r in rows if normalize_gold(r[FILES[name]])], min(60, len(rows)))
    wrong, right = [], []
    for r in sample:  # a perturbed answer is wrong; an equivalent rewrite goes through math-verify and is right
        gold = r[FILES[name]]
        final = normalize_gold(gold)[0]
        bad = perturb(final)
        if bad is not None and lenient(f"\\boxed{{{bad}}}", gold):
            wrong.append((final, bad))
        if re.fullmatch(r"-?\d{1,3}(,\d{3})*|-?\d+", final):  # an integer (GSM8K may use thousands separators)
            value = int(final.replace(",", ""))
            if not lenient(f"\\boxed{{\\frac{{{2 * value}}}{{2}}}}", gold):
                right.append(final)
            if not lenient(f"so the final result is {value}.", gold):  # no box: the last plain number
                right.append(final)
    assert not wrong, wrong
    assert not right, right


def test_aime_leading_zeros_on_real_golds():
    rows = load("aime24_test.jsonl")
    for r in rows:
        assert lenient(f"\\boxed{{{int(r['answer'])}}}", r["answer"])
        assert lenient(f"\\boxed{{{int(r['answer']):03d}}}", int(r["answer"]))
