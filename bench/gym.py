"""The adaptive-thinking gym: objectives trained on equal terms on the graded task, beside its exact oracle.

One distillation of the graded task (``data=graded``) is shared by every run. Each objective x seed then runs the
same RL stage (``conf/rl/degrpo_cpu.yaml``: the same start, prompts, rollouts per step, optimizer steps, learning
rate and sampling); only the objective's own knobs differ, at its authors' defaults (``conf/objective/NAME.yaml``).
Every run is judged by the same yardstick: the pipeline report (``thinkless.reporting.report``) per memo grade, with reward
1 / 1−γ / −1 at the gym's γ, against the oracle router computed from the distilled model's forced accuracies.

    python bench/gym.py                 # every objective x 3 seeds -> runs/gym/gym_results.{md,json}, gym.png
    python bench/gym.py --sweep         # DeGRPO at γ 0.1 .. 0.9 x 3 seeds -> sweep_results.{md,json}, sweep.png
    python bench/gym.py --quick         # 1 seed, a few steps, a small report, 2 runs at once: the test suite's

A rerun skips finished runs (``gym_run.json`` in the run's folder) and resumes an interrupted one from its last
checkpoint (``rerun=auto``). docs/gym.md explains the task, the yardstick and the tables.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from thinkless.objectives import OBJECTIVES as REGISTRY  # noqa: E402

OBJECTIVES = tuple(REGISTRY)  # every registered objective (thinkless/objectives/), by name
GAMMAS = (0.1, 0.3, 0.5, 0.7, 0.9)
GAMMA = 0.5  # the gym's yardstick: conf/objective/thinkless.yaml's correct_think = 1 − γ
TASK = ["rl_data=graded", "benchmark@report.benchmark=graded"]


@dataclass
class Plan:
    """What every run shares. ``--quick`` shrinks it to seconds; the defaults are the published leaderboard."""

    seeds: list = field(default_factory=lambda: [0, 1, 2])
    objectives: list = field(default_factory=lambda: list(OBJECTIVES))
    steps: int = 100                 # conf/rl/degrpo_cpu.yaml runs 260; 100 fit 15 runs in 45 minutes (docs/gym.md)
    timing_steps: int = 20           # step-time ratio: the first N steps of a run vs stock TRL GRPO's first N
    jobs: int = 1                    # runs at once; 1 keeps wall times and step-time ratios comparable
    tag: str = ""                    # --train overrides, in run labels and folders
    distill: list = field(default_factory=list)  # extra distill.py overrides
    train: list = field(default_factory=list)    # extra train.py overrides (every run alike)

    @classmethod
    def quick(cls) -> "Plan":
        small = ["report.benchmark.n_per_level=6", "report.free_samples=1"]
        return cls(seeds=[0], steps=3, timing_steps=2, jobs=2,
                   distill=["training.args.max_steps=20", "data.num_problems=200", *small],
                   train=["rl.args.per_device_train_batch_size=16", "rl.args.num_generations=4",
                          "rl.args.save_steps=100", "rl_data.validation=null", "report.threshold_biases=[-4,0,4]",
                          *small])


def log(msg: str) -> None:
    sys.stdout.write(f"[gym {time.strftime('%H:%M:%S')}] {msg}\n")  # one write: runs at once do not interleave
    sys.stdout.flush()


def run_script(script: str, overrides: list[str], logfile: Path) -> float:
    """``python <script> overrides...`` with its output in ``logfile``; wall seconds. Fails naming the log."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), "WANDB_MODE": os.environ.get("WANDB_MODE",
                                                                                                "offline")}
    logfile.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with logfile.open("w") as f:
        rc = subprocess.run([sys.executable, str(ROOT / script), *overrides], cwd=ROOT, env=env, stdout=f,
                            stderr=subprocess.STDOUT).returncode
    if rc != 0:
        tail = logfile.read_text()[-3000:]
        raise RuntimeError(f"{script} {' '.join(overrides)} failed ({rc}); its output: {logfile}\n{tail}")
    return time.perf_counter() - t0


def distill(out: Path, plan: Plan) -> Path:
    """The one distillation every run starts from (skipped when its model is there)."""
    d = out / "distill"
    if not (d / "distill_result.json").is_file():
        log("distilling the graded task (shared by every run)")
        s = run_script("distill.py", ["data=graded", "benchmark@report.benchmark=graded", f"output_dir={d}",
                                      "run_name=gym", "training.args.disable_tqdm=true", *plan.distill],
                       out / "logs" / "distill.log")
        log(f"distilled in {s:.0f}s")
    return d / "model"


