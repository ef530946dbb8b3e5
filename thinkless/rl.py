"""Stage 2, DeGRPO: RL that teaches the distilled student *when* to think (``train.py`` is its entry point)."""

from __future__ import annotations

import json
import logging

import torch
from omegaconf import DictConfig

from . import synthetic
from .checkpoints import save_final_model
from .checks import warn
from .data import DropStats, load_rows, records_from_rows
from .evaluation.benchmarks import load_benchmark
from .format import messages, render_prompt
from .grading import gold_is_gradable
from .hub import hub_callbacks, push_folder, write_model_card
from .modeling import check_model_path, load_checkpoint
from .monitor import RL_KEYS, MetricsLogCallback, read_metrics
from .report import mode_report, pipeline_table, write_report
from .reward import ThinklessReward, reward_schedule, reward_values
from .stage import finish_stage, start_stage, train, trainer_args

logger = logging.getLogger(__name__)

RL_SOURCES = ("synthetic", "math")


def rl_prompts(data_cfg, stats: DropStats, *, instruction: str | None = None, system: str | None = None,
               validation: bool = False, tokenizer=None) -> list[dict]:
    """RL rows ``{prompt: [messages], answer, task, level}``; ungradable gold answers are dropped and counted, and so
    are prompts longer than ``data_cfg.max_prompt_tokens`` (rendered with ``tokenizer``'s chat template).

    ``validation``: read ``data_cfg.validation`` (a benchmark config) instead of the training source.
    """
    if validation:
        bench = load_benchmark("validation", data_cfg.validation, data_dir=data_cfg.get("data_dir"))
        recs = [{"problem": p.problem, "answer": p.answer, "level": p.level,
                 "task": "synthetic" if bench.exact else "math"} for p in bench.problems]
    elif data_cfg.source == "synthetic":
        probs = synthetic.make_problems(data_cfg.num_problems, list(data_cfg.levels), data_cfg.seed,
                                        data_cfg.get("level_weights"))
        recs = [{"problem": p.prompt, "answer": p.answer, "level": p.level, "task": "synthetic"} for p in probs]
    elif data_cfg.source == "math":
        rows = load_rows(data_cfg.name, split=data_cfg.get("split", "train"), limit=data_cfg.get("limit"),
                         stats=stats, fields=dict(data_cfg.fields))
        recs = records_from_rows(rows, dict(data_cfg.fields), stats, require_answer=True, what="rl_data.fields")
        for r in recs:
            r["task"] = "math"
    else:
        raise ValueError(f"rl_data.source={data_cfg.source!r}: valid choices are {RL_SOURCES}")
    out = []
    limit = data_cfg.get("max_prompt_tokens")
    if limit and tokenizer is None:
        raise ValueError("rl_data.max_prompt_tokens needs the tokenizer to measure prompts")
    for r in recs:
        if not gold_is_gradable(r["answer"], exact=r["task"] == "synthetic"):
            stats["unparseable_gold"] += 1
            continue
        if limit and len(tokenizer(render_prompt(tokenizer, r["problem"], instruction=instruction, system=system),
                                   add_special_tokens=False)["input_ids"]) > limit:
            stats["prompt_too_long"] += 1
            continue
        level = r.get("level")
        try:
            level = int(float(level)) if level is not None else -1
        except (TypeError, ValueError):
            level = -1
        out.append({"prompt": messages(r["problem"], instruction=instruction, system=system),
                    "answer": str(r["answer"]) if not isinstance(r["answer"], list) else r["answer"],
                    "task": r["task"], "level": level})
    stats["kept"] += len(out)
    return out


def check_vllm(args) -> None:
    """``use_vllm=True`` runs vLLM or fails saying why, before any work (never a silent fallback to HF)."""
    from .generation import vllm_available

    if not vllm_available():
        raise RuntimeError("rl.args.use_vllm=true but vLLM is not installed: pip install 'thinkless[vllm]' on a GPU "
                           "machine (bash scripts/setup.sh installs vLLM's CPU build); or rl.args.use_vllm=false")
    if not torch.cuda.is_available():
        if args.vllm_mode != "colocate":
            raise ValueError(f"rl.args.vllm_mode={args.vllm_mode!r} on a CPU: the server mode syncs weights over "
                             "NCCL, which needs GPUs; use rl.args.vllm_mode=colocate")
        if args.vllm_enable_sleep_mode:
            raise ValueError("rl.args.vllm_enable_sleep_mode=true: vLLM's CPU build has no sleep mode")


