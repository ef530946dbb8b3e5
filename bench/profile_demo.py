"""Where the CPU demo spends its time: a distill step and a DeGRPO step, split by phase, plus the one-time costs.

    python bench/profile_demo.py [--distill-steps 100] [--rl-steps 30] [--distill OVERRIDE] [--train OVERRIDE]
                                 [--against-trl] [--out DIR] [extra Hydra overrides for both stages]

Runs the demo's own stages in this process (distill.py's and train.py's configs, the same trainers), with timers
wrapped around the trainers' methods: data collation and padding, forward + loss, backward, optimizer, TRL's and our
per-step metrics and logging, checkpoint writes, generation (HF generate's per-token loop), rewards, validation and
the reports. Per-step phases are averaged over the steps after the first; one-time costs are per stage. The last
column extrapolates to the demo's step counts (the configs' max_steps). ``--against-trl`` profiles both stages twice,
first as TRL runs them on a CPU (its fused head scoring every position, its own rule where Triton does not run; its
generate prefilling each row's prompt), then as the trainers do (``thinkless/training/fused_head.py``: the labelled
positions; ``share_prompts``: each distinct prompt prefilled once), and sets each stage's phases side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Timers, machine, write_results  # noqa: E402
from thinkless.reporting.markdown import markdown_row, markdown_table  # noqa: E402


OUTER = {"validation", "reports", "data", "final save"}  # timed as a whole: what runs inside is not counted twice


def timed(timers: Timers, fn, label: str):
    def wrapped(*a, **kw):
        if getattr(timers, "inside", None):
            return fn(*a, **kw)
        if label in OUTER:
            timers.inside = label
        try:
            with timers.time(label):
                return fn(*a, **kw)
        finally:
            if label in OUTER:
                timers.inside = None

    return wrapped


def wrap_class(timers: Timers, cls, name: str, label: str) -> None:
    setattr(cls, name, timed(timers, getattr(cls, name), label))


def compose(config: str, overrides: list[str]):
    from hydra import compose as hcompose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hcompose(config_name=config, overrides=overrides)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--distill-steps", type=int, default=100)
    ap.add_argument("--rl-steps", type=int, default=30)
    ap.add_argument("--distill", action="append", default=[], help="a Hydra override for distill.py only")
    ap.add_argument("--train", action="append", default=[], help="a Hydra override for train.py only")
    ap.add_argument("--against-trl", action="store_true", help="profile both stages twice: first as TRL runs them "
                    "on a CPU (its fused head scoring every position; generate prefilling every row's prompt), then "
                    "as the trainers do (the labelled positions; each distinct prompt prefilled once); each stage's "
                    "phases side by side")
    ap.add_argument("--out", help="also write the tables as OUT/profile_demo.{md,json} (commit, machine, command)")
    a, extra = ap.parse_known_args()

    import accelerate
    import torch
    import transformers
    import trl

    import thinkless.reporting.publish as publish
    import thinkless.reporting.report as report
    import thinkless.training.sft as sft
    from thinkless import checkpoints
    from thinkless.training.trainer import AdaptiveGRPOTrainer

    timers = Timers()
    collator = trl.trainer.sft_trainer.DataCollatorForLanguageModeling
    for cls, name, label in [
        (collator, "__call__", "collation + padding"),
        (sft.DistillTrainer, "compute_loss", "forward + loss"),
        (AdaptiveGRPOTrainer, "_compute_loss", "forward + loss"),
        (accelerate.Accelerator, "backward", "backward"),
        (torch.optim.AdamW, "step", "optimizer"),
        (transformers.Trainer, "log", "metrics + logging"),
        (transformers.Trainer, "_save_checkpoint", "checkpoint writes"),
        (trl.GRPOTrainer, "_generate", "generation"),
        (AdaptiveGRPOTrainer, "_calculate_rewards", "rewards + mode statistics"),
        (transformers.Trainer, "evaluate", "validation"),
    ]:
        wrap_class(timers, cls, name, label)
    for mod, name, label in [(sft, "sft_rows", "data"), (report, "mode_report", "reports"),
                             (checkpoints, "save_final_model", "final save")]:
        setattr(mod, name, timed(timers, getattr(mod, name), label))
    import thinkless.training.rl as rl

    publish.mode_report = report.mode_report  # the reports are the publish step's
    rl.save_final_model = sft.save_final_model = checkpoints.save_final_model

    # "stages": the trainers as they run; with --against-trl, "trl" too: the same stages as TRL runs them on a CPU
    lines, data = [f"machine: {machine()}"], {"stages": {}}
    for way in (["trl", "ours"] if a.against_trl else ["ours"]):
        with as_trl_runs_it() if way == "trl" else contextlib.nullcontext():
            rows = profile_stages(a, extra, timers)
        if a.against_trl:
            lines.append(f"\n## {WAYS[way]}")
        lines += stage_tables(rows, data["stages"] if way == "ours" else data.setdefault("trl", {}))
    if a.against_trl:
        lines += side_by_side(data)
    text = "\n".join(lines)
    print(text)
    if a.out:
        Path(a.out).mkdir(parents=True, exist_ok=True)
        write_results(Path(a.out), "profile_demo", f"# The demo, profiled\n\n{text}\n", data)


WAYS = {"trl": "As TRL runs it on a CPU: its fused head scores every position, generate prefills every row's prompt",
        "ours": "As the trainers run it: the labelled positions scored (thinkless/training/fused_head.py), each "
                "distinct prompt prefilled once (share_prompts; thinkless/training/shared_prompts.py)"}


@contextlib.contextmanager
def as_trl_runs_it():
    """TRL's own CPU paths for what the trainers change there: its fused head's rule off Triton (every position) and
    its generate call (each row's prompt prefilled)."""
    import thinkless.training.fused_head as fused_head
    from thinkless.training.trainer import AdaptiveGRPOTrainer

    ours, prefill = fused_head._labelled_only, AdaptiveGRPOTrainer._prefill_shared
    fused_head._labelled_only = fused_head._TRL_CHOICE  # what score_labelled_positions installs
    AdaptiveGRPOTrainer._prefill_shared = lambda self, *a: contextlib.nullcontext()
    try:
        yield
    finally:
        fused_head._labelled_only, AdaptiveGRPOTrainer._prefill_shared = ours, prefill


def side_by_side(data: dict) -> list:
    """Each stage's per-step phases as TRL runs them and as the trainers do, in ms, with their ratio."""
    lines = ["\n" + markdown_table(["stage", "phase", "TRL's way (ms/step)", "ours (ms/step)", "ours / TRL's"])]
    data["ratio"] = {}
    for stage in ("distill", "train"):
        t, o = data["trl"][stage]["per_step_s"], data["stages"][stage]["per_step_s"]
        for k in sorted(t, key=lambda k: -t[k]) + ["step"]:
            tv, ov = (sum(d.values()) if k == "step" else d.get(k, 0.0) for d in (t, o))
            if tv >= 0.005 or k == "step":  # the phases that weigh (>= 5 ms)
                data["ratio"][f"{stage}/{k}"] = ov / tv
                lines.append(markdown_row([stage, f"**{k}**" if k == "step" else k, f"{1000 * tv:.1f}",
                                           f"{1000 * ov:.1f}", f"{ov / tv:.2f}"]))
    return lines


def profile_stages(a, extra, timers) -> list:
    """Both stages at the profile's step counts, timed: (stage, steps, demo steps, wall, per-step, one-time, other)."""
    from distill import distill_stage
    from train import train_stage

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # the step counts the demo runs with these overrides (an +experiment may set its own)
        full = {"distill": compose("distill", [*a.distill, *extra]).training.args.max_steps,
                "train": compose("train", [*a.train, *extra]).rl.args.max_steps}
        for stage, steps, run, overrides in [
            ("distill", a.distill_steps, distill_stage, [f"training.args.max_steps={a.distill_steps}",
                                                        "training.args.disable_tqdm=true", f"output_dir={tmp}/distill",
                                                        *a.distill]),
            ("train", a.rl_steps, train_stage, [f"rl.args.max_steps={a.rl_steps}", f"model.path={tmp}/distill/model",
                                               f"output_dir={tmp}/train", f"rl.args.eval_steps={max(1, a.rl_steps // 2)}",
                                               *a.train]),
        ]:
            cfg = compose(stage, overrides + extra)
            timers.pop()
            t0 = time.perf_counter()
            # the stage's own console (step lines, reports) goes to a file: this script prints only its tables
            with open(f"{tmp}/{stage}.console", "w") as console, contextlib.redirect_stdout(console):
                run(cfg)
            wall = time.perf_counter() - t0
            t = timers.pop()
            per_step = {k: v for k, v in t.items() if k in PER_STEP}
            once = {k: v for k, v in t.items() if k not in PER_STEP}
            other = wall - sum(t.values())
            rows.append((stage, steps, full[stage], wall, per_step, once, other))

    return rows


def stage_tables(rows, data: dict) -> list:
    """Each stage's per-step and one-time tables (lines), its numbers into ``data``."""
    lines = []
    for stage, steps, n_full, wall, per_step, once, other in rows:
        lines.append(f"\n### {stage}: {steps} steps in {wall:.1f} s (the demo runs {n_full})\n")
        lines.append(markdown_table(["phase", "per step (ms)", "share of the step", "demo total (s)"]))
        step_total = sum(per_step.values()) / steps
        for k, v in sorted(per_step.items(), key=lambda kv: -kv[1]):
            lines.append(markdown_row([k, f"{1000 * v / steps:.1f}", f"{v / steps / step_total:.0%}",
                                       f"{v / steps * n_full:.1f}"]))
        lines.append(markdown_row(["**all per-step phases**", f"{1000 * step_total:.1f}", "100%",
                                   f"{step_total * n_full:.1f}"]))
        lines.append("\n" + markdown_table(["one-time", "s"]))
        for k, v in sorted(once.items(), key=lambda kv: -kv[1]):
            lines.append(markdown_row([k, f"{v:.2f}"]))
        lines.append(markdown_row(["other (trainer set-up, model load, imports inside the stage)", f"{other:.2f}"]))
        extrapolated = step_total * n_full + sum(once.values()) + other
        lines.append(f"\nextrapolated {stage} stage at the demo's {n_full} steps: {extrapolated:.0f} s")
        data[stage] = {"steps": steps, "demo_steps": n_full, "wall_s": wall, "per_step_s": {
            k: v / steps for k, v in per_step.items()}, "one_time_s": {**once, "other": other},
            "extrapolated_s": extrapolated}
    return lines


PER_STEP = {"collation + padding", "forward + loss", "backward", "optimizer", "metrics + logging", "generation",
            "rewards + mode statistics", "checkpoint writes"}


if __name__ == "__main__":
    main()
