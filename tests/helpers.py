import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(script: str, *overrides: str, check: bool = True, timeout: int = 600, env: dict | None = None):
    e = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline",
         "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    proc = subprocess.run([sys.executable, str(ROOT / script), *overrides], cwd=ROOT, env=e, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} {' '.join(overrides)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def run_distill_cli(out_dir, *overrides: str, **kw):
    return run_cli("distill.py", f"output_dir={out_dir}", "training.args.disable_tqdm=true",
                   "training.args.logging_steps=10", *overrides, **kw)


def run_train_cli(out_dir, model_dir, *overrides: str, **kw):
    return run_cli("train.py", f"output_dir={out_dir}", f"model.path={model_dir}", *overrides, **kw)
