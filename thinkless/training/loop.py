"""A trainer's run inside a stage: its arguments, the resumed ``trainer.train()`` and what the run produced.

The stage (``thinkless.runs.stage``, driven by the entry points) decides whether to resume; this module does the
resuming: from the newest *complete* checkpoint, with the run's optimizer settings winning over the checkpoint's,
never past ``max_steps``, each checkpoint carrying the configuration record, the console kept to a progress bar.
``Trained`` is what ``sft.run_distill`` and ``rl.run_train`` return, and what ``thinkless.reporting.publish`` reads.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import OmegaConf
from transformers import PrinterCallback, ProgressCallback, TrainerCallback

from ..checkpoints import RECORD, check_safetensors, checkpoint_step, complete_checkpoints, missing_training_state
from ..reporting.tracking import report_to
from ..runs.checks import ConfigError

logger = logging.getLogger(__name__)


@dataclass
class Trained:
    """What a training stage produced, for its publish step (``thinkless.reporting.publish``): the result so far
    (data counts, seconds, steps), the final model (folder and, on the main process, the model in memory; None
    elsewhere), its tokenizer, the model card's fields known from training, and the RL run's objective and budget."""

    result: dict
    model_dir: Path | None
    model: object
    tokenizer: object
    steps: int
    train_seconds: float
    card: dict = field(default_factory=dict)
    stats: object = None  # the data's DropStats
    objective: object = None  # RL: the run's Objective
    budget: object = None  # RL: the run's Budget, or None


def trainer_args(config_cls, args_cfg, stage, **extra):
    """``config_cls`` (DistillConfig / AdaptiveGRPOConfig: TRL's configs with our fields) from a stage's ``args``
    mapping (any of its fields); ``extra`` wins over ``args``. ``stage``: what the stage set up (``cfg``, ``out_dir``)."""
    kw = {**OmegaConf.to_container(args_cfg, resolve=True), **extra}
    if not torch.cuda.is_available():  # TRL defaults to bf16, which raises on a CPU
        kw["bf16"], kw["fp16"] = False, False
        kw.setdefault("use_cpu", True)
    kw.setdefault("report_to", report_to(stage.cfg.get("wandb")))
    kw.setdefault("seed", stage.cfg.seed)
    return config_cls(output_dir=str(stage.out_dir / "checkpoints"), **kw)


def train(trainer) -> float:
    """``trainer.train()``, resumed from the last complete checkpoint of its output folder; seconds taken.

    The rerun decision (``start_stage``) has already refused a checkpoint of another configuration."""
    # The raw log dicts go to metrics.jsonl (MetricsLogCallback), not to the console; a progress bar stays.
    trainer.remove_callback(PrinterCallback)
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(BarOnly)
    trainer.add_callback(RecordConfig)
    # newest *complete* checkpoint: a kill during a save leaves a folder without trainer_state.json (written last),
    # which transformers' get_last_checkpoint would pick and then fail to load
    done = complete_checkpoints(Path(trainer.args.output_dir))
    last = str(done[-1]) if done else None
    if last:
        check_safetensors(done[-1])  # a truncated weight file is named here, not in a bare safetensors error
        missing = [] if trainer.args.save_only_model else missing_training_state(done[-1])
        if missing:
            raise ConfigError(
                f"{last} lacks {' and '.join(missing)}: resuming from it would restart the optimizer in silence and "
                f"end on other weights. Delete that folder to resume from the checkpoint before it, or rerun=fresh.")
        print(f"resuming from {last}", flush=True)
        resume_with_run_config(trainer)
        if 0 < trainer.args.max_steps <= checkpoint_step(done[-1]):  # killed after its last save (report, model)
            print(f"{done[-1].name} already holds all {trainer.args.max_steps} steps (max_steps): nothing left to "
                  "train, finishing the run from it", flush=True)
    stop_at_max_steps(trainer)
    if str(getattr(trainer.args.save_strategy, "value", trainer.args.save_strategy)) == "no":
        print("note: save_strategy=no: this run saves no checkpoint, so if it is interrupted a rerun starts again "
              "from step 0", flush=True)
    t0 = time.time()
    trainer.train(resume_from_checkpoint=last)
    return time.time() - t0


def stop_at_max_steps(trainer) -> None:
    """A run never exceeds ``max_steps``: resumed from a checkpoint that already holds them all, transformers would
    still take one more step (it checks the limit after a step, never before the first); no epoch is started."""
    run_epoch = trainer._run_epoch

    def guarded(*a, **kw):
        if 0 < trainer.state.max_steps <= trainer.state.global_step:
            trainer.control.should_training_stop = True
            return None
        return run_epoch(*a, **kw)

    trainer._run_epoch = guarded


# The optimizer's per-group settings that come from the run's arguments (a restored optimizer brings back its own).
GROUP_KEYS = ("initial_lr", "weight_decay", "betas", "eps", "momentum", "dampening", "nesterov")


def resume_with_run_config(trainer) -> None:
    """On resume, the run's configuration wins over the checkpoint's optimizer and scheduler settings.

    Loading the checkpoint's optimizer and scheduler states brings back their hyperparameters too (the learning
    rate the schedule is based on, weight decay, Adam's betas and epsilon), so a ``rerun=resume`` under a changed
    ``learning_rate`` would follow the old schedule. The trainer builds a fresh optimizer and scheduler from the run's
    arguments before it loads the states: their settings are taken then and put back after the load (the moments,
    step counts and the schedule's position stay the checkpoint's); each change is printed. The schedule's shape
    (warmup, kind, max_steps) is the rebuilt scheduler's own. Keys this cannot honour: ``NOT_ON_RESUME``."""
    fresh = {}
    create_scheduler, load = trainer.create_scheduler, trainer._load_optimizer_and_scheduler

    def snapshot(*a, **kw):
        out = create_scheduler(*a, **kw)
        sched = trainer.lr_scheduler
        fresh["groups"] = [{k: g[k] for k in GROUP_KEYS if k in g} for g in trainer.optimizer.param_groups]
        fresh["base_lrs"] = list(getattr(sched, "base_lrs", []) or [])
        return out

    def load_then_apply(checkpoint):
        load(checkpoint)
        if checkpoint is None or "groups" not in fresh:
            return
        opt, sched = trainer.optimizer, trainer.lr_scheduler
        if len(opt.param_groups) != len(fresh["groups"]):
            raise RuntimeError(f"{checkpoint}: its optimizer has {len(opt.param_groups)} parameter groups, this run "
                               f"builds {len(fresh['groups'])}: not the same optimizer setup; rerun=fresh")
        applied = {}
        for g, want in zip(opt.param_groups, fresh["groups"]):
            for k, v in want.items():
                if g.get(k) != v:
                    applied.setdefault(k, (g.get(k), v))
                    g[k] = v
        if not hasattr(sched, "base_lrs") or not fresh["base_lrs"]:
            return _say_applied(checkpoint, applied)
        old_base = list(sched.base_lrs)
        sched.base_lrs = list(fresh["base_lrs"])
        if isinstance(sched, torch.optim.lr_scheduler.LambdaLR):  # the rebuilt schedule's lambdas, at the step
            lrs = [b * f(sched.last_epoch) for b, f in zip(sched.base_lrs, sched.lr_lambdas)]
        else:  # another scheduler: its restored position, rescaled to the new base
            lrs = [g["lr"] * (b / o if o else 1.0) for g, b, o in zip(opt.param_groups, sched.base_lrs, old_base)]
        for g, lr in zip(opt.param_groups, lrs):
            g["lr"] = lr
        sched._last_lr = list(lrs)
        if old_base != sched.base_lrs:
            applied.setdefault("initial_lr", (old_base[0], sched.base_lrs[0]))
        _say_applied(checkpoint, applied)

    trainer.create_scheduler, trainer._load_optimizer_and_scheduler = snapshot, load_then_apply


def _say_applied(checkpoint, applied: dict) -> None:
    if not applied:
        return
    names = {"initial_lr": "learning_rate (the schedule's base)"}
    print(f"resume: the run's configuration replaces {Path(checkpoint).name}'s optimizer settings: " + ", ".join(
        f"{names.get(k, k)} {a} -> {b}" for k, (a, b) in sorted(applied.items())), flush=True)
    logger.info("resume from %s: optimizer settings applied from the run config: %s", checkpoint, applied)


class RecordConfig(TrainerCallback):
    """Each checkpoint carries the configuration that shaped it (``<output_dir>/run_config.json`` of this run)."""

    def on_save(self, args, state, control, **kwargs):
        src = Path(args.output_dir).parent / RECORD
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and src.is_file() and ckpt.is_dir():
            shutil.copy(src, ckpt / RECORD)


class BarOnly(ProgressCallback):
    """transformers' progress bar without its ``tqdm.write`` of every log dict."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        pass