def objective_overrides(name: str, plan: Plan, quick: bool) -> list[str]:
    """The run's own knobs: the objective's authors' defaults, only shrunk in ``--quick``."""
    out = [f"objective={name}"]
    if quick and name == "adaptthink":
        out.append("objective.ref_samples=2")
    return out


def train_run(out: Path, model: Path, label: str, overrides: list[str], seed: int, plan: Plan) -> dict:
    """One RL run (skipped when finished); its row of the results."""
    d = out / "runs" / f"{label}-s{seed}"
    done = d / "gym_run.json"
    if done.is_file():
        return json.loads(done.read_text())
    log(f"training {label} seed {seed}")
    wall = run_script("train.py", [*overrides, *TASK, f"model.path={model}", f"output_dir={d}", "run_name=gym",
                                   f"seed={seed}", f"rl.args.max_steps={plan.steps}", *plan.train],
                      out / "logs" / f"{label}-s{seed}.log")
    row = {"label": label, "seed": seed, "overrides": overrides, "dir": str(d.relative_to(out)), "wall_s": round(wall, 1),
           **summarize_run(d)}
    done.write_text(json.dumps(row, indent=2))
    log(f"{label} seed {seed}: E[r] {row['reward']:.3f} (oracle {row['oracle_reward']:.3f}), acc {row['acc']:.3f}, "
        f"think {row['think_ratio']:.2f}, {row['tokens']:.1f} tokens, {wall:.0f}s")
    return row


def run_all(plan: Plan, calls: list[tuple]) -> list[dict]:
    """``train_run(*call)`` for every call, ``plan.jobs`` at a time (their rows in the calls' order)."""
    if plan.jobs <= 1:
        return [train_run(*c) for c in calls]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(plan.jobs) as pool:  # each run is its own process: threads only wait
        return list(pool.map(lambda c: train_run(*c), calls))


def summarize_run(d: Path) -> dict:
    """A finished run's numbers, read from what train.py wrote (the pipeline report, metrics.jsonl)."""
    from thinkless.reporting.monitor import read_metrics

    res = json.loads((d / "train_result.json").read_text())
    rep = res["report"]
    after = json.loads((d / "report_after_rl.json").read_text())
    rows = after.get("per_group") or after["per_level"]
    n = sum(r["n"] for r in rows.values())
    mean = lambda k: sum(r[k] * r["n"] for r in rows.values()) / n  # noqa: E731
    cfg = json.loads((d / "run_config.json").read_text())["config"]
    per_step = cfg["rl"]["args"]["per_device_train_batch_size"] * cfg["rl"]["args"].get("gradient_accumulation_steps",
                                                                                        1)
    lines = [r for r in read_metrics(d / "metrics.jsonl") if "completions/mean_length" in r]
    return {"reward": rep["reward_rl"], "oracle_reward": rep["reward_oracle"], "acc": rep["overall_acc_rl"],
            "forced_think_acc": rep["overall_acc_forced_think"], "tokens": mean("free_tokens"),
            "think_ratio": mean("free_think_ratio"),
            "classes": {k: {"think_ratio": v["think_ratio"], "oracle": v["oracle"], "acc": v["acc"],
                            "reward": v["reward"]} for k, v in rep["levels"].items()},
            "targets": rep.get("targets", {}),
            "rollout_tokens": int(sum(r["completions/mean_length"] * per_step for r in lines)),
            "step_times": [r["step_time"] for r in lines if "step_time" in r],
            "train_s": res.get("train_seconds"), "threshold": rep.get("threshold", [])}


