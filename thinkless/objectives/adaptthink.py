"""``objective=adaptthink``: AdaptThink (Zhang et al., arXiv 2505.13417; THU-KEG/AdaptThink at 84cf948).

Their code, formula by formula (no-think is ``<short>`` here, thinking is ``<think>``):

* reward ``acc − ref_acc(prompt) + δ·1[forced no-think]`` (``src/adapt_think_reward_manager.py:186-189``), with
  ``ref_acc`` the mean accuracy of K samples of the *starting* model thinking on that problem, pre-sampled once and
  looked up by problem text (``:38``, ``:118-120``; ``src/postprocess_ref_results.py``: their file format, which
  ``load_ref_results`` reads). The bonus reads the forcing flag, not the text.
* the ``naive`` advantage: the reward itself, no group baseline (``src/adapt_think_core_algos.py:8-15``).
* both halves of each group forced (``src/adapt_think_vllm_rollout.py:255-303``): the first
  ``round(G·nothinking_ratio)`` rows of a group start with no-think, the rest with thinking; the no-think rows are
  cut at ``nothinking_max_tokens`` (forced token included).
* the loss (``adapt_think_core_algos.py:89-105``, on with ``adjust_old_logprobs=True`` as their script sets): the
  old log-probability of the first token replaced by that of the forcing, log(ratio) or log(1−ratio) (with
  ratio the share of the group actually forced, ``round(G·ratio)/G``: theirs where ``G·ratio`` is whole); one
  length-normalised ratio per sequence ``exp(mean_t(log π − log π_old'))`` over all tokens, the forced one
  included; PPO clip; mean over sequences.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..runs.fingerprint import diff, show
from .base import Objective, Rollouts, register
from ..generation import SamplingConfig
from ..grading import Grader, is_exact
from ..tokens import THINK

logger = logging.getLogger(__name__)

OVERALL = "__OVERALL__"


@register
@dataclass
class AdaptThink(Objective):
    name = "adaptthink"
    citation = """@article{zhang2025adaptthink,
  title   = {AdaptThink: Reasoning Models Can Learn When to Think},
  author  = {Zhang, Jiajie and Lin, Nianyi and Hou, Lei and Feng, Ling and Li, Juanzi},
  journal = {arXiv preprint arXiv:2505.13417},
  year    = {2025}
}"""
    loss = "sequence"
    needs_problems = True

    delta: float = 0.05  # nothinking_bonus (run_adapt_think_1.5b_*.sh; the yaml default is 0)
    nothinking_ratio: float = 0.5
    nothinking_max_tokens: int = 4096
    ref_samples: int = 16  # K of presampling_ref_responses.py
    ref_temperature: float = 0.6
    ref_top_p: float = 0.95
    ref_max_tokens: int = 0  # 0: rl.args.max_completion_length (theirs: 16384, the RL response limit)
    ref_results: str = ""  # the cache file; "": <run folder>/../adaptthink_ref.json (set by conf/objective)

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 <= self.nothinking_ratio <= 1.0:
            raise ValueError(f"objective.nothinking_ratio={self.nothinking_ratio}: a share in [0, 1] is expected")
        for k in ("nothinking_max_tokens", "ref_samples"):
            if getattr(self, k) < 1:
                raise ValueError(f"objective.{k}={getattr(self, k)}: a positive integer is expected")
        if not (self.ref_temperature > 0 and 0 < self.ref_top_p <= 1):
            raise ValueError(f"objective.ref_temperature={self.ref_temperature}, objective.ref_top_p="
                             f"{self.ref_top_p}: temperature > 0 and top_p in (0, 1] are expected")
        self.ref_acc: dict[str, float] | None = None

    # ------------------------------------------------------------------ the rollout intervention

    def first_tokens(self, G: int):
        n_short = round(G * self.nothinking_ratio)
        # the forcing's probability is the share actually forced: their G·ratio is whole (16 · 0.5); an odd group
        # (G=3: 2 of 3 short) recorded log(1/2) for a 2/3 : 1/3 mix, so the ratio π/π_old was off by a constant
        share = n_short / G
        lp_short = math.log(share) if share > 0 else -1e9
        lp_think = math.log(1 - share) if share < 1 else -1e9
        return (["short"] * n_short + ["think"] * (G - n_short),
                [lp_short] * n_short + [lp_think] * (G - n_short))

    def max_tokens(self, mode: str) -> int | None:
        return self.nothinking_max_tokens if mode == "short" else None

    # ------------------------------------------------------------------ reward and advantage

    def rewards_for(self, batch: Rollouts) -> torch.Tensor:
        if self.ref_acc is None:
            raise RuntimeError("objective=adaptthink: the reference accuracies are not loaded (prepare() not run)")
        missing = sorted({p.strip() for p in batch.problems} - set(self.ref_acc))
        if missing:  # their reward manager asserts; we say which file lacks which problem
            raise KeyError(f"objective=adaptthink: {len(missing)} problems have no reference accuracy in "
                           f"{self.ref_results} (first: {missing[0][:80]!r})")
        ref = torch.tensor([self.ref_acc[p.strip()] for p in batch.problems], dtype=torch.float32)
        return batch.correct - ref + self.delta * (batch.forced == 0).float()

    def standardises_groups(self, args) -> bool:
        return False  # the reward itself

    def reward_range(self) -> float:
        return 2.0 + abs(self.delta)  # acc − ref_acc ∈ [−1, 1], plus the no-think bonus

    def advantages(self, rewards: torch.Tensor, batch: Rollouts) -> torch.Tensor:
        return rewards.clone()  # their "naive" estimator

    def check_args(self, args) -> None:
        if args.use_vllm and args.vllm_importance_sampling_correction and \
                args.vllm_importance_sampling_mode.startswith("sequence"):
            raise ValueError(f"rl.args.vllm_importance_sampling_mode={args.vllm_importance_sampling_mode!r} with "
                             "objective=adaptthink: the forced first token is corrected per token; use token_truncate "
                             "or token_mask")

    def label(self) -> str:
        return f"AdaptThink (δ={self.delta:g})"

    # ------------------------------------------------------------------ the reference pre-pass

    def prepare(self, ctx) -> None:
        """Load the reference accuracy of every training problem, sampling what the cache lacks (main process)."""
        from accelerate import PartialState

        path = Path(self.ref_results)
        meta = {"model": ctx.model_stamp, "K": self.ref_samples, "temperature": self.ref_temperature,
                "top_p": self.ref_top_p, "max_tokens": self.ref_max_tokens or ctx.max_completion_length}
        problems = {r["problem"].strip(): r for r in ctx.rows}
        with PartialState().main_process_first():
            known = load_ref_results(path, meta) if path.exists() else {}
            todo = [r for p, r in problems.items() if p not in known]
            if todo and PartialState().is_main_process:
                print(f"AdaptThink reference pre-pass: {len(todo)} of {len(problems)} problems x {self.ref_samples} "
                      f"samples of the starting model (cache: {path})", flush=True)
                known.update(sample_ref_accuracy(ctx, todo, self.ref_samples, self.ref_temperature, self.ref_top_p,
                                                 meta["max_tokens"]))
                write_ref_results(path, known, meta)
            elif todo:
                known = load_ref_results(path, meta)
        self.ref_acc = {p: known[p]["metrics"]["avg_acc_thinking"] for p in problems}
        ctx.log(f"AdaptThink reference accuracy: mean {sum(self.ref_acc.values()) / max(1, len(self.ref_acc)):.3f} "
                f"over {len(self.ref_acc)} problems ({path})")


def load_ref_results(path: Path, meta: dict | None = None) -> dict[str, dict]:
    """Their ``ref_results`` JSON (a list of ``{problem, answer, metrics: {avg_acc_thinking, ...}}``, an
    ``__OVERALL__`` record first) keyed by stripped problem text. A cache we wrote records how it was sampled in
    the overall record; one sampled differently is refused (never mixed). Their released files carry no such record
    and are taken as they are."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"objective.ref_results={path}: not a readable ref_results JSON ({e})") from None
    if not isinstance(data, list):
        raise ValueError(f"objective.ref_results={path}: expected a JSON list of records")
    out = {}
    for i, rec in enumerate(data):
        if not isinstance(rec, dict) or "problem" not in rec or \
                not isinstance((rec.get("metrics") or {}).get("avg_acc_thinking"), (int, float)):
            raise ValueError(f"objective.ref_results={path}: record {i} lacks problem / metrics.avg_acc_thinking")
        if rec["problem"] == OVERALL:
            theirs = rec.get("thinkless")
            changes = diff(theirs, meta) if meta is not None and theirs is not None else []
            if changes:
                raise ValueError(f"objective.ref_results={path} was sampled differently (cached -> now):"
                                 f"{show(changes)}\ndelete it or point objective.ref_results at another file")
            continue
        out[str(rec["problem"]).strip()] = rec
    return out


