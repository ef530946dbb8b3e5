"""What every training stage (distill, train) does around its trainer: one owner.

Output folder, seed, threads, rank, quiet console, wandb, trainer arguments (with the CPU precision fallback),
resume from the last checkpoint, timing, the result JSON and the end of the wandb run.

Quiet console (``quiet=true``, the default): a run prints its own compact lines (one per logged step, the reports,
the result), our warnings and every library error, nothing else. Our INFO lines, library warnings (``FutureWarning``s,
transformers/TRL/datasets notices) and every full trainer log dict still go to the run folder:
``<output_dir>/<stage>.log`` (Hydra's log file) and ``<output_dir>/metrics.jsonl``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import PrinterCallback, ProgressCallback

from .tracking import init_wandb, log_summary, report_to

logger = logging.getLogger(__name__)


@dataclass
class Stage:
    cfg: DictConfig
    job_type: str  # "distill" | "train"
    out_dir: Path
    is_main: bool
    run: object = None  # the wandb run (main process, wandb enabled)
    t_start: float = field(default_factory=time.time)


def quiet_console() -> None:
    """Keep the console to our own lines; everything else goes to the log files (Hydra's file handler)."""
    import datasets
    import huggingface_hub
    import transformers

    logging.captureWarnings(True)  # FutureWarning & co. become log records (py.warnings)
    transformers.utils.logging.disable_default_handler()
    transformers.utils.logging.enable_propagation()
    transformers.utils.logging.disable_progress_bar()
    huggingface_hub.utils.disable_progress_bars()
    datasets.utils.logging.disable_progress_bar()
    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")  # DeepSpeed otherwise warns that it detected no GPU

    def ours(record: logging.LogRecord) -> bool:
        return record.levelno >= (logging.WARNING if record.name.startswith("thinkless") else logging.ERROR)

    for h in logging.getLogger().handlers:
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
            h.addFilter(ours)


def start_stage(cfg: DictConfig, job_type: str) -> Stage:
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.get("quiet", True):
        quiet_console()
    torch.manual_seed(cfg.seed)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    is_main = int(os.environ.get("RANK", "0")) == 0
    run = init_wandb(cfg.get("wandb"), job_type=job_type, config=OmegaConf.to_container(cfg, resolve=True),
                     run_dir=str(out_dir)) if is_main else None
    return Stage(cfg, job_type, out_dir, is_main, run)


def trainer_args(config_cls, args_cfg, stage: Stage, **extra):
    """``config_cls`` (TRL's SFTConfig / DeGRPOConfig) from a stage's ``args`` mapping (any of its fields);
    ``extra`` wins over ``args``."""
    kw = {**OmegaConf.to_container(args_cfg, resolve=True), **extra}
    if not torch.cuda.is_available():  # TRL defaults to bf16, which raises on a CPU
        kw["bf16"], kw["fp16"] = False, False
        kw.setdefault("use_cpu", True)
    kw.setdefault("report_to", report_to(stage.cfg.get("wandb")))
    kw.setdefault("seed", stage.cfg.seed)
    return config_cls(output_dir=str(stage.out_dir / "checkpoints"), **kw)


def train(trainer) -> float:
    """``trainer.train()``, resumed from the last complete checkpoint of its output folder; seconds taken."""
    from transformers.trainer_utils import sort_checkpoints

    # The raw log dicts go to metrics.jsonl (MetricsLogCallback), not to the console; a progress bar stays.
    trainer.remove_callback(PrinterCallback)
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(BarOnly)
    out = trainer.args.output_dir
    # newest *complete* checkpoint: a kill during a save leaves a folder without trainer_state.json (written last),
    # which transformers' get_last_checkpoint would pick and then fail to load
    done = [c for c in sort_checkpoints(out) if (Path(c) / "trainer_state.json").is_file()] if Path(out).is_dir() else []
    last = done[-1] if done else None
    if last:
        print(f"resuming from {last}", flush=True)
    t0 = time.time()
    trainer.train(resume_from_checkpoint=last)
    return time.time() - t0


class BarOnly(ProgressCallback):
    """transformers' progress bar without its ``tqdm.write`` of every log dict."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        pass


def finish_stage(stage: Stage, result: dict, name: str) -> dict:
    """Main process: total time, ``<name>_result.json``, wandb summary, end of the wandb run."""
    if not stage.is_main:
        return result
    result["total_seconds"] = round(time.time() - stage.t_start, 1)
    (stage.out_dir / f"{name}_result.json").write_text(json.dumps(result, indent=2, default=str))
    log_summary(stage.run, result, prefix=f"{stage.job_type}/")
    if stage.run is not None:
        stage.run.finish()
    return result