def run_label(cfg: DictConfig) -> str:
    return "DeGRPO" if cfg.rl.decoupled else f"coupled GRPO ({cfg.rl.args.get('loss_type', 'grpo')})"


def card_info(cfg: DictConfig, reward: ThinklessReward) -> dict:
    """Model-card fields known before training (steps and mode usage are added at the end)."""
    v = reward.values
    return {"name": cfg.get("run_name"), "base_model": str(cfg.model.path),
            "data": cfg.rl_data.get("name", cfg.rl_data.source), "loss": run_label(cfg), "alpha": cfg.rl.alpha,
            "gamma": round(v.gamma, 6), "rewards": {**v.__dict__, "schedule": [
                {"after_step": e.after_step, **e.values} for e in reward.schedule]}}


def pipeline_report(cfg: DictConfig, model, tok, stage, reward: ThinklessReward) -> dict:
    """Mode report of the final policy beside the distilled one and the oracle router (synthetic task)."""
    from .evaluation.runner import model_stamp
    from .generation import HFGenerator

    rc, out_dir = cfg.report, stage.out_dir
    bench = load_benchmark("report", rc.benchmark)
    values = reward.values_at(10**12)  # the values the policy was trained towards last
    kw = dict(max_new_tokens=rc.max_new_tokens, free_samples=rc.free_samples, free_temperature=rc.free_temperature,
              seed=cfg.seed, rewards=values, system=cfg.prompt.system,
              instruction=rc.benchmark.get("instruction") or cfg.prompt.instruction)
    after = mode_report(HFGenerator(model, tok, rc.batch_size), tok, bench, out_dir / "report" / "after_rl",
                        model=model_stamp(out_dir / "model"), biases=list(rc.get("threshold_biases") or []), **kw)
    base_model, base_tok = load_checkpoint(cfg.model.path)
    before = mode_report(HFGenerator(base_model, base_tok, rc.batch_size), base_tok, bench,
                         out_dir / "report" / "before_rl", model=model_stamp(cfg.model.path), **kw)
    write_report(before, out_dir, "report_before_rl")
    write_report(after, out_dir, "report_after_rl")
    table, summary = pipeline_table(before, after, values)
    text = (f"### Thinkless pipeline report ({run_label(cfg)}, {bench.name}: {len(bench.problems)} problems; free "
            f"choice: mode token sampled {rc.free_samples}x at T={rc.free_temperature}, answers greedy like the "
            f"forced modes; rewards {values.__dict__})\n\n{table}\n")
    print(text, flush=True)
    print("targets: " + json.dumps(summary.get("targets", {})), flush=True)
    (out_dir / "pipeline_report.md").write_text(text)
    (out_dir / "pipeline_report.json").write_text(json.dumps(summary, indent=2))
    summary["threshold"] = after["threshold"]
    summary["threshold_benchmark"] = f"{bench.name} ({len(bench.problems)} problems, {bench.source})"
    return summary


