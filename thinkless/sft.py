"""Stage 1, distillation: paired SFT with TRL's ``SFTTrainer`` (``distill.py`` is its Hydra entry point)."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from . import synthetic
from .data import DropStats, build_sft_rows, load_rows, records_from_rows
from .generation import SamplingConfig, make_generator
from .export import save_final_model
from .modeling import check_model_path, load_student
from .report import format_report, mode_report, write_report
from .tracking import init_wandb, log_summary, report_to

logger = logging.getLogger(__name__)

SOURCES = ("synthetic", "paired", "teacher")


def load_paired_records(data_cfg, stats: DropStats, *, out_dir: Path, progress: bool = True) -> list[dict]:
    """Paired records from the configured source (``data.source``)."""
    src = data_cfg.source
    if src == "synthetic":
        recs = synthetic.paired_records(data_cfg.num_problems, list(data_cfg.levels), data_cfg.seed,
                                        data_cfg.get("level_weights"))
        return [r | {"task": "synthetic"} for r in recs]
    if src == "paired":
        rows = load_rows(data_cfg.name, split=data_cfg.get("split", "train"), subset=data_cfg.get("subset"),
                         limit=data_cfg.get("limit"))
        return records_from_rows(rows, dict(data_cfg.fields), stats,
                                 require_answer=data_cfg.get("require_answer", True))
    if src == "teacher":
        from .teachers import generate_pairs

        rows = load_rows(data_cfg.prompts, split=data_cfg.get("split", "train"), limit=data_cfg.get("limit"))
        problems = records_from_rows(rows, dict(data_cfg.fields), stats, require_answer=True)
        gens = {}
        for role in ("long_teacher", "short_teacher"):
            t = data_cfg[role]
            check_model_path(t.model, what=f"data.{role}.model")
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(t.model)
            gen = make_generator(data_cfg.get("backend", "auto"), tokenizer=tok, model_path=t.model,
                                 batch_size=data_cfg.get("batch_size", 64))
            gen.tokenizer = tok
            gens[role] = gen
        sc = lambda t: SamplingConfig(temperature=t.temperature, top_p=t.top_p,  # noqa: E731
                                      max_new_tokens=t.max_new_tokens, n=t.get("n", 1), seed=data_cfg.get("seed", 0))
        return generate_pairs(problems, gens["long_teacher"], gens["short_teacher"],
                              data_cfg.get("out_file") or out_dir / "teacher_pairs.jsonl", stats,
                              long_cfg=sc(data_cfg.long_teacher), short_cfg=sc(data_cfg.short_teacher),
                              batch_size=data_cfg.get("batch_size", 64), instruction=data_cfg.get("instruction"),
                              long_system=data_cfg.long_teacher.get("system"),
                              short_system=data_cfg.short_teacher.get("system"), progress=progress)
    raise ValueError(f"data.source={src!r}: valid choices are {SOURCES}")


def sft_config(cfg: DictConfig, out_dir: Path):
    """TRL ``SFTConfig`` from ``cfg.training`` (any ``SFTConfig`` field), with CPU/GPU precision settled."""
    from trl import SFTConfig

    kw = OmegaConf.to_container(cfg.training.args, resolve=True)
    cuda = torch.cuda.is_available()
    if not cuda:  # TRL defaults to bf16, which raises on CPU
        kw["bf16"] = False
        kw["fp16"] = False
        kw.setdefault("use_cpu", True)
    kw.setdefault("report_to", report_to(cfg.get("wandb")))
    kw.setdefault("seed", cfg.seed)
    return SFTConfig(output_dir=str(out_dir / "checkpoints"), **kw)


def report_problems(cfg: DictConfig, records: list[dict]) -> list[dict]:
    rc = cfg.report
    if cfg.data.source == "synthetic":
        probs = synthetic.make_problems(rc.n_per_level * len(cfg.data.levels), list(cfg.data.levels),
                                        seed=cfg.data.seed + 10_000)  # held out: a different stream
        return [{"problem": p.prompt, "answer": p.answer, "level": p.level, "task": "synthetic"} for p in probs]
    return [r for r in records if r.get("answer") is not None][-rc.n_per_level:]


def run_distill(cfg: DictConfig) -> dict:
    from datasets import Dataset
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTTrainer

    t_start = time.time()
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_model_path(cfg.model.get("path"))  # before any work
    if cfg.data.source not in SOURCES:
        raise ValueError(f"data.source={cfg.data.source!r}: valid choices are {SOURCES}")
    torch.manual_seed(cfg.seed)
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)

    model, tok = load_student(cfg.model, seed=cfg.seed)
    is_main = int(os.environ.get("RANK", "0")) == 0
    run = init_wandb(cfg.get("wandb"), job_type="distill", config=OmegaConf.to_container(cfg, resolve=True),
                     run_dir=str(out_dir)) if is_main else None

    stats = DropStats()
    records = load_paired_records(cfg.data, stats, out_dir=out_dir)
    rows = build_sft_rows(records, tok, stats, system=cfg.model.get("system_prompt"),
                          max_length=cfg.training.args.get("max_length"))
    logger.info("paired data: %s", stats.summary())
    if not rows:
        raise RuntimeError(f"no trainable rows after filtering: {stats.summary()}")
    ds = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])

    args = sft_config(cfg, out_dir)
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    last = get_last_checkpoint(args.output_dir) if Path(args.output_dir).is_dir() else None
    if last:
        logger.info("resuming from %s", last)
    t0 = time.time()
    trainer.train(resume_from_checkpoint=last)
    train_s = time.time() - t0

    result = {"data": dict(stats), "train_seconds": round(train_s, 1), "train_rows": len(rows)}
    final, final_model = save_final_model(trainer, tok, out_dir / "model")  # every rank: ZeRO-3 gathers
    if trainer.is_world_process_zero():
        result["model_dir"] = str(final)
        if cfg.report.n_per_level > 0:
            t1 = time.time()
            rc = cfg.report
            gen = make_generator("hf", model=final_model, tokenizer=tok, batch_size=rc.batch_size)
            rep = mode_report(gen, tok, report_problems(cfg, records), max_new_tokens=rc.max_new_tokens,
                              free_samples=rc.free_samples, free_temperature=rc.free_temperature,
                              seed=cfg.seed, gamma=rc.gamma, system=cfg.model.get("system_prompt"))
            rep["seconds"] = round(time.time() - t1, 1)
            result["report"] = rep
            print(format_report(rep, "distill report"))
        result["total_seconds"] = round(time.time() - t_start, 1)
        print(f"data: {stats.summary()}  train {train_s:.0f}s  total {result['total_seconds']:.0f}s")
        if "report" in result:
            write_report(result["report"], out_dir, "distill_report")
        (out_dir / "distill_result.json").write_text(json.dumps(result, indent=2))
        log_summary(run, result, prefix="distill/")
        if run is not None:
            run.finish()
    return result
