"""The one data loader (bad lines and missing fields by the documented rule) and the SFT rows of every layout."""

import json

import pytest

from thinkless.tasks.data import DropStats, get_field, load_rows, load_table, parse_level, records_from_rows, sft_table

from ..conftest import DATA

FIELDS = {"problem": "q", "answer": "a", "long": "l", "short": "s", "level": "meta.level"}


def rows_of(table):
    return table.to_list()


def test_paired_rows_filtering_and_counting(tiny_tokenizer):
    rows = [
        {"q": "p1", "a": "1", "l": "<think>t</think>\\boxed{1}", "s": "\\boxed{1}", "meta": {"level": "Level 2"}},
        {"q": "p2", "a": "", "l": "<think>t</think>\\boxed{2}", "s": "\\boxed{2}"},          # no answer
        {"q": "p3", "a": None, "l": "<think>t</think>\\boxed{3}", "s": "\\boxed{3}"},        # no answer
        {"q": "p4", "a": "4", "l": "", "s": "\\boxed{4}"},                                 # empty long
        {"q": "p5", "a": "5", "l": "<think>t</think>\\boxed{5}", "s": None, "meta": {"level": "5"}},  # no short
        {"q": "", "a": "6", "l": "x", "s": "y"},                                            # no problem
    ]
    stats = DropStats()
    out = rows_of(sft_table(rows, "paired", FIELDS, tiny_tokenizer, stats, require_answer=True))
    assert dict(stats) == {"no_answer": 2, "no_problem": 1, "think_missing": 1, "short_missing": 1, "kept": 4}
    modes = [(r["prompt"].split("user\n")[1].split("<|im_end|>")[0], r["mode"], r["level"]) for r in out]
    assert modes == [("p1", "think", 2), ("p1", "short", 2), ("p4", "short", -1), ("p5", "think", 5)]
    for r in out:
        assert r["completion"].startswith(("<think>", "<short>"))
        assert r["completion"].endswith(tiny_tokenizer.eos_token)
        assert not r["prompt"].endswith(("<think>", "<short>"))
    assert "kept 4" in stats.summary()


def test_parse_level():
    """The one level reader (SFT rows, RL prompts, benchmarks): "Level 3" is 3 everywhere; anything else is the
    caller's ``missing`` (-1, training's "no level"; evaluation passes None)."""
    import numpy as np

    good = (3, 3.0, "3", "3.0", "Level 3", "level 5", " LEVEL 2 ", 0, np.int64(4))
    assert [parse_level(v) for v in good] == [3, 3, 3, 3, 3, 5, 2, 0, 4]
    bad = (None, "?", "Level ?", "", 2.5, float("nan"), True, -1, "-2")
    assert [parse_level(v) for v in bad] == [-1] * len(bad)
    assert parse_level("Level ?", missing=None) is None and parse_level("Level 1", missing=None) == 1


def test_instruction_and_system_reach_the_prompt(tiny_tokenizer):
    rows = [{"q": "p1", "a": "1", "l": "<think>t</think>\\boxed{1}", "s": "\\boxed{1}"}]
    out = rows_of(sft_table(rows, "paired", FIELDS, tiny_tokenizer, DropStats(), instruction="Solve: {problem}",
                            system="SYS"))
    assert "Solve: p1" in out[0]["prompt"] and "SYS" in out[0]["prompt"]


