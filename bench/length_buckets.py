"""Scoring in length buckets (``rl.args.length_bucket_rows``) against TRL's one padded forward: the same RL run at each
setting, interleaved, from one model; the step times and whether the runs stayed the same.

    python bench/length_buckets.py OUT MODEL [--rows 0 32] [--steps 30] [--repeats 2] [train.py overrides ...]
    # -> OUT/length_buckets.{md,json}

Each run is ``train.py`` in its own process on the gym's task and RL stage (``rl=gym_cpu``, the graded task, seed 0)
for ``--steps`` steps, the overrides after the options added; the settings alternate within each repeat, so a drift
of the machine's speed reaches all of them. Per setting: TRL's logged ``step_time`` (median over the steps after the
first, then over repeats), its ratio to the first setting's (measured in this run), and how far the run's logged
losses and think ratios are from the first setting's run of the same repeat (float rounding only: the same rollouts)
and whether its after-RL report is the same file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import GYM_SCALE, TASK, log, machine, median, run_script, write_results  # noqa: E402
from thinkless.reporting.markdown import markdown_row, markdown_rule  # noqa: E402

COMPARED = ("loss/control", "loss/response", "modes/think_ratio")  # logged per step: the run's trajectory


def one_run(out: Path, model: Path, rows: int, steps: int, repeat: int, overrides: list[str]) -> dict:
    d = out / f"rows{rows}-r{repeat}"
    wall = run_script("train.py", [*GYM_SCALE["train"], *TASK, f"model.path={model}", f"output_dir={d}",
                                   "run_name=length_buckets", "seed=0", f"rl.args.max_steps={steps}",
                                   f"rl.args.length_bucket_rows={rows}", *overrides], out / "logs" / f"{d.name}.log")
    logged = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in logged if "step_time" in r]
    return {"rows": rows, "repeat": repeat, "wall_s": round(wall, 1), "step_times": [r["step_time"] for r in train],
            "trajectory": {k: [r.get(k) for r in train] for k in COMPARED},
            "report": (d / "report_after_rl.json").read_text()}


def largest_difference(a: dict, b: dict) -> float:
    return max((abs(x - y) for k in COMPARED for x, y in zip(a[k], b[k]) if x is not None and y is not None),
               default=0.0)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("model", type=Path, help="a distilled model (e.g. the gym's runs/gym/distill/model)")
    ap.add_argument("--rows", type=int, nargs="+", default=[0, 32], help="length_bucket_rows settings; the first "
                    "is the baseline of the ratios")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=2)
    a, overrides = ap.parse_known_args(argv)
    if a.steps < 2:
        ap.error(f"--steps {a.steps}: at least 2 (the first step is warm-up, not timed)")
    a.out.mkdir(parents=True, exist_ok=True)
    runs = []
    for repeat in range(a.repeats):
        for rows in a.rows:
            log(f"length_bucket_rows={rows}, repeat {repeat}")
            runs.append(one_run(a.out, a.model.resolve(), rows, a.steps, repeat, overrides))
    base = a.rows[0]
    first = {r["repeat"]: r for r in runs if r["rows"] == base}
    summary = {}
    for rows in a.rows:
        mine = [r for r in runs if r["rows"] == rows]
        summary[rows] = {"step_s": median([median(r["step_times"][1:]) for r in mine]),
                         "wall_s": median([r["wall_s"] for r in mine]),
                         "largest_difference": max(largest_difference(r["trajectory"], first[r["repeat"]]["trajectory"])
                                                   for r in mine),
                         "same_report": all(r["report"] == first[r["repeat"]]["report"] for r in mine)}
    lines = [f"# Scoring in length buckets\n\n{a.repeats} repeat(s) x {len(a.rows)} settings, {a.steps} RL steps "
             f"each (the gym's task and RL stage, seed 0), from `{a.model}`; the settings alternate within a repeat. "
             f"Machine: {machine()}.\n",
             markdown_row(["length_bucket_rows", "step (s, median)", f"step / rows {base}'s", "process wall (s)",
                           f"largest absolute difference from rows {base}'s logged losses and think ratios",
                           "after-RL report the same"]),
             markdown_rule(6)]
    for rows, s in summary.items():
        lines.append(markdown_row([rows, f"{s['step_s']:.3f}", f"{s['step_s'] / summary[base]['step_s']:.2f}",
                                   f"{s['wall_s']:.1f}", f"{s['largest_difference']:.1e}",
                                   "yes" if s["same_report"] else "no"]))
    text = "\n".join(lines) + "\n"
    write_results(a.out, "length_buckets", text, {"steps": a.steps, "repeats": a.repeats, "overrides": overrides,
                                                  "summary": summary,
                                                  "runs": [{k: v for k, v in r.items() if k != "report"} for r in runs]})
    print(text, flush=True)


if __name__ == "__main__":
    main()
