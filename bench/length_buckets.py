"""Length buckets (``length_bucket_rows``) and shared prompts (``share_prompts``) against TRL's one padded forward:
the same run at each setting, interleaved; the step times and whether the runs stayed the same.

    python bench/length_buckets.py OUT --model MODEL [--rows 0 32] [--share-prompts] [--task demo] [--steps 30]
        [--repeats 2] [overrides ...]
    python bench/length_buckets.py OUT --stage distill [--rows 0 32] [--share-prompts] [--task demo] [--steps 100]
        [--repeats 2] [overrides ...]
    # -> OUT/length_buckets_{train,distill}.{md,json}

``--stage train`` (the default): ``train.py`` on the gym's task and RL stage (``rl=gym_cpu``, the graded task, seed 0)
from MODEL (``--task demo``: the demo's, conf/rl/degrpo_cpu.yaml on the fold task), ``rl.args.length_bucket_rows``
at each setting, then (``--share-prompts``) ``rl.args.share_prompts`` with no buckets. ``--stage distill``: ``distill.py`` on the gym's graded
data and schedule (``--task demo``: the demo's, conf/training/sft_cpu.yaml on the fold task; a tiny model from
scratch), ``training.args.length_bucket_rows``, then (``--share-prompts``) ``training.args.share_prompts``: a
paired problem's rows batched together, so that run sees its rows in another order than the others (its logged
values differ by more than rounding; its step time is the comparison). Each run is its own process for
``--steps`` steps, the overrides after the options added; the settings alternate within each repeat, so a drift of
the machine's speed reaches all of them. Per setting: the time per step (train: TRL's logged ``step_time``, the
median over the steps after the first; distill: the training's seconds over its steps), each the median over
repeats; its ratio to the first setting's (measured in this run); how far the run's logged losses and means are from
the first setting's run of the same repeat (float rounding: the same data, the same rollouts); and whether its report
(train: after RL; distill: the distilled model's) is the same file.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import GYM_SCALE, TASK, command_line, log, machine, median, run_script, write_results  # noqa: E402
from thinkless.reporting.markdown import markdown_row, markdown_rule  # noqa: E402

# per stage: its script, the args key, the logged values that trace the run, its report
STAGES = {"train": ("train.py", "rl.args", ("loss/control", "loss/response", "modes/think_ratio"),
                    "report_after_rl.json"),
          "distill": ("distill.py", "training.args", ("loss", "entropy", "mean_token_accuracy"),
                      "distill_report.json")}


SHARED = "shared"  # the setting rl.args.share_prompts=true (length_bucket_rows 0)


def one_run(out: Path, stage: str, model: Path | None, rows: int | str, steps: int, repeat: int,
            overrides: list[str], task: str = "gym") -> dict:
    script, key, traced, report = STAGES[stage]
    d = out / f"{stage}-{'shared' if rows == SHARED else f'rows{rows}'}-r{repeat}"
    setting = ([f"{key}.length_bucket_rows=0", f"{key}.share_prompts=true"] if rows == SHARED else
               [f"{key}.length_bucket_rows={rows}", f"{key}.share_prompts=false"])
    if stage == "train":
        argv = [*((GYM_SCALE["train"] + TASK) if task == "gym" else []), f"model.path={model}",
                f"rl.args.max_steps={steps}"]
    else:
        argv = [*(["data=graded", "benchmark@report.benchmark=graded", *GYM_SCALE["distill"]] if task == "gym" else []),
                f"training.args.max_steps={steps}", "training.args.logging_steps=1", "training.args.disable_tqdm=true"]
    wall = run_script(script, [*argv, f"output_dir={d}", "run_name=length_buckets", "seed=0",
                               *setting, *overrides], out / "logs" / f"{d.name}.log")
    logged = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    if stage == "train":
        steps_logged = [r for r in logged if "step_time" in r]
        per_step = median([r["step_time"] for r in steps_logged][1:])
    else:
        steps_logged = [r for r in logged if "loss" in r]
        per_step = json.loads((d / "distill_result.json").read_text())["train_seconds"] / steps
    return {"rows": rows, "repeat": repeat, "wall_s": round(wall, 1), "step_s": per_step,
            "trajectory": {k: [r.get(k) for r in steps_logged] for k in traced}, "report": (d / report).read_text()}


def largest_difference(a: dict, b: dict) -> float:
    """The largest absolute difference between two runs' logged values; inf where one logged what the other did not."""
    out = 0.0
    for k in a:
        if len(a[k]) != len(b[k]) or any((x is None) != (y is None) for x, y in zip(a[k], b[k])):
            return math.inf
        out = max([out, *(abs(x - y) for x, y in zip(a[k], b[k]) if x is not None)])
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--stage", choices=sorted(STAGES), default="train")
    ap.add_argument("--model", type=Path, help="train: a distilled model (e.g. the gym's runs/gym/distill/model)")
    ap.add_argument("--rows", type=int, nargs="+", default=[0, 32], help="length_bucket_rows settings; the first "
                    "is the baseline of the ratios")
    ap.add_argument("--share-prompts", action="store_true", help="also share_prompts=true (no buckets)")
    ap.add_argument("--task", choices=["gym", "demo"], default="gym", help="the gym's stage and graded task (default) "
                    "or the demo's (conf/rl/degrpo_cpu.yaml or conf/training/sft_cpu.yaml, the fold task)")
    ap.add_argument("--steps", type=int, help="steps per run (default: train 30, distill 100)")
    ap.add_argument("--repeats", type=int, default=2)
    a, overrides = ap.parse_known_args(argv)
    steps = a.steps or {"train": 30, "distill": 100}[a.stage]
    if steps < 2:
        ap.error(f"--steps {steps}: at least 2 (the first train step is warm-up, not timed)")
    if len(set(a.rows)) != len(a.rows):
        ap.error(f"--rows {' '.join(map(str, a.rows))}: each setting once")
    if (a.stage == "train") != (a.model is not None):
        ap.error("--model MODEL: the train stage starts from a distilled model; the distill stage from scratch")
    a.out.mkdir(parents=True, exist_ok=True)
    settings = [*a.rows, *([SHARED] if a.share_prompts else [])]
    runs = []
    for repeat in range(a.repeats):
        for rows in settings:
            log(f"{a.stage}: {'share_prompts' if rows == SHARED else f'length_bucket_rows={rows}'}, repeat {repeat}")
            runs.append(one_run(a.out, a.stage, a.model and a.model.resolve(), rows, steps, repeat, overrides,
                                a.task))
    base = a.rows[0]
    first = {r["repeat"]: r for r in runs if r["rows"] == base}
    summary = {}
    for rows in settings:
        mine = [r for r in runs if r["rows"] == rows]
        summary[rows] = {"step_s": median([r["step_s"] for r in mine]), "wall_s": median([r["wall_s"] for r in mine]),
                         "largest_difference": max(largest_difference(r["trajectory"], first[r["repeat"]]["trajectory"])
                                                   for r in mine),
                         "same_report": all(r["report"] == first[r["repeat"]]["report"] for r in mine)}
    script, key, traced, _ = STAGES[a.stage]
    start = f"from `{a.model}`" if a.model else "from scratch"
    what = (f"the demo's {'RL stage' if a.stage == 'train' else 'distillation'} and fold task" if a.task == "demo"
            else "the gym's task and schedule")
    shared = f" and `{key}.share_prompts=true` (shared)" if a.share_prompts else ""
    lines = [f"# Scoring settings: {script}\n\n{a.repeats} repeat(s) x {len(settings)} settings of "
             f"`{key}.length_bucket_rows`{shared}, {steps} steps each ({what}, seed 0, {start}); the settings "
             f"alternate within a repeat. Command: `{command_line('bench/length_buckets.py')}`. "
             f"Machine: {machine()}.\n",
             markdown_row(["length_bucket_rows (or shared)", "step (s, median)", f"step / rows {base}'s",
                           "process wall (s)",
                           f"largest absolute difference from rows {base}'s logged {', '.join(traced)}",
                           "report the same"]),
             markdown_rule(6)]
    for rows, s in summary.items():
        lines.append(markdown_row([rows, f"{s['step_s']:.3f}", f"{s['step_s'] / summary[base]['step_s']:.2f}",
                                   f"{s['wall_s']:.1f}", f"{s['largest_difference']:.1e}",
                                   "yes" if s["same_report"] else "no"]))
    text = "\n".join(lines) + "\n"
    write_results(a.out, f"length_buckets_{a.stage}", text,
                  {"stage": a.stage, "task": a.task, "steps": steps, "repeats": a.repeats, "overrides": overrides, "summary": summary,
                   "runs": [{k: v for k, v in r.items() if k != "report"} for r in runs]})
    print(text, flush=True)


if __name__ == "__main__":
    main()