def test_budget_prompts_state_the_responses_own_length_in_l1s_sentence(tiny_tokenizer):
    """data.budget_prompts (an L1 warm-up): the drawn share of rows ends its user turn with objective=l1's Exact
    sentence for N = the completion's own tokens (control token, response, EOS: what L1's reward counts); the
    draw is per problem and mode, so one process or four draw the same rows; the rest keep the plain prompt."""
    from thinkless.objectives.l1 import budget_suffix
    from thinkless.training.sft import l1_exact_suffix

    rows = [{"q": f"p{i}", "a": str(i), "l": f"<think>{'x ' * i}</think>\\boxed{{{i}}}", "s": f"\\boxed{{{i}}}"}
            for i in range(40)]
    everyone = rows_of(sft_table(rows, "paired", FIELDS, tiny_tokenizer, DropStats(), budget=(1.0, 0, l1_exact_suffix)))
    plain = rows_of(sft_table(rows, "paired", FIELDS, tiny_tokenizer, DropStats()))
    for r, q in zip(everyone, plain):
        n = len(tiny_tokenizer(r["completion"], add_special_tokens=False)["input_ids"])
        user = r["prompt"].split("user\n")[1].split("<|im_end|>")[0]
        assert user == q["prompt"].split("user\n")[1].split("<|im_end|>")[0] + budget_suffix(n)
        assert user.endswith(f" Think for {n} tokens.") and r["completion"] == q["completion"]
        assert r["input_ids"][-n:] == q["input_ids"][-n:] == r["labels"][-n:]  # the loss: unchanged
        assert set(r["labels"][:-n]) == {-100}
    half = [r["prompt"] for r in rows_of(sft_table(rows, "paired", FIELDS, tiny_tokenizer, DropStats(),
                                                   budget=(0.5, 0, l1_exact_suffix), num_proc=2))]
    stated = ["Think for" in p for p in half]
    assert 20 <= sum(stated) <= 60  # 80 rows at a half
    again = [r["prompt"] for r in rows_of(sft_table(rows, "paired", FIELDS, tiny_tokenizer, DropStats(),
                                                    budget=(0.5, 0, l1_exact_suffix)))]
    assert again == half  # in-process draws the rows two workers drew
    other = [r["prompt"] for r in rows_of(sft_table(rows, "paired", FIELDS, tiny_tokenizer, DropStats(),
                                                    budget=(0.5, 1, l1_exact_suffix)))]
    assert other != half  # the data seed names the draw


def test_too_long_rows_are_dropped_not_truncated(tiny_tokenizer):
    stats = DropStats()
    recs = [{"problem": f"p{i}", "answer": "1", "long": "<think>x</think>\\boxed{1}", "short": "\\boxed{1}"}
            for i in range(10)]
    recs[0]["long"] = "<think>" + "x" * 200 + "</think>\\boxed{1}"
    fields = {k: k for k in ("problem", "answer", "long", "short")}
    out = rows_of(sft_table(recs, "paired", fields, tiny_tokenizer, stats, max_length=64))
    assert [r["mode"] for r in out][:2] == ["short", "think"] and len(out) == 19 and stats["too_long"] == 1
    # a too-long row is a bad row of its role: two of ten think rows is more than the limit, said with the length
    recs[1]["long"] = recs[0]["long"]
    with pytest.raises(ValueError, match=r"2 of 10 think rows cannot be trained \(too_long 2\).*tokens > max_length "
                                         r"64.*training.args.max_length"):
        sft_table(recs, "paired", fields, tiny_tokenizer, DropStats(), max_length=64)


def test_flat_layout_reads_the_mode_from_the_output(tiny_tokenizer, tmp_path):
    """The official warm-up format: one response per row, no answer, no pairs (tests/data/flat_warmup.jsonl)."""
    from ..conftest import ROOT

    stats = DropStats()
    table = load_table(str(ROOT / "tests" / "data" / "flat_warmup.jsonl"), stats=stats)
    out = rows_of(sft_table(table, "flat", {"instruction": "instruction", "output": "output"}, tiny_tokenizer, stats))
    assert [r["mode"] for r in out][:4] == ["think", "short", "think", "short"] and len(out) == 4 + 32
    assert out[1]["completion"].startswith("<short>\n")  # the official "<short>\n" kept as written
    assert stats["no_control_token"] == 1 and stats["no_output"] == 1 and stats["think_unclosed"] == 1
    assert stats["bad_json_line"] == 1 and stats["kept"] == 36


