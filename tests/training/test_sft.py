"""Stage 1 (thinkless/training/sft.py): distill.py end to end on the tiny model, its data sources and its report."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from thinkless.format import render_prompt
from thinkless.tokens import control_token_ids

from ..helpers import run_distill_cli


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
    assert res["data"] == {"no_answer": 1, "think_missing": 1, "kept": 17}
    assert (out / "model" / "config.json").exists()
    # issue 38, case 5: long responses without </think> lost the think mode and the run exited 0 (short-only)
    for r in rows:
        r["r1"] = r["r1"].replace("</think>", "\n")
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "unclosed"
    proc = run_distill_cli(out, "data=paired", f"data.name={f}", "data.fields.problem=question",
                           "data.fields.answer=gold", "data.fields.long=r1", "data.fields.short=qwen",
                           "training.args.max_steps=2", "training.args.per_device_train_batch_size=4",
                           "report.enabled=false", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "data.fields.long: 8 of 9 think rows cannot be trained (think_unclosed 8, think_missing 1)" in proc.stderr
    assert "E.g. think_unclosed: problem '0~0..........': r1 = '<think>0~0=0" in proc.stderr
    assert not (out / "checkpoints").exists() and not (out / "distill_result.json").exists()




def test_flat_warm_up_data_through_the_distill_experiment(tmp_path):
    """`distill.py +experiment=distill data.name=<flat JSONL>` builds its rows from that file (R1's tokenizer, the
    official layout), then a CPU run of the same data on the tiny model, packed with TRL's own packing."""
    from hydra import compose, initialize_config_dir
    from transformers import AutoTokenizer

    from thinkless import add_control_tokens
    from thinkless.tasks.data import DropStats
    from thinkless.training.sft import sft_rows

    from ..conftest import R1, ROOT

    flat = ROOT / "tests" / "data" / "flat_warmup.jsonl"
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="distill", overrides=["+experiment=distill", f"data.name={flat}",
                                                        "data.num_proc=null"])
    tok = AutoTokenizer.from_pretrained(R1)
    add_control_tokens(tok)
    stats = DropStats()
    rows = sft_rows(cfg, tok, stats, out_dir=tmp_path).to_list()
    assert stats["kept"] == len(rows) == 36 and stats["no_control_token"] == 1 and stats["bad_json_line"] == 1
    assert rows[0]["prompt"].endswith("<｜User｜>3 ~ 4 . . . . . . . . . .<｜Assistant｜>")
    assert rows[1]["completion"] == "<short>\nThe answer is \\boxed{7}.<｜end▁of▁sentence｜>"
    out = tmp_path / "run"
    run_distill_cli(out, "+experiment=distill", f"data.name={flat}", "model=tiny", "data.num_proc=null",
                    "training.args.max_steps=2", "training.args.max_length=256", "training.args.bf16=false",
                    "training.args.gradient_checkpointing=false", "training.args.dataloader_num_workers=0",
                    "training.args.per_device_train_batch_size=2", "training.args.gradient_accumulation_steps=1",
                    "training.args.save_strategy=no", "report.enabled=false")
    res = json.loads((out / "distill_result.json").read_text())
    assert res["train_rows"] == 36 and res["rows_by_mode"] == {"think": 18, "short": 18}


