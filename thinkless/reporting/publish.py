"""After training, on the main process: the reports, the model card and the Hub push, from what training returned.

``sft.run_distill`` and ``rl.run_train`` train and save the final model; they return a ``Trained``
(``thinkless.training.loop``). The entry points then call ``publish_distill`` / ``publish_train``, which read it (and
the run's ``metrics.jsonl``), write the reports and the card into the run folder, push when ``hub.push`` or
``hub.dry_run`` asks, and return the stage's result for ``finish_stage``. Other processes publish nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from ..evaluation.benchmarks import load_benchmark, stated
from ..generation import make_generator
from ..modeling import load_checkpoint
from ..reward import reward_values
from ..runs.fingerprint import model_stamp
from .hub import push_folder, write_model_card
from .monitor import read_metrics
from .report import format_report, mode_report, pipeline_table, write_report


def report_dir(run_dir) -> Path:
    """Where a stage's mode reports keep their generations: ``<output_dir>/report`` (the distill report's is what
    the pipeline report's before-RL columns copy)."""
    return Path(run_dir) / "report"


def publish_distill(cfg: DictConfig, stage, trained) -> dict:
    """The distill report (accuracy and length per level x forced mode, free-choice think ratio), the warm-up
    model's card and its push; the stage's result (``<output_dir>/distill_result.json`` once finished)."""
    result, info = trained.result, trained.card
    if not stage.is_main:
        return result
    final, rc = trained.model_dir, cfg.report
    if rc.enabled:
        tok = trained.tokenizer
        bench = load_benchmark("report", rc.benchmark, data_dir=rc.get("data_dir"))
        rep = mode_report(make_generator("hf", model=trained.model, tokenizer=tok, batch_size=rc.batch_size), tok,
                          bench, report_dir(stage.out_dir), max_new_tokens=rc.max_new_tokens,
                          free_samples=rc.free_samples, free_temperature=rc.free_temperature, seed=cfg.seed,
                          rewards=reward_values(rc.get("rewards")),
                          instruction=rc.benchmark.get("instruction") or cfg.prompt.instruction,
                          system=cfg.prompt.system, model=model_stamp(final))
        result["report"] = {k: v for k, v in rep.items() if k != "evaluation"}
        write_report(rep, stage.out_dir, "distill_report", bench.kind)
        print(format_report(rep, "distill report", bench.kind), flush=True)
        info["report_md"] = format_report(rep, f"mode report ({bench.name})", bench.kind)
    write_model_card(final, {**info, "steps": trained.steps})
    push(cfg, final, result, commit_message="Upload Thinkless warm-up model")
    print(f"data: {trained.stats.summary()}  train {trained.train_seconds:.0f}s", flush=True)
    return result


def publish_train(cfg: DictConfig, stage, trained) -> dict:
    """The RL run's budget summary, the pipeline report (``pipeline_report``), the policy's card (mode usage at the
    last logged step of ``metrics.jsonl``) and its push; the stage's result (``<output_dir>/train_result.json``)."""
    result, info = trained.result, trained.card
    if not stage.is_main:
        return result
    final, budget = trained.model_dir, trained.budget
    metrics_path = stage.out_dir / "metrics.jsonl"
    last = next((r for r in reversed(read_metrics(metrics_path)) if "modes/think_ratio" in r), {}) \
        if metrics_path.exists() else {}
    info.update(steps=trained.steps, mode_usage={k: v for k, v in last.items() if k.startswith("modes/")})
    if budget is not None:
        result["budget"] = info["budget"] = {**budget.card(), "final_cost": last.get("budget/cost")}
    if cfg.report.enabled:
        result["report"] = pipeline_report(cfg, trained.model, trained.tokenizer, stage, trained.objective)
        info["eval"] = {k: v for k, v in result["report"].items()
                        if k not in ("levels", "threshold", "threshold_benchmark")}
        info["threshold"] = result["report"].get("threshold")
        info["threshold_benchmark"] = result["report"].get("threshold_benchmark")
    write_model_card(final, info)
    result["model_dir"] = str(final)
    push(cfg, final, result)
    print(f"RL done: {trained.steps} steps in {trained.train_seconds:.0f}s; prompts {trained.stats.summary()}; "
          f"model -> {final}", flush=True)
    return result


