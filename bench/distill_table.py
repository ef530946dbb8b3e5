"""The distillation's level-1 table across seeds: how often a distillation recipe learns the fold task's level-1 short
answers sharply enough for RL to keep level 1 short (docs/lab-notebook.md, "The demo in under three minutes").

    python bench/distill_table.py [--out runs/distill-table] [--seeds 0 1 ...] [--jobs 2] [--threads 1]
                                  [--name distill_table] [distill.py overrides]

Each seed: ``python distill.py seed=N report.enabled=false threads=T [overrides]`` into OUT/s<N>/distill (a finished
distillation with the same settings is reused; one with other settings stops the bench), then its level-1 table as RL
samples it (``bench.common.l1_short_sampled``: the task's 100 level-1 problems, 4 short answers each at T = 1, graded
strictly) and its last logged loss. A table right less than ``STALLED`` of the time counts as stalled: at 685128e the
demo's seed 2, right 0.55 of the time, never left ``<think>`` at level 1. ``--jobs`` distillations run at once, each at
``--threads`` torch threads (thread counts round float sums differently: another draw per seed, the same recipe).
Writes OUT/NAME.{md,json} with the commit, the command and the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (distill_finished, l1_short_sampled, log, machine, run_script,  # noqa: E402
                          write_results)
from thinkless.reporting.markdown import markdown_row, markdown_rule  # noqa: E402
from thinkless.reporting.monitor import read_metrics  # noqa: E402

STALLED = 0.9  # below this share of right sampled level-1 short answers, the table counts as not learnt


def distilled(out: Path, seed: int, threads: int, overrides: list[str]) -> Path:
    """Seed ``seed``'s distillation in OUT/s<seed>/distill (reused when finished with these settings)."""
    d = out / f"s{seed}" / "distill"
    settings = {"threads": threads, "overrides": overrides}
    record = out / f"s{seed}" / "bench_settings.json"
    if distill_finished(d):
        if not record.is_file() or json.loads(record.read_text()) != settings:
            raise SystemExit(f"{d} holds a distillation with other settings than {settings}: another --out")
        return d
    log(f"distill.py seed={seed}")
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(settings))
    run_script("distill.py", [f"output_dir={d}", f"seed={seed}", "report.enabled=false", f"threads={threads}",
                              "training.args.disable_tqdm=true", *overrides], out / "logs" / f"distill-s{seed}.log")
    return d


def last_loss(d: Path) -> float | None:
    """The distillation's last logged training loss (its metrics.jsonl)."""
    losses = [r["loss"] for r in read_metrics(d / "metrics.jsonl") if "loss" in r]
    return losses[-1] if losses else None


def row(d: Path, seed: int) -> dict:
    table = l1_short_sampled(d / "model", seed)
    return {"seed": seed, "l1_short_sampled": table, "stalled": table < STALLED, "last_loss": last_loss(d)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "runs" / "distill-table"))
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    p.add_argument("--jobs", type=int, default=2, help="distillations at once (default 2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per distillation (default 1)")
    p.add_argument("--name", default="distill_table", help="the results' file name (default distill_table)")
    p.add_argument("overrides", nargs="*", help="distill.py overrides (the recipe under test)")
    a = p.parse_args(argv)
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=a.jobs) as pool:  # the distillations are subprocesses: threads wait on them
        dirs = list(pool.map(lambda s: distilled(out, s, a.threads, a.overrides), a.seeds))
    rows = [row(d, s) for d, s in zip(dirs, a.seeds)]  # graded here, one at a time (in-process imports are not
    # thread-safe: transformers' lazy modules)
    stalled = [r["seed"] for r in rows if r["stalled"]]
    lines = [markdown_row(["seed", "level-1 short answers right, sampled", "stalled", "last logged loss"]),
             markdown_rule(4)]
    for r in rows:
        lines.append(markdown_row([r["seed"], f"{r['l1_short_sampled']:.2f}", "yes" if r["stalled"] else "no",
                                   f"{r['last_loss']:.3f}" if r["last_loss"] is not None else None]))
    recipe = " ".join(a.overrides) or "the demo's (conf/distill.yaml)"
    text = (f"# The distillation's level-1 table across seeds\n\n`python distill.py` with {recipe}, seeds {a.seeds}, "
            f"{a.jobs} at a time at {a.threads} torch thread(s) each. Machine: {machine()}.\n\n" + "\n".join(lines)
            + f"\n\nStalled (level-1 table right less than {STALLED} of the time, sampled at T = 1): {len(stalled)} "
            f"of {len(rows)} seeds" + (f" ({', '.join(map(str, stalled))})" if stalled else "") + ".\n")
    write_results(out, a.name, text, {"seeds": a.seeds, "overrides": a.overrides, "threads": a.threads,
                                      "jobs": a.jobs, "stalled_below": STALLED, "rows": rows,
                                      "stalled": len(stalled)})
    print(text, flush=True)


if __name__ == "__main__":
    main()
