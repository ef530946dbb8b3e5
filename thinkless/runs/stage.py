"""What every stage (distill, train, eval) does around its work: one owner, driven by the entry points only.

``distill.py``, ``train.py`` and ``eval.py`` run a stage: ``start_stage`` (output folder, config checks before any work
(``thinkless.runs.checks``), the rerun decision, seed, threads, rank, quiet console, wandb), then the library's work
on the ``Stage`` it returns (``sft.run_distill``, ``rl.run_train``, ``evaluation.runner.run_eval``, and the publish
step), then ``finish_stage`` (timing, the result JSON with the run's config warnings and fingerprint, the end of the
wandb run), all inside ``run_cli`` (clean error messages). The library never imports this module: the trainer's own
run (arguments with the CPU precision fallback, resume from the last checkpoint) is ``thinkless.training.loop``.

Reruns (docs/reruns.md). A stage records the configuration that shapes its state (``run_config``: the resolved
config minus ``EXCLUDED_KEYS`` and, inside the trainer's ``args``, ``EXCLUDED_ARGS``: logging, output, report and
tracking settings, which may change across a resume) in ``<output_dir>/run_config.json``, in every checkpoint and in
the final ``model/``. A rerun into a folder with state (``rerun=auto``, the default): the same configuration resumes
from the last checkpoint; a different one stops before any work, listing the differing keys; a finished run is not
extended (same configuration: nothing to do). ``rerun=resume`` resumes an unfinished run under the new
configuration (recorded as ``resumed_with_changes`` in the result and the model card; the run's optimizer settings
replace the checkpoint's, ``NOT_ON_RESUME`` keys are refused); ``rerun=fresh`` moves the old state to
``<output_dir>/replaced-<time>/`` and starts from step 0. The record covers the content of the local model and data
the stage starts from (``INPUT_KEYS``), so a re-distilled model is a changed configuration downstream. A run never
exceeds ``max_steps``, however it was interrupted.

Quiet console (``quiet=true``, the default): a run prints its own compact lines (one per logged step, the reports,
the result), our warnings and every library error, nothing else. Our INFO lines, library warnings (``FutureWarning``s,
transformers/TRL/datasets notices) and every full trainer log dict still go to the run folder:
``<output_dir>/<stage>.log`` (Hydra's log file) and ``<output_dir>/metrics.jsonl``.
"""

from __future__ import annotations

import fcntl
import importlib
import json
import logging
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from . import checks
from .fingerprint import content_id, diff, fingerprint, show
from ..checkpoints import RECORD, checkpoint_step, complete_checkpoints
from ..reporting.monitor import read_metrics
from ..reporting.tracking import init_wandb, log_summary

logger = logging.getLogger(__name__)

RERUN_MODES = ("auto", "resume", "fresh")
# Keys that may change across a resume without changing what the run computes (naming, output, console, tracking,
# Hub export, the after-training report, the official-mapping documentation block, a recipe's declared batch, the
# objectives' output folder names).
EXCLUDED_KEYS = ("run_name", "output_dir", "quiet", "threads", "rerun", "wandb", "hub", "report", "official",
                 "progress", "plots", "recipe_batch", "run_dirs")
# Recorded keys that no longer exist and never shaped a run: ignored in an old record (objective.run_dir named the
# output folder until 0.2.0, where conf/train.yaml's run_dirs took over).
LEGACY_KEYS = ("objective.run_dir",)
# Inside a trainer's ``args``: logging, checkpoint cadence and retention, console and dataloader workers.
EXCLUDED_ARGS = ("logging_steps", "logging_first_step", "logging_strategy", "logging_dir", "logging_nan_inf_filter",
                 "log_level", "log_completions", "num_completions_to_print", "save_steps", "save_strategy",
                 "save_total_limit", "save_only_model", "report_to", "disable_tqdm", "dataloader_num_workers",
                 "push_to_hub", "hub_model_id", "hub_strategy", "hub_private_repo", "run_name", "output_dir",
                 "long_short_multiple")