def test_conclusion_layout_builds_the_short_row(tiny_tokenizer):
    rows = [{"instruction": f"p{i}", "output": "<think>\nadd\n</think>\n\nSo \\boxed{4}."} for i in range(10)]
    rows.append({"instruction": "p2", "output": "<think>never closed"})
    stats = DropStats()
    out = rows_of(sft_table(rows, "conclusion", {"problem": "instruction", "long": "output"}, tiny_tokenizer, stats))
    assert [r["mode"] for r in out][:2] == ["think", "short"] and len(out) == 20
    assert out[1]["completion"] == "<short>\nSo \\boxed{4}." + tiny_tokenizer.eos_token
    assert stats["think_unclosed"] == 1 and stats["short_no_conclusion"] == 1


def test_a_wrong_field_name_fails_naming_the_keys(tiny_tokenizer):
    rows = [{"question": "p", "output": "<short>x"}]
    with pytest.raises(ValueError, match=r"data.fields.instruction='instruction': no row has this field .*question"):
        sft_table(rows, "flat", {"instruction": "instruction", "output": "output"}, tiny_tokenizer, DropStats())
    with pytest.raises(ValueError, match="valid choices"):
        sft_table(rows, "pairs", {}, tiny_tokenizer, DropStats())
    with pytest.raises(ValueError, match="rl_data.fields.answer='gold': no row has this field"):
        records_from_rows(rows, {"problem": "question", "answer": "gold"}, DropStats(), what="rl_data.fields")


def test_bad_json_lines_are_skipped_and_counted_up_to_the_limit(tmp_path, caplog):
    good = [json.dumps({"q": i}) for i in range(20)]
    f = tmp_path / "r.jsonl"
    f.write_text("\n".join(good[:5] + ['{"q": 5,'] + good[5:] + ["[1, 2]"]) + "\n")
    stats = DropStats()
    rows = load_rows(str(f), stats=stats)
    assert len(rows) == 20 and stats["bad_json_line"] == 2
    assert f"{f}:6" in caplog.text and f"{f}:22" in caplog.text  # file:line of each skipped line
    f.write_text("\n".join(good[:3] + ["not json"] * 2) + "\n")  # 40% bad: not what the config says
    with pytest.raises(ValueError, match=rf"{f}:4: invalid JSON.*2 of 5 lines are bad"):
        load_rows(str(f))
    g = tmp_path / "r.json"
    g.write_text('[{"q": 1},\n {"q": 2,}]')
    with pytest.raises(ValueError, match=rf"{g}:2:\d+: invalid JSON"):
        load_rows(str(g))


def test_load_rows_local_formats(tmp_path):
    rows = [{"q": "a", "x": 1}, {"q": "b", "x": 2}]
    (tmp_path / "r.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "r.json").write_text(json.dumps(rows))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "r.parquet")
    for name in ("r.jsonl", "r.json", "r.parquet"):
        assert load_rows(str(tmp_path / name)) == rows
        assert load_table(str(tmp_path / name)).to_list() == rows
    assert load_rows(str(tmp_path / "r.jsonl"), limit=1) == rows[:1]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_rows(str(tmp_path / "missing.jsonl"))
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="bad.parquet: could not read it as parquet"):
        load_rows(str(tmp_path / "bad.parquet"))


def test_load_rows_real_files():
    assert len(load_rows(str(DATA / "math_train.json"))) == 351  # the fixtures' subsets (tests/fixtures/README.md)
    assert len(load_rows(str(DATA / "gsm8k_test.jsonl"))) == 102


def test_hub_name_offline_fails_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="could not load dataset 'no-such-org/no-such-set'"):
        load_rows("no-such-org/no-such-set")


def test_get_field_dotted():
    assert get_field({"a": {"b": 3}}, "a.b") == 3 and get_field({"a": 1}, "a.b") is None and get_field({}, None) is None


