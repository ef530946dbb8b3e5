"""Training to a budget on the gym's graded task: does ``rl.budget.think_ratio`` land on its target, and is the
policy it trains better at that think ratio than the unconstrained one moved there by a think bias at serving time?

For each objective (DeGRPO, the length penalty and coupled GRPO by default) x target think ratio x seed:
``train.py`` with ``rl.budget.think_ratio=T`` (everything else as the gym's runs, ``rl.args.scale_rewards=none`` for
all: see docs/budget.md). Per objective x seed, one unconstrained run whose report also moves its final policy to
each target with the think bias that gives that ratio in expectation (``report.threshold_think_ratios``), measured in
the same report. Writes ``budget_results.{md,json}`` and ``budget.png`` (multiplier and cost over training; accuracy vs think
ratio, budget vs bias) in ``--out`` (default runs/gym: the gym's distillation is shared).

    python bench/budget.py                   # 3 objectives x 3 targets x 3 seeds + 9 unconstrained runs
    python bench/budget.py --proportional 0  # the same with plain dual ascent (no proportional term)
    python bench/budget.py --step-size-factor 2.5  # another integral gain: 2.5 x reward range / steps
    python bench/budget.py --probe 0         # the cost read from each batch's sampled rollouts, not a fixed probe
    python bench/budget.py --quick           # 1 seed, 1 target, a few steps: the test suite's

Which problems get the thinking: at each target, the oracle spends the budget on the classes where thinking buys the
most accuracy (forced think − forced short of the distilled model), in that order, the last one partly. ``overlap``
is the share of the oracle's allocation the learned policy matches (Σ_c min(learned_c, oracle_c) / Σ_c oracle_c,
classes equally frequent); ``rank corr.`` is Spearman's between the per-class think ratio and the accuracy gain.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (PRICED, Plan, class_name, command_line, fmt, log, machine, run_all, start_models, trained_at,  # noqa: E402
                          write_results)
from thinkless.objectives import OBJECTIVES as REGISTRY  # noqa: E402
from thinkless.training.budget import priceable  # noqa: E402
from thinkless.reporting.markdown import markdown_row, markdown_rule  # noqa: E402

OBJECTIVES = ("thinkless", "length_penalty", "grpo")  # the default selection: docs/budget.md's published runs
TARGETS = (0.2, 0.4, 0.6)
REGISTERED = sorted(REGISTRY)  # every registered objective (thinkless/objectives/), by name


def final_integral(card: dict, series: dict) -> float:
    """λ_I, the multiplier's dual-ascent part at the end (λ less its proportional term on the last batches' noise),
    replayed from the logged batch costs (exactly: the update is deterministic and the series is the logged one)."""
    from thinkless.training.budget import SMOOTHING, Budget

    b = Budget(cost=card["cost"], target=card["target"], step_size=card["step_size"], bound=card["bound"],
               at_most=card["at_most"], proportional=card.get("proportional", 0.0),
               derivative=card.get("derivative", 0.0), multiplier=series["multiplier"][0],
               smoothing=card.get("smoothing", SMOOTHING))  # no key: written when every run averaged
    for lam, cost in zip(series["multiplier"], series["cost"]):
        if abs(lam - b.multiplier) > 1e-9:
            raise RuntimeError(f"the replayed multiplier {b.multiplier} is not the logged {lam}")
        b.update(cost)
    return b.integral


def stale_run(out: Path, label: str, seed: int, k: float, eta: float, probe: int, d: float = 0.0) -> None:
    """A finished run is reused by its label: refuse one trained with other gains or another cost measurement (an
    older default), before any work."""
    res = out / "runs" / f"{label}-s{seed}" / "train_result.json"
    if not res.is_file():
        return
    from thinkless.training.budget import SMOOTHING, smoothing_for

    card = json.loads(res.read_text())["budget"]
    # no proportional key: plain dual ascent's version; no probe key: the batch's think ratio; no smoothing key: every
    # reading averaged
    got = (card.get("proportional", 0.0), card["step_size"], card.get("probe", 0), card.get("smoothing", SMOOTHING),
           card.get("derivative", 0.0))  # no derivative key: written before the term existed (off)
    want = (k, eta, probe, smoothing_for(probe), d)
    if any(abs(x - y) > 1e-9 * max(1.0, abs(y)) for x, y in zip(got, want)):
        raise SystemExit(f"{res.parent}: trained with proportional={got[0]:g}, step_size={got[1]:g}, probe={got[2]}, "
                         f"smoothing={got[3]:g}, derivative={got[4]:g}, not this invocation's "
                         f"{', '.join(f'{w:g}' for w in want)}; move it away (or pass what it was run with)")


def class_gains(run_dir: Path) -> dict:
    """Per class: what thinking buys on the distilled model (forced think − forced short accuracy)."""
    from thinkless.reporting.report import rows_of

    _, rows = rows_of(json.loads((run_dir / "report_before_rl.json").read_text()))
    return {k: r["think_acc"] - r["short_acc"] for k, r in rows.items()}


def oracle_allocation(gain: dict, ratio: float) -> dict:
    """The think ratio per class that spends ``ratio`` (classes equally frequent) where thinking buys the most."""
    left, out = ratio * len(gain), {}
    for g in sorted({round(v, 9) for v in gain.values()}, reverse=True):  # classes with equal gain share alike
        tied = [k for k in gain if round(gain[k], 9) == g]
        share = max(0.0, min(1.0, left / len(tied)))
        out.update({k: share for k in tied})
        left -= share * len(tied)
    return {k: out[k] for k in gain}


def spearman(xs: list, ys: list) -> float:
    def ranks(v):
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(v):  # ties share their mean rank
            j = i
            while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for t in range(i, j + 1):
                r[order[t]] = (i + j) / 2
            i = j + 1
        return r

    rx, ry = ranks(xs), ranks(ys)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    num = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    den = (sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)) ** 0.5
    return num / den if den else float("nan")


def placement(run: dict, gain: dict, ratio: float) -> dict:
    learned = {k: run["classes"][k]["think_ratio"] for k in gain}
    orc = oracle_allocation(gain, ratio)
    total = sum(orc.values())
    return {"overlap": sum(min(learned[k], orc[k]) for k in gain) / total if total else float("nan"),
            "rank_corr": spearman([learned[k] for k in gain], [gain[k] for k in gain]), "oracle": orc}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "runs" / "gym"), help="results and runs (default runs/gym)")
    p.add_argument("--quick", action="store_true", help="1 seed, 1 target, a few steps (the test suite's)")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds (default 0 1 2)")
    p.add_argument("--targets", type=float, nargs="+", help="think-ratio targets (default 0.2 0.4 0.6)")
    p.add_argument("--objectives", nargs="+", choices=REGISTERED,  # a forcing one is priced on the probe only
                   help="objectives (default: thinkless length_penalty grpo)")
    p.add_argument("--steps", type=int, help="RL steps per run (default 100, as the gym)")
    p.add_argument("--jobs", type=int, help="runs at once (default 1)")
    p.add_argument("--proportional", type=float, help="rl.budget.proportional for the budget runs (default: the "
                   "config's auto); their labels and the results' file names get -K<value>")
    p.add_argument("--probe", type=int, help="rl.budget.probe for the budget runs (default: the config's auto, 512 "
                   "prompts; 0: the batch's sampled think ratio); their labels and the results' file names get "
                   "-probe<value>")
    p.add_argument("--derivative", help="rl.budget.derivative for the budget runs: a number or auto (default: the "
                   "config's 0, off); their labels and the results' file names get -D<value>")
    p.add_argument("--step-size-factor", type=float, help="rl.budget.step_size = F x the objective's reward range / "
                   "the steps, for the budget runs (default: the config's auto, F = 5); their labels and the results' "
                   "file names get -eta<F>")
    a = p.parse_args(argv)
    forcing = sorted(set(a.objectives or OBJECTIVES) - set(priceable()))
    if a.probe == 0 and forcing:  # before any work: rl.budget would refuse each such run after the distillation
        p.error(f"--probe 0 prices the batch's sampled think ratio, which {', '.join(forcing)} never shows (it forces "
                f"the mode); with --probe 0 choose from {', '.join(priceable())}")
    plan = Plan.quick() if a.quick else Plan()
    plan.seeds = a.seeds or plan.seeds
    plan.objectives = a.objectives or list(OBJECTIVES)
    plan.steps = a.steps or plan.steps
    plan.jobs = a.jobs or plan.jobs
    targets = a.targets or ([0.4] if a.quick else list(TARGETS))
    from thinkless.training.budget import PROBE, STEP_FACTOR, make_budget, measured_on
    from thinkless.objectives import make_objective

    probe = PROBE if a.probe is None else a.probe
    gains, expected, suffix, described = {}, {}, "", []
    for name in plan.objectives:  # the gym generates once per optimizer step: U = steps
        R = make_objective({"name": name}).reward_range()
        k = R if a.proportional is None else a.proportional
        eta = (STEP_FACTOR if a.step_size_factor is None else a.step_size_factor) * R / plan.steps
        # the derivative gain as the run derives it (auto: K / (1 - adam_beta1) at the gym's one update per step)
        try:
            dgain = 0.0 if a.derivative is None else make_budget(
                {"think_ratio": 0.5, "proportional": k, "derivative": a.derivative if a.derivative == "auto" else
                 float(a.derivative)}, objective=make_objective({"name": name}), max_steps=plan.steps).derivative
        except ValueError as e:  # before any work
            p.error(f"--derivative {a.derivative}: a number >= 0 or auto ({e})")
        expected[name] = (k, eta, probe, dgain)
        gains[name] = ([] if a.derivative is None else [f"rl.budget.derivative={a.derivative}"]) + (
            [] if a.proportional is None else [f"rl.budget.proportional={k:g}"]) + (
            [] if a.step_size_factor is None else [f"rl.budget.step_size={eta:g}"]) + (
            [] if a.probe is None else [f"rl.budget.probe={a.probe}"])
    if a.proportional is not None:
        suffix += f"-K{a.proportional:g}"
        described.append(f"rl.budget.proportional={a.proportional:g}")
    if a.step_size_factor is not None:
        suffix += f"-eta{a.step_size_factor:g}"
        described.append(f"rl.budget.step_size={a.step_size_factor:g} x reward range / steps")
    if a.derivative is not None:
        suffix += f"-D{a.derivative}"
        described.append(f"rl.budget.derivative={a.derivative}")
    if a.probe is not None:
        suffix += f"-probe{a.probe}"
    plan.train += PRICED
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    start = start_models(out, plan, plan.objectives).by_name  # the shared one, or its own warm-up, side by side
    ratios = "[" + ",".join(f"{t:g}" for t in targets) + "]"
    calls, meta = [], []
    for name in plan.objectives:
        for seed in plan.seeds:
            calls.append((out, start[name], f"{name}-free", [f"objective={name}", f"report.threshold_think_ratios={ratios}"],
                          seed, plan))
            meta.append((name, None))
            for t in targets:
                stale_run(out, f"{name}-budget{t:g}{suffix}", seed, *expected[name])
                calls.append((out, start[name], f"{name}-budget{t:g}{suffix}",
                               [f"objective={name}", f"rl.budget.think_ratio={t:g}", *gains[name]], seed, plan))
                meta.append((name, t))
    runs = []
    for (name, t), r in zip(meta, run_all(plan, calls).rows):
        d = out / r["dir"]
        extra = {"objective": name, "target": t}
        if t is not None:
            # bench.common.summarize_run's row carries the budget card and every dual update's step, cost and λ;
            # the run's warnings only its train_result.json
            series = r.pop("budget_series")
            extra.update(series=series, integral=final_integral(r["budget"], series),
                         warnings=json.loads((d / "train_result.json").read_text()).get("warnings", []))
        runs.append({**r, **extra})
    gain = class_gains(out / runs[0]["dir"])
    rows, summary = [], {}
    for name in plan.objectives:
        for t in targets:
            rs = [r for r in runs if r["objective"] == name and r["target"] == t]
            free = [r for r in runs if r["objective"] == name and r["target"] is None]
            moved = [next(c for c in f["threshold"] if c.get("target_think_ratio") == t) for f in free]
            place = [placement(r, gain, t) for r in rs]
            hit = [abs(r["think_ratio"] - t) <= 0.05 for r in rs]
            s = {"achieved": [r["think_ratio"] for r in rs], "within_0.05": hit,
                 "acc": [r["acc"] for r in rs], "tokens": [r["tokens"] for r in rs],
                 "reward": [r["reward"] for r in rs],
                 "multiplier": [r["budget"]["final_multiplier"] for r in rs], "integral": [r["integral"] for r in rs],
                 "overlap": [p["overlap"] for p in place], "rank_corr": [p["rank_corr"] for p in place],
                 "bias": [m["bias"] for m in moved], "bias_think_ratio": [m["think_ratio"] for m in moved],
                 "bias_acc": [m["acc"] for m in moved], "bias_tokens": [m["tokens"] for m in moved]}
            summary[f"{name}@{t:g}"] = s
            rows.append(markdown_row([
                name, f"{t:g}", fmt(s["achieved"], "{:.2f}"), f"{sum(hit)}/{len(hit)}", fmt(s["acc"]),
                fmt(s["tokens"], "{:.1f}"), fmt(s["multiplier"], "{:+.3f}"), fmt(s["integral"], "{:+.3f}"),
                fmt(s["overlap"], "{:.2f}"), fmt(s["rank_corr"], "{:.2f}"), fmt(s["bias_think_ratio"], "{:.2f}"),
                fmt(s["bias_acc"]), fmt(s["bias_tokens"], "{:.1f}"), _winner(s)]))
    head = markdown_row(["objective", "target think ratio", "achieved", "within ±0.05", "accuracy", "tokens", "final λ",
                         "its dual-ascent part λ_I", "overlap with the oracle's allocation",
                         "rank corr. with the accuracy gain", "unconstrained + think bias: think ratio", "its accuracy",
                         "its tokens", "more accurate"]) + "\n" + markdown_rule(14)
    per_class = class_rows(runs, plan.objectives, targets, gain)
    text = (f"# Training to a budget\n\nGraded task (the gym's distillation), {len(plan.seeds)} seed(s), {plan.steps} "
            f"RL steps per run, every run with {' '.join(PRICED)}; the multiplier's gains: "
            f"{', '.join(described) or 'auto'}{' (the rest auto)' if described else ''}; the cost: "
            f"{measured_on(probe)} (rl.budget.probe={probe}); "
            f"mean ± sd over seeds. Achieved, accuracy and "
            f"tokens: "
            f"the final policy's free choice on the report benchmark. The think-bias columns: the unconstrained run of "
            f"the same objective and seed, moved to the target by the bias that gives it in expectation (its own "
            f"log-odds on the benchmark), measured in the same report. Machine: {machine()}. Command: "
            f"`{command_line('bench/budget.py')}`.{trained_at(runs)}\n\n{head}\n" + "\n".join(rows) +
            f"\n\n## Where the thinking goes: think ratio per class (the oracle's allocation at the target in "
            f"brackets)\n\n{per_class}\n")
    picture(runs, summary, plan.objectives, targets, out / f"budget{suffix}.png")
    data = {"plan": asdict(plan), "targets": targets, "gain": gain, "summary": summary,
            "runs": runs}
    write_results(out, f"budget_results{suffix}", text, data)
    print(text, flush=True)
    log(f"done in {time.perf_counter() - t0:.0f}s")


def _winner(s: dict) -> str:
    """Which is more accurate at the target, and by how much (mean over seeds)."""
    d = statistics.fmean(s["acc"]) - statistics.fmean(s["bias_acc"])
    return f"budget (+{d:.3f})" if d > 0 else f"think bias (+{-d:.3f})" if d < 0 else "tie"


def class_rows(runs, objectives, targets, gain) -> str:
    keys = list(gain)
    lines = [markdown_row(["class (gain from thinking)", *(f"{o} @ {t:g}" for o in objectives for t in targets)]),
             markdown_rule(1 + len(objectives) * len(targets))]
    for k in keys:
        cells = []
        for o in objectives:
            for t in targets:
                rs = [r for r in runs if r["objective"] == o and r["target"] == t]
                cells.append(f"{fmt([r['classes'][k]['think_ratio'] for r in rs], '{:.2f}')} "
                             f"({oracle_allocation(gain, t)[k]:.2f})")
        lines.append(markdown_row([f"{class_name(k)} ({gain[k]:+.2f})", *cells]))
    return "\n".join(lines)


def picture(runs, summary, objectives, targets, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    styles = {o: ls for o, ls in zip(objectives, ("-", "--", ":", "-."))}
    for i, t in enumerate(targets):
        for o in objectives:
            for j, r in enumerate(r for r in runs if r["objective"] == o and r["target"] == t):
                s = r["series"]
                lab = f"{o} @ {t:g}" if j == 0 else None
                axes[0].plot(s["step"], s["multiplier"], styles[o], color=f"C{i}", lw=1, label=lab)
                axes[1].plot(s["step"], s["cost"], styles[o], color=f"C{i}", lw=0.8, alpha=0.7, label=lab)
        axes[1].axhline(t, color=f"C{i}", lw=2, alpha=0.4)
    axes[0].axhline(0, color="gray", lw=0.5)
    axes[0].set(xlabel="step", ylabel="multiplier λ (reward units)", title="the price of thinking")
    axes[1].set(xlabel="step", ylabel="measured think ratio (what the multiplier saw)", ylim=(-0.02, 1.02),
                title="think ratio (targets: bands)")
    axes[0].legend(fontsize=7)
    for k, o in enumerate(objectives):
        xs = [statistics.fmean(summary[f"{o}@{t:g}"]["achieved"]) for t in targets]
        ys = [statistics.fmean(summary[f"{o}@{t:g}"]["acc"]) for t in targets]
        bx = [statistics.fmean(summary[f"{o}@{t:g}"]["bias_think_ratio"]) for t in targets]
        by = [statistics.fmean(summary[f"{o}@{t:g}"]["bias_acc"]) for t in targets]
        axes[2].plot(xs, ys, "o" + styles[o], color=f"C{k}", label=f"{o}: trained to the budget")
        axes[2].plot(bx, by, "x" + styles[o], color=f"C{k}", alpha=0.6, label=f"{o}: unconstrained + think bias")
    axes[2].set(xlabel="think ratio", ylabel="accuracy", title="accuracy at the target (mean over seeds)")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
