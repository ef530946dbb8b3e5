"""Mode-usage monitoring for RL: every step, to stdout, wandb (through the trainer's logs) and a JSONL file.

``ThinklessRewardFunc`` is the TRL reward function; besides the rewards it records, per generation batch, the
think ratio (overall and per difficulty level), accuracy, reward and length per mode, and the share of groups
whose G samples are all correct-short / all correct-think / all wrong. It gathers across processes first, so
every number is global. ``ModeUsageCallback`` writes each log line to ``metrics.jsonl`` in the run dir, prints
a compact line, and draws the PNG curves at the end.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import torch
from transformers import TrainerCallback

from .reward import REWARD_STATS, split_response, thinkless_reward
from .grading import normalize_gold


class ThinklessRewardFunc:
    """TRL reward function with mode-usage statistics. Set ``.trainer`` after building the trainer."""

    def __init__(self, gamma: float = 0.5, num_generations: int = 8):
        self.gamma, self.num_generations = gamma, num_generations
        self.trainer = None
        self.__name__ = "thinkless_reward"

    def __call__(self, prompts, completions, answer, completion_ids=None, task=None, level=None, **kwargs):
        rewards, stats = [], []
        for i, (text, gold) in enumerate(zip(completions, answer)):
            text = text if isinstance(text, str) else text[-1]["content"]
            if not normalize_gold(gold):
                REWARD_STATS["unparseable_gold"] += 1
                rewards.append(None)
                stats.append([math.nan] * 5)
                continue
            exact = task is not None and task[i] == "synthetic"
            r = thinkless_reward(text, gold, self.gamma, exact=exact)
            mode, _ = split_response(text)
            n_tok = len(completion_ids[i]) if completion_ids is not None else len(text)
            lv = float(level[i]) if level is not None and level[i] is not None else -1.0
            rewards.append(r)
            stats.append([{"think": 1.0, "short": 0.0}.get(mode, -1.0), float(r > -1.0), r, float(n_tok), lv])
        if self.trainer is not None:
            self._record(torch.tensor(stats, dtype=torch.float32))
        return rewards

    def _record(self, local: torch.Tensor) -> None:
        tr = self.trainer
        s = tr.accelerator.gather(local.to(tr.accelerator.device)).cpu()
        mode_key = "train" if tr.model.training else "eval"
        for k, v in mode_metrics(s, self.num_generations).items():
            tr._metrics[mode_key][k].append(v)


def mode_metrics(s: torch.Tensor, G: int) -> dict[str, float]:
    """Metrics from rows [mode(1 think, 0 short, -1 invalid), correct, reward, tokens, level], groups of G."""
    valid = ~torch.isnan(s[:, 0])
    out: dict[str, float] = {}
    if valid.sum() == 0:
        return out
    v = s[valid]
    mode, correct, reward, tokens, level = v.unbind(1)
    think, short = mode == 1, mode == 0
    out["modes/think_ratio"] = think.float().mean().item()
    out["modes/invalid_format"] = (mode == -1).float().mean().item()
    out["modes/accuracy"] = correct.mean().item()
    out["modes/reward"] = reward.mean().item()
    for name, m in (("think", think), ("short", short)):
        if m.any():
            out[f"modes/acc_{name}"] = correct[m].mean().item()
            out[f"modes/len_{name}"] = tokens[m].mean().item()
    for lv in sorted(set(level.tolist())):
        if lv >= 0:
            m = level == lv
            out[f"modes/think_ratio_L{int(lv)}"] = think[m].float().mean().item()
            out[f"modes/acc_L{int(lv)}"] = correct[m].mean().item()
    if s.shape[0] % G == 0:
        g = s.view(-1, G, s.shape[1])
        ok = ~torch.isnan(g[:, :, 0]).any(1)
        if ok.any():
            g = g[ok]
            gm, gc = g[:, :, 0], g[:, :, 1]
            out["modes/groups_all_correct_short"] = ((gm == 0) & (gc == 1)).all(1).float().mean().item()
            out["modes/groups_all_correct_think"] = ((gm == 1) & (gc == 1)).all(1).float().mean().item()
            out["modes/groups_all_wrong"] = (gc == 0).all(1).float().mean().item()
    return out


class ModeUsageCallback(TrainerCallback):
    """Per-step JSONL + stdout line; PNG plots at train end. Main process only."""

    KEYS = ("modes/think_ratio", "modes/accuracy", "modes/reward", "modes/acc_think", "modes/acc_short",
            "modes/len_think", "modes/len_short", "loss/control", "loss/response", "kl", "clip_ratio/region_mean")

    def __init__(self, run_dir: str | Path, print_every: int = 1):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.run_dir = Path(run_dir)
        self.print_every = print_every

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero or not self.path.exists():
            return
        # After a resume, drop lines logged past the checkpoint: those steps are redone, never counted twice.
        keep = [ln for ln in self.path.read_text().splitlines()
                if ln.strip() and json.loads(ln).get("step", 0) <= state.global_step]
        self.path.write_text("".join(ln + "\n" for ln in keep))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "modes/think_ratio" not in logs:
            return
        rec = {"step": state.global_step, **{k: v for k, v in logs.items() if isinstance(v, (int, float))}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        if state.global_step % self.print_every == 0:
            levels = sorted((k for k in rec if k.startswith("modes/think_ratio_L")), key=lambda k: int(k[19:]))
            lv = " ".join(f"{k[18:]}={rec[k]:.2f}" for k in levels)
            parts = [f"{k.split('/')[-1]}={rec[k]:.3g}" for k in self.KEYS if k in rec]
            print(f"[step {state.global_step}] " + " ".join(parts) + (f" | think {lv}" if lv else ""), flush=True)

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.path.exists():
            plot_curves(self.path, self.run_dir)


def read_metrics(path: str | Path) -> list[dict]:
    return [json.loads(ln) for ln in Path(path).read_text().splitlines() if ln.strip()]


def plot_curves(metrics_path: str | Path, out_dir: str | Path, title: str = "") -> list[Path]:
    """mode_usage.png (think ratio, overall and per level) and accuracy.png (accuracy per mode, reward)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = read_metrics(metrics_path)
    if not recs:
        return []
    series = defaultdict(list)
    for r in recs:
        for k, v in r.items():
            if k != "step" and isinstance(v, (int, float)):
                series[k].append((r["step"], v))
    out = []
    fig, ax = plt.subplots(figsize=(7, 4))
    for k in sorted((k for k in series if k.startswith("modes/think_ratio_L")), key=lambda k: int(k[19:])):
        ax.plot(*zip(*series[k]), label=k[18:], lw=1)
    if "modes/think_ratio" in series:
        ax.plot(*zip(*series["modes/think_ratio"]), label="all", color="black", lw=2)
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
    ax.set(xlabel="step", ylim=(-1.02, 1.02), title=f"accuracy and reward {title}".strip())
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.append(Path(out_dir) / "accuracy.png")
    fig.savefig(out[-1], dpi=110)
    plt.close(fig)
    return out
