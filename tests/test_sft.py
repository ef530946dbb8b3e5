"""Stage 1 (thinkless/sft.py): distill.py end to end on the tiny model, its data sources and its report."""

import json

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from thinkless.format import render_prompt
from thinkless.tokens import control_token_ids

from .helpers import run_distill_cli


def test_checkpoint_loads_with_plain_auto_classes_and_starts_with_a_control_token(distilled):
    model_dir = distilled / "model"
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    ids = control_token_ids(tok)
    assert tok.pad_token_id != tok.eos_token_id
    assert model.generation_config.eos_token_id == tok.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    prompt = render_prompt(tok, "3 ~ 4 ~ 5 . . . . . . . .")
    assert prompt.endswith("assistant\n")
    enc = tok(prompt, return_tensors="pt", add_special_tokens=False)
    torch.manual_seed(0)
    out = model.generate(**enc, max_new_tokens=40, do_sample=True, num_return_sequences=8,
                         pad_token_id=tok.pad_token_id)
    first = out[:, enc["input_ids"].shape[1]].tolist()
    assert all(t in (ids.think, ids.short) for t in first)
    texts = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert all(t.startswith(("<think>", "<short>")) for t in texts)


def test_report_and_counts_are_written(distilled):
    rep = json.loads((distilled / "distill_report.json").read_text())
    assert set(rep["per_level"]) == {str(lv) for lv in range(1, 7)}
    for r in rep["per_level"].values():
        assert r["n"] == 10 and 0 <= r["free_think_ratio"] <= 1 and r["think_tokens"] > r["short_tokens"]
    res = json.loads((distilled / "distill_result.json").read_text())
    assert res["data"]["kept"] == res["train_rows"] == 4000
    assert "| level |" in (distilled / "distill_report.md").read_text()


def test_paired_file_source_drops_and_counts(tmp_path):
    rows = [{"question": f"{i}~{i}..........", "gold": str(min(2 * i, 19 - 2 * i)),
             "r1": f"<think>{i}~{i}={min(2 * i, 19 - 2 * i)}\n</think>\\boxed{{{min(2 * i, 19 - 2 * i)}}}",
             "qwen": f"\\boxed{{{min(2 * i, 19 - 2 * i)}}}"} for i in range(10)]
    rows[3]["gold"] = ""          # no answer: dropped
    rows[5]["r1"] = ""            # empty long response: that row only
    f = tmp_path / "pairs.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    run_distill_cli(out, "data=paired", f"data.name={f}", "data.fields.problem=question", "data.fields.answer=gold",
                    "data.fields.long=r1", "data.fields.short=qwen", "training.args.max_steps=2",
                    "training.args.per_device_train_batch_size=4", "report.enabled=false")
    res = json.loads((out / "distill_result.json").read_text())
    assert res["data"] == {"no_answer": 1, "empty_think": 1, "kept": 17}
    assert (out / "model" / "config.json").exists()