def push(cfg: DictConfig, folder, result: dict, **kw) -> None:
    """The final model folder to the Hub (``hub.push``) or its upload plan (``hub.dry_run``): ``result["hub"]``."""
    hub = cfg.get("hub") or {}
    if hub.get("push") or hub.get("dry_run"):
        result["hub"] = push_folder(folder, hub.repo_id, private=hub.get("private", True),
                                    revision=hub.get("revision"), dry_run=bool(hub.get("dry_run")), **kw)


STATED = ("; after RL each problem asked with the objective's per-prompt text as training drew it (L1: a stated "
          "budget), before RL asked bare")


def pipeline_report(cfg: DictConfig, model, tok, stage, objective) -> dict:
    """Mode report of the final policy beside the distilled one and the oracle router (synthetic task)."""
    rc, out_dir = cfg.report, stage.out_dir
    bench = load_benchmark("report", rc.benchmark)
    values = objective.yardstick()  # Thinkless: the values it was trained towards last; others: the default γ
    kw = dict(max_new_tokens=rc.max_new_tokens, free_samples=rc.free_samples, free_temperature=rc.free_temperature,
              seed=cfg.seed, rewards=values, system=cfg.prompt.system,
              instruction=rc.benchmark.get("instruction") or cfg.prompt.instruction)
    # the policy asked as it was trained (L1: each problem with a stated budget, drawn as training drew them); the
    # before-RL columns are the distilled model's, asked bare like every objective's (the oracle reads them)
    asked = stated(bench, objective, cfg.seed)
    after = mode_report(make_generator("hf", model=model, tokenizer=tok, batch_size=rc.batch_size), tok, asked,
                        report_dir(out_dir) / "after_rl", model=model_stamp(out_dir / "model"),
                        biases=list(rc.get("threshold_biases") or []),
                        ratios=list(rc.get("threshold_think_ratios") or []), **kw)
    base_model, base_tok = load_checkpoint(cfg.model.path)
    # a distill run's model (<distill output_dir>/model): its report's generations, same stream and settings, are
    # the before-RL columns (copied when their fingerprint and problems match, else generated here)
    before = mode_report(make_generator("hf", model=base_model, tokenizer=base_tok, batch_size=rc.batch_size),
                         base_tok, bench, report_dir(out_dir) / "before_rl", model=model_stamp(cfg.model.path),
                         reuse=[report_dir(Path(cfg.model.path).parent)], **kw)
    write_report(before, out_dir, "report_before_rl", bench.kind)
    write_report(after, out_dir, "report_after_rl", bench.kind)
    table, summary = pipeline_table(before, after, values, bench.kind)
    summary["asked"] = "stated" if asked is not bench else "bare"  # after RL: with the objective's per-prompt text
    text = (f"### Thinkless pipeline report ({objective.label()}, {bench.name}: {len(bench.problems)} problems; free "
            f"choice: mode token sampled {rc.free_samples}x at T={rc.free_temperature}, answers greedy like the "
            f"forced modes; rewards {values.__dict__}{STATED if asked is not bench else ''})\n\n{table}\n")
    print(text, flush=True)
    print("targets: " + json.dumps(summary.get("targets", {})), flush=True)
    (out_dir / "pipeline_report.md").write_text(text)
    (out_dir / "pipeline_report.json").write_text(json.dumps(summary, indent=2))
    summary["threshold"] = after["threshold"]
    summary["threshold_benchmark"] = f"{bench.name} ({len(bench.problems)} problems, {bench.source})"
    return summary
