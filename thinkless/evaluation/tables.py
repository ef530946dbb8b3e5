"""Markdown tables of an evaluation's results (printed, and saved as ``results.md``)."""

from __future__ import annotations

from ..reporting.markdown import markdown_table
from .metrics import fmt

COLUMNS = [
    ("method", None, "{}"),
    ("grading", "grading", "{}"),
    ("n", "n_samples", "{}"),
    ("acc", "acc", "{:.3f}"),
    ("pass@1", "pass@1", "{:.3f}"),
    ("pass@k", "pass@k", "{:.3f}"),
    ("maj@k", "maj@k", "{:.3f}"),
    ("think", "think_ratio", "{:.1%}"),
    ("tokens", "tokens", "{:.1f}"),
    ("tok think", "tokens_think", "{:.1f}"),
    ("tok short", "tokens_short", "{:.1f}"),
    ("cost tok", "cost_tokens", "{:.1f}"),
    ("latency tok", "latency_tokens", "{:.1f}"),
    ("trunc", "truncated_ratio", "{:.1%}"),
    ("wall s", "wall_s", "{:.1f}"),
    ("tok/s", "tokens_per_s", "{:.0f}"),
]

NOTES = ("grading: the policy answers were read with (strict: the last \\boxed{} of a well-formed Thinkless "
         "response; lenient: the last \\boxed{} or number after the last </think>, format not checked); acc: pass@1 for single-sample methods, the selected answer's accuracy for parallel scaling; pass@k / maj@k "
         "at k = n samples per problem; think: share of samples in think mode; tokens: mean *response* tokens per "
         "sample (prompt not counted, prefilled/injected text counted), overall and per mode; cost tok: tokens per "
         "answer (sum over the n samples for parallel scaling); latency tok: longest of the samples run in parallel "
         "for one answer; trunc: samples cut by max_new_tokens; wall s, tok/s: generation time and sampled tokens "
         "per second (this run's hardware).")


def method_table(methods: dict) -> list[str]:
    rows = [[name] + [fmt(r.get(key), spec) for _, key, spec in COLUMNS[1:]] for name, r in methods.items()]
    return markdown_table([c for c, _, _ in COLUMNS], rows).split("\n")


def level_table(methods: dict) -> list[str]:
    """Accuracy / think ratio / mean tokens per difficulty level (rows: methods)."""
    levels: list[str] = []
    for r in methods.values():
        for lv in r.get("per_level", {}):
            if lv not in levels:
                levels.append(lv)
    if not levels:
        return []
    rows = []
    for name, r in methods.items():
        pl = r.get("per_level", {})
        cells = []
        for lv in levels:
            x = pl.get(lv)
            cells.append("-" if x is None else " / ".join(
                (fmt(x["acc"], "{:.2f}"), fmt(x["think_ratio"], "{:.0%}"), fmt(x["tokens"], "{:.0f}"))))
        rows.append([name, *cells])
    lines = markdown_table(["method", *(f"L{lv}" for lv in levels)], rows).split("\n")
    n = {lv: next((r["per_level"][lv]["n_problems"] for r in methods.values() if lv in r.get("per_level", {})), 0)
         for lv in levels}
    lines.append("")
    lines.append("cells: acc / think ratio / mean response tokens; problems per level: "
                 + ", ".join(f"L{lv}={k}" for lv, k in n.items()))
    return lines


def calibration_table(cal: dict) -> list[str]:
    rows = [[lv, r["n"], fmt(r["p_think"], "{:.2f}"), fmt(r.get("acc_think"), "{:.2f}"),
             fmt(r.get("acc_short"), "{:.2f}"), fmt(r.get("acc_gain"), "{:+.2f}"), r.get("best_mode", "-")]
            for lv, r in cal["per_level"].items()]
    lines = markdown_table(["level", "n", "P(think)", "forced think acc", "forced short acc", "acc gain", "best mode"],
                           rows).split("\n")
    th = cal.get("oracle_threshold")
    if th:
        lines.append("")
        if th["exists"]:
            lines.append(f"oracle threshold: think bias {th['bias']:+g} -> expected reward {th['reward']:.3f} "
                         f"(at bias 0: {th['reward_at_0']:.3f}; always think {th['reward_always_think']:.3f}, "
                         f"always short {th['reward_always_short']:.3f})")
        else:
            lines.append(f"oracle threshold: none inside the bias range (best: always "
                         f"{'think' if th['reward_always_think'] >= th['reward_always_short'] else 'short'}, "
                         f"expected reward {th['reward']:.3f}; at bias 0: {th['reward_at_0']:.3f})")
    return lines


def budget_table(methods: dict) -> list[str]:
    """Requested vs actual tokens of the methods run at a token budget (``metrics.budget_adherence``)."""
    rows = [(name, r) for name, r in methods.items() if r.get("token_budget")]
    if not rows:
        return []
    cells = []
    for name, r in rows:
        b = r["token_budget"]
        cells.append([name, b["requested"], fmt(b.get("mean_tokens"), "{:.1f}"), fmt(b.get("mean_abs_error"), "{:.1f}"),
                      fmt(b.get("relative_error"), "{:+.1%}"), fmt(b.get("within_budget"), "{:.1%}"),
                      fmt(b.get("max_tokens"), "{}"), fmt(r.get("acc"), "{:.3f}")])
    lines = markdown_table(["method", "requested", "mean tokens", "mean abs error", "relative error", "within budget",
                            "max tokens", "acc"], cells).split("\n")
    lines += ["", "tokens here count the EOS, as the L1 objective's length does in training; relative error: "
                  "(mean − requested)/requested"]
    return lines


def format_tables(results: dict) -> str:
    out = [f"## Evaluation of `{results.get('model')}`", ""]
    for bname, b in results["benchmarks"].items():
        dropped = b.get("dropped") or {}
        out.append(f"### {bname} ({b['n_problems']} problems from {b['source']}"
                   + (f"; dropped {dropped}" if dropped else "") + f"; max_new_tokens "
                   f"{b.get('settings', {}).get('max_new_tokens')})")
        out.append("")
        out += method_table(b["methods"])
        lv = level_table(b["methods"])
        if lv:
            out += ["", f"#### {bname} by level", ""] + lv
        bt = budget_table(b["methods"])
        if bt:
            out += ["", f"#### {bname}: token budget adherence", ""] + bt
        if b.get("calibration"):
            out += ["", f"#### {bname}: calibration of the mode decision", ""] + calibration_table(b["calibration"])
        out.append("")
    out.append(NOTES)
    counts = {k: v for k, v in (results.get("grading") or {}).items() if k != "policy"}
    if counts:
        out.append("")
        out.append(f"grading: {counts} (timeouts / parse errors / over-long answers count as wrong)")
    return "\n".join(out)
