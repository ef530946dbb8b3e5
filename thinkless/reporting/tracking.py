"""Weights & Biases wiring shared by distill, train and eval.

One experiment's stages share ``wandb.group`` (the run name) and differ by ``job_type``, so they sit together in the
UI; settings come from the ``wandb`` config group, the API key only from the environment. ``wandb.enabled=false``
(the default) imports nothing and creates nothing. Only the main process starts a run; transformers'
``WandbCallback`` logs every trainer line into it, and the mode-usage curves are defined against
``train/global_step`` so they line up with the trainer step. Usage (offline runs, requeued jobs): docs/cluster.md,
"Weights & Biases".
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

WANDB_MODES = ("online", "offline", "disabled")
STEP_METRIC = "train/global_step"
# Metric patterns plotted against the trainer step: trainer logs (incl. train/modes/*, train/loss/*) and the
# mode-usage keys when logged directly.
STEP_PATTERNS = ("train/*", "modes/*", "loss/*")


def enabled(wandb_cfg) -> bool:
    return wandb_cfg is not None and bool(wandb_cfg.get("enabled", False))


def report_to(wandb_cfg) -> list[str]:
    """``report_to`` for the TRL/transformers trainer: ``["wandb"]`` when enabled, else nothing at all."""
    return ["wandb"] if enabled(wandb_cfg) else []


def init_kwargs(wandb_cfg, *, job_type: str, run_dir: str | None = None, config: dict | None = None) -> dict:
    """The ``wandb.init`` keyword arguments for one stage (pure: no import, no side effect)."""
    mode = wandb_cfg.get("mode", "online") or "online"
    if mode not in WANDB_MODES:
        raise ValueError(f"wandb.mode={mode!r}: valid choices are {WANDB_MODES}")
    group = wandb_cfg.get("group")
    name = wandb_cfg.get("name") or (f"{group}-{job_type}" if group else None)
    kw = {
        "project": wandb_cfg.get("project") or "thinkless",
        "entity": wandb_cfg.get("entity"),
        "group": group,
        "job_type": job_type,
        "name": name,
        "tags": [str(t) for t in (wandb_cfg.get("tags") or [])],
        "mode": mode,
        "config": config,
    }
    if run_dir is not None:
        kw["dir"] = str(run_dir)
    return kw


def init_wandb(wandb_cfg, *, job_type: str, config: dict, run_dir: str):
    """Start (or return) the run, or ``None`` when disabled. Call on the main process only."""
    if not enabled(wandb_cfg):
        return None
    kw = init_kwargs(wandb_cfg, job_type=job_type, run_dir=run_dir, config=config)
    import wandb

    if wandb.run is not None:
        return wandb.run
    os.makedirs(run_dir, exist_ok=True)
    # transformers' WandbCallback reuses the active run; should it ever start one, it uses the same project.
    os.environ.setdefault("WANDB_PROJECT", kw["project"])
    run = wandb.init(**kw)
    define_step_metrics(run)
    logger.info("wandb run %s (project %s, group %s, job_type %s, mode %s)", run.name, kw["project"], kw["group"],
                job_type, kw["mode"])
    return run


def define_step_metrics(run) -> None:
    """Mode-usage (and every trainer) curve against the trainer step, whatever else logs in between."""
    run.define_metric(STEP_METRIC)
    for pattern in STEP_PATTERNS:
        run.define_metric(pattern, step_metric=STEP_METRIC)


def log_summary(run, values: dict, prefix: str = "") -> None:
    """Flatten the numeric leaves of ``values`` into the run summary (``prefix`` + ``a/b/c``)."""
    if run is None:
        return
    flat = {}

    def walk(d, pre):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, f"{pre}{k}/")
            elif isinstance(v, (int, float)):
                flat[f"{pre}{k}"] = v

    walk(values, prefix)
    for k, v in flat.items():
        run.summary[k] = v