ARGS_KEYS = {"distill": "training.args", "train": "rl.args"}
# Inside a trainer's ``args``: keys a resume cannot honour, so ``rerun=resume`` refuses a change to them before the
# model loads. The checkpoint's optimizer and scheduler states belong to one optimizer class and one scheduler class:
# loading them into another one is undefined (Adam moments into SGD). Every other optimizer/scheduler setting is
# applied on resume (``resume_with_run_config``): learning_rate, weight_decay, adam_beta1/2, adam_epsilon replace
# the restored ones; warmup, lr_scheduler_kwargs and max_steps shape the rebuilt schedule.
NOT_ON_RESUME = ("optim", "optim_args", "optim_target_modules", "lr_scheduler_type")
# What a stage starts from, besides its config: local model folders and data files, known by their content
# (``content_id``), so that a re-distilled model or an edited data file under the same path is seen downstream.
INPUT_KEYS = {"distill": ("model.path", "model.tokenizer", "data.name", "data.prompts"),
              "train": ("model.path", "rl_data.name", "rl_data.validation.path")}


class StageFinished(Exception):
    """The output folder holds this stage's finished run with the same configuration: nothing to do."""


@dataclass
class Stage:
    cfg: DictConfig
    job_type: str  # "distill" | "train" | "eval"
    out_dir: Path
    is_main: bool
    run: object = None  # the wandb run (main process, wandb enabled)
    t_start: float = field(default_factory=time.time)
    record: dict = field(default_factory=dict)  # the configuration that shapes this run's state (RECORD)
    changes: list = field(default_factory=list)  # rerun=resume: [{changes: [...]}, ...] of every such resume


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

    for h in logging.getLogger().handlers:  # the console only: not log files, nor a capture into memory (pytest)
        if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) in (sys.stdout, sys.stderr,
                                                                                 sys.__stdout__, sys.__stderr__):
            h.addFilter(ours)


def check_config(cfg: DictConfig, job_type: str, config_cls=None) -> None:
    """Config checks before any work: ``rerun``, the declared numeric keys, and the trainer's ``args`` against
    ``config_cls`` (TRL's config dataclass). Resets the run's collected warnings."""
    checks.reset_warnings()
    rerun = cfg.get("rerun", "auto")
    if rerun not in RERUN_MODES:
        raise checks.ConfigError(f"rerun={rerun!r}: valid choices are {RERUN_MODES}")
    checks.check_numbers(cfg, checks.NUMERIC_KEYS.get(job_type, []))
    checks.check_synthetic(cfg, checks.SYNTHETIC_KEYS.get(job_type, []))
    if config_cls is not None:
        key = ARGS_KEYS[job_type]
        checks.check_trainer_args(config_cls, OmegaConf.select(cfg, key), key)


def run_inputs(cfg: DictConfig, job_type: str) -> dict:
    """``{key: content id}`` of the local files and folders (``INPUT_KEYS``) the stage starts from."""
    out = {}
    for key in INPUT_KEYS.get(job_type, ()):
        value = OmegaConf.select(cfg, key, default=None)
        cid = content_id(value) if isinstance(value, str) else None
        if cid is not None:
            out[key] = cid
    return out


def run_config(cfg: DictConfig, job_type: str) -> dict:
    """The configuration that shapes a stage's state: the resolved config minus the excluded keys, and the content
    of what it starts from (``inputs``)."""
    d = OmegaConf.to_container(cfg, resolve=True)
    for k in EXCLUDED_KEYS:
        d.pop(k, None)
    if job_type in ARGS_KEYS:
        head, tail = ARGS_KEYS[job_type].split(".")
        if isinstance((d.get(head) or {}).get(tail), dict):
            d[head][tail] = {k: v for k, v in d[head][tail].items() if k not in EXCLUDED_ARGS}
    inputs = run_inputs(cfg, job_type)
    # without local inputs the fingerprint is the config's alone, as before inputs were recorded
    fp = fingerprint({"config": d, "inputs": inputs}) if inputs else fingerprint(d)
    return {"stage": job_type, "fingerprint": fp, "config": d, "inputs": inputs}


