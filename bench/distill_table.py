"""The distillation's level-1 table across seeds: how often a distillation recipe learns the fold task's level-1 short
answers sharply enough for RL to keep level 1 short (docs/lab-notebook.md, "The demo in under three minutes"); with
``--train``, the demo's RL stage on each seed's distillation too, and whether it meets the demo's three targets.

    python bench/distill_table.py [--out runs/distill-table] [--seeds 0 1 ...] [--jobs 2] [--threads 1]
                                  [--name distill_table] [--train [train.py overrides ...]] [distill.py overrides]

Each seed: ``python distill.py seed=N report.enabled=false threads=T [overrides]`` into OUT/s<N>/distill (a finished
distillation with the same settings is reused; one with other settings stops the bench), then its level-1 table as RL
samples it (``bench.common.l1_short_sampled``: the task's 100 level-1 problems, 4 short answers each at T = 1, graded
strictly) and its last logged loss. A table right less than ``STALLED`` of the time counts as stalled: at 685128e the
demo's seed 2, right 0.55 of the time, never left ``<think>`` at level 1. With ``--train``: ``python train.py seed=N
threads=T model.path=OUT/s<N>/distill/model [train overrides]`` into OUT/s<N>/train (reused alike), and its pipeline
report's targets, think ratios, E[r] and the step level 1 leaves ``<think>``. ``--jobs`` runs at once, each at
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

from bench.common import (distill_finished, l1_short_sampled, log, machine, rl_outcome,  # noqa: E402
                          run_script, write_results)
from thinkless.reporting.markdown import markdown_row, markdown_rule  # noqa: E402
from thinkless.reporting.monitor import read_metrics  # noqa: E402

STALLED = 0.9  # below this share of right sampled level-1 short answers, the table counts as not learnt


def reused(d: Path, finished: bool, record: Path, settings: dict) -> bool:
    """Whether stage folder ``d`` holds a finished run with ``settings`` (recorded in ``record`` when it started); a
    finished one with other settings stops the bench, an unfinished one is run again."""
    if finished:
        if not record.is_file() or json.loads(record.read_text()) != settings:
            raise SystemExit(f"{d} holds a run with other settings than {settings}: another --out")
        return True
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(settings))
    return False


def distilled(out: Path, seed: int, threads: int, overrides: list[str]) -> Path:
    """Seed ``seed``'s distillation in OUT/s<seed>/distill (reused when finished with these settings)."""
    d = out / f"s{seed}" / "distill"
    if not reused(d, distill_finished(d), out / f"s{seed}" / "bench_settings.json",
                  {"threads": threads, "overrides": overrides}):
        log(f"distill.py seed={seed}")
        run_script("distill.py", [f"output_dir={d}", f"seed={seed}", "report.enabled=false", f"threads={threads}",
                                  "training.args.disable_tqdm=true", *overrides], out / "logs" / f"distill-s{seed}.log")
    return d


def trained(out: Path, seed: int, threads: int, overrides: list[str]) -> Path:
    """train.py (the demo's RL stage, ``overrides`` added) on seed ``seed``'s distillation, in OUT/s<seed>/train
    (reused when finished with these settings)."""
    t = out / f"s{seed}" / "train"
    if not reused(t, (t / "pipeline_report.json").is_file(), out / f"s{seed}" / "train_settings.json",
                  {"threads": threads, "overrides": overrides}):
        log(f"train.py seed={seed}")
        run_script("train.py", [f"output_dir={t}", f"model.path={out / f's{seed}' / 'distill' / 'model'}",
                                f"seed={seed}", f"threads={threads}", *overrides], out / "logs" / f"train-s{seed}.log")
    return t


def last_loss(d: Path) -> float | None:
    """The distillation's last logged training loss (its metrics.jsonl)."""
    losses = [r["loss"] for r in read_metrics(d / "metrics.jsonl") if "loss" in r]
    return losses[-1] if losses else None


def row(d: Path, seed: int) -> dict:
    table = l1_short_sampled(d / "model", seed)
    return {"seed": seed, "l1_short_sampled": table, "stalled": table < STALLED, "last_loss": last_loss(d)}