def stock_grpo_step_times(out: Path, model: Path, plan: Plan) -> list[float]:
    """Step times of stock ``trl.GRPOTrainer`` (Thinkless's reward as a plain reward function) on the same start,
    prompts and ``rl.args``, for ``plan.timing_steps`` steps: the denominator of every run's step-time ratio."""
    path = out / "stock_grpo.json"
    if path.is_file():
        return json.loads(path.read_text())["step_times"]
    log(f"timing stock TRL GRPO ({plan.timing_steps} steps)")
    script = (
        f"CONF = {str(ROOT / 'conf')!r}\n"
        "import json, sys, dataclasses, torch\n"
        "from hydra import compose, initialize_config_dir\n"
        "from omegaconf import OmegaConf\n"
        "from thinkless.training.rl import rl_prompts, skip_unused_vllm_import\n"
        "out, model, steps, seed, ov = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]\n"
        "with initialize_config_dir(config_dir=CONF, version_base=None):\n"
        "    cfg = compose('train', overrides=ov)\n"
        "skip_unused_vllm_import(cfg)  # as train.py does: the same start for both\n"
        "from datasets import Dataset\n"
        "from trl import GRPOConfig, GRPOTrainer\n"
        "from thinkless.tasks.data import DropStats\n"
        "from thinkless.modeling import load_checkpoint\n"
        "from thinkless.reward import ThinklessReward\n"
        "torch.manual_seed(seed)\n"
        "m, tok = load_checkpoint(model)\n"
        "rows = rl_prompts(cfg.rl_data, DropStats(), instruction=cfg.prompt.instruction, system=cfg.prompt.system)\n"
        "names = {f.name for f in dataclasses.fields(GRPOConfig)}\n"
        "a = {k: v for k, v in OmegaConf.to_container(cfg.rl.args, resolve=True).items() if k in names}\n"
        "a.update(output_dir=out + '/stock_grpo', max_steps=steps, save_strategy='no', eval_strategy='no',\n"
        "         eval_on_start=False, report_to=[], seed=seed, use_cpu=not torch.cuda.is_available(), bf16=False,\n"
        "         use_vllm=False)\n"
        "tr = GRPOTrainer(model=m, reward_funcs=[ThinklessReward()], args=GRPOConfig(**a),\n"
        "                 train_dataset=Dataset.from_list(rows), processing_class=tok)\n"
        "tr.train()\n"
        "times = [r['step_time'] for r in tr.state.log_history if 'step_time' in r]\n"
        "json.dump({'step_times': times}, open(out + '/stock_grpo.json', 'w'))\n")
    (out / "logs").mkdir(parents=True, exist_ok=True)
    ov = [*TASK, f"model.path={model}", *[o for o in plan.train if o.startswith(("rl.args.", "rl_data."))]]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with (out / "logs" / "stock_grpo.log").open("w") as f:
        rc = subprocess.run([sys.executable, "-c", script, str(out), str(model), str(plan.timing_steps), "0", *ov],
                            cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise RuntimeError(f"stock TRL GRPO timing failed; see {out / 'logs' / 'stock_grpo.log'}")
    return json.loads(path.read_text())["step_times"]


# ------------------------------------------------------------------ tables and pictures


def spread(xs) -> tuple[float, float]:
    """(mean, sample sd) of the finite values, NaN when none: thinkless.evaluation.seeds.spread as a pair."""
    from thinkless.evaluation.seeds import spread as seed_spread

    s = seed_spread(list(xs))
    return (float("nan"), float("nan")) if s["n"] == 0 else (s["mean"], s["sd"])


def fmt(xs, spec="{:.3f}") -> str:
    m, s = spread(xs)
    return spec.format(m) + (f" ± {spec.replace('+', '').format(s)}" if len(xs) > 1 else "")


def oracle_point(run_dir: Path, gamma: float) -> dict:
    """The oracle router on the distilled model (a run's ``report_before_rl.json``: the same benchmark and greedy
    forced modes every run is judged on): per class the better forced mode at ``gamma``; its accuracy and tokens."""
    from thinkless.oracle import oracle_choice
    from thinkless.reporting.report import rows_of
    from thinkless.reward import RewardValues

    rep = json.loads((Path(run_dir) / "report_before_rl.json").read_text())
    _, rows = rows_of(rep)
    values = RewardValues(correct_think=1.0 - gamma)
    n = sum(r["n"] for r in rows.values())
    acc = tok = rew = 0.0
    classes = {}
    for k, r in rows.items():
        mode, e = oracle_choice(r["short_acc"], r["think_acc"], values)
        classes[k] = {"mode": mode, "reward": e, "short_acc": r["short_acc"], "think_acc": r["think_acc"]}
        acc += r[f"{mode}_acc"] * r["n"] / n
        tok += r[f"{mode}_tokens"] * r["n"] / n
        rew += e * r["n"] / n
    return {"acc": acc, "tokens": tok, "reward": rew, "think_ratio": sum(
        rows[k]["n"] for k, c in classes.items() if c["mode"] == "think") / n, "classes": classes}


def class_name(k: str) -> str:
    from thinkless.tasks.base import get_task

    return get_task("graded").split_name(k)  # the gym's task (TASK)


def leaderboard(runs: list[dict], oracle: dict, base_step: float) -> tuple[str, dict]:
    by: dict[str, list] = {}
    for r in runs:
        by.setdefault(r["label"], []).append(r)
    summary = {}
    lines = ["| objective | seeds | E[r] | gap to oracle | accuracy | response tokens | think ratio | "
             "rollout tokens (training) | wall time (s) | step time vs stock TRL GRPO |", "|" + "---|" * 10]
    for label, rs in by.items():
        ratio = [statistics.median(r["step_times"][:len(base_step)]) / statistics.median(base_step)
                 if r["step_times"] else None for r in rs] if base_step else [None]
        summary[label] = {k: spread([r[k] for r in rs]) for k in ("reward", "acc", "tokens", "think_ratio",
                                                                  "rollout_tokens", "wall_s")}
        summary[label]["step_ratio"] = spread(ratio)
        lines.append(f"| {label} | {len(rs)} | {fmt([r['reward'] for r in rs])} | "
                     f"{fmt([r['reward'] - oracle['reward'] for r in rs], '{:+.3f}')} | {fmt([r['acc'] for r in rs])} | "
                     f"{fmt([r['tokens'] for r in rs], '{:.1f}')} | {fmt([r['think_ratio'] for r in rs], '{:.2f}')} | "
                     f"{fmt([r['rollout_tokens'] / 1e6 for r in rs], '{:.2f}')} M | "
                     f"{fmt([r['wall_s'] for r in rs], '{:.0f}')} | {fmt(ratio, '{:.2f}')} |")
    lines.append(f"| *oracle router* | | {oracle['reward']:.3f} | 0 | {oracle['acc']:.3f} | {oracle['tokens']:.1f} | "
                 f"{oracle['think_ratio']:.2f} | | | |")
    return "\n".join(lines), summary


def routing_table(runs: list[dict], oracle: dict) -> str:
    labels = list(dict.fromkeys(r["label"] for r in runs))
    lines = ["| class (memo right) | forced short acc | forced think acc | oracle | " + " | ".join(labels) + " |",
             "|" + "---|" * (4 + len(labels))]
    for k, c in oracle["classes"].items():
        cells = [fmt([r["classes"][k]["think_ratio"] for r in runs if r["label"] == lb], "{:.2f}") for lb in labels]
        lines.append(f"| {class_name(k)} | {c['short_acc']:.2f} | {c['think_acc']:.2f} | {c['mode']} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_table(runs: list[dict]) -> str:
    lines = ["| run | E[r] | vs oracle | accuracy | tokens | think ratio | rollout tokens | wall (s) | targets met |",
             "|" + "---|" * 9]
    for r in runs:
        met = sum(bool(v) for v in r["targets"].values())
        lines.append(f"| {r['label']} s{r['seed']} | {r['reward']:.3f} | {r['reward'] - r['oracle_reward']:+.3f} | "
                     f"{r['acc']:.3f} | {r['tokens']:.1f} | {r['think_ratio']:.2f} | {r['rollout_tokens']:,} | "
                     f"{r['wall_s']:.0f} | {met}/{len(r['targets'])} |")
    return "\n".join(lines)


def picture(runs: list[dict], oracle: dict, path: Path, title: str, curve_label: str = "thinkless") -> None:
    """Accuracy vs response tokens: every run, the oracle router, DeGRPO's think-threshold curve (seed 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    markers = "osD^vP*X"
    for i, label in enumerate(dict.fromkeys(r["label"] for r in runs)):
        rs = [r for r in runs if r["label"] == label]
        ax.scatter([r["tokens"] for r in rs], [r["acc"] for r in rs], marker=markers[i % len(markers)], s=40,
                   label=label, alpha=0.8)
    curve = next((r["threshold"] for r in runs if r["label"] == curve_label and r["threshold"]), None)
    if curve:
        ax.plot([c["tokens"] for c in curve], [c["acc"] for c in curve], ":", color="gray", lw=1,
                label=f"{curve_label} s{runs[0]['seed']}: think threshold (serving-time bias)")
    ax.scatter([oracle["tokens"]], [oracle["acc"]], marker="*", s=220, color="black", label="oracle router", zorder=5)
    ax.set(xlabel="response tokens (mean)", ylabel="accuracy", title=title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results(out: Path, name: str, text: str, data: dict) -> None:
    (out / f"{name}.md").write_text(text)
    (out / f"{name}.json").write_text(json.dumps(data, indent=2))
    log(f"wrote {out / (name + '.md')} and {name}.json")


def command_line(script: str = "bench/gym.py") -> str:
    """How this invocation was called (the results name it), with the thread setting if the environment set one."""
    env = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} " if os.environ.get("OMP_NUM_THREADS") else ""
    return f"{env}python {script} {' '.join(sys.argv[1:])}".rstrip()


def machine_line() -> str:
    from bench.common import machine

    return machine()


def gym(out: Path, plan: Plan, quick: bool) -> dict:
    model = distill(out, plan)
    base = stock_grpo_step_times(out, model, plan)
    runs = run_all(plan, [(out, model, name + plan.tag, objective_overrides(name, plan, quick), seed, plan)
                          for seed in plan.seeds for name in plan.objectives])
    oracle = oracle_point(out / runs[0]["dir"], GAMMA)
    board, summary = leaderboard(runs, oracle, base)
    text = (f"# Gym results\n\nGraded task, {len(plan.seeds)} seed(s) x {len(plan.objectives)} objectives, "
            f"{plan.steps} RL steps each from one distillation; yardstick: reward 1 / {1 - GAMMA:g} / -1 "
            f"(γ = {GAMMA}). Machine: {machine_line()}. Command: `{command_line()}`.\n\n## Leaderboard (mean ± sd over seeds)\n\n{board}\n\n"
            f"## Routing: think ratio per class (oracle: the better forced mode of the distilled model)\n\n"
            f"{routing_table(runs, oracle)}\n\n## Every run\n\n{run_table(runs)}\n")
    picture(runs, oracle, out / f"gym{plan.tag}.png", f"graded task: {plan.steps} steps, γ = {GAMMA}{plan.tag}",
            curve_label="thinkless" + plan.tag)
    data = {"machine": machine_line(), "plan": asdict(plan), "quick": quick, "gamma": GAMMA, "oracle": oracle,
            "stock_grpo_step_times": base, "summary": summary, "runs": runs}
    write_results(out, "gym_results" + plan.tag, text, data)
    print(text, flush=True)
    return data


def sweep(out: Path, plan: Plan, quick: bool, gammas=GAMMAS) -> dict:
    """DeGRPO at each γ: its per-class think ratio beside the oracle's choice at that γ."""
    model = distill(out, plan)
    calls, gs = [], []
    for g in gammas:
        label = ("thinkless" if math.isclose(g, GAMMA) else f"thinkless-g{g:g}") + plan.tag  # γ 0.5: the gym's run
        ov = ["objective=thinkless"] + ([] if math.isclose(g, GAMMA) else
                                        [f"objective.rewards.correct_think={1 - g:g}"])
        calls += [(out, model, label, ov, seed, plan) for seed in plan.seeds]
        gs += [g] * len(plan.seeds)
    runs = [{**r, "gamma": g} for r, g in zip(run_all(plan, calls), gs)]
    per = {}
    for g in gammas:
        orc = oracle_point(out / runs[0]["dir"], g)
        rs = [r for r in runs if r["gamma"] == g]
        per[str(g)] = {"oracle": orc, "acc": spread([r["acc"] for r in rs]), "reward": spread([r["reward"] for r in rs]),
                       "tokens": spread([r["tokens"] for r in rs])}
        for k, c in orc["classes"].items():
            tr = [r["classes"][k]["think_ratio"] for r in rs]
            per[str(g)][k] = {"oracle": c["mode"], "think_ratio": spread(tr),
                              "agrees": (spread(tr)[0] >= 0.5) == (c["mode"] == "think")}
    classes = list(per[str(gammas[0])]["oracle"]["classes"])
    lines = ["| class | " + " | ".join(f"γ = {g:g}" for g in gammas) + " |", "|---|" + "---|" * len(gammas)]
    for k in classes:
        cells = [f"{per[str(g)][k]['think_ratio'][0]:.2f} ({per[str(g)][k]['oracle']}) "
                 f"{'✓' if per[str(g)][k]['agrees'] else '✗'}" for g in gammas]
        lines.append(f"| {class_name(k)} | " + " | ".join(cells) + " |")
    lines.append("| E[r] (oracle) | " + " | ".join(f"{per[str(g)]['reward'][0]:.3f} ({per[str(g)]['oracle']['reward']:.3f})"
                                            for g in gammas) + " |")
    lines.append("| accuracy / tokens | " + " | ".join(f"{per[str(g)]['acc'][0]:.3f} / {per[str(g)]['tokens'][0]:.1f}"
                                                  for g in gammas) + " |")
    agree = sum(per[str(g)][k]["agrees"] for g in gammas for k in classes)
    lines.append(f"\nCells: the learned think ratio (mean over seeds), the oracle's mode at that γ, ✓ where the learned "
                 f"side of 0.5 is the oracle's ({agree} of {len(gammas) * len(classes)}).")
    text = (f"# γ sweep\n\nDeGRPO on the graded task at γ ∈ {list(gammas)}, {len(plan.seeds)} seed(s), {plan.steps} "
            f"steps{', with ' + ' '.join(plan.train) if plan.tag else ''}. Machine: {machine_line()}. "
            f"Command: `{command_line()}`.\n\n" + "\n".join(lines) + "\n")
    sweep_picture(runs, per, gammas, out / f"sweep{plan.tag}.png")
    data = {"machine": machine_line(), "plan": asdict(plan), "per_gamma": per, "runs": runs}
    write_results(out, "sweep_results" + plan.tag, text, data)
    print(text, flush=True)
    return data


def sweep_picture(runs, per, gammas, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    classes = list(per[str(gammas[0])]["oracle"]["classes"])
    for i, k in enumerate(classes):
        color = f"C{i}"
        m = [per[str(g)][k]["think_ratio"][0] for g in gammas]
        s = [per[str(g)][k]["think_ratio"][1] for g in gammas]
        a1.errorbar(gammas, m, yerr=s, color=color, marker="o", lw=1.2, capsize=2, label=class_name(k))
        a1.step(gammas, [1.0 if per[str(g)][k]["oracle"] == "think" else 0.0 for g in gammas], where="mid",
                color=color, ls=":", lw=1)
    a1.set(xlabel="γ (correct think = 1 − γ)", ylabel="think ratio", ylim=(-0.05, 1.05),
           title="learned (solid) vs oracle (dotted), per memo grade")
    a1.legend(fontsize=7)
    a2.plot([per[str(g)]["tokens"][0] for g in gammas], [per[str(g)]["acc"][0] for g in gammas], "o-", label="DeGRPO")
    a2.plot([per[str(g)]["oracle"]["tokens"] for g in gammas], [per[str(g)]["oracle"]["acc"] for g in gammas], "*:",
            color="black", label="oracle router")
    for g in gammas:
        a2.annotate(f"γ={g:g}", (per[str(g)]["tokens"][0], per[str(g)]["acc"][0]), fontsize=7)
    a2.set(xlabel="response tokens (mean)", ylabel="accuracy", title="accuracy vs tokens as γ moves")
    a2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "runs" / "gym"), help="results and runs (default runs/gym)")
    p.add_argument("--quick", action="store_true", help="1 seed, a few steps, a small report (the test suite's)")
    p.add_argument("--sweep", action="store_true", help="DeGRPO at γ 0.1 .. 0.9 instead of the objectives")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds (default 0 1 2; --quick: 0)")
    p.add_argument("--objectives", nargs="+", choices=OBJECTIVES, help="objectives (default: all)")
    p.add_argument("--steps", type=int, help="RL steps per run (default 100; --quick: 3)")
    p.add_argument("--gammas", type=float, nargs="+", default=list(GAMMAS), help="γ values of --sweep")
    p.add_argument("--jobs", type=int, help="runs at once (default 1: comparable wall times; --quick: 2)")
    p.add_argument("--train", nargs="+", default=[], metavar="KEY=VALUE",
                   help="train.py overrides for every run, named in the run folders (e.g. rl.args.scale_rewards=none)")
    a = p.parse_args(argv)
    plan = Plan.quick() if a.quick else Plan()
    if a.seeds:
        plan.seeds = a.seeds
    if a.objectives:
        plan.objectives = a.objectives
    if a.steps:
        plan.steps = a.steps
    if a.jobs:
        plan.jobs = a.jobs
    plan.train += a.train
    # rl.args.scale_rewards=none -> "_scale_rewards-none": a folder name Hydra's override grammar accepts
    plan.tag = "".join("_" + o.rsplit(".", 1)[-1].replace("=", "-") for o in a.train)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    sweep(out, plan, a.quick, a.gammas) if a.sweep else gym(out, plan, a.quick)
    log(f"done in {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