def input_changes(old: dict, record: dict) -> list[str]:
    """``["content of model.path (<path>) changed: <id> -> <id>", ...]``; none for a record from before inputs
    were recorded (its inputs are unknown)."""
    if "inputs" not in old:
        return []
    a, b = old["inputs"], record.get("inputs", {})
    was, now = (OmegaConf.create(r.get("config", {})) for r in (old, record))
    where = {k: OmegaConf.select(now, k, default=None) for k in a | b}
    # another path is a config change, listed as such; the same path with other content is what is listed here
    return [f"content of {k} ({where[k]}) changed: {a.get(k, '(none)')} -> {b.get(k, '(none)')}"
            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k) and OmegaConf.select(was, k, default=None)
            == where[k]]


def trained_nothing(out_dir: Path) -> bool:
    """No checkpoint and no training step logged: the previous start failed before its first step."""
    path = Path(out_dir) / "metrics.jsonl"
    return not complete_checkpoints(Path(out_dir) / "checkpoints") and \
        not (path.exists() and any(r.get("step", 0) > 0 for r in read_metrics(path)))


LOCK = ".thinkless.lock"
_LOCKS: dict[str, object] = {}  # held open for the process's life: the kernel drops a flock however its process ends


def lock_output(out_dir: Path, job_type: str) -> None:
    """One run at a time per output folder: a second run into it (a double submit, two shells) would interleave its
    logs and checkpoints with the first's and both would exit 0. ``ConfigError`` naming the holder, before any work."""
    path = (Path(out_dir) / LOCK).resolve()
    if str(path) in _LOCKS:  # this process holds it already (a stage run twice in one process, as tests do)
        return
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise checks.ConfigError(
            f"{out_dir} is in use by another run ({holder}): two runs into one folder would interleave their logs "
            f"and checkpoints. Wait for it to end, or choose another output_dir (e.g. run_name=<new name>).") from None
    f.seek(0)
    f.truncate()
    f.write(f"{job_type}, pid {os.getpid()}")
    f.flush()
    _LOCKS[str(path)] = f


def move_aside(out_dir: Path, job_type: str, why: str) -> Path:
    """The previous run's files to ``<out_dir>/replaced-<time>/`` (nothing deleted; logs and Hydra's folder stay)."""
    dest = out_dir / f"replaced-{time.strftime('%Y%m%d-%H%M%S')}"
    dest.mkdir()
    for p in sorted(out_dir.iterdir()):
        if p != dest and not p.name.startswith(("replaced-", ".hydra", LOCK)) and p.suffix != ".log":
            shutil.move(str(p), str(dest / p.name))
    print(f"{why}: the previous {job_type} run's files moved to {dest}; starting from step 0", flush=True)
    return dest


def _without_legacy(config: dict) -> dict:
    config = json.loads(json.dumps(config))
    for key in LEGACY_KEYS:
        *parents, leaf = key.split(".")
        node = config
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return config