def rl_row(t: Path) -> dict:
    """The RL run's outcome from its pipeline report: the three targets, per-level think ratios, E[r] and the
    oracle's, and the step level 1 leaves ``<think>``."""
    o = rl_outcome(t)
    return {"targets": o["targets"], "met": all(o["targets"].values()),
            "think_ratio": {lv: v["think_ratio"] for lv, v in o["levels"].items()}, "reward": o["reward"],
            "reward_oracle": o["reward_oracle"], "l1_leaves_think_at": o["l1_leaves_think_at"]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "runs" / "distill-table"))
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    p.add_argument("--jobs", type=int, default=2, help="distillations at once (default 2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per distillation (default 1)")
    p.add_argument("--name", default="distill_table", help="the results' file name (default distill_table)")
    p.add_argument("--train", nargs="*", default=None, metavar="OVERRIDE",
                   help="also run train.py (the demo's RL stage) on each distillation, with these overrides")
    p.add_argument("overrides", nargs="*", help="distill.py overrides (the recipe under test)")
    a = p.parse_args(argv)
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=a.jobs) as pool:  # the distillations are subprocesses: threads wait on them
        dirs = list(pool.map(lambda s: distilled(out, s, a.threads, a.overrides), a.seeds))
    rows = [row(d, s) for d, s in zip(dirs, a.seeds)]  # graded here, one at a time (in-process imports are not
    # thread-safe: transformers' lazy modules)
    if a.train is not None:
        with ThreadPoolExecutor(max_workers=a.jobs) as pool:
            runs = list(pool.map(lambda s: trained(out, s, a.threads, a.train), a.seeds))
        for r, t in zip(rows, runs):
            r["rl"] = rl_row(t)
    stalled = [r["seed"] for r in rows if r["stalled"]]
    head = ["seed", "level-1 short answers right, sampled", "stalled", "last logged loss"]
    rl_head = ["RL think ratio L1-L6", "L1 leaves `<think>` at step", "E[r] (oracle)", "targets"]
    lines = [markdown_row(head + (rl_head if a.train is not None else [])),
             markdown_rule(len(head) + (len(rl_head) if a.train is not None else 0))]
    for r in rows:
        cells = [r["seed"], f"{r['l1_short_sampled']:.2f}", "yes" if r["stalled"] else "no",
                 f"{r['last_loss']:.3f}" if r["last_loss"] is not None else None]
        if "rl" in r:
            q = r["rl"]
            cells += [" ".join(f"{v:.2f}" for v in q["think_ratio"].values()),
                      q["l1_leaves_think_at"] if q["l1_leaves_think_at"] is not None else "never",
                      f"{q['reward']:.3f} ({q['reward_oracle']:.3f})",
                      " ".join("✓" if ok else "✗" for ok in q["targets"].values())]
        lines.append(markdown_row(cells))
    recipe = " ".join(a.overrides) or "the demo's (conf/distill.yaml)"
    rl = ""
    if a.train is not None:
        met = [r["seed"] for r in rows if r["rl"]["met"]]
        rl_recipe = " ".join(a.train) or "the demo's (conf/train.yaml)"
        rl = (f"\nThen `python train.py` with {rl_recipe} on each "
              f"distillation: all three targets met on {len(met)} of {len(rows)} seeds" + (
                  f" (missed on {', '.join(str(r['seed']) for r in rows if not r['rl']['met'])})"
                  if len(met) < len(rows) else "") + ".\n")
    text = (f"# The distillation's level-1 table across seeds\n\n`python distill.py` with {recipe}, seeds {a.seeds}, "
            f"{a.jobs} at a time at {a.threads} torch thread(s) each. Machine: {machine()}.\n\n" + "\n".join(lines)
            + f"\n\nStalled (level-1 table right less than {STALLED} of the time, sampled at T = 1): {len(stalled)} "
            f"of {len(rows)} seeds" + (f" ({', '.join(map(str, stalled))})" if stalled else "") + ".\n" + rl)
    data = {"seeds": a.seeds, "overrides": a.overrides, "threads": a.threads, "jobs": a.jobs,
            "stalled_below": STALLED, "rows": rows, "stalled": len(stalled)}
    if a.train is not None:
        data.update(train_overrides=a.train, targets_met=sum(r["rl"]["met"] for r in rows))
    write_results(out, a.name, text, data)
    print(text, flush=True)


if __name__ == "__main__":
    main()
