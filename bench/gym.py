"""The adaptive-thinking gym: objectives trained on equal terms on the graded task, beside its exact oracle.

One distillation of the graded task (``data=graded``) is shared by every run (but an objective's own warm-up,
``Objective.warmup``: L1 starts from a distillation whose prompts state a length). Each objective x arm x seed then runs
the same RL stage from it (three arms: shared, recipe, and matched — shared, trained to the oracle's think ratio). The *shared* arm: ``conf/rl/gym_cpu.yaml`` for all (the same prompts, rollouts per
step, optimizer steps, learning rate and sampling), only the objective's own knobs differ, at its authors' defaults
(``conf/objective/NAME.yaml``). The *recipe* arm adds ``+recipe=NAME`` (``conf/recipe/NAME.yaml``): the method
choices its authors made (advantage normalisation, loss, KL, entropy, sampling, G, steps per rollout), at the
shared arm's scale (docs/gym.md, "The two arms").
Every run is judged by the same yardstick: the pipeline report (``thinkless.reporting.report``) per memo grade, with reward
1 / 1−γ / −1 at the gym's γ, against the oracle router computed from the distilled model's forced accuracies.

    python bench/gym.py                 # every objective x 3 arms x 3 seeds -> runs/gym/gym_results.{md,json}
    python bench/gym.py --sweep         # DeGRPO at γ 0.1 .. 0.9 x 3 seeds -> sweep_results.{md,json}, sweep.png
    python bench/gym.py --quick         # 1 seed, a few steps, a small report, 2 runs at once: the test suite's
    python bench/gym.py --arms shared   # one arm only (--arms recipe: the authors' recipes)

A rerun skips finished runs (``gym_run.json`` in the run's folder) and resumes an interrupted one from its last
checkpoint (``rerun=auto``). docs/gym.md explains the task, the yardstick and the tables.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (GYM_SCALE, PRICED, TASK, Plan, class_name, command_line, distill, fmt, fmt_interval, interval,  # noqa: E402
                          log, machine, own_warmup, rank_groups, run_all, run_script, spread, start_models,
                          trained_at, write_results)
from thinkless.objectives import OBJECTIVES as REGISTRY  # noqa: E402
from thinkless.reporting.markdown import markdown_row, markdown_rule  # noqa: E402

OBJECTIVES = tuple(REGISTRY)  # every registered objective (thinkless/objectives/), by name
GAMMAS = (0.1, 0.3, 0.5, 0.7, 0.9)
GAMMA = 0.5  # the gym's yardstick: conf/objective/thinkless.yaml's correct_think = 1 − γ
# conf/rl/gym_cpu.yaml for all | + each objective's conf/recipe/NAME.yaml | the shared arm trained to the oracle's
# think ratio (rl.budget.think_ratio, read on the probe; common.PRICED)
ARMS = ("shared", "recipe", "matched")
# the matched arm's loop: a derivative term on the probe's reading against the optimizer's momentum lag (without it
# every objective's think ratio still swung 0.05-0.11 around the target in the runs' second half; docs/budget.md)
LOOP = ["rl.budget.derivative=auto"]
RECIPE = "+recipe"  # a recipe run's label: NAME+recipe (a folder name Hydra's override grammar accepts)


def run_label(name: str, arm: str, tag: str = "", target: float | None = None) -> str:
    """A run's label (its folder, its row): the objective's name, ``+recipe`` in the recipe arm, ``-budget<target>``
    in the matched arm (bench/budget.py's label for a run to that target too: one trained otherwise is refused,
    not reused), the --train tag."""
    if arm == "recipe":
        return name + RECIPE + tag
    if arm == "matched":
        if target is None:
            raise ValueError("a matched run's label needs its target think ratio")
        return f"{name}-budget{target:g}{tag}"
    return name + tag


def objective_overrides(name: str, plan: Plan, quick: bool, arm: str = "shared", target: float | None = None
                        ) -> list[str]:
    """The run's own knobs: the objective's authors' defaults, in the recipe arm also their method choices
    (``+recipe=NAME``), in the matched arm the budget ``target`` (a think ratio); only shrunk in ``--quick``
    (plan.train's shrink overrides come last and win)."""
    out = [f"objective={name}"] + ([f"+recipe={name}"] if arm == "recipe" else [])
    if arm == "matched":
        out += [f"rl.budget.think_ratio={target:g}", *PRICED, *LOOP]
    if quick and name == "adaptthink":
        out.append("objective.ref_samples=2")
    return out


def stock_grpo_step_times(out: Path, model: Path, plan: Plan) -> list[float]:
    """Step times of stock ``trl.GRPOTrainer`` (Thinkless's reward as a plain reward function) on the same start,
    prompts and ``rl.args``, for ``plan.timing_steps`` steps (bench/stock_grpo.py, its own process): the
    denominator of every run's step-time ratio."""
    path = out / "stock_grpo.json"
    if path.is_file():
        return json.loads(path.read_text())["step_times"]
    log(f"timing stock TRL GRPO ({plan.timing_steps} steps)")
    ov = [*GYM_SCALE["train"], *TASK, f"model.path={model}",
          *[o for o in plan.train if o.startswith(("rl.args.", "rl_data."))]]
    run_script("bench/stock_grpo.py", [str(out), str(model), str(plan.timing_steps), "0", *ov],
               out / "logs" / "stock_grpo.log")
    return json.loads(path.read_text())["step_times"]


# ------------------------------------------------------------------ tables and pictures


def finished_run(out: Path, fail=None) -> Path:
    """A finished run of ``out`` from the shared distillation (any such: its report before RL is every one's, and the
    oracle's; not one from an objective's own warm-up): where ``--arms matched`` alone reads the oracle's think
    ratio, its target."""
    found = [p for p in sorted(Path(out).glob("runs/*/gym_run.json"))
             if not any(a.startswith("model.path=") for a in json.loads(p.read_text()).get("argv", []))]
    if not found:
        msg = (f"--arms matched alone: its target, the oracle's think ratio, is read off a finished run's report "
               f"and {out}/runs has none; add --arms shared or recipe")
        if fail:
            fail(msg)  # argparse's error: usage and exit 2
        raise SystemExit(msg)
    return found[0].parent


def oracle_point(run_dir: Path, gamma: float) -> dict:
    """The oracle router on the distilled model (a run's ``report_before_rl.json``: the same benchmark and greedy
    forced modes every run is judged on): per class the better forced mode at ``gamma``; its accuracy and tokens.
    Beside it the same model's accuracy-token frontier (``frontier``: the vertices of
    ``thinkless.oracle.accuracy_frontier``, whatever γ) and the router's gap to it (``frontier_gap``)."""
    from thinkless.oracle import accuracy_frontier, frontier_accuracy, mean_over_problems, oracle_choice
    from thinkless.reporting.report import rows_of
    from thinkless.reward import RewardValues

    rep = json.loads((Path(run_dir) / "report_before_rl.json").read_text())
    _, rows = rows_of(rep)
    values = RewardValues(correct_think=1.0 - gamma)
    classes = {}
    for k, r in rows.items():
        mode, e = oracle_choice(r["short_acc"], r["think_acc"], values)
        classes[k] = {"mode": mode, "reward": e, "short_acc": r["short_acc"], "think_acc": r["think_acc"]}
    n = [r["n"] for r in rows.values()]
    chosen = lambda x: mean_over_problems([r[f"{classes[k]['mode']}_{x}"] for k, r in rows.items()], n)  # noqa: E731
    frontier, acc, tokens = accuracy_frontier(rows), chosen("acc"), chosen("tokens")
    return {"acc": acc, "tokens": tokens, "reward": mean_over_problems(
        [c["reward"] for c in classes.values()], n), "think_ratio": mean_over_problems(
        [float(c["mode"] == "think") for c in classes.values()], n), "classes": classes, "frontier": frontier,
        "frontier_gap": acc - frontier_accuracy(frontier, tokens)}


def frontier_gaps(runs: list[dict], frontier: list[dict]) -> list[dict]:
    """Each run with its ``frontier_gap``: its accuracy minus the frontier's at its own mean response tokens (<= 0 up
    to noise: how much accuracy its routing leaves on the table at what it spends), the leaderboard's rank."""
    from thinkless.oracle import frontier_accuracy

    return [{**r, "frontier_gap": r["acc"] - frontier_accuracy(frontier, r["tokens"])} for r in runs]


def ranked(by: dict[str, list], columns: tuple[str, ...]) -> tuple[dict, list[str]]:
    """What the leaderboard and the matched table share: per key of ``by`` (its runs over seeds) each column's
    ``interval`` and its rank group (``bench.common.rank_groups`` over the gap to the frontier: a row is ahead of
    another only where their intervals separate); and the keys in table order, best group and best mean gap first."""
    summary = {k: {c: interval([r[c] for r in rs]) for c in columns} for k, rs in by.items()}
    groups = rank_groups({k: s["frontier_gap"] for k, s in summary.items()})
    for k, s in summary.items():
        s["rank_group"] = groups[k]
    gap = lambda k: summary[k]["frontier_gap"]["mean"]  # noqa: E731
    return summary, sorted(by, key=lambda k: (groups[k], -gap(k) if gap(k) is not None else math.inf))


def affine(s: dict, shift: float = 0.0, scale: float = 1.0) -> dict:
    """An ``interval`` of ``x`` as the interval of ``scale·x + shift`` (a column derived from another: no recount)."""
    if s["n"] == 0:
        return s
    return {**s, "mean": scale * s["mean"] + shift, "sd": abs(scale) * s["sd"],
            "ci95": None if s["ci95"] is None else abs(scale) * s["ci95"]}


def leaderboard(runs: list[dict], oracle: dict, base_step: float) -> tuple[str, dict]:
    """The leaderboard: one row per label (runs carry ``frontier_gap``, ``frontier_gaps``), best gap to the frontier
    first, every cell mean ± the 95% interval over seeds (``bench.common.interval``), a rank group per row
    (``ranked``). The summary keeps every column's interval (mean, sd, n, ci95) and the rank group."""
    by: dict[str, list] = {}
    for r in runs:
        ratio = (statistics.median(r["step_times"][:len(base_step)]) / statistics.median(base_step)
                 if base_step and r["step_times"] else None)
        by.setdefault(r["label"], []).append({**r, "step_ratio": ratio})
    summary, order = ranked(by, ("frontier_gap", "reward", "acc", "tokens", "think_ratio", "rollout_tokens", "wall_s",
                                 "step_ratio"))
    lines = [markdown_row(["objective", "arm", "seeds", "rank group", "gap to frontier", "accuracy", "response tokens",
                           "think ratio", "E[r]", "gap to oracle", "rollout tokens (training)", "wall time (s)",
                           "step time vs stock TRL GRPO"]), markdown_rule(13)]
    for label in order:
        s, r0 = summary[label], by[label][0]
        lines.append(markdown_row([
            r0["objective"], r0["arm"], len(by[label]), s["rank_group"], fmt_interval(s["frontier_gap"], "{:+.3f}"),
            fmt_interval(s["acc"]), fmt_interval(s["tokens"], "{:.1f}"), fmt_interval(s["think_ratio"], "{:.2f}"),
            fmt_interval(s["reward"]), fmt_interval(affine(s["reward"], shift=-oracle["reward"]), "{:+.3f}"),
            fmt_interval(affine(s["rollout_tokens"], scale=1e-6), "{:.2f}") + " M", fmt_interval(s["wall_s"], "{:.0f}"),
            fmt_interval(s["step_ratio"], "{:.2f}")]))
    lines.append(markdown_row(["*oracle router*", None, None, None, f"{oracle['frontier_gap']:+.3f}", f"{oracle['acc']:.3f}",
                               f"{oracle['tokens']:.1f}", f"{oracle['think_ratio']:.2f}", f"{oracle['reward']:.3f}", 0,
                               None, None, None]))
    return "\n".join(lines), summary


def matched_table(runs: list[dict], oracle: dict, target: float) -> tuple[str, dict]:
    """The matched arm: one row per objective trained to the oracle's think ratio ``target``, ranked as the
    leaderboard is, by the gap to the frontier at the run's own tokens (rank groups over its 95% intervals): at the
    target the more accurate router is the better one, and a run that missed the target is held to the frontier at
    what it spent, not credited for the extra thinking; whether each seed landed within ±0.05; the final price λ."""
    by: dict[str, list] = {}
    for r in runs:
        by.setdefault(r["objective"], []).append({**r, "final_multiplier": r["budget"]["final_multiplier"]})
    summary, order = ranked(by, ("acc", "think_ratio", "tokens", "frontier_gap", "reward", "final_multiplier"))
    lines = [markdown_row(["objective", "seeds", "rank group", "gap to frontier", "accuracy", "think ratio",
                           "within ±0.05", "response tokens", "E[r]", "final λ"]), markdown_rule(10)]
    for name in order:
        s = summary[name]
        hit = s["within_0.05"] = [abs(r["think_ratio"] - target) <= 0.05 for r in by[name]]
        lines.append(markdown_row([
            name, len(hit), s["rank_group"], fmt_interval(s["frontier_gap"], "{:+.3f}"), fmt_interval(s["acc"]),
            fmt_interval(s["think_ratio"], "{:.2f}"), f"{sum(hit)}/{len(hit)}", fmt_interval(s["tokens"], "{:.1f}"),
            fmt_interval(s["reward"]), fmt_interval(s["final_multiplier"], "{:+.3f}")]))
    lines.append(markdown_row(["*oracle router*", None, None, f"{oracle['frontier_gap']:+.3f}", f"{oracle['acc']:.3f}",
                               f"{oracle['think_ratio']:.2f}", None, f"{oracle['tokens']:.1f}",
                               f"{oracle['reward']:.3f}", None]))
    return "\n".join(lines), summary


def loop_table(runs: list[dict], steps: int) -> str:
    """How the matched runs' loops moved: per objective, at a few steps, the measured think ratio (the probe's) and
    the price λ its batch paid, mean over seeds — where a loop settled or could not move the policy; and the largest
    distance of the measured think ratio from the target in the run's second half — how far it still swung."""
    marks = sorted({s for s in (10, 25, 50, 75, steps) if s <= steps})
    by: dict[str, list] = {}
    for r in runs:
        by.setdefault(r["objective"], []).append(r["budget_series"])
    target = runs[0]["target"]
    swing = lambda x: max(abs(c - target) for st, c in zip(x["step"], x["cost"]) if st > steps // 2)  # noqa: E731
    lines = [markdown_row(["objective", *(f"step {s}: think / λ" for s in marks),
                           f"largest miss after step {steps // 2} (mean, max over seeds)"]),
             markdown_rule(2 + len(marks))]
    for name, series in by.items():
        cells = []
        for s in marks:  # the last update at or before the step (one per generation batch)
            at = [max((i for i, st in enumerate(x["step"]) if st <= s), default=None) for x in series]
            pts = [(x["cost"][i], x["multiplier"][i]) for x, i in zip(series, at) if i is not None]
            cells.append(f"{statistics.fmean(c for c, _ in pts):.2f} / {statistics.fmean(m for _, m in pts):+.2f}"
                         if pts else "-")
        misses = [swing(x) for x in series]
        lines.append(markdown_row([name, *cells, f"{statistics.fmean(misses):.2f}, {max(misses):.2f}"]))
    return "\n".join(lines)


def routing_table(runs: list[dict], oracle: dict) -> str:
    labels = list(dict.fromkeys(r["label"] for r in runs))
    lines = [markdown_row(["class (memo right)", "forced short acc", "forced think acc", "oracle", *labels]),
             markdown_rule(4 + len(labels))]
    for k, c in oracle["classes"].items():
        cells = [fmt([r["classes"][k]["think_ratio"] for r in runs if r["label"] == lb], "{:.2f}", ci=True)
                 for lb in labels]
        lines.append(markdown_row([class_name(k), f"{c['short_acc']:.2f}", f"{c['think_acc']:.2f}", c["mode"], *cells]))
    return "\n".join(lines)


def run_table(runs: list[dict]) -> str:
    lines = [markdown_row(["objective", "arm", "seed", "gap to frontier", "E[r]", "vs oracle", "accuracy", "tokens",
                           "think ratio", "rollout tokens", "wall (s)", "targets met"]), markdown_rule(12)]
    for r in runs:
        met = sum(bool(v) for v in r["targets"].values())
        lines.append(markdown_row([r["objective"], r["arm"], r["seed"], f"{r['frontier_gap']:+.3f}", f"{r['reward']:.3f}",
                                   f"{r['reward'] - r['oracle_reward']:+.3f}", f"{r['acc']:.3f}", f"{r['tokens']:.1f}",
                                   f"{r['think_ratio']:.2f}", f"{r['rollout_tokens']:,}", f"{r['wall_s']:.0f}",
                                   f"{met}/{len(r['targets'])}"]))
    return "\n".join(lines)


def picture(runs: list[dict], oracle: dict, path: Path, title: str, curve_label: str = "thinkless") -> None:
    """Accuracy vs response tokens: every shared and recipe run on the accuracy-token frontier (``oracle["frontier"]``, flat past its
    ends), the oracle router at γ, DeGRPO's think-threshold curve (seed 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    frontier_curve(ax, oracle["frontier"], [r["tokens"] for r in runs] + [oracle["tokens"]])
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


def cost_guide(runs: list[dict], frontier: list[dict]) -> str:
    """"For a budget of X tokens, use ...": the frontier's segments as token bands (below its first vertex, between
    each two, past its last), and in each the labels (every arm, the matched one too) whose mean response tokens fall
    in it, the smallest mean gap to the frontier first — what a user with that cost per answer picks from."""
    by: dict[str, list] = {}
    for r in runs:
        by.setdefault(r["label"], []).append(r)
    mean = lambda rs, k: statistics.fmean(r[k] for r in rs)  # noqa: E731
    edges = [v["tokens"] for v in frontier]
    bands = [(-math.inf, edges[0])] + list(zip(edges, edges[1:])) + [(edges[-1], math.inf)]
    lines = [markdown_row(["mean response tokens", "frontier accuracy there", "runs there (gap to frontier ± 95% "
                           "interval, accuracy, tokens; over seeds), best mean gap first"]), markdown_rule(3)]
    for i, (lo, hi) in enumerate(bands):
        here = sorted((lb for lb, rs in by.items() if lo <= mean(rs, "tokens") < hi),
                      key=lambda lb: -mean(by[lb], "frontier_gap"))
        if not here:
            continue
        span = (f"< {hi:.1f}" if lo == -math.inf else f">= {lo:.1f}" if hi == math.inf else f"{lo:.1f}-{hi:.1f}")
        acc = (f"{frontier[0]['acc']:.3f}" if lo == -math.inf else f"{frontier[-1]['acc']:.3f}" if hi == math.inf
               else f"{frontier[i - 1]['acc']:.3f}-{frontier[i]['acc']:.3f}")
        lines.append(markdown_row([span, acc, "; ".join(
            f"{lb} ({fmt([r['frontier_gap'] for r in by[lb]], '{:+.3f}', ci=True)}, {mean(by[lb], 'acc'):.3f}, "
            f"{mean(by[lb], 'tokens'):.1f})"
            for lb in here)]))
    return "\n".join(lines)


def frontier_table(frontier: list[dict]) -> str:
    """The frontier's vertices, cheapest first: the class switched to reach each, its tokens, accuracy, think ratio."""
    lines = [markdown_row(["vertex", "class switched", "response tokens", "accuracy", "think ratio", "thinking classes"]),
             markdown_rule(6)]
    for i, v in enumerate(frontier):
        think = [class_name(k) for k, m in v["modes"].items() if m == "think"]
        lines.append(markdown_row([i, "(the cheapest routing)" if v["switched"] is None else
                                   f"{class_name(v['switched'])} → {v['modes'][v['switched']]}", f"{v['tokens']:.1f}",
                                   f"{v['acc']:.3f}", f"{v['think_ratio']:.2f}", ", ".join(think) or "none"]))
    return "\n".join(lines)


def frontier_curve(ax, frontier: list[dict], tokens: list[float]) -> None:
    """The frontier on ``ax``: its vertices joined, and flat out to the ``tokens`` beyond its ends (the accuracy
    ``frontier_accuracy`` holds a run there to)."""
    xs, ys = [v["tokens"] for v in frontier], [v["acc"] for v in frontier]
    finite = [t for t in tokens if not math.isnan(t)]
    lo, hi = min([xs[0], *finite]), max([xs[-1], *finite])
    ax.plot([lo, *xs, hi], [ys[0], *ys, ys[-1]], "-", color="black", lw=1, alpha=0.6, zorder=1,
            label="accuracy-token frontier (per-class routing of the distilled model)")
    ax.scatter(xs, ys, marker="|", s=60, color="black", alpha=0.6, zorder=1)


def gym(out: Path, plan: Plan, quick: bool) -> dict:
    t0 = time.perf_counter()
    # the shared distillation and each objective's own warm-up, side by side; which of them this invocation made
    model, start, distilled = start_models(out, plan, plan.objectives, shared=True)
    base = stock_grpo_step_times(out, model, plan)
    keys = [(seed, name, arm) for seed in plan.seeds for name in plan.objectives for arm in plan.arms_of(name)
            if arm != "matched"]
    mkeys = [(seed, name) for seed in plan.seeds for name in plan.objectives if "matched" in plan.arms_of(name)]
    found = {}

    def matched_calls(first: dict | None) -> list[tuple]:
        """The matched arm, each objective trained to the oracle's think ratio: read off the report before RL of the
        first run from the shared distillation (every such run's) once it is done, so these queue behind the other
        arms."""
        found["oracle"] = oracle = oracle_point(out / first["dir"] if first else finished_run(out), GAMMA)
        target = round(oracle["think_ratio"], 2)
        return [(out, start[name], run_label(name, "matched", plan.tag, target),
                 objective_overrides(name, plan, quick, "matched", target), seed, plan) for seed, name in mkeys]

    calls = [(out, start[name], run_label(name, arm, plan.tag), objective_overrides(name, plan, quick, arm), seed,
              plan) for seed, name, arm in keys]
    ran = run_all(plan, calls, then=matched_calls,
                  after=next((i for i, c in enumerate(calls) if not own_warmup(c[1])), None))
    rows, mrows = ran.rows, ran.later
    oracle = found["oracle"]
    target = round(oracle["think_ratio"], 2)
    # rows grouped by objective, its arms side by side (dict order of the labels)
    runs = frontier_gaps([{**r, "objective": name, "arm": arm} for r, (_, name, arm) in zip(rows, keys)],
                         oracle["frontier"])
    board, summary = leaderboard(runs, oracle, base) if runs else ("(no shared or recipe run in this invocation)", {})
    # the matched arm's yardstick is the accuracy at the oracle's think ratio
    matched = frontier_gaps([{**r, "objective": name, "arm": "matched", "target": target}
                             for r, (_, name) in zip(mrows, mkeys)], oracle["frontier"])
    matched_board, matched_summary = matched_table(matched, oracle, target) if matched else ("", {})
    selected = "".join(f"; {arm}: {', '.join(names)}" for arm, names in (("recipe", plan.recipes),
                                                                      ("matched", plan.matched)) if names)
    selected = f" ({selected[2:]})" if selected else ""
    matched_text = (f"## Accuracy at the oracle's think ratio (the matched arm: rl.budget.think_ratio = {target:g}, "
                    f"read on the probe; {' '.join(PRICED + LOOP)}; mean ± 95% interval over seeds, ranked by the gap to the "
                    f"frontier)\n\n"
                    f"{matched_board}\n\nWhere the matched runs think, per class (the oracle's allocation at "
                    f"{target:g}: {', '.join(class_name(k) for k, c in oracle['classes'].items() if c['mode'] == 'think') or 'none'})"
                    f"\n\n{routing_table(matched, oracle)}\n\nHow each loop moved (mean over seeds: the think ratio it "
                    f"measured on the probe / the price λ the batch paid)\n\n{loop_table(matched, plan.steps)}\n\n"
                    ) if matched else ""
    text = (f"# Gym results\n\nGraded task, {len(plan.seeds)} seed(s) x {len(plan.objectives)} objectives "
            f"x arms {' / '.join(plan.arms)}{selected}, "
            f"{plan.steps} RL steps each from one distillation; yardstick: reward 1 / {1 - GAMMA:g} / -1 "
            f"(γ = {GAMMA}). Machine: {machine()}. Command: `{command_line('bench/gym.py')}`.{trained_at(runs + matched)}"
            f"\n\n## Leaderboard (mean ± 95% interval over seeds; "
            f"ranked by the accuracy gap to the frontier at the run's own tokens)\n\n{board}\n\n"
            f"Gap to frontier: the run's accuracy minus the frontier's at its own response tokens; rank group: the "
            f"rows whose gap intervals overlap the best row's share rank 1, and so on (one seed has no interval: all "
            f"share rank 1); docs/gym.md, *The yardsticks*.\n\n{matched_text}"
            f"## The accuracy-token frontier (per-class routing of the distilled model)\n\n"
            f"{frontier_table(oracle['frontier'])}\n\n"
            f"## For a cost per answer: the runs in each segment of the frontier\n\n"
            f"{cost_guide(runs + matched, oracle['frontier'])}\n\n"
            f"## Routing: think ratio per class, mean ± 95% interval over seeds (oracle: the better forced mode of the "
            f"distilled model)\n\n"
            f"{routing_table(runs, oracle)}\n\n## Every run\n\n{run_table(runs + matched)}\n")
    # what this invocation took, and how much of it it trained (a rerun reuses finished runs and the distillation)
    wall, fresh = time.perf_counter() - t0, ran.trained
    text += (f"\nThis invocation: {wall / 60:.0f} min of wall time; it trained {fresh} of the {len(runs + matched)} "
             f"runs{' and the distillation' + ('s' if len(distilled) > 1 else '') if distilled else ''}"
             f"{' (' + ', '.join(distilled) + ')' if distilled else ''} (the rest reused from `{out}`).\n")
    name = "gym_results" + ("" if runs else "_matched") + plan.tag  # a matched-only invocation keeps the leaderboard
    if runs:
        picture(runs, oracle, out / f"gym{plan.tag}.png", f"graded task: {plan.steps} steps, γ = {GAMMA}{plan.tag}",
                curve_label="thinkless" + plan.tag)
    data = {"plan": asdict(plan), "quick": quick, "wall_s": round(wall), "runs_trained": fresh,
            "distilled": distilled, "gamma": GAMMA, "oracle": oracle,
            "stock_grpo_step_times": base, "summary": summary, "runs": runs, "matched_target": target,
            "matched_summary": matched_summary, "matched": matched}
    write_results(out, name, text, data)
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
    runs = [{**r, "gamma": g} for r, g in zip(run_all(plan, calls).rows, gs)]
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
    lines = [markdown_row(["class", *(f"γ = {g:g}" for g in gammas)]), markdown_rule(1 + len(gammas))]
    for k in classes:
        cells = [f"{per[str(g)][k]['think_ratio'][0]:.2f} ({per[str(g)][k]['oracle']}) "
                 f"{'✓' if per[str(g)][k]['agrees'] else '✗'}" for g in gammas]
        lines.append(markdown_row([class_name(k), *cells]))
    lines.append(markdown_row(["E[r] (oracle)", *(
        f"{per[str(g)]['reward'][0]:.3f} ({per[str(g)]['oracle']['reward']:.3f})" for g in gammas)]))
    lines.append(markdown_row(["accuracy / tokens", *(f"{per[str(g)]['acc'][0]:.3f} / {per[str(g)]['tokens'][0]:.1f}"
                                                      for g in gammas)]))
    agree = sum(per[str(g)][k]["agrees"] for g in gammas for k in classes)
    lines.append(f"\nCells: the learned think ratio (mean over seeds), the oracle's mode at that γ, ✓ where the learned "
                 f"side of 0.5 is the oracle's ({agree} of {len(gammas) * len(classes)}).")
    text = (f"# γ sweep\n\nDeGRPO on the graded task at γ ∈ {list(gammas)}, {len(plan.seeds)} seed(s), {plan.steps} "
            f"steps{', with ' + ' '.join(plan.train) if plan.tag else ''}. Machine: {machine()}. "
            f"Command: `{command_line('bench/gym.py')}`.{trained_at(runs)}\n\n" + "\n".join(lines) + "\n")
    sweep_picture(runs, per, gammas, out / f"sweep{plan.tag}.png")
    data = {"plan": asdict(plan), "per_gamma": per, "runs": runs}
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
    frontier_curve(a2, per[str(gammas[0])]["oracle"]["frontier"], [per[str(g)]["tokens"][0] for g in gammas])
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
    p.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS),
                   help="shared: conf/rl/gym_cpu.yaml for all; recipe: + conf/recipe/NAME.yaml; matched: shared, "
                        "trained to the oracle's think ratio (rl.budget) (default: all three; --quick: the recipe arm "
                        "of thinkless and ada_grpo, the matched arm of adaptthink, unless --objectives names others)")
    p.add_argument("--steps", type=int, help="RL steps per run (default 100; --quick: 3)")
    p.add_argument("--gammas", type=float, nargs="+", default=list(GAMMAS), help="γ values of --sweep")
    p.add_argument("--jobs", type=int, help="runs at once (default 1: comparable wall times; --quick: 2)")
    p.add_argument("--train", nargs="+", default=[], metavar="KEY=VALUE",
                   help="train.py overrides for every run, named in the run folders (e.g. rl.args.scale_rewards=none)")
    a = p.parse_args(argv)
    if not a.sweep and set(a.arms) == {"matched"}:  # before any work
        finished_run(Path(a.out), p.error)
    plan = Plan.quick() if a.quick else Plan()
    if a.seeds:
        plan.seeds = a.seeds
    if a.objectives:
        plan.objectives, plan.recipes, plan.matched = a.objectives, None, None  # named ones run every planned arm
    plan.arms = a.arms
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
