"""Mode report: what a checkpoint can do in each mode and what it chooses, per difficulty level.

* forced think / forced short: the control token is prefilled; accuracy and mean response tokens.
* free choice: the model picks its own first token. After paired SFT the choice is ~50/50 and nearly
  prompt-independent, so greedy decoding would pick one mode everywhere: the mode token is *sampled*
  (``free_samples`` per problem at ``free_temperature``); the response after it is decoded like the forced
  modes, so free-choice accuracy differs from forced accuracy only through the mode choice.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from .generation import SamplingConfig
from .reward import is_correct, split_response, thinkless_reward
from .tokens import SHORT, THINK, generation_prompt


def mode_report(generator, tokenizer, problems: list[dict], *, max_new_tokens: int, forced_temperature: float = 0.0,
                free_temperature: float = 1.0, free_samples: int = 4, seed: int = 0, gamma: float = 0.5,
                system: str | None = None, progress: bool = True) -> dict:
    """``problems``: dicts with ``problem``, ``answer``, optional ``level`` and ``task``. Returns the report dict."""
    prompts = [generation_prompt(tokenizer, p["problem"], system=system) for p in problems]
    exact = [p.get("task") == "synthetic" for p in problems]
    levels = [p.get("level", "all") for p in problems]
    rows: dict = defaultdict(lambda: defaultdict(list))

    forced = SamplingConfig(temperature=forced_temperature, top_p=1.0, max_new_tokens=max_new_tokens, seed=seed)
    for mode, prefix in (("think", THINK), ("short", SHORT)):
        outs = generator.generate([p + prefix for p in prompts], forced, progress=progress, desc=f"forced {mode}")
        for prob, lv, ex, o in zip(problems, levels, exact, outs):
            c = o[0]
            rows[lv][f"{mode}_correct"].append(is_correct(prefix + c.text, prob["answer"], exact=ex))
            rows[lv][f"{mode}_tokens"].append(c.num_tokens + 1)

    if free_samples > 0:
        # The mode token is *sampled* (the policy's own choice, free_samples per problem); the rest is decoded
        # like the forced columns, so accuracy differences come from the mode choice, not from sampling noise.
        first = SamplingConfig(temperature=free_temperature, top_p=1.0, max_new_tokens=1, n=free_samples,
                               seed=seed + 1)
        heads = generator.generate(prompts, first, progress=progress, desc="free choice: mode")
        flat = [(i, c.text) for i, o in enumerate(heads) for c in o]
        rest = generator.generate([prompts[i] + head for i, head in flat], forced, progress=progress,
                                  desc="free choice: answer")
        for (i, head), o in zip(flat, rest):
            prob, lv, ex = problems[i], levels[i], exact[i]
            text = head + o[0].text
            mode, _ = split_response(text)
            rows[lv]["free_think"].append(mode == "think")
            rows[lv]["free_valid_mode"].append(mode is not None)
            rows[lv]["free_correct"].append(is_correct(text, prob["answer"], exact=ex))
            rows[lv]["free_reward"].append(thinkless_reward(text, prob["answer"], gamma, exact=ex))

    def mean(xs):
        return float(sum(xs) / len(xs)) if xs else None

    per_level = {}
    for lv in sorted(rows, key=lambda x: (isinstance(x, str), x)):
        r = rows[lv]
        per_level[str(lv)] = {
            "n": len(r["think_correct"]),
            "think_acc": mean(r["think_correct"]),
            "think_tokens": mean(r["think_tokens"]),
            "short_acc": mean(r["short_correct"]),
            "short_tokens": mean(r["short_tokens"]),
            "free_think_ratio": mean(r["free_think"]),
            "free_acc": mean(r["free_correct"]),
            "free_reward": mean(r["free_reward"]),
            "free_valid_mode": mean(r["free_valid_mode"]),
        }
    return {"per_level": per_level, "free_samples": free_samples, "free_temperature": free_temperature,
            "forced_temperature": forced_temperature, "max_new_tokens": max_new_tokens}


def format_report(report: dict, title: str = "mode report") -> str:
    cols = [("level", "{}"), ("n", "{}"), ("think_acc", "{:.2f}"), ("think_tokens", "{:.1f}"), ("short_acc", "{:.2f}"),
            ("short_tokens", "{:.1f}"), ("free_think_ratio", "{:.2f}"), ("free_acc", "{:.2f}")]
    head = "| " + " | ".join(c for c, _ in cols) + " |"
    lines = [f"### {title}", "", head, "|" + "---|" * len(cols)]
    for lv, r in report["per_level"].items():
        vals = [lv] + [r.get(c) for c, _ in cols[1:]]
        lines.append("| " + " | ".join("-" if v is None else f.format(v) for v, (_, f) in zip(vals, cols)) + " |")
    lines.append("")
    lines.append(f"forced modes: temperature {report['forced_temperature']}; free choice: the mode token sampled "
                 f"({report['free_samples']} samples/problem, temperature {report['free_temperature']}), the rest "
                 "decoded like the forced modes; tokens = response tokens incl. the control token")
    return "\n".join(lines)


def write_report(report: dict, out_dir: str | Path, name: str = "report") -> Path:
    path = Path(out_dir) / f"{name}.json"
    path.write_text(json.dumps(report, indent=2))
    (Path(out_dir) / f"{name}.md").write_text(format_report(report, name) + "\n")
    return path


def oracle_choice(p_short: float, p_think: float, gamma: float) -> tuple[str, float]:
    """Best fixed mode for a level and its expected reward, with rewards 1 / 1−γ / −1.

    E[short] = 2·p_short − 1 and E[think] = p_think·(2−γ) − 1, so short pays iff p_short > p_think·(2−γ)/2.
    """
    e_short, e_think = 2 * p_short - 1, p_think * (2 - gamma) - 1
    return ("short", e_short) if e_short > e_think else ("think", e_think)


def pipeline_table(before: dict, after: dict, gamma: float) -> tuple[str, dict]:
    """Per level: forced accuracies (after distill), oracle router, free choice after distill and after RL."""
    rows, summary = [], {"levels": {}}
    head = ("| level | forced think acc | forced short acc | oracle mode | oracle E[r] | think ratio distill | "
            "think ratio RL | acc distill | acc RL | E[r] RL | matches oracle |")
    lines = [head, "|" + "---|" * 11]
    tot = {"rl_acc": [], "think_acc": [], "rl_r": [], "oracle_r": []}
    for lv, b in before["per_level"].items():
        a = after["per_level"].get(lv)
        if a is None:
            continue
        mode, e_or = oracle_choice(b["short_acc"], b["think_acc"], gamma)
        tr = a["free_think_ratio"]
        ok = tr <= 0.10 if mode == "short" else tr >= 0.90
        summary["levels"][lv] = {"oracle": mode, "oracle_reward": e_or, "think_ratio": tr, "reward": a["free_reward"],
                                 "acc": a["free_acc"], "matches_oracle": ok}
        for k, v in (("rl_acc", a["free_acc"]), ("think_acc", b["think_acc"]), ("rl_r", a["free_reward"]),
                     ("oracle_r", e_or)):
            tot[k].append(v)
        lines.append(f"| {lv} | {b['think_acc']:.2f} | {b['short_acc']:.2f} | {mode} | {e_or:.3f} | "
                     f"{b['free_think_ratio']:.2f} | {tr:.2f} | {b['free_acc']:.2f} | {a['free_acc']:.2f} | "
                     f"{a['free_reward']:.3f} | {'yes' if ok else 'NO'} |")
    n = len(tot["rl_acc"])
    if n:
        mean = {k: sum(v) / n for k, v in tot.items()}
        summary.update({"overall_acc_rl": mean["rl_acc"], "overall_acc_forced_think": mean["think_acc"],
                        "reward_rl": mean["rl_r"], "reward_oracle": mean["oracle_r"],
                        "all_levels_match_oracle": all(v["matches_oracle"] for v in summary["levels"].values())})
        summary["targets"] = {
            "think_ratio_matches_oracle_every_level": summary["all_levels_match_oracle"],
            "reward_within_0.05_of_oracle": abs(mean["rl_r"] - mean["oracle_r"]) <= 0.05,
            "accuracy_within_2_points_of_forced_think": mean["think_acc"] - mean["rl_acc"] <= 0.02,
        }
        lines.append(f"| all | {mean['think_acc']:.2f} | | | {mean['oracle_r']:.3f} | | | | {mean['rl_acc']:.2f} | "
                     f"{mean['rl_r']:.3f} | {'yes' if summary['all_levels_match_oracle'] else 'NO'} |")
    return "\n".join(lines), summary