def write_ref_results(path: Path, recs: dict[str, dict], meta: dict) -> None:
    rows = list(recs.values())
    n = max(1, len(rows))
    overall = {"problem": OVERALL, "answer": None, "thinkless": meta, "metrics": {
        k: sum(r["metrics"][k] for r in rows) / n for k in ("avg_acc_thinking", "avg_len_thinking", "avg_clip_ratio")}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([overall, *rows], indent=1))
    tmp.replace(path)  # atomic: a kill never leaves half a cache


def sample_ref_accuracy(ctx, rows: list[dict], K: int, temperature: float, top_p: float,
                        max_tokens: int) -> dict[str, dict]:
    """K thinking samples of the starting model per problem (``presampling_ref_responses.py``: the prompt ends in
    the thinking prefix) graded by the strict grader; their postprocessed record per problem."""
    graders = {ex: Grader("strict", exact=ex) for ex in (False, True)}
    prompts = [ctx.render(r["problem"], prefill=THINK) for r in rows]
    cfg = SamplingConfig(temperature=temperature, top_p=top_p, max_new_tokens=max_tokens, n=K, seed=ctx.seed)
    out = {}
    for r, comps in zip(rows, ctx.generator.generate(prompts, cfg, desc="AdaptThink reference")):
        grader = graders[is_exact(r["task"])]
        acc = [float(grader.grade(THINK + c.text, r["answer"]).correct) for c in comps]
        out[r["problem"].strip()] = {"problem": r["problem"].strip(), "answer": r["answer"], "metrics": {
            "n_responses": len(comps), "avg_acc_thinking": sum(acc) / len(acc),
            "avg_len_thinking": sum(c.num_tokens for c in comps) / len(comps),
            "avg_clip_ratio": sum(not c.finished for c in comps) / len(comps)}}
    return out
