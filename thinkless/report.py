"""Mode report: what a checkpoint can do in each mode and what it chooses, per difficulty level.

* forced think / forced short: the control token is prefilled; accuracy and mean response tokens.
* free choice: the model picks its own first token. After paired SFT the choice is ~50/50 and nearly
  prompt-independent, so greedy decoding would pick one mode everywhere: the think ratio is measured by
  *sampling* (``free_samples`` per problem at ``temperature``).
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
        free = SamplingConfig(temperature=free_temperature, top_p=1.0, max_new_tokens=max_new_tokens,
                              n=free_samples, seed=seed + 1)
        outs = generator.generate(prompts, free, progress=progress, desc="free choice")
        for prob, lv, ex, o in zip(problems, levels, exact, outs):
            for c in o:
                mode, _ = split_response(c.text)
                rows[lv]["free_think"].append(mode == "think")
                rows[lv]["free_valid_mode"].append(mode is not None)
                rows[lv]["free_correct"].append(is_correct(c.text, prob["answer"], exact=ex))
                rows[lv]["free_reward"].append(thinkless_reward(c.text, prob["answer"], gamma, exact=ex))

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
    lines.append(f"forced modes: temperature {report['forced_temperature']}; free choice: "
                 f"{report['free_samples']} samples/problem at temperature {report['free_temperature']}; "
                 "tokens = response tokens incl. the control token")
    return "\n".join(lines)


def write_report(report: dict, out_dir: str | Path, name: str = "report") -> Path:
    path = Path(out_dir) / f"{name}.json"
    path.write_text(json.dumps(report, indent=2))
    (Path(out_dir) / f"{name}.md").write_text(format_report(report, name) + "\n")
    return path