def test_packing_keeps_samples_apart(tiny_tokenizer):
    """TRL's best-fit packing (padding-free, position ids restarting per sample): the loss of a packed batch equals
    the loss of the same samples padded, so no token attends across samples (sdpa, as on a GPU without flash-attn)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from thinkless.tasks.synthetic import build_tiny_model, paired_records

    recs = paired_records(6, [1, 3, 6], seed=2)
    rows = [{"prompt": render_prompt(tiny_tokenizer, r["problem"]), "completion": r[m] + tiny_tokenizer.eos_token}
            for r in recs for m in ("long", "short")]
    losses = []
    for packing in (False, True):
        model = build_tiny_model(len(tiny_tokenizer), seed=0, eos_token_id=tiny_tokenizer.eos_token_id,
                                 pad_token_id=tiny_tokenizer.pad_token_id)
        args = SFTConfig(output_dir="/tmp/thinkless-packing", per_device_train_batch_size=12, packing=packing,
                         max_length=2048, use_cpu=True, bf16=False, report_to=[], shuffle_dataset=False,
                         dataloader_drop_last=False)
        tr = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tiny_tokenizer)
        batch = next(iter(tr.get_train_dataloader()))
        if packing:
            assert batch["input_ids"].shape[0] == 1 and "position_ids" in batch  # one packed row
        with torch.no_grad():
            out = model(**{k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "position_ids")})
        labels = batch["labels"]
        logp = torch.log_softmax(out.logits[:, :-1].float(), -1)
        tgt = labels[:, 1:]
        m = tgt != -100
        losses.append(float(-(logp.gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1)[m]).mean()))
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)


def test_length_buckets_give_trls_loss_gradient_and_logged_means(tiny_tokenizer, monkeypatch, tmp_path):
    """training.args.length_bucket_rows: TRL's loss summed over buckets of similar length (each normalised by the whole
    batch's tokens) is TRL's loss of the padded batch, with its gradient, and the batch logs one token-weighted
    entropy and accuracy, TRL's own."""
    from datasets import Dataset
    from trl import SFTTrainer

    from thinkless.tasks.synthetic import build_tiny_model, paired_records
    from thinkless.training.sft import DistillConfig, DistillTrainer

    recs = paired_records(6, [1, 3, 6], seed=2)
    rows = [{"prompt": render_prompt(tiny_tokenizer, r["problem"]), "completion": r[m] + tiny_tokenizer.eos_token}
            for r in recs for m in ("long", "short")]
    calls = []
    real = SFTTrainer.compute_loss
    monkeypatch.setattr(SFTTrainer, "compute_loss", lambda self, model, inputs, *a, **kw: (
        calls.append(inputs["input_ids"].shape), real(self, model, inputs, *a, **kw))[1])
    got = {}
    for n in (0, 4):
        model = build_tiny_model(len(tiny_tokenizer), seed=0, eos_token_id=tiny_tokenizer.eos_token_id,
                                 pad_token_id=tiny_tokenizer.pad_token_id)
        args = DistillConfig(output_dir=str(tmp_path / str(n)), per_device_train_batch_size=12, max_length=2048,
                             use_cpu=True, bf16=False, report_to=[], shuffle_dataset=False, length_bucket_rows=n,
                             gradient_checkpointing=False)  # TRL's default is on: TRL's own loss then
        tr = DistillTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                            processing_class=tiny_tokenizer)
        batch = next(iter(tr.get_train_dataloader()))
        model.train()
        calls.clear()
        loss = tr.compute_loss(model, dict(batch), num_items_in_batch=(batch["labels"][:, 1:] != -100).sum())
        loss.backward()
        got[n] = (loss.item(), torch.cat([p.grad.flatten() for p in model.parameters()]),
                  {k: tr._metrics["train"][k] for k in ("entropy", "mean_token_accuracy")}, list(calls))
    (l0, g0, m0, c0), (l4, g4, m4, c4) = got[0], got[4]
    assert len(c0) == 1 and len(c4) == 3 and max(s[1] for s in c4) == c0[0][1] > min(s[1] for s in c4)  # cut
    assert l4 == pytest.approx(l0, rel=1e-5) and torch.allclose(g4, g0, atol=1e-6, rtol=1e-4)
    for k in m0:
        assert len(m0[k]) == len(m4[k]) == 1 and m4[k][0] == pytest.approx(m0[k][0], rel=1e-5), k
    # a real step: the Trainer hands compute_loss the batch's token count, so the buckets run; packed rows (one row,
    # no attention mask) take TRL's own loss
    for packing, n_calls in ((False, 3), (True, 1)):
        model = build_tiny_model(len(tiny_tokenizer), seed=0, eos_token_id=tiny_tokenizer.eos_token_id,
                                 pad_token_id=tiny_tokenizer.pad_token_id)
        args = DistillConfig(output_dir=str(tmp_path / f"step{packing}"), per_device_train_batch_size=12, max_steps=1,
                             max_length=2048, use_cpu=True, bf16=False, report_to=[], shuffle_dataset=False,
                             length_bucket_rows=4, packing=packing, save_strategy="no", disable_tqdm=True,
                             gradient_checkpointing=False)
        tr = DistillTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                            processing_class=tiny_tokenizer)
        calls.clear()
        tr.train()
        assert len(calls) == n_calls, packing


