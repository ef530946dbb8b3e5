import json

import pytest

from thinkless.data import (DropStats, build_sft_rows, load_rows, normalize_long, normalize_short,
                            records_from_rows)

from .conftest import DATA

FIELDS = {"problem": "q", "answer": "a", "long": "l", "short": "s", "level": "meta.level"}


def test_normalize_long_and_short():
    assert normalize_long("reasoning</think>\\boxed{1}") == "<think>\nreasoning</think>\\boxed{1}"  # R1 prefill
    assert normalize_long("<think>x</think>y") == "<think>x</think>y"
    assert normalize_long("<think>truncated") is None
    assert normalize_long("<think>a</think>") is None  # nothing after the reasoning
    assert normalize_long("") is None and normalize_long(None) is None
    assert normalize_short("\\boxed{3}") == "<short>\\boxed{3}"
    assert normalize_short("<short>\\boxed{3}") == "<short>\\boxed{3}"
    assert normalize_short("<think>x</think>\\boxed{3}") is None
    assert normalize_short("   ") is None


def test_pairing_filtering_and_counting(tiny_tokenizer):
    rows = [
        {"q": "p1", "a": "1", "l": "<think>t</think>\\boxed{1}", "s": "\\boxed{1}", "meta": {"level": 2}},
        {"q": "p2", "a": "", "l": "<think>t</think>\\boxed{2}", "s": "\\boxed{2}"},          # no answer
        {"q": "p3", "a": None, "l": "<think>t</think>\\boxed{3}", "s": "\\boxed{3}"},        # no answer
        {"q": "p4", "a": "4", "l": "", "s": "\\boxed{4}"},                                 # empty long
        {"q": "p5", "a": "5", "l": "<think>t</think>\\boxed{5}", "s": None},                 # missing short
        {"q": "", "a": "6", "l": "x", "s": "y"},                                            # no problem
    ]
    stats = DropStats()
    recs = records_from_rows(rows, FIELDS, stats)
    assert [r["problem"] for r in recs] == ["p1", "p4", "p5"]
    assert recs[0]["level"] == 2
    out = build_sft_rows(recs, tiny_tokenizer, stats)
    assert stats["no_answer"] == 2 and stats["no_problem"] == 1
    assert stats["empty_think"] == 1 and stats["empty_short"] == 1
    assert stats["kept"] == len(out) == 4
    modes = [(r["prompt"].split("user\n")[1].split("<|im_end|>")[0], r["mode"]) for r in out]
    assert modes == [("p1", "think"), ("p1", "short"), ("p4", "short"), ("p5", "think")]
    for r in out:
        assert r["completion"].startswith(("<think>", "<short>"))
        assert r["completion"].endswith(tiny_tokenizer.eos_token)
        assert not r["prompt"].endswith(("<think>", "<short>"))
    assert "kept 4" in stats.summary()


def test_too_long_rows_are_dropped_not_truncated(tiny_tokenizer):
    stats = DropStats()
    recs = [{"problem": "p", "answer": "1", "long": "<think>" + "x" * 200 + "</think>\\boxed{1}", "short": "\\boxed{1}"}]
    out = build_sft_rows(recs, tiny_tokenizer, stats, max_length=64)
    assert [r["mode"] for r in out] == ["short"] and stats["too_long"] == 1


def test_load_rows_local_formats(tmp_path):
    rows = [{"q": "a", "x": 1}, {"q": "b", "x": 2}]
    (tmp_path / "r.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "r.json").write_text(json.dumps(rows))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "r.parquet")
    for name in ("r.jsonl", "r.json", "r.parquet"):
        assert load_rows(str(tmp_path / name)) == rows
    assert load_rows(str(tmp_path / "r.jsonl"), limit=1) == rows[:1]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_rows(str(tmp_path / "missing.jsonl"))


def test_load_rows_real_files():
    assert len(load_rows(str(DATA / "math_train.json"))) == 7474
    assert len(load_rows(str(DATA / "gsm8k_test.jsonl"))) == 1319


def test_hub_name_offline_fails_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="could not load dataset 'no-such-org/no-such-set'"):
        load_rows("no-such-org/no-such-set")