def test_rows_are_tokenized_as_at_inference_one_bos_and_the_completion_only():
    """R1-Distill's tokenizer adds a BOS to plain text; its chat template already starts with one. The rows carry
    the prompt's ids exactly as render_prompt + generation see them, and labels on the completion alone."""
    from transformers import AutoTokenizer

    from thinkless import add_control_tokens, control_token_ids

    from ..conftest import R1

    tok = AutoTokenizer.from_pretrained(R1)
    add_control_tokens(tok)
    rows = [{"q": "2+2?", "a": "4", "l": "<think>add</think>\\boxed{4}", "s": "\\boxed{4}"}]
    out = sft_table(rows, "paired", FIELDS, tok, DropStats()).to_list()
    ids = control_token_ids(tok)
    for r in out:
        assert r["input_ids"].count(tok.bos_token_id) == 1
        start = next(i for i, v in enumerate(r["labels"]) if v != -100)  # the loss covers the completion alone
        assert r["labels"][start:] == r["input_ids"][start:] and r["input_ids"][start] in (ids.think, ids.short)
        assert r["input_ids"][-1] == tok.eos_token_id
        assert r["input_ids"][:start] == tok(r["prompt"], add_special_tokens=False)["input_ids"]


def test_wrong_field_types_are_dropped_and_counted_with_file_line(tmp_path, caplog):
    rows = [{"problem": f"p{i}", "answer": str(i)} for i in range(38)]
    rows[4] = {"problem": "p4", "answer": {"value": 5}}  # a dict gold: never gradable as written
    rows[9] = {"problem": 9, "answer": "9"}               # a problem that is a number
    f = tmp_path / "r.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    fields = {"problem": "problem", "answer": "answer"}
    stats = DropStats()
    got = load_rows(str(f), stats=stats, fields=fields)
    assert len(got) == 36 and stats["bad_type"] == 2
    assert all(isinstance(r["answer"], str) and isinstance(r["problem"], str) for r in got)
    assert f"{f}:5: field 'answer' is a dict" in caplog.text and f"{f}:10: field 'problem' is a int" in caplog.text
    # the same rule for the SFT table (was a raw pyarrow ArrowTypeError on the mixed column)
    stats = DropStats()
    assert len(load_table(str(f), stats=stats, fields=fields)) == 36 and stats["bad_type"] == 2
    # over 10% bad: the file is not what the config says
    g = tmp_path / "g.jsonl"
    g.write_text("\n".join(json.dumps({"problem": "p", "answer": {"v": i}}) for i in range(3))
                 + "\n" + json.dumps({"problem": "p", "answer": "1"}) + "\n")
    with pytest.raises(ValueError, match=rf"{g}:1: field 'answer' is a dict.*3 of 4 lines are bad"):
        load_rows(str(g), fields=fields)
    # a list of accepted answers and numeric levels/answers are fine
    h = tmp_path / "h.json"
    h.write_text(json.dumps([{"problem": "p", "answer": ["1", 1.0], "level": "Level 3"}, {"problem": "q", "answer": 2}]))
    assert len(load_rows(str(h), fields={**fields, "level": "level"})) == 2


def test_non_utf8_and_empty_files_get_one_clear_message(tmp_path, caplog):
    f = tmp_path / "r.jsonl"
    lines = [json.dumps({"problem": f"p{i}", "answer": "1"}).encode() for i in range(20)]
    lines[3] = b'{"problem": "caf\xe9", "answer": "1"}'  # latin-1 bytes in a UTF-8 file
    f.write_bytes(b"\n".join(lines) + b"\n")
    stats = DropStats()
    assert len(load_rows(str(f), stats=stats)) == 19 and stats["bad_json_line"] == 1
    assert f"{f}:4: not UTF-8 text" in caplog.text
    g = tmp_path / "r.json"
    g.write_bytes(b'[{"problem": "a"},\n {"problem": "caf\xe9"}]')
    with pytest.raises(ValueError, match=rf"{g}:2: not UTF-8 text"):
        load_rows(str(g))
    e = tmp_path / "empty.jsonl"
    e.write_text("")
    for load in (load_rows, load_table):
        with pytest.raises(ValueError, match=rf"data source '{e}' has no rows"):
            load(str(e))
    with pytest.raises(ValueError, match="no rows to build SFT rows from"):
        sft_table([], "paired", {"problem": "problem"}, None, DropStats())


