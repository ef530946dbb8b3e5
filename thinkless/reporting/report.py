"""Mode report: what a checkpoint can do in each mode and what it chooses, per difficulty level (per class on a task
with classes: the graded task's grades; the task's ``Task.split`` says which, and names each); the pipeline table.

The report is an evaluation (``thinkless.evaluation.evaluate``: one code path generates, grades and tabulates) with
three methods on one benchmark:

* ``forced_think`` / ``forced_short``: the control token is prefilled; accuracy and response tokens;
* ``free_choice``: the model picks its own first token. After paired SFT the choice is ~50/50 and nearly
  prompt-independent, so greedy decoding would pick one mode everywhere: the mode token is *sampled*
  (``free_samples`` per problem at ``free_temperature``) and the response after it is decoded like the forced
  modes (greedy), so free-choice accuracy differs from forced accuracy only through the mode choice.

The pipeline report compares the policy before and after RL with the *oracle router*: the best fixed mode per level
given the forced accuracies and the reward values (``thinkless.oracle``).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..evaluation.benchmarks import BenchmarkData
from ..format import render_prompt
from ..generation import SamplingConfig
from ..oracle import mean_over_problems, oracle_choice
from ..reward import RewardValues
from ..tasks.base import Task, split_of
from ..tokens import SHORT, THINK
from .markdown import markdown_table
from ..evaluation.runner import evaluate
from ..serving.mode_control import bias_for_think_ratio


def report_methods(free_samples: int, free_temperature: float, biases=()) -> dict:
    """The report's method configs (``thinkless.evaluation.methods``); ``biases``: the think-threshold curve, the
    free choice with ``+b`` on the ``<think>`` logit (one sample per problem and bias)."""
    methods = {"forced_think": {"type": "prefill", "prefill": THINK, "mode": "think"},
               "forced_short": {"type": "prefill", "prefill": SHORT, "mode": "short"}}
    if free_samples > 0:
        methods["free_choice"] = {"type": "mode_sampled", "mode_temperature": free_temperature, "n": free_samples}
    for b in biases:
        methods[f"threshold@{b:+g}"] = {"type": "mode_sampled", "mode_temperature": free_temperature, "n": 1,
                                        "think_bias": float(b)}
    return methods


def mode_report(generator, tokenizer, bench: BenchmarkData, out_dir: str | Path, *, max_new_tokens: int,
                free_samples: int = 4, free_temperature: float = 1.0, seed: int = 0,
                rewards: RewardValues = RewardValues(), instruction: str | None = None, system: str | None = None,
                model: dict | None = None, biases=(), ratios=(), progress: bool = False, reuse=()) -> dict:
    """Evaluate forced think, forced short and free choice on ``bench``; the per-level report dict (and, with
    ``biases``, the think-threshold curve: accuracy, think ratio and response tokens per bias). ``ratios``: think
    ratios the policy is moved to by the bias that gives each in expectation on ``bench``
    (``mode_control.bias_for_think_ratio`` on the policy's own log-odds), added to the curve with their target.
    ``reuse``: report folders whose generations of the same fingerprint and problems are copied, not generated
    (``runner.evaluate``)."""
    targets = {}
    if ratios:
        z = generator.mode_log_odds([render_prompt(tokenizer, p.problem, instruction=instruction, system=system,
                                                   suffix=p.suffix) for p in bench.problems])
        targets = {round(bias_for_think_ratio(z, float(r), free_temperature), 3): float(r) for r in ratios}
        biases = sorted({*map(float, biases), *targets})
    methods = report_methods(free_samples, free_temperature, biases)
    greedy = SamplingConfig(temperature=0.0, top_p=1.0, max_new_tokens=max_new_tokens, n=1, seed=seed)
    res = evaluate(generator, tokenizer, {bench.name: bench}, list(methods), methods, sampling=greedy,
                   out_dir=out_dir, settings={bench.name: {"instruction": instruction}}, system=system,
                   grading="strict", model=model, rewards=rewards, progress=progress, reuse=reuse)
    by = res["benchmarks"][bench.name]["methods"]
    key = bench.kind.split.report_key  # its levels or its classes
    levels = list(by["forced_think"].get(key) or {}) or ["all"]

    def at(method, lv):
        r = by.get(method)
        if r is None:
            return {}
        return r if lv == "all" else r[key].get(lv, {})

    per_level = {}
    for lv in levels:
        t, s, f = at("forced_think", lv), at("forced_short", lv), at("free_choice", lv)
        per_level[str(lv)] = {
            "n": t.get("n_problems"), "think_acc": t.get("acc"), "think_tokens": t.get("tokens"),
            "short_acc": s.get("acc"), "short_tokens": s.get("tokens"), "free_think_ratio": f.get("think_ratio"),
            "free_acc": f.get("acc"), "free_reward": f.get("reward"), "free_tokens": f.get("tokens"),
            "free_valid_mode": None if not f else 1.0 - (f.get("invalid_mode_ratio") or 0.0)}
    threshold = [{"bias": float(b), **{k: by[f"threshold@{b:+g}"][k] for k in ("acc", "think_ratio", "tokens",
                                                                             "reward")},
                  **({"target_think_ratio": targets[b]} if b in targets else {})} for b in biases]
    return {key: per_level, "threshold": threshold, "free_samples": free_samples,
            "free_temperature": free_temperature,
            "forced_temperature": 0.0, "max_new_tokens": res["benchmarks"][bench.name]["settings"]["max_new_tokens"],
            "grading": "strict", "rewards": rewards.__dict__, "evaluation": res}


def rows_of(report: dict, task: Task | None = None) -> tuple[str, dict]:
    """The report's unit (``"level"`` or ``"class"``) and its rows: ``task``'s split, else the one its keys hold
    (``thinkless.tasks.base.split_of``: a report read back from its file)."""
    split = task.split if task is not None else split_of(report)
    return split.unit, report[split.report_key]


def row_name(task: Task | None, key: str) -> str:
    """How a table names a row: ``task``'s name for it (a class by its name, ``"B (90%)"``), else the key."""
    return task.split_name(key) if task is not None else str(key)


def format_report(report: dict, title: str = "mode report", task: Task | None = None) -> str:
    unit, rows = rows_of(report, task)
    cols = [(unit, "{}"), ("n", "{}"), ("think_acc", "{:.2f}"), ("think_tokens", "{:.1f}"), ("short_acc", "{:.2f}"),
            ("short_tokens", "{:.1f}"), ("free_think_ratio", "{:.2f}"), ("free_acc", "{:.2f}")]
    cells = []
    for lv, r in rows.items():
        vals = [row_name(task, lv)] + [r.get(c) for c, _ in cols[1:]]
        cells.append(["-" if v is None else f.format(v) for v, (_, f) in zip(vals, cols)])
    lines = [f"### {title}", "", markdown_table([c for c, _ in cols], cells)]
    lines.append("")
    lines.append(f"forced modes: greedy; free choice: the mode token sampled ({report['free_samples']} samples/problem, "
                 f"temperature {report['free_temperature']}), the rest greedy; tokens = response tokens incl. the "
                 f"control token; grading: {report.get('grading', 'strict')} (last \\boxed{{}} of a well-formed "
                 "response)")
    return "\n".join(lines)


def threshold_table(curve: list[dict]) -> str:
    return markdown_table(["think bias", "accuracy", "think ratio", "response tokens", "mean reward"],
                          [[f"{c['bias']:+g}", f"{c['acc']:.3f}", f"{c['think_ratio']:.2f}", f"{c['tokens']:.1f}",
                            f"{c['reward']:.3f}"] for c in curve])


def write_report(report: dict, out_dir: str | Path, name: str = "report", task: Task | None = None) -> Path:
    path = Path(out_dir) / f"{name}.json"
    path.write_text(json.dumps({k: v for k, v in report.items() if k != "evaluation"}, indent=2))
    md = format_report(report, name, task)
    if report.get("threshold"):
        md += "\n\n#### think threshold (the free choice with a bias on the <think> logit)\n\n" + \
            threshold_table(report["threshold"])
    (Path(out_dir) / f"{name}.md").write_text(md + "\n")
    return path


def pipeline_table(before: dict, after: dict, rewards: RewardValues, task: Task | None = None) -> tuple[str, dict]:
    """Per level (per class on a task with classes, named by ``task``): forced accuracies (after distill), oracle
    router, free choice after distill and after RL; the "all" row and the summary's overall numbers weight each
    level by its problems."""
    unit, rows = rows_of(before, task)
    after_rows = rows_of(after, task)[1]
    summary = {"levels": {}, "unit": unit}
    head = [unit, "forced think acc", "forced short acc", "oracle mode", "oracle E[r]", "think ratio distill",
            "think ratio RL", "acc distill", "acc RL", "E[r] RL", "matches oracle"]
    cells = []
    tot = {"rl_acc": [], "think_acc": [], "rl_r": [], "oracle_r": []}
    counts = []  # problems per level: the weights of the "all" row (thinkless.oracle.mean_over_problems)
    for lv, b in rows.items():
        a = after_rows.get(lv)
        if a is None:
            continue
        mode, e_or = oracle_choice(b["short_acc"], b["think_acc"], rewards)
        tr = a["free_think_ratio"]
        ok = tr <= 0.10 if mode == "short" else tr >= 0.90
        summary["levels"][lv] = {"oracle": mode, "oracle_reward": e_or, "think_ratio": tr, "reward": a["free_reward"],
                                 "acc": a["free_acc"], "matches_oracle": ok}
        for k, v in (("rl_acc", a["free_acc"]), ("think_acc", b["think_acc"]), ("rl_r", a["free_reward"]),
                     ("oracle_r", e_or)):
            tot[k].append(v)
        counts.append(b["n"])
        cells.append([row_name(task, lv), f"{b['think_acc']:.2f}", f"{b['short_acc']:.2f}", mode, f"{e_or:.3f}",
                      f"{b['free_think_ratio']:.2f}", f"{tr:.2f}", f"{b['free_acc']:.2f}", f"{a['free_acc']:.2f}",
                      f"{a['free_reward']:.3f}", "yes" if ok else "NO"])
    if counts:
        mean = {k: mean_over_problems(v, counts) for k, v in tot.items()}
        summary.update({"overall_acc_rl": mean["rl_acc"], "overall_acc_forced_think": mean["think_acc"],
                        "reward_rl": mean["rl_r"], "reward_oracle": mean["oracle_r"],
                        "all_levels_match_oracle": all(v["matches_oracle"] for v in summary["levels"].values())})
        summary["targets"] = {
            "think_ratio_matches_oracle_every_level": summary["all_levels_match_oracle"],
            "reward_within_0.05_of_oracle": abs(mean["rl_r"] - mean["oracle_r"]) <= 0.05,
            "accuracy_within_2_points_of_forced_think": mean["think_acc"] - mean["rl_acc"] <= 0.02,
        }
        cells.append(["all", f"{mean['think_acc']:.2f}", None, None, f"{mean['oracle_r']:.3f}", None, None, None,
                      f"{mean['rl_acc']:.2f}", f"{mean['rl_r']:.3f}",
                      "yes" if summary["all_levels_match_oracle"] else "NO"])
    return markdown_table(head, cells), summary
