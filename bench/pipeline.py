"""Wall time and peak memory of the embedded pipeline (distill -> DeGRPO (+ report) -> eval) on this machine.

    python bench/pipeline.py [--run-name bench] [extra Hydra overrides for both stages]
Each stage runs as its own process (exactly the demo's commands); peak RSS is read from the child's rusage.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402
from thinkless.reporting.markdown import markdown_row, markdown_table  # noqa: E402


def stage(cmd):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *cmd], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024  # MiB (ru_maxrss is KiB on Linux; max over children so far)


def main():
    args = sys.argv[1:]
    run = "bench"
    if args[:1] == ["--run-name"]:
        run, args = args[1], args[2:]
    stages = [("distill", ["distill.py", f"run_name={run}", "training.args.disable_tqdm=true", *args]),
              ("DeGRPO + report", ["train.py", f"run_name={run}", *args])]
    if (ROOT / "eval.py").exists():
        stages.append(("eval (synthetic)", ["eval.py", f"run_name={run}", "benchmarks=[synthetic]"]))
    print(f"machine: {machine()}\n")
    print(markdown_table(["stage", "wall (s)", "peak RSS so far (MiB)"]))
    total = 0.0
    for name, cmd in stages:
        wall, peak = stage(cmd)
        total += wall
        print(markdown_row([name, f"{wall:.0f}", f"{peak:.0f}"]), flush=True)
    print(markdown_row(["total", f"{total:.0f}", None]))
    print(f"\ntarget <= 600 s: {'met' if total <= 600 else 'NOT met'}")


if __name__ == "__main__":
    main()
