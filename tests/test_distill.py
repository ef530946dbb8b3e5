"""distill.py end to end on the tiny model, and the three paired-data sources."""

import json

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from thinkless.data import DropStats
from thinkless.generation import Completion, HFGenerator, SamplingConfig
from thinkless.teachers import generate_pairs
from thinkless.tokens import control_token_ids, generation_prompt

from .helpers import run_distill_cli


def test_checkpoint_loads_with_plain_auto_classes_and_starts_with_a_control_token(distilled):
    model_dir = distilled / "model"
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    ids = control_token_ids(tok)
    assert tok.pad_token_id != tok.eos_token_id
    assert model.generation_config.eos_token_id == tok.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    prompt = generation_prompt(tok, "3 ~ 4 ~ 5 . . . . . . . .")
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
                    "training.args.per_device_train_batch_size=4", "report.n_per_level=0")
    res = json.loads((out / "distill_result.json").read_text())
    assert res["data"] == {"no_answer": 1, "empty_think": 1, "kept": 17}
    assert (out / "model" / "config.json").exists()


class FakeTeacher:
    """Stands in for a generator: answers correctly for even problems, wrongly for odd ones."""

    def __init__(self, tok, long: bool):
        self.tokenizer, self.long, self.calls = tok, long, 0

    def generate(self, prompts, cfg, **kw):
        self.calls += len(prompts)
        out = []
        for p in prompts:
            n = int(p.split("problem ")[1].split()[0])
            ans = n if n % 2 == 0 else n + 1
            text = f"steps</think>\\boxed{{{ans}}}" if self.long else f"\\boxed{{{ans}}}"
            out.append([Completion(text, 5, True)])
        return out


def test_teacher_generation_verifies_writes_incrementally_and_resumes(tmp_path, tiny_tokenizer):
    problems = [{"problem": f"problem {i} here", "answer": str(i)} for i in range(10)]
    out = tmp_path / "pairs.jsonl"
    cfg = SamplingConfig(max_new_tokens=8)
    lt, st = FakeTeacher(tiny_tokenizer, True), FakeTeacher(tiny_tokenizer, False)
    stats = DropStats()
    recs = generate_pairs(problems[:4], lt, st, out, stats, long_cfg=cfg, short_cfg=cfg, batch_size=3,
                          progress=False)
    assert len(out.read_text().splitlines()) == 4
    assert [r["long"] is not None for r in recs] == [True, False, True, False]
    # a torn last line (killed mid-write) is ignored and redone; finished problems are not regenerated
    with out.open("a") as f:
        f.write('{"index": 4, "probl')
    lt2, st2 = FakeTeacher(tiny_tokenizer, True), FakeTeacher(tiny_tokenizer, False)
    stats = DropStats()
    recs = generate_pairs(problems, lt2, st2, out, stats, long_cfg=cfg, short_cfg=cfg, batch_size=3, progress=False)
    assert lt2.calls == 6 and st2.calls == 6
    assert len(recs) == 10 and stats["unverified_long"] == 5 and stats["unverified_short"] == 5
    assert recs[0]["long"] == "steps</think>\\boxed{0}"


def test_teacher_generation_with_real_hf_generate(tmp_path, tiny_tokenizer):
    from thinkless.synthetic import build_tiny_model

    model = build_tiny_model(len(tiny_tokenizer), hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1,
                             intermediate_size=64)
    gen = HFGenerator(model, tiny_tokenizer, batch_size=4)
    gen.tokenizer = tiny_tokenizer
    stats = DropStats()
    problems = [{"problem": "1~2..........", "answer": "3"}, {"problem": "4~4..........", "answer": "8"}]
    cfg = SamplingConfig(max_new_tokens=6, temperature=1.0)
    recs = generate_pairs(problems, gen, gen, tmp_path / "p.jsonl", stats, long_cfg=cfg, short_cfg=cfg,
                          progress=False)
    # a random model verifies nothing: every response dropped and counted, no crash
    assert len(recs) == 2 and stats["unverified_long"] == 2 and stats["unverified_short"] == 2
