"""Weights & Biases wiring shared by distill, train and eval.

One experiment's stages share ``wandb.group`` (default: the run name) and differ by ``job_type``, so distill →
train → eval of one experiment sit together in the UI. ``wandb.enabled=false`` disables everything (no import,
no files); ``wandb.mode=offline`` logs to disk for a later ``wandb sync``.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

WANDB_MODES = ("online", "offline", "disabled")


def report_to(wandb_cfg) -> list[str]:
    return ["wandb"] if wandb_cfg is not None and wandb_cfg.get("enabled", False) else []


def init_wandb(wandb_cfg, *, job_type: str, config: dict, run_dir: str):
    """Start (or return) the run, or ``None`` when disabled. Call on the main process only."""
    if not report_to(wandb_cfg):
        os.environ["WANDB_DISABLED"] = "true"  # keeps transformers' callback from starting one on its own
        return None
    mode = wandb_cfg.get("mode", "online")
    if mode not in WANDB_MODES:
        raise ValueError(f"wandb.mode={mode!r}: valid choices are {WANDB_MODES}")
    import wandb

    if wandb.run is not None:
        return wandb.run
    os.environ.setdefault("WANDB_PROJECT", wandb_cfg.get("project") or "thinkless")
    run = wandb.init(
        project=wandb_cfg.get("project") or "thinkless",
        entity=wandb_cfg.get("entity"),
        group=wandb_cfg.get("group"),
        name=wandb_cfg.get("name"),
        tags=list(wandb_cfg.get("tags") or []),
        job_type=job_type,
        mode=mode,
        dir=run_dir,
        config=config,
    )
    # Mode-usage curves against the trainer step, whatever else logs in between.
    run.define_metric("train/global_step")
    for pattern in ("train/*", "mode/*", "modes/*"):
        run.define_metric(pattern, step_metric="train/global_step")
    return run


def log_summary(run, values: dict, prefix: str = "") -> None:
    if run is None:
        return
    flat = {}

    def walk(d, pre):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, f"{pre}{k}/")
            elif isinstance(v, (int, float)) and v is not None:
                flat[f"{pre}{k}"] = v

    walk(values, prefix)
    for k, v in flat.items():
        run.summary[k] = v