def run_train(cfg: DictConfig) -> dict:
    from datasets import Dataset

    check_model_path(cfg.model.path)  # before any work
    stage = start_stage(cfg, "train", config_cls="thinkless.trainer:DeGRPOConfig")
    if cfg.rl.alpha < 0:  # legal, but it pushes the mode decision away from the better-paid mode
        warn("rl.alpha", cfg.rl.alpha, "negative: the control-token term then trains the mode token away from "
             "the mode that earned more reward (α > 0; the paper uses 1e-3)")
    from .trainer import DeGRPOConfig, DeGRPOTrainer  # after start_stage: TRL imports vLLM, which logs at import
    model, tok = load_checkpoint(cfg.model.path, dtype=cfg.model.get("dtype", "auto"))
    stats = DropStats()
    rows = rl_prompts(cfg.rl_data, stats, instruction=cfg.prompt.instruction, system=cfg.prompt.system, tokenizer=tok)
    logger.info("RL prompts: %s", stats.summary())
    if not rows:
        raise RuntimeError(f"no RL prompts left after filtering: {stats.summary()}")
    val_rows, no_val = None, {}
    if cfg.rl_data.get("validation") is None or cfg.rl.args.get("eval_strategy", "no") == "no":
        no_val = {"eval_strategy": "no", "eval_on_start": False}  # validation off: rl_data.validation=null
    else:
        val_stats = DropStats()
        val_rows = rl_prompts(cfg.rl_data, val_stats, instruction=cfg.prompt.instruction, system=cfg.prompt.system,
                              validation=True, tokenizer=tok)
        logger.info("validation prompts: %s", val_stats.summary())
    reward = ThinklessReward(reward_values(cfg.rl.rewards), reward_schedule(cfg.rl.get("reward_schedule")),
                             timeout=float(cfg.rl.get("grading_timeout", 5.0)))
    args = trainer_args(DeGRPOConfig, cfg.rl.args, stage, decoupled=cfg.rl.decoupled, degrpo_alpha=cfg.rl.alpha,
                        response_norm=cfg.rl.response_norm, **no_val)
    info = card_info(cfg, reward)
    if stage.changes:
        info["resumed_with_changes"] = stage.changes
    callbacks = [MetricsLogCallback(stage.out_dir, RL_KEYS, title=run_label(cfg), plot=True),
                 *hub_callbacks(cfg.get("hub"), info)]
    if args.use_vllm:
        check_vllm(args)
    trainer = DeGRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=Dataset.from_list(rows),
                            eval_dataset=Dataset.from_list(val_rows) if val_rows else None, processing_class=tok,
                            callbacks=callbacks)
    if args.use_vllm and not torch.cuda.is_available():
        from .vllm_cpu import use_cpu_weight_sync

        use_cpu_weight_sync(trainer)
    train_s = train(trainer)

    history = trainer.state.log_history
    result = {"data": dict(stats), "train_seconds": round(train_s, 1), "steps": trainer.state.global_step,
              "ungradable_gold_frac_at_reward": _weighted_mean(history, "rewards/ungradable_gold_frac")}
    final, final_model = save_final_model(trainer, tok, stage.out_dir / "model")  # every rank: ZeRO-3 gathers
    if stage.is_main:
        metrics_path = stage.out_dir / "metrics.jsonl"
        last = next((r for r in reversed(read_metrics(metrics_path)) if "modes/think_ratio" in r), {}) \
            if metrics_path.exists() else {}
        info.update(steps=trainer.state.global_step,
                    mode_usage={k: v for k, v in last.items() if k.startswith("modes/")})
        if cfg.report.enabled:
            result["report"] = pipeline_report(cfg, final_model, tok, stage, reward)
            info["eval"] = {k: v for k, v in result["report"].items()
                            if k not in ("levels", "threshold", "threshold_benchmark")}
            info["threshold"] = result["report"].get("threshold")
            info["threshold_benchmark"] = result["report"].get("threshold_benchmark")
        write_model_card(final, info)
        result["model_dir"] = str(final)
        hub = cfg.get("hub") or {}
        if hub.get("push") or hub.get("dry_run"):
            result["hub"] = push_folder(final, hub.repo_id, private=hub.get("private", True),
                                        revision=hub.get("revision"), dry_run=bool(hub.get("dry_run")))
        print(f"RL done: {trainer.state.global_step} steps in {train_s:.0f}s; prompts {stats.summary()}; "
              f"model -> {final}", flush=True)
    return finish_stage(stage, result, "train")


def _weighted_mean(history: list[dict], key: str) -> float | None:
    """Mean of a per-step rate over the run's log lines, each weighted by the steps it covers (resume-safe)."""
    tot = weight = 0.0
    prev = 0
    for rec in history:
        if key in rec and rec[key] is not None:
            w = max(1, rec["step"] - prev)
            tot, weight = tot + w * rec[key], weight + w
        if "step" in rec and key in rec:
            prev = rec["step"]
    return tot / weight if weight else None
