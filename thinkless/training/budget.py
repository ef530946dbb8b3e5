"""Training to a budget (``rl.budget``): a target think ratio or mean response length instead of a hand-tuned γ.

A Lagrange multiplier λ prices each rollout's cost (``think_ratio``: 1 if its first token is ``<think>``;
``tokens``: its length over the target) out of the objective's rewards, ``r − λ·cost``, and after every generation
batch a PI controller (PID with ``derivative`` > 0: a lead against the optimizer's momentum lag) moves λ on the
violation ``ĉ − c*``, the policy's cost ``ĉ`` read on a fixed probe of training prompts (a think ratio's default) or
on the batch. Under ``objective=thinkless`` λ is an adaptive γ. λ is run state:
saved in every checkpoint (``budget.json``) and restored on resume, so a resumed run prices as the uninterrupted one.
How it works, why a proportional term, the ``auto`` gains' derivation and the measurements: docs/budget.md.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass

import torch

from ..runs.checks import check_number
from ..generation import make_generator
from ..objectives import OBJECTIVES, Objective
from ..serving.mode_control import sampled_token_prob

COSTS = ("think_ratio", "tokens")
KEYS = ("think_ratio", "tokens", "at_most", "step_size", "proportional", "derivative", "multiplier_init", "probe")
STATE_FILE = "budget.json"  # in every checkpoint of a run with a budget
AUTO = "auto"
RESPONSE_FLOOR = 2  # the shortest complete response: the control token and EOS
SMOOTHING = 0.75  # the proportional term's average on the batch's reading: the past's weight (about four batches)
STEP_FACTOR = 5.0  # step_size: auto = STEP_FACTOR x R / U (damping 1/√2; docs/budget.md, Gains)
PROBE = 512  # probe: auto for a think ratio (its class-mix error: about 0.016 sd on the graded task at 0.4)


@dataclass
class Budget:
    """The constraint and its multiplier. ``cost``: ``think_ratio`` | ``tokens``; ``target``: the think ratio or
    the mean response tokens; ``step_size``: η (integral gain); ``proportional``: K; ``bound``: the largest |λ|
    (the objective's reward range, or ``standard_range(G)`` when ``in_advantages``); ``in_advantages``: the price is
    charged on the advantages after the objective divides each group by its std (``centred``), not on its rewards
    before (``shape``), where the division would take its size out."""

    cost: str
    target: float
    step_size: float
    bound: float
    at_most: bool = False
    proportional: float = 0.0
    derivative: float = 0.0  # D: gain on the change of ē since the last update (phase lead against the optimizer's lag)
    multiplier: float = 0.0  # λ, what a unit of cost is charged now
    probe: int = 0  # think_ratio: measure the cost as the policy's think probability on this many fixed training
    # prompts (0: the batch's sampled think ratio)
    integral: float | None = None  # λ_I, the dual-ascent part of λ (None: start at the multiplier)
    smoothed_error: float | None = None  # ē, the proportional term's input (None before the first batch)
    smoothing: float = SMOOTHING  # ē's weight on the past: SMOOTHING on the batch's noisy reading, 0 on a probe
    patience: int = 10  # updates at a bound, the cost still on the wrong side, before the target is called unreachable
    saturated_steps: int = 0  # consecutive updates with λ_I at a bound and the cost still off target
    in_advantages: bool = False

    def __post_init__(self):
        if self.integral is None:
            self.integral = self.multiplier

    # ------------------------------------------------------------------ per batch

    def row_costs(self, mode: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """Each rollout's cost in the multiplier's units (relative to the target for ``tokens``)."""
        if self.cost == "think_ratio":
            return (mode == 1).float()
        return length.float() / self.target

    def measure(self, mode: torch.Tensor, length: torch.Tensor, free: torch.Tensor) -> float:
        """The batch's cost in the target's units (a think ratio, or mean tokens) over the freely sampled rows."""
        c = self.row_costs(mode[free], length[free]).mean().item()
        return c if self.cost == "think_ratio" else c * self.target

    def shape(self, rewards: torch.Tensor, mode: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """The rewards minus the price: λ per unit of cost."""
        return rewards - self.multiplier * self.row_costs(mode, length)

    def centred(self, mode: torch.Tensor, length: torch.Tensor, valid: torch.Tensor, G: int) -> torch.Tensor:
        """What ``in_advantages`` takes off each row's advantage: λ times its cost less its group's mean cost (the
        group baseline, as the advantage has one), over the ``valid`` rows (a row without a reward gets none)."""
        c = self.row_costs(mode, length).view(-1, G)
        v = valid.view(-1, G).float()
        mean = (c * v).sum(1, keepdim=True) / v.sum(1, keepdim=True).clamp(min=1)
        return (self.multiplier * (c - mean) * v).flatten()

    def error(self, measured: float) -> float:
        """The constraint's violation in the multiplier's units (> 0: over the target)."""
        return measured - self.target if self.cost == "think_ratio" else measured / self.target - 1.0

    def update(self, measured: float) -> None:
        err = self.error(measured)
        lo = 0.0 if self.at_most else -self.bound
        e = err if self.smoothed_error is None else self.smoothing * self.smoothed_error + (1 - self.smoothing) * err
        change = 0.0 if self.smoothed_error is None else e - self.smoothed_error  # the derivative term's input
        self.smoothed_error = e
        self.integral = min(self.bound, max(lo, self.integral + self.step_size * err))  # clamped: no wind-up
        lam = min(self.bound, max(lo, self.integral + self.proportional * e + self.derivative * change))
        # unreachable is judged on the integral: the proportional term may touch a bound on a large transient
        i = self.integral
        at_bound = (i >= self.bound and err > 0) or (i <= -self.bound and not self.at_most and err < 0)
        self.saturated_steps = self.saturated_steps + 1 if at_bound else 0
        self.multiplier = lam

    def unreachable(self) -> bool:
        """The multiplier's integral has sat at its bound with the cost still on the wrong side for ``patience``
        updates (true once: the warning is not repeated every step)."""
        return self.saturated_steps == self.patience

    # ------------------------------------------------------------------ run state

    def save(self, folder: str) -> None:
        with open(os.path.join(folder, STATE_FILE), "w") as f:
            json.dump({"multiplier": self.multiplier, "integral": self.integral,
                       "smoothed_error": self.smoothed_error,
                       "saturated_steps": self.saturated_steps,
                       "constraint": self.describe()}, f)

    def load(self, folder: str) -> None:
        path = os.path.join(folder, STATE_FILE)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: this run trains to rl.budget ({self.describe()}) but the checkpoint "
                                    "lacks its multiplier; resume from a checkpoint written with the budget, or "
                                    "start the run afresh")
        with open(path) as f:
            d = json.load(f)
        self.multiplier, self.saturated_steps = float(d["multiplier"]), int(d.get("saturated_steps", 0))
        self.integral = float(d.get("integral", self.multiplier))
        e = d.get("smoothed_error")
        self.smoothed_error = None if e is None else float(e)

    def describe(self) -> str:
        return f"{self.cost} {'<=' if self.at_most else '='} {self.target:g}"

    def card(self) -> dict:
        d = asdict(self)
        for k in ("saturated_steps", "patience", "integral", "smoothed_error"):
            d.pop(k)
        d["final_multiplier"] = d.pop("multiplier")
        return d


def probe_rows(n_prompts: int, probe: int, seed: int) -> list[int]:
    """The ``probe`` training prompts (indices of ``n_prompts``) the think ratio is read on: drawn once by the run's
    seed, so a resume draws the same."""
    return torch.randperm(n_prompts, generator=torch.Generator().manual_seed(seed))[:probe].tolist()


def probe_think_ratio(model, tokenizer, prompt_ids: list[list[int]], think_id: int, *, temperature: float = 1.0,
                      top_p: float = 1.0, top_k: int | None = None, min_p: float | None = None, batch_size: int = 64,
                      rank: int = 0, world: int = 1, gather=None) -> float:
    """The policy's expected think ratio on the probe: the mean over its prompts (token ids, tokenized as the
    rollouts' are) of the probability that the rollouts' sampling settings draw ``<think>`` first. A fixed set and
    no sampling, so the price answers the policy and not the batch's prompt mix. Each of ``world`` processes
    forwards the same number of prompts (ZeRO-3 gathers weights collectively), its share (``rank``), and ``gather``
    (the trainer's ``accelerator.gather``) collects the sums: every rank holds the same cost."""
    rows = [rank + world * k for k in range(-(-len(prompt_ids) // world))]
    gen = make_generator("hf", model=model, tokenizer=tokenizer, batch_size=batch_size)  # the policy in memory
    p = sampled_token_prob(gen.first_logits([prompt_ids[i % len(prompt_ids)] for i in rows]), think_id,
                           temperature, top_p, top_k, min_p)
    keep = torch.tensor([float(i < len(prompt_ids)) for i in rows])  # the last round's wrap-around rows count 0
    total = torch.stack([(p * keep).sum(), keep.sum()])
    if gather is not None:
        total = gather(total)
    total = total.view(-1, 2).sum(0)
    return (total[0] / total[1]).item()


def smoothing_for(probe: int) -> float:
    """ē's weight on the past for a cost read on ``probe`` prompts: the batch's reading is noisy, a probe's is not."""
    return 0.0 if probe else SMOOTHING


def measured_on(probe: int) -> str:
    """What the cost is read on (``rl.budget.probe``), as the model card and the bench's results say it."""
    return (f"the policy's think probability on {probe} fixed training prompts" if probe else
            "the generation batch's sampled rollouts")


def priceable() -> list[str]:
    """The registered objectives whose batches ``rl.budget`` can price: those that sample the mode (never force the
    first token; ``Objective.first_tokens``), by name. A forcing one takes only a think ratio read on a probe — the
    error text and the budget bench's ``--probe 0`` read this."""
    return [n for n, cls in OBJECTIVES.items() if cls.first_tokens is Objective.first_tokens]


def standard_range(G: int) -> float:
    """Largest minus smallest advantage a group of ``G`` standardised rewards can give (a lone correct 0/1 row:
    ``(1 − 1/G)/s`` against ``−(1/G)/s``, ``s = 1/√G`` the unbiased std): ``√G`` — the ``R`` of a price charged on
    standardised advantages, as the reward range is of one charged on rewards."""
    return math.sqrt(G)


def make_budget(cfg, *, objective, max_steps: int, max_completion_length: int | None = None,
                steps_per_update: float = 1.0, adam_beta1: float = 0.9, standardised: bool = False,
                num_generations: int = 8) -> Budget | None:
    """The run's budget from ``rl.budget`` (None when neither target is set); every bad value fails naming its key,
    before any work. ``steps_per_update``: optimizer steps per generation batch (one dual update each; TRL's
    ``num_iterations · steps_per_generation / gradient_accumulation_steps``, 1 by default); ``adam_beta1``: the
    optimizer's momentum, whose time ``1 / (1 − β1)`` steps sets ``derivative: auto``; ``standardised``: the
    objective divides each group's rewards by their std (``Objective.standardises_groups``), so the price is charged
    on its advantages, in their units (``standard_range`` of ``num_generations``)."""
    from omegaconf import OmegaConf

    d = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg or {})
    unknown = sorted(set(d) - set(KEYS))
    if unknown:
        raise ValueError(f"rl.budget: unknown keys {['rl.budget.' + k for k in unknown]}; valid keys are "
                         f"{['rl.budget.' + k for k in KEYS]}")
    set_ = [k for k in COSTS if d.get(k) is not None]
    if not set_:
        return None
    if len(set_) > 1:
        raise ValueError(f"rl.budget.think_ratio={d['think_ratio']} and rl.budget.tokens={d['tokens']}: one "
                         "constraint per run; set the other to null")
    cost = set_[0]
    target = d[cost]
    key = f"rl.budget.{cost}"
    check_number(target, key)
    if cost == "think_ratio" and not 0.0 <= target <= 1.0:
        raise ValueError(f"{key}={target}: a think ratio is a share of the rollouts, in [0, 1]")
    if cost == "tokens":
        if target <= 0:
            raise ValueError(f"{key}={target}: a mean response length in tokens must be positive")
        if target < RESPONSE_FLOOR:
            raise ValueError(f"{key}={target}: no policy can meet it — every complete response has at least "
                             f"{RESPONSE_FLOOR} tokens (its mode token and EOS)")
        if max_completion_length and target > max_completion_length and not d.get("at_most"):
            raise ValueError(f"{key}={target}: no policy can meet it — responses stop at rl.args."
                             f"max_completion_length={max_completion_length} tokens")
    at_most = d.get("at_most", False)
    if not isinstance(at_most, bool):
        raise ValueError(f"rl.budget.at_most={at_most!r}: true (at most the target) or false (the target itself)")
    R = standard_range(num_generations) if standardised else objective.reward_range()
    updates = max_steps / steps_per_update if max_steps and max_steps > 0 else 0  # one per generation batch
    step = d.get("step_size", AUTO)
    if step == AUTO or step is None:
        if not updates:
            raise ValueError("rl.budget.step_size=auto is 5 x reward range / the run's dual updates (rl.args."
                             "max_steps / optimizer steps per generation batch), and this run is set in epochs; set "
                             "rl.args.max_steps or a number for rl.budget.step_size")
        step = STEP_FACTOR * R / updates
    elif isinstance(step, bool) or not isinstance(step, (int, float)) or not 0 < step < math.inf:
        raise ValueError(f"rl.budget.step_size={step!r}: a positive number or {AUTO!r} (5 x reward range / the "
                         "run's dual updates)")
    gain = d.get("proportional", AUTO)
    if gain == AUTO or gain is None:
        gain = R
    elif isinstance(gain, bool) or not isinstance(gain, (int, float)) or not 0 <= gain < math.inf:
        raise ValueError(f"rl.budget.proportional={gain!r}: a number >= 0 (0: plain dual ascent) or {AUTO!r} "
                         "(the reward range)")
    deriv = d.get("derivative", 0.0)
    if deriv == AUTO:  # cancels the lag of the optimizer's momentum, 1/(1 − β1) steps (docs/budget.md, Derivative)
        deriv = gain / (1.0 - adam_beta1) / steps_per_update if adam_beta1 < 1 else 0.0
    elif deriv is None or isinstance(deriv, bool) or not isinstance(deriv, (int, float)) or not 0 <= deriv < math.inf:
        raise ValueError(f"rl.budget.derivative={deriv!r}: a number >= 0 (0: off, the default) or {AUTO!r} (the "
                         "proportional gain x the optimizer's momentum time 1 / (1 - adam_beta1), in dual updates)")
    probe = d.get("probe", AUTO)
    if probe == AUTO or probe is None:
        probe = PROBE if cost == "think_ratio" else 0
    elif isinstance(probe, bool) or not isinstance(probe, int) or probe < 0:
        raise ValueError(f"rl.budget.probe={probe!r}: a number of training prompts >= 0 (0: the batch's sampled think "
                         f"ratio) or {AUTO!r} ({PROBE} for a think ratio, 0 for tokens)")
    elif probe and cost == "tokens":
        raise ValueError(f"rl.budget.probe={probe}: a token budget is measured on the batch's rollouts (a response's "
                         "length needs the response); set rl.budget.probe=0 or auto")
    if objective.first_tokens(2) is not None and (cost == "tokens" or not probe):
        # its forced halves hide the policy's own choice from the batch; the probe reads it off the first token's
        # probability, and a price on the forced halves is a moving δ (docs/budget.md, "Mode-forcing objectives")
        what = "rl.budget.tokens" if cost == "tokens" else "rl.budget.probe=0"
        raise ValueError(f"rl.budget with objective={objective.name} ({what}): it forces the mode of every rollout, "
                         "so a batch never shows the policy's own think ratio or length to price; price its think "
                         f"ratio on a probe (rl.budget.think_ratio with rl.budget.probe > 0 or auto: {PROBE}), or use "
                         f"an objective that samples the mode ({', '.join(priceable())})")
    init = check_number(d.get("multiplier_init", 0.0), "rl.budget.multiplier_init")
    if abs(init) > R or (at_most and init < 0):
        units = "standardised advantages' range" if standardised else "objective's reward range"
        raise ValueError(f"rl.budget.multiplier_init={init!r}: a number in [{0 if at_most else -R:g}, {R:g}] (the "
                         f"{units}{', >= 0 under at_most' if at_most else ''})")
    return Budget(cost=cost, target=float(target), step_size=float(step), bound=float(R), at_most=at_most,
                  proportional=float(gain), derivative=float(deriv), multiplier=float(init), probe=int(probe),
                  smoothing=smoothing_for(probe), patience=max(10, int(updates) // 10), in_advantages=standardised)
