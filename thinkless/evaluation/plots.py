"""PNG plots (matplotlib, Agg): accuracy vs tokens per benchmark (Pareto chart) and think ratio per level."""

from __future__ import annotations

from pathlib import Path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated points (fewer tokens and higher accuracy is better), by increasing tokens."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def pareto_plot(bname: str, methods: dict, path: Path) -> Path | None:
    """Accuracy vs tokens per answer for every method; a think-threshold sweep (``<name>@<bias>``) is one curve."""
    pts = [(name, r.get("cost_tokens"), r.get("acc")) for name, r in methods.items()]
    pts = [(n, x, y) for n, x, y in pts if x is not None and y is not None]
    if not pts:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    curves: dict[str, list] = {}
    for name, x, y in pts:
        if "@" in name:
            curves.setdefault(name.split("@")[0], []).append((x, y, name.split("@")[1]))
            continue
        ax.scatter([x], [y], s=40, zorder=3)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    for parent, cp in curves.items():
        cp.sort()
        ax.plot([c[0] for c in cp], [c[1] for c in cp], "-o", ms=3, lw=1.2, zorder=3, label=f"{parent} (bias)")
        for x, y, b in (cp[0], cp[-1]):
            ax.annotate(f"b={b}", (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    front = pareto_front([(x, y) for _, x, y in pts])
    ax.plot([pts[i][1] for i in front], [pts[i][2] for i in front], "--", color="gray", lw=1, zorder=2,
            label="Pareto front")
    xs = [x for _, x, _ in pts]
    if min(xs) > 0 and max(xs) / min(xs) > 20:
        ax.set_xscale("log")
    ax.set_xlabel("tokens per answer (response tokens; parallel: sum over samples)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{bname}: accuracy vs cost")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def level_plot(bname: str, methods: dict, path: Path) -> Path | None:
    levels = []
    for r in methods.values():
        for lv in r.get("per_level", {}):
            if lv not in levels:
                levels.append(lv)
    if not levels:
        return None
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    xs = list(range(len(levels)))
    for name, r in methods.items():
        pl = r.get("per_level", {})
        think = [pl.get(lv, {}).get("think_ratio") for lv in levels]
        acc = [pl.get(lv, {}).get("acc") for lv in levels]
        ax1.plot(xs, [float("nan") if v is None else v for v in think], marker="o", label=name)
        ax2.plot(xs, [float("nan") if v is None else v for v in acc], marker="o", label=name)
    for ax, title in ((ax1, "think ratio"), (ax2, "accuracy")):
        ax.set_xticks(xs)
        ax.set_xticklabels(levels)
        ax.set_xlabel("difficulty level")
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(f"{bname}: {title} per level")
        ax.grid(alpha=0.3)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def calibration_plot(bname: str, cal: dict | None, path: Path) -> Path | None:
    """P(think) per level beside the accuracy gain from thinking (forced think − forced short)."""
    if not cal or len(cal.get("per_level", {})) < 2:
        return None
    levels = list(cal["per_level"])
    rows = [cal["per_level"][lv] for lv in levels]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    xs = list(range(len(levels)))
    ax.plot(xs, [r["p_think"] for r in rows], "o-", label="P(think) (first-token distribution)")
    if all("acc_gain" in r for r in rows):
        ax.plot(xs, [r["acc_gain"] for r in rows], "s--", label="accuracy gain from thinking")
    th = cal.get("oracle_threshold") or {}
    if th.get("exists"):
        ax.plot(xs, [th["think_ratio_per_level"][lv] for lv in levels], "^:",
                label=f"think ratio at the oracle threshold (b={th['bias']:+g})")
    ax.set_xticks(xs)
    ax.set_xticklabels(levels)
    ax.set(xlabel="difficulty level", ylim=(-0.05, 1.05), title=f"{bname}: calibration of the mode decision")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def make_plots(results: dict, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for bname, b in results["benchmarks"].items():
        for fn, stem in ((pareto_plot, "pareto"), (level_plot, "think_ratio_by_level")):
            p = fn(bname, b["methods"], out_dir / f"{stem}_{bname}.png")
            if p is not None:
                made.append(p)
        p = calibration_plot(bname, b.get("calibration"), out_dir / f"calibration_{bname}.png")
        if p is not None:
            made.append(p)
    return made
