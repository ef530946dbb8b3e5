"""Stage 2, DeGRPO: RL that teaches the distilled student *when* to think (``train.py`` is its entry point)."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from . import synthetic
from .data import DropStats, load_rows, records_from_rows
from .export import hub_callbacks, push_folder, save_final_model, write_model_card
from .modeling import check_model_path, load_checkpoint
from .generation import make_generator
from .report import mode_report, pipeline_table, write_report
from .monitor import ModeUsageCallback, ThinklessRewardFunc, plot_curves, read_metrics
from .reward import REWARD_STATS, gold_is_gradable
from .tracking import init_wandb, log_summary, report_to
from .trainer import DeGRPOConfig, DeGRPOTrainer

logger = logging.getLogger(__name__)

RL_SOURCES = ("synthetic", "math")


def rl_prompts(data_cfg, stats: DropStats) -> list[dict]:
    """RL rows ``{prompt: [user msg], answer, task, level}``; ungradable gold answers are dropped and counted."""
    if data_cfg.source == "synthetic":
        probs = synthetic.make_problems(data_cfg.num_problems, list(data_cfg.levels), data_cfg.seed)
        recs = [{"problem": p.prompt, "answer": p.answer, "level": p.level, "task": "synthetic"} for p in probs]
    elif data_cfg.source == "math":
        rows = load_rows(data_cfg.name, split=data_cfg.get("split", "train"), limit=data_cfg.get("limit"))
        recs = records_from_rows(rows, dict(data_cfg.fields), stats, require_answer=True)
        for r in recs:
            r["task"] = "math"
    else:
        raise ValueError(f"rl_data.source={data_cfg.source!r}: valid choices are {RL_SOURCES}")
    template = data_cfg.get("instruction") or "{problem}"
    out = []
    for r in recs:
        exact = r["task"] == "synthetic"
        if not gold_is_gradable(r["answer"], exact=exact):
            stats["unparseable_gold"] += 1
            continue
        level = r.get("level")
        try:
            level = int(float(level)) if level is not None else -1
        except (TypeError, ValueError):
            level = -1
        out.append({"prompt": [{"role": "user", "content": template.format(problem=r["problem"])}],
                    "answer": str(r["answer"]), "task": r["task"], "level": level})
    stats["kept"] += len(out)
    return out


def grpo_config(cfg: DictConfig, out_dir: Path) -> DeGRPOConfig:
    kw = OmegaConf.to_container(cfg.rl.args, resolve=True)
    if not torch.cuda.is_available():
        kw["bf16"], kw["fp16"] = False, False
        kw.setdefault("use_cpu", True)
        kw["use_vllm"] = False
    kw.setdefault("report_to", report_to(cfg.get("wandb")))
    kw.setdefault("seed", cfg.seed)
    return DeGRPOConfig(output_dir=str(out_dir / "checkpoints"), decoupled=cfg.rl.decoupled,
                        degrpo_alpha=cfg.rl.alpha, response_norm=cfg.rl.response_norm, **kw)


def pipeline_report(cfg: DictConfig, model, tok, out_dir: Path) -> dict:
    """Mode report of the final policy beside the distilled one and the oracle router (synthetic task)."""
    rc = cfg.report
    probs = synthetic.make_problems(rc.n_per_level * len(cfg.rl_data.levels), list(cfg.rl_data.levels),
                                    seed=cfg.rl_data.seed + 20_000)
    problems = [{"problem": p.prompt, "answer": p.answer, "level": p.level, "task": "synthetic"} for p in probs]
    kw = dict(max_new_tokens=rc.max_new_tokens, free_samples=rc.free_samples, free_temperature=rc.free_temperature,
              seed=cfg.seed, gamma=cfg.rl.gamma, progress=False)
    after = mode_report(make_generator("hf", model=model, tokenizer=tok, batch_size=rc.batch_size), tok, problems, **kw)
    base_model, base_tok = load_checkpoint(cfg.model.path)
    before = mode_report(make_generator("hf", model=base_model, tokenizer=base_tok, batch_size=rc.batch_size),
                         base_tok, problems, **kw)
    write_report(before, out_dir, "report_before_rl")
    write_report(after, out_dir, "report_after_rl")
    table, summary = pipeline_table(before, after, cfg.rl.gamma)
    text = (f"### Thinkless pipeline report ({'DeGRPO' if cfg.rl.decoupled else 'coupled GRPO'}, "
            f"{rc.n_per_level} problems/level; free choice: mode token sampled {rc.free_samples}x at "
            f"T={rc.free_temperature}, answers greedy like the forced modes)\n\n{table}\n")
    print(text, flush=True)
    print("targets: " + json.dumps(summary.get("targets", {})), flush=True)
    (out_dir / "pipeline_report.md").write_text(text)
    (out_dir / "pipeline_report.json").write_text(json.dumps(summary, indent=2))
    return summary


def run_train(cfg: DictConfig) -> dict:
    from datasets import Dataset
    from transformers.trainer_utils import get_last_checkpoint

    t_start = time.time()
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_model_path(cfg.model.path)  # before any work
    torch.manual_seed(cfg.seed)
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)

    stats = DropStats()
    rows = rl_prompts(cfg.rl_data, stats)
    logger.info("RL prompts: %s", stats.summary())
    if not rows:
        raise RuntimeError(f"no RL prompts left after filtering: {stats.summary()}")

    model, tok = load_checkpoint(cfg.model.path, dtype=cfg.model.get("dtype", "auto"))
    args = grpo_config(cfg, out_dir)
    is_main = int(os.environ.get("RANK", "0")) == 0
    run = init_wandb(cfg.get("wandb"), job_type="train", config=OmegaConf.to_container(cfg, resolve=True),
                     run_dir=str(out_dir)) if is_main else None

    reward = ThinklessRewardFunc(gamma=cfg.rl.gamma, num_generations=args.num_generations)
    trainer = DeGRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=Dataset.from_list(rows),
                            processing_class=tok, callbacks=[ModeUsageCallback(out_dir), *hub_callbacks(cfg)])
    reward.trainer = trainer
    last = get_last_checkpoint(args.output_dir) if Path(args.output_dir).is_dir() else None
    if last:
        print(f"resuming from {last}", flush=True)
    t0 = time.time()
    trainer.train(resume_from_checkpoint=last)
    train_s = time.time() - t0

    result = {"data": dict(stats), "train_seconds": round(train_s, 1), "steps": trainer.state.global_step,
              "unparseable_gold_at_reward": REWARD_STATS.get("unparseable_gold", 0)}
    final, final_model = save_final_model(trainer, tok, out_dir / "model")  # every rank: ZeRO-3 gathers
    if trainer.is_world_process_zero():
        metrics_path = out_dir / "metrics.jsonl"
        last_log = read_metrics(metrics_path)[-1] if metrics_path.exists() else {}
        usage = {k: v for k, v in last_log.items() if k.startswith("modes/")}
        plot_curves(metrics_path, out_dir, "DeGRPO" if cfg.rl.decoupled else "coupled GRPO")
        info = {"name": cfg.get("run_name"), "base_model": str(cfg.model.path),
                "data": cfg.rl_data.get("name", cfg.rl_data.source),
                "loss": "DeGRPO" if cfg.rl.decoupled else f"coupled GRPO ({args.loss_type})",
                "alpha": cfg.rl.alpha, "gamma": cfg.rl.gamma, "steps": trainer.state.global_step,
                "mode_usage": usage}
        if cfg.report.n_per_level > 0 and cfg.rl_data.source == "synthetic":
            result["report"] = pipeline_report(cfg, final_model, tok, out_dir)
            info["eval"] = {k: v for k, v in result["report"].items() if k != "levels"}
        write_model_card(final, info)
        result["model_dir"] = str(final)
        hub = cfg.get("hub") or {}
        if hub.get("push") or hub.get("dry_run"):
            result["hub"] = push_folder(final, hub.repo_id, private=hub.get("private", True),
                                        revision=hub.get("revision"), dry_run=bool(hub.get("dry_run")))
        result["total_seconds"] = round(time.time() - t_start, 1)
        (out_dir / "train_result.json").write_text(json.dumps(result, indent=2))
        print(f"RL done: {trainer.state.global_step} steps in {train_s:.0f}s; prompts {stats.summary()}; "
              f"model -> {final}", flush=True)
        log_summary(run, result, prefix="train/")
        if run is not None:
            run.finish()
    return result