def _read_record(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None


def decide_rerun(cfg: DictConfig, job_type: str, out_dir: Path, record: dict, *, is_main: bool = True) -> list[str]:
    """What a run into ``out_dir`` does with the state there (module docstring): returns the differing keys it
    resumes under (``rerun=resume``), raises ``ConfigError`` to refuse or ``StageFinished`` when there is nothing
    to do. ``rerun=fresh`` moves the old state aside first (main process)."""
    mode = cfg.get("rerun", "auto")
    ckpts = complete_checkpoints(out_dir / "checkpoints")
    result_file = out_dir / f"{job_type}_result.json"
    finished = result_file.is_file()
    state = [p for p in (out_dir / "checkpoints", out_dir / "model", out_dir / RECORD, result_file,
                         out_dir / "metrics.jsonl") if p.exists()]
    if not state:
        return []
    if mode == "fresh":
        if is_main:
            move_aside(out_dir, job_type, "rerun=fresh")
        return []
    if finished:
        old = _read_record(out_dir / "model" / RECORD) or (_read_record(ckpts[-1] / RECORD) if ckpts else None) \
            or _read_record(out_dir / RECORD)
        where = f"{out_dir} holds a finished {job_type} run ({result_file.name})"
    else:
        old = (_read_record(ckpts[-1] / RECORD) if ckpts else None) or _read_record(out_dir / RECORD)
        where = f"{out_dir} holds an unfinished {job_type} run ({ckpts[-1].name if ckpts else 'no checkpoint'})"
    changes = ["(no recorded configuration: the run predates run_config.json)"] if old is None else \
        diff(_without_legacy(old.get("config", {})), record["config"]) + input_changes(old, record)
    fresh = (f"  rerun=fresh   start again from step 0 (the old files move to {out_dir}/replaced-<time>/)\n"
             f"  or another output_dir (e.g. run_name=<new name>)")
    # what the stage starts from was rewritten (an upstream stage rerun, a data file edited): say which stage to rerun
    upstream = "".join(f"\n{c.split(' changed:')[0].removeprefix('content of ')} was rewritten since this run was "
                       f"made (an upstream stage rerun, or the file edited): this {job_type} run was made from the "
                       f"old one. Rerun this stage (rerun=fresh) to {'train' if job_type == 'train' else 'distil'} "
                       "from it." for c in changes if c.startswith("content of "))
    if finished:
        if not changes and mode == "auto":
            raise StageFinished(f"{where} with this configuration: nothing to do.\nTo run it again:\n{fresh}")
        why = "with a different configuration:" + show(changes) if changes else "."
        raise checks.ConfigError(f"{where} {why}{upstream}\nA finished run is not resumed into extra steps "
                                 f"(rerun={mode}). Choose:\n{fresh}")
    if changes and not ckpts and trained_nothing(out_dir):  # nothing to mix: a start that failed before any step
        if is_main:
            move_aside(out_dir, job_type, f"the previous {job_type} start trained nothing (no checkpoint, no step "
                                          "logged), so the new configuration starts fresh")
        return []
    if changes and mode == "auto":
        raise checks.ConfigError(
            f"{where} made with a different configuration:{show(changes)}{upstream}\nResuming would mix the two. "
            f"Choose:\n"
            f"  rerun=resume  continue{' from ' + ckpts[-1].name if ckpts else ''} with the new values (recorded "
            f"in the result JSON{' and model card' if job_type == 'train' else ''})\n{fresh}")
    if ckpts and old is not None:
        args_key = ARGS_KEYS[job_type]
        fixed = [c for c in changes if c.split(":")[0] in {f"{args_key}.{k}" for k in NOT_ON_RESUME}]
        if fixed:
            raise checks.ConfigError(
                f"{where}: {', '.join(c.split(':')[0] for c in fixed)} cannot change on resume (the checkpoint's "
                f"optimizer and scheduler states belong to the old optimizer and scheduler class):{show(fixed)}\n"
                f"Keep the old value, or:\n{fresh}")
        max_steps = OmegaConf.select(cfg, f"{args_key}.max_steps", default=-1)
        if max_steps is not None and 0 < max_steps < checkpoint_step(ckpts[-1]):
            raise checks.ConfigError(
                f"{where}: {args_key}.max_steps={max_steps} is below the {checkpoint_step(ckpts[-1])} steps its "
                f"{ckpts[-1].name} already took; a run never exceeds max_steps. Set {args_key}.max_steps >= "
                f"{checkpoint_step(ckpts[-1])}, or:\n{fresh}")
    if not ckpts:
        print(f"{out_dir}: the previous {job_type} run left no checkpoint: starting again from step 0", flush=True)
        return []
    if changes:
        logger.warning("rerun=resume: resuming %s under a changed configuration:%s", ckpts[-1], show(changes))
    return changes


def start_stage(cfg: DictConfig, job_type: str, *, config_cls=None) -> Stage:
    """Output folder, quiet console, config checks and the rerun decision (before any work), seed, threads, wandb.

    ``config_cls``: the trainer's config dataclass, or ``"module:Name"`` (imported after the console is quiet)."""
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.get("quiet", True):
        quiet_console()
    if isinstance(config_cls, str):
        module, name = config_cls.split(":")
        config_cls = getattr(importlib.import_module(module), name)
    check_config(cfg, job_type, config_cls)
    is_main = int(os.environ.get("RANK", "0")) == 0
    if is_main:
        lock_output(out_dir, job_type)
    record = run_config(cfg, job_type)
    changes = decide_rerun(cfg, job_type, out_dir, record, is_main=is_main) if job_type in ARGS_KEYS else []
    history = changes and [{"changes": changes}]
    if is_main:
        prev = _read_record(out_dir / RECORD) or {}
        history = prev.get("resumed_with_changes", []) + ([{"changes": changes}] if changes else [])
        (out_dir / RECORD).write_text(json.dumps({**record, "excluded_keys": list(EXCLUDED_KEYS),
                                                  "excluded_args": list(EXCLUDED_ARGS),
                                                  **({"resumed_with_changes": history} if history else {})},
                                                 indent=2, default=str))
    torch.manual_seed(cfg.seed)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    run = init_wandb(cfg.get("wandb"), job_type=job_type, config=OmegaConf.to_container(cfg, resolve=True),
                     run_dir=str(out_dir)) if is_main else None
    return Stage(cfg, job_type, out_dir, is_main, run, record=record, changes=history if is_main else changes)


def finish_stage(stage: Stage, result: dict, name: str, *, path: Path | None = None,
                 summary: dict | None = None) -> dict:
    """Main process: total time, the config fingerprint and warnings, ``<name>_result.json`` (or ``path``), the
    configuration record in ``model/``, wandb summary (``summary``, default the result), end of the wandb run."""
    if not stage.is_main:
        return result
    warnings = checks.collected_warnings()
    rec = _read_record(stage.out_dir / RECORD) or {}
    result["total_seconds"] = round(time.time() - stage.t_start, 1)
    result["config_fingerprint"] = stage.record.get("fingerprint")
    result["warnings"] = warnings
    if rec.get("resumed_with_changes"):
        result["resumed_with_changes"] = rec["resumed_with_changes"]
    if (stage.out_dir / "model").is_dir() and rec:  # saved_at: a later stage tells this save from an earlier one
        (stage.out_dir / "model" / RECORD).write_text(json.dumps(
            {**rec, "saved_at": datetime.now(timezone.utc).isoformat()}, indent=2, default=str))
    (path or stage.out_dir / f"{name}_result.json").write_text(json.dumps(result, indent=2, default=str))
    log_summary(stage.run, summary if summary is not None else result, prefix=f"{stage.job_type}/")
    if stage.run is not None:
        stage.run.summary[f"{stage.job_type}/warnings"] = [f"{w['key']}={w['value']!r}: {w['message']}"
                                                           for w in warnings]
        stage.run.summary[f"{stage.job_type}/num_warnings"] = len(warnings)
        stage.run.finish()
    return result


def interrupted(cfg: DictConfig) -> str:
    """One line for an interrupted run (Ctrl-C): where it stands and how to go on."""
    out = Path(cfg.output_dir)
    ckpts = complete_checkpoints(out / "checkpoints")
    if ckpts:
        where = f"its last complete checkpoint is {ckpts[-1]}: the same command resumes from there"
    elif (out / "generations").is_dir():
        where = f"the finished generations are kept in {out / 'generations'}: the same command resumes from them"
    else:
        where = "no checkpoint was saved yet: the same command starts again from step 0"
    return f"Interrupted: {where} (its log: {out})"


def run_cli(fn, cfg: DictConfig):
    """An entry point's body: ``fn(cfg)``, with errors as a few lines naming the problem instead of a traceback.

    The full traceback goes to the run's log file (Hydra's ``<output_dir>/<job>.log``); ``HYDRA_FULL_ERROR=1``
    raises it as it is. A finished run with the same configuration exits 0 saying so; an interrupted one (Ctrl-C)
    prints one line saying where it stands and how to resume, and exits 130."""
    try:
        return fn(cfg)
    except StageFinished as e:
        print(str(e), flush=True)
        return None
    except KeyboardInterrupt:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(interrupted(cfg), file=sys.stderr, flush=True)  # one line, not a 55-line trace
        sys.exit(130)  # the shell's code for SIGINT
    except Exception as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
        trace = "".join(traceback.format_exception(e))
        for h in files:
            h.stream.write(f"ERROR {trace}")
            h.flush()
        where = f"the full traceback is in {files[0].baseFilename}; " if files else ""
        msg = str(e).strip() or type(e).__name__
        print(f"Error ({type(e).__name__}): {msg}\n({where}HYDRA_FULL_ERROR=1 prints it)", file=sys.stderr, flush=True)
        sys.exit(1)