def test_json_error_messages_read_cleanly(tmp_path):
    f = tmp_path / "r.jsonl"
    f.write_text('{"problem": "unterminated}\n')
    with pytest.raises(ValueError) as e:
        load_rows(str(f))
    assert f"{f}:1: invalid JSON at column 27: Invalid control character;" in str(e.value)


def test_a_role_that_loses_its_rows_stops_the_stage_with_counts_and_an_example(tiny_tokenizer):
    """Issue 38, case 5: paired rows whose long response lacks </think> were all dropped (as "empty_think", though
    the text was there) and training went on short-only. Now the think role's loss stops it, saying why."""
    rows = [{"q": f"p{i}", "a": "1", "l": f"<think>step {i}\\boxed{{1}}", "s": "\\boxed{1}"} for i in range(20)]
    with pytest.raises(ValueError) as e:
        sft_table(rows, "paired", FIELDS, tiny_tokenizer, DropStats())
    msg = str(e.value)
    assert "data.fields.long: 20 of 20 think rows cannot be trained (think_unclosed 20)" in msg
    assert "problem 'p0': l = '<think>step 0\\\\boxed{1}'" in msg and "</think>" in msg
    # a few bad rows (at most the limit, 10%) are dropped and counted by what they are
    for i, (text, reason) in enumerate([("<think>a</think><think>b</think>\\boxed{1}", "think_malformed"),
                                        ("<think>done</think>   ", "think_no_answer")]):
        ok = [dict(r, l="<think>t</think>\\boxed{1}") for r in rows]
        ok[i]["l"] = text
        stats = DropStats()
        assert len(sft_table(ok, "paired", FIELDS, tiny_tokenizer, stats)) == 39 and stats[reason] == 1
    ok = [dict(r, l="<think>t</think>\\boxed{1}") for r in rows]
    ok[0]["l"], ok[1]["s"], ok[2]["s"] = "<short>\\boxed{1}", "<think>x</think>\\boxed{1}", "<short>  "
    stats = DropStats()
    sft_table(ok, "paired", FIELDS, tiny_tokenizer, stats)
    assert (stats["think_is_short"], stats["short_has_think_tags"], stats["short_no_answer"]) == (1, 1, 1)
    # missing responses (null: a teacher's unverified answer) are counted, not bad rows: the glance teacher drops
    # most short answers of hard levels by design
    half = [dict(r, l="<think>t</think>\\boxed{1}", s=None if i % 2 else r["s"]) for i, r in enumerate(rows)]
    stats = DropStats()
    assert len(sft_table(half, "paired", FIELDS, tiny_tokenizer, stats)) == 30 and stats["short_missing"] == 10
    # ... but a role with no row left at all stops the stage: it would train one mode and exit 0
    with pytest.raises(ValueError, match=r"data.fields.short: none of the 20 short rows can be trained "
                                         r"\(short_missing 20\): the stage would train without the short mode"):
        sft_table([dict(r, s=" ", l="<think>t</think>\\boxed{1}") for r in rows], "paired", FIELDS,
                  tiny_tokenizer, DropStats())
    flat = [{"instruction": f"p{i}", "output": "<think>t</think>\\boxed{1}"} for i in range(5)]
    with pytest.raises(ValueError, match=r"data.fields.output: no row starts with the short mode's control token"):
        sft_table(flat, "flat", {"instruction": "instruction", "output": "output"}, tiny_tokenizer, DropStats())


@pytest.mark.parametrize("suffix,text", [(".jsonl", '{"q": "a"}\n{"q": "b"}\n'), (".json", '[{"q": "a"}, {"q": "b"}]')])
def test_a_utf8_byte_order_mark_is_accepted(tmp_path, suffix, text):
    f = tmp_path / f"bom{suffix}"
    f.write_bytes(b"\xef\xbb\xbf" + text.encode())
    stats = DropStats()
    assert [r["q"] for r in load_rows(str(f), stats=stats)] == ["a", "b"] and not stats.get("bad_json_line")
