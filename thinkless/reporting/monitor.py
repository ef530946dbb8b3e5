"""Mode-usage monitoring for RL: the statistics, and the per-step JSONL log, console line and PNG curves.

``mode_metrics`` is pure: the trainer (``AdaptiveGRPOTrainer._log_mode_usage``) feeds it the global batch it already
holds (first completion token against the control-token ids, correctness read from the reward, lengths, levels) and logs
the result through TRL's metrics, so it reaches stdout, wandb and ``metrics.jsonl`` like every trainer metric.
In-training validation logs the same keys with TRL's ``eval_`` prefix.

``MetricsLogCallback`` writes every trainer log line to ``<run>/metrics.jsonl``, prints one compact line per logged
step, and (RL) draws the curves once, at the end of training. Main process only.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from pathlib import Path

import torch
from transformers import TrainerCallback

from ..evaluation.metrics import LONG_SHORT_MULTIPLE, long_short_share, mode_usage
from ..tasks.base import SPLITS, split_metrics, split_of

logger = logging.getLogger(__name__)


def mode_metrics(mode: torch.Tensor, correct: torch.Tensor, reward: torch.Tensor, tokens: torch.Tensor,
                 level: torch.Tensor, G: int, long_short_multiple: float = LONG_SHORT_MULTIPLE,
                 problem_class: torch.Tensor | None = None) -> dict[str, float]:
    """Statistics of one generation batch (1-D tensors, groups of ``G`` consecutive rows): ``modes/<key>`` of
    ``evaluation.metrics.mode_usage`` (the one computation, shared with evaluation), per level and per class.

    ``mode``: 1 think, 0 short, -1 no control token. ``correct``: 1/0, NaN where the gold could not be graded (the
    row is left out) or correctness is unknown (a custom reward: accuracy keys are then absent). ``level`` < 0: none.
    ``problem_class``: the problem's class (the graded task's grade), logged as ``modes/think_ratio_C<c>``
    (the letter: ``thinkless.tasks.base.SPLITS``); < 0 or None: none. Per level and class also the accuracy, and each
    mode's (``modes/acc_short_L1``) where it has samples.
    ``modes/long_short_share``: short responses over ``long_short_multiple`` x their group's median short length
    (``evaluation.metrics.long_short_share``: short-mode hacking).
    """
    out: dict[str, float] = {}
    valid = ~torch.isnan(reward)
    groups = torch.arange(reward.numel()) // G
    if valid.sum() == 0:
        return out
    klass = torch.full_like(level, -1.0) if problem_class is None else problem_class
    mode, correct, reward, tokens, level, klass = (t[valid].float() for t in (mode, correct, reward, tokens, level,
                                                                              klass))
    known = not torch.isnan(correct).any()
    out.update({f"modes/{k}": v for k, v in mode_usage(mode, correct if known else None, tokens, reward).items()})
    for tag, key in ((SPLITS["level"].metric_tag, level), (SPLITS["class"].metric_tag, klass)):
        for lv in sorted(set(key.tolist())):
            if lv >= 0:
                m = key == lv
                usage = mode_usage(mode[m], correct[m] if known else None, tokens[m])
                out[f"modes/think_ratio_{tag}{int(lv)}"] = usage["think_ratio"]
                if known:
                    out[f"modes/acc_{tag}{int(lv)}"] = usage["accuracy"]
                    # each mode's sampled accuracy per level: a short mode breaking on the easy level (its answers
                    # pushed down by the wrong short answers of the hard ones) shows here before the routing moves
                    for name in ("think", "short"):
                        if f"acc_{name}" in usage:
                            out[f"modes/acc_{name}_{tag}{int(lv)}"] = usage[f"acc_{name}"]
    # groups of G consecutive rows, numbered before ungradable rows are left out
    share = long_short_share(mode, tokens, groups[valid], long_short_multiple)
    if share is not None:
        out["modes/long_short_share"] = share
    if known and valid.all() and mode.numel() % G == 0:
        gm, gc = mode.view(-1, G), correct.view(-1, G)
        out["modes/groups_all_correct_short"] = ((gm == 0) & (gc == 1)).all(1).float().mean().item()
        out["modes/groups_all_correct_think"] = ((gm == 1) & (gc == 1)).all(1).float().mean().item()
        out["modes/groups_all_wrong"] = (gc == 0).all(1).float().mean().item()
    return out


RL_KEYS = ("modes/think_ratio", "modes/accuracy", "modes/reward", "modes/tokens", "modes/acc_think",
           "modes/acc_short", "modes/len_think", "modes/len_short", "modes/long_short_share", "loss/control", "loss/response", "kl", "entropy",
           "clip_ratio/region_mean", "budget/multiplier", "budget/cost")
SFT_KEYS = ("loss", "mean_token_accuracy", "grad_norm", "learning_rate")


class MetricsLogCallback(TrainerCallback):
    """Every trainer log line to ``<run>/metrics.jsonl``; one compact console line with ``keys``; curves at the end.

    Main process only. After a resume, lines logged past the checkpoint are dropped (those steps are redone, never
    counted twice). Validation lines (TRL's ``eval_`` prefix) are logged and printed the same way.
    """

    def __init__(self, run_dir: str | Path, keys=RL_KEYS, *, title: str = "", plot: bool = False):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.jsonl"
        self.keys, self.title, self.plot = tuple(keys), title, plot

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero or not self.path.exists():
            return
        # the previous attempt's end-of-training summary (``train_runtime``) is logged again at this one's end
        keep = [r for r in read_metrics(self.path)
                if r.get("step", 0) <= state.global_step and "train_runtime" not in r]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in keep))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        rec = {"step": state.global_step,
               **{k: v for k, v in logs.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        prefix = "eval_" if any(k.startswith("eval_") for k in rec) else ""
        parts = [f"{k.split('/')[-1]}={rec[prefix + k]:.3g}" for k in self.keys if prefix + k in rec]
        if not parts:
            return
        split = split_of(k.removeprefix(prefix) for k in rec)  # classes, if the task has them
        per = split_metrics(rec, unit=split.unit, prefix=prefix)
        lv = " ".join(f"{split.metric_tag}{i}={rec[k]:.2f}" for i, k in per.items())
        tag = f"eval @ step {state.global_step}" if prefix else f"step {state.global_step}"
        print(f"[{tag}] " + " ".join(parts) + (f" | think {lv}" if lv else ""), flush=True)

    def on_train_end(self, args, state, control, **kwargs):
        if self.plot and state.is_world_process_zero and self.path.exists():
            plot_curves(self.path, self.run_dir, self.title)


def read_metrics(path: str | Path) -> list[dict]:
    """The log lines of a ``metrics.jsonl``. A torn last line (what a kill mid-write leaves) is dropped with a
    warning naming the file; a bad line elsewhere is an error naming the file and the line."""
    path = Path(path)
    lines = path.read_text(errors="replace").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    out = []
    for i, ln in enumerate(lines, 1):
        if not ln.strip():
            continue
        try:
            rec = json.loads(ln)
        except json.JSONDecodeError as e:
            if i == len(lines):
                logger.warning("%s: its last line is torn (an interrupted write: %s), dropped", path, e.msg)
                break
            raise ValueError(f"{path}:{i}: not a JSON log line ({e.msg} at column {e.colno}); only the last line "
                             "may be torn by an interruption: fix or remove that line") from None
        if not isinstance(rec, dict):
            raise ValueError(f"{path}:{i}: a JSON {type(rec).__name__}, not a log line object")
        out.append(rec)
    return out


def plot_curves(metrics_path: str | Path, out_dir: str | Path, title: str = "") -> list[Path]:
    """mode_usage.png (think ratio, overall and per level or per class; the long-short share), accuracy.png
    (accuracy per mode, reward) and, with ``rl.budget``, budget.png (the multiplier, the batch cost, the target);
    validation points (``eval_*``) are drawn as markers on the same axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = read_metrics(metrics_path)
    if not recs:
        return []
    series = defaultdict(list)
    for r in recs:
        for k, v in r.items():
            if k != "step" and isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
                series[k].append((r["step"], v))
    out = []
    fig, ax = plt.subplots(figsize=(7, 4))
    split = split_of(series)  # classes, if the task has them
    for i, k in split_metrics(series, unit=split.unit).items():
        ax.plot(*zip(*series[k]), label=f"{split.metric_tag}{i}", lw=1)
    if "modes/think_ratio" in series:
        ax.plot(*zip(*series["modes/think_ratio"]), label="all", color="black", lw=2)
    if "eval_modes/think_ratio" in series:
        ax.plot(*zip(*series["eval_modes/think_ratio"]), "o--", label="validation", color="tab:red", ms=4)
    if "modes/long_short_share" in series:  # short-mode hacking: should stay near zero
        ax.plot(*zip(*series["modes/long_short_share"]), ":", label="long short share", color="tab:purple", lw=1.5)
    ax.set(xlabel="step", ylabel="think ratio", ylim=(-0.02, 1.02), title=f"mode usage {title}".strip())
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    out.append(Path(out_dir) / "mode_usage.png")
    fig.savefig(out[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    for k, lab in (("modes/accuracy", "accuracy"), ("modes/acc_think", "acc think"), ("modes/acc_short", "acc short"),
                   ("modes/reward", "mean reward")):
        if k in series:
            ax.plot(*zip(*series[k]), label=lab, lw=1.5)
    if "eval_modes/accuracy" in series:
        ax.plot(*zip(*series["eval_modes/accuracy"]), "o--", label="validation accuracy", color="tab:red", ms=4)
    ax.set(xlabel="step", ylim=(-1.02, 1.02), title=f"accuracy and reward {title}".strip())
    if ax.get_legend_handles_labels()[0]:  # a log without accuracy keys (e.g. custom rewards) draws an empty plot
        ax.legend(fontsize=8)
    fig.tight_layout()
    out.append(Path(out_dir) / "accuracy.png")
    fig.savefig(out[-1], dpi=110)
    plt.close(fig)

    if "budget/multiplier" in series:  # rl.budget: the price and the cost it steers, beside the target
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(*zip(*series["budget/multiplier"]), color="tab:blue", lw=1.5, label="multiplier λ")
        ax.axhline(0, color="gray", lw=0.5)
        ax.set(xlabel="step", ylabel="multiplier λ (reward units)", title=f"budget {title}".strip())
        ax2 = ax.twinx()
        if "budget/probe_seconds" in series and "modes/think_ratio" in series:  # what the probe spared the price
            ax2.plot(*zip(*series["modes/think_ratio"]), color="tab:gray", lw=0.6, alpha=0.6,
                     label="the batch's sampled think ratio")
        ax2.plot(*zip(*series["budget/cost"]), color="tab:orange", lw=1,
                 label="measured cost (probe)" if "budget/probe_seconds" in series else "measured cost (batch)")
        if "budget/target" in series:
            ax2.plot(*zip(*series["budget/target"]), "--", color="black", lw=1, label="target")
        ax2.set_ylabel("cost (think ratio or mean tokens)")
        handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
        ax.legend(handles, [h.get_label() for h in handles], fontsize=8)
        fig.tight_layout()
        out.append(Path(out_dir) / "budget.png")
        fig.savefig(out[-1], dpi=110)
        plt.close(fig)
    return out