def shared_rows(tok):
    """Paired rows (a think and a short answer per prompt) whose prompts differ in length (half of them carry a
    preamble), and one prompt asked once."""
    from thinkless.tasks.synthetic import paired_records

    recs = paired_records(6, [1, 3, 6], seed=2)
    rows = [{"prompt": render_prompt(tok, ("Fold it. " if i % 2 else "") + r["problem"]),
             "completion": r[m] + tok.eos_token} for i, r in enumerate(recs) for m in ("long", "short")]
    return rows + [{"prompt": render_prompt(tok, "1 ~ 2"), "completion": recs[0]["short"] + tok.eos_token}]


def distill_trainer(tok, out, **kw):
    from datasets import Dataset

    from thinkless.tasks.synthetic import build_tiny_model
    from thinkless.training.sft import DistillConfig, DistillTrainer

    model = build_tiny_model(len(tok), seed=0, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    args = DistillConfig(output_dir=str(out), per_device_train_batch_size=6, max_length=2048, use_cpu=True, bf16=False,
                         report_to=[], gradient_checkpointing=False, save_strategy="no", disable_tqdm=True, **kw)
    return DistillTrainer(model=model, args=args, train_dataset=Dataset.from_list(shared_rows(tok)),
                          processing_class=tok)


def test_shared_prompts_batch_a_prompts_rows_together_in_a_seeded_order(tiny_tokenizer, tmp_path):
    """training.args.share_prompts: a prompt's rows come one after the other, the groups shuffled by the seed and
    the epoch (a resumed run sees the same order), every row once an epoch."""
    from thinkless.training.shared_prompts import PromptGroups

    tr = distill_trainer(tiny_tokenizer, tmp_path, share_prompts=True, seed=3)
    sampler = tr._get_train_sampler()
    assert isinstance(sampler, PromptGroups) and len(sampler) == 13
    prompts = [r["prompt"] for r in shared_rows(tiny_tokenizer)]
    order = list(sampler)
    assert sorted(order) == list(range(13))
    runs = [prompts[i] for i in order]
    assert all(runs[k] == runs[k + 1] for k in range(0, 12) if order[k] < 12 and order[k] % 2 == 0
               and order[k + 1] == order[k] + 1)
    assert sum(runs[k] == runs[k + 1] for k in range(12)) == 6  # six pairs adjacent, the single row alone
    assert list(sampler) == order  # seeded: the same order again
    sampler.set_epoch(1)
    assert list(sampler) != order
    assert list(distill_trainer(tiny_tokenizer, tmp_path, share_prompts=True, seed=3)._get_train_sampler()) == order
    assert list(distill_trainer(tiny_tokenizer, tmp_path, share_prompts=True, seed=4)._get_train_sampler()) != order
    # runs of consecutive rows, not every row of a prompt: a prompt several problems share stays in several groups
    assert PromptGroups(["a", "a", "b", "a", "a", "a"], 0).groups == [[0, 1], [2], [3, 4, 5]]
    batch = next(iter(tr.get_train_dataloader()))  # the Trainer's dataloader reads it: whole pairs per batch
    assert len({tuple(r) for r in batch["input_ids"].tolist()}) <= 6


def test_shared_prompts_give_trls_loss_gradient_and_metrics(tiny_tokenizer, tmp_path, monkeypatch):
    """A batch's loss with each distinct prompt computed once (score_sft_shared, prompts of several lengths at their
    own positions) is TRL's loss of the padded batch, with its gradient and logged entropy and token accuracy; the
    prompt pass runs each prompt once."""
    from thinkless.training import shared_prompts

    shared = distill_trainer(tiny_tokenizer, tmp_path / "s", share_prompts=True)
    batch = next(iter(shared.get_train_dataloader()))
    lengths = (batch["labels"] != -100).int().argmax(1)
    assert len(set(lengths.tolist())) > 1  # prompts of two lengths in the batch
    calls = []
    real = shared_prompts.score_sft_shared
    monkeypatch.setattr("thinkless.training.sft.score_sft_shared",
                        lambda *a, **kw: (calls.append(1), real(*a, **kw))[1])
    got = {}
    for name, tr in (("trl", distill_trainer(tiny_tokenizer, tmp_path / "t")), ("shared", shared)):
        tr.model.train()
        n_items = (batch["labels"][:, 1:] != -100).sum()
        loss = tr.compute_loss(tr.model, dict(batch), num_items_in_batch=n_items)
        loss.backward()
        got[name] = (loss.item(), torch.cat([p.grad.flatten() for p in tr.model.parameters()]),
                     {k: tr._metrics["train"][k][-1] for k in ("entropy", "mean_token_accuracy")})
    assert calls == [1]  # the shared trainer's loss only
    (l0, g0, m0), (l1, g1, m1) = got["trl"], got["shared"]
    assert l1 == pytest.approx(l0, rel=1e-5) and torch.allclose(g1, g0, atol=1e-6, rtol=1e-4) and g0.abs().sum() > 0
    for k in m0:
        assert m1[k] == pytest.approx(m0[k], rel=1e-5), k
    out = real(shared.model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    ref = shared.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"],
                       fused_lm_head=True)
    assert out.log_probs.shape == ref.log_probs.shape and torch.allclose(out.log_probs, ref.log_probs, atol=1e-5)
    assert torch.equal(out.label_mask, ref.label_mask) and torch.equal(out.is_top1, ref.is_top1)
    # rows that share nothing, or a one-token prompt: TRL's forward (None)
    single = slice(0, 1)
    assert real(shared.model, batch["input_ids"][single], batch["attention_mask"][single],
                batch["labels"][single]) is None


def test_a_real_distillation_step_shares_its_prompts_and_the_setting_is_checked(tiny_tokenizer, tmp_path, monkeypatch):
    from thinkless.training import shared_prompts
    from thinkless.training.sft import DistillConfig, check_distill
    from omegaconf import OmegaConf

    calls = []
    real = shared_prompts.score_sft_shared
    monkeypatch.setattr("thinkless.training.sft.score_sft_shared", lambda *a, **kw: (calls.append(1), real(*a, **kw))[1])
    tr = distill_trainer(tiny_tokenizer, tmp_path, share_prompts=True, max_steps=2)
    tr.train()
    assert len(calls) == 2 and tr.state.log_history[-1]["train_loss"] > 0
    with pytest.raises(ValueError, match=r"training.args.share_prompts=true with training.args.length_bucket_rows=4"):
        DistillConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, share_prompts=True, length_bucket_rows=4)
    with pytest.raises(ValueError, match=r"share_prompts=true with training.args.train_sampling_strategy='group_by_"):
        DistillConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, share_prompts=True,
                      train_sampling_strategy="group_by_length")
    with pytest.raises(ValueError, match=r"training.args.share_prompts='yes': expected true or false"):
        DistillConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, share_prompts="yes")
    cfg = OmegaConf.create({"model": {"path": None}, "data": {"source": "synthetic"}, "hub": None,
                            "training": {"args": {"share_prompts": True, "length_bucket_rows": 8}}})
    with pytest.raises(ValueError, match=r"one way to score a batch"):
        check_distill(cfg)  # before any work
    cfg.training.args = {"share_prompts": True, "train_sampling_strategy": "sequential"}
    with pytest.raises(ValueError, match=r"train_sampling_strategy='sequential': share_prompts orders the rows"):
        check_distill(cfg)


def test_the_distill_config_writes_traces_at_several_lengths_and_states_each(tiny_tokenizer, tmp_path):
    """data.max_trace reaches the synthetic source's teachers through distill.py's config (sft_rows), and with
    data.budget_prompts each row's prompt states its own trace's length: one level, many lengths; off, one."""
    import re

    from hydra import compose, initialize_config_dir

    from thinkless.tasks.data import DropStats
    from thinkless.training.sft import sft_rows

    from ..conftest import ROOT

    def lengths(*overrides):
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose(config_name="distill", overrides=["data.num_problems=120", "data.levels=[2]",
                                                            "data.level_weights=null", "data.budget_prompts=1.0",
                                                            *overrides])
        rows = sft_rows(cfg, tiny_tokenizer, DropStats(), out_dir=tmp_path).to_list()
        think = [r for r in rows if r["mode"] == "think"]
        stated = [int(re.search(r"Think for (\d+) tokens\.", r["prompt"]).group(1)) for r in think]
        assert stated == [len(r["labels"]) - r["labels"].count(-100) for r in think]  # each states its own
        return set(stated)

    assert lengths() == {18}  # a level-2 trace's one length, control token and EOS counted
    assert lengths("data.max_trace=36") == set(range(18, 47, 2))
