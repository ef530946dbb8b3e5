"""Every loss shape the trainer runs, registered by name (``Objective.loss``), and the pure pieces they are made of.

A shape turns one micro-batch (``LossInputs``: the policy's per-token log-probs, the behaviour and reference
log-probs, the advantages, the masks, the trainer's clipping and importance-sampling settings as plain values) into
the loss and the statistics the trainer logs (``LossOutput``). One signature for all, ``shape(inputs, **knobs)``,
the knobs being the objective's own (``Objective.loss_kwargs``): the trainer looks the shape up by name
(``loss_shape``) and calls it, like verl's ``register_policy_loss`` (``verl/trainer/ppo/core_algos.py``).

* ``trl`` — TRL's own loss (``loss_type`` as configured), computed and logged by TRL.
* ``decoupled`` — DeGRPO (Thinkless). Coupled GRPO averages the one control token with the hundreds of response
  tokens of its sequence, so the mode decision gets a weight of 1/|o| that shrinks as responses grow: long (think)
  sequences update their mode token far less than short ones, and mode selection collapses. DeGRPO gives the
  control token (column 0) its own term C, weighted by α, and normalizes the response tokens (columns ≥ 1)
  separately in R:

      loss = α · C + R
      C = mean_i l[i, 0]                                    over rows whose column 0 is valid
      R = mean_i Σ_{t≥1} l m / Σ_{t≥1} m                    response_norm="sequence" (the paper)
      R = Σ_{i,t≥1} l m / Σ_{i,t≥1} m                       response_norm="token" (the official code)

  Rows without response tokens do not count in R.
* ``sequence`` — AdaptThink: one length-normalised importance ratio per sequence over all its tokens, the forced
  first token included, PPO clip, mean over sequences.

``decoupled`` and ``sequence`` aggregate TRL's per-token clipped surrogate (optional ``delta`` two-sided clip,
off-policy mask, entropy mask, vLLM importance-sampling correction) plus β·KL, and the entropy bonus; a forced first
token's behaviour log-prob is the forcing's (``first_token_old_logp``). Why each control-token safeguard:
docs/objectives.md ("The loss shapes").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import torch

RESPONSE_NORMS = ("sequence", "token")
CLIP_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")  # TRL's loss types built on the clipped surrogate
LOSS_SHAPES: dict[str, Callable] = {}  # name -> shape (@register_loss): the one list of loss shapes


@dataclass
class LossInputs:
    """One micro-batch as every loss shape sees it. Tensors are ``[B, T]`` over completion tokens (column 0: the
    control token) unless said otherwise; settings are the trainer's, as plain values.

    ``forward`` runs the policy once, on first use of ``logps`` / ``entropies`` (TRL's own shape never does: it
    forwards itself); ``trl_loss`` is TRL's ``GRPOTrainer._compute_loss`` on the same micro-batch. ``old_logps``:
    the behaviour policy's (None: the policy's own, detached); ``sampling_logps``: the sampler's (vLLM);
    ``is_ratio``: vLLM's importance-sampling weights (``[B, 1]`` or ``[B, T]``; None: no correction);
    ``first_token_old_logp``: ``[B]`` the forcing's log-prob of a forced first token, NaN where sampled;
    ``high_entropy_mask(entropies, mask, q)``: TRL's top-entropy mask (a quantile over all processes).
    Scopes: ``training`` (else evaluation: no accumulation), ``accumulation_steps``, ``steps_per_generation``,
    ``generation_batch_size``, ``num_processes`` and ``num_items_in_batch`` (the generation batch's tokens).
    """

    forward: Callable[[], tuple[torch.Tensor, torch.Tensor]]
    advantages: torch.Tensor  # [B] or [B, T]
    mask: torch.Tensor
    num_items_in_batch: torch.Tensor | float | None = None
    old_logps: torch.Tensor | None = None
    ref_logps: torch.Tensor | None = None
    sampling_logps: torch.Tensor | None = None
    is_ratio: torch.Tensor | None = None
    first_token_old_logp: torch.Tensor | None = None
    trl_loss: Callable[[], torch.Tensor] | None = None
    high_entropy_mask: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor] | None = None
    epsilon_low: float = 0.2
    epsilon_high: float = 0.2
    delta: float | None = None
    beta: float = 0.0
    kl_bias_correction: bool = False  # TRL's use_bias_correction_kl: the KL weighted by the importance ratio
    importance_sampling_level: str = "token"
    off_policy_mask_threshold: float | None = None
    top_entropy_quantile: float = 1.0
    entropy_coef: float = 0.0
    is_clip_min: float | None = None
    is_clip_max: float | None = None
    training: bool = True
    accumulation_steps: int | float = 1
    steps_per_generation: int = 1
    generation_batch_size: int | None = None
    num_processes: int = 1

    @cached_property
    def _policy(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward()

    @property
    def logps(self) -> torch.Tensor:
        return self._policy[0]

    @property
    def entropies(self) -> torch.Tensor:
        return self._policy[1]


@dataclass
class LossOutput:
    """What a shape returns: the loss to backpropagate; ``stats``, metric key -> ``(values, mask)``, each logged as
    its masked mean over all processes; for the trainer's importance-sampling monitor, the behaviour log-probs the
    ratio used (``old_logps``) and the token mask of the loss (``mask``), None where the shape has no such terms."""

    loss: torch.Tensor
    stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    old_logps: torch.Tensor | None = None
    mask: torch.Tensor | None = None


def register_loss(name: str):
    """Function decorator: make the function the loss shape ``name`` (``Objective.loss``)."""
    def add(fn):
        if not name or name in LOSS_SHAPES:
            raise ValueError(f"loss shape name {name!r} is empty or taken")
        LOSS_SHAPES[name] = fn
        return fn
    return add


def loss_shape(name: str) -> Callable[..., LossOutput]:
    """The shape registered as ``name``; an error naming the valid shapes otherwise."""
    if name not in LOSS_SHAPES:
        raise ValueError(f"loss shape {name!r}: valid choices are {sorted(LOSS_SHAPES)}")
    return LOSS_SHAPES[name]


# ---------------------------------------------------------------------------------------------- the shapes


@register_loss("trl")
def trl_loss(inputs: LossInputs) -> LossOutput:
    """TRL's own aggregation (``loss_type``), computed and logged by TRL's ``GRPOTrainer._compute_loss``."""
    if inputs.trl_loss is None:
        raise ValueError("loss shape 'trl' needs LossInputs.trl_loss (TRL's own loss of the micro-batch)")
    return LossOutput(inputs.trl_loss())


@register_loss("decoupled")
def decoupled_loss(inputs: LossInputs, *, alpha: float, response_norm: str) -> LossOutput:
    """DeGRPO: ``alpha · C + R`` of the clipped surrogate (the module doc), in TRL's normalization scopes:
    ``response_norm="sequence"`` like loss_type ``grpo`` (micro-batch means divided by the accumulation steps);
    ``"token"`` like ``dapo`` (shares of the generation batch's global counts), so an update does not depend on how
    a batch is split across devices and accumulation steps."""
    t = _surrogate(inputs, decoupled=True)
    if response_norm == "sequence":
        loss = degrpo_loss(t.per_token_loss, t.mask, alpha, "sequence") / t.accum
    else:
        scale = inputs.num_processes
        if inputs.training:
            scale = scale / (inputs.accumulation_steps / inputs.steps_per_generation)
        n_rows = float(inputs.generation_batch_size if inputs.training else
                       t.per_token_loss.shape[0] * inputs.num_processes)
        n_resp = (inputs.num_items_in_batch - n_rows).clamp(min=1.0)
        loss = degrpo_loss(t.per_token_loss, t.mask, alpha, response_norm,
                           control_denominator=n_rows / scale, response_denominator=n_resp / scale)
    return _finish(inputs, t, loss)


@register_loss("sequence")
def sequence_loss(inputs: LossInputs) -> LossOutput:
    """AdaptThink: a length-normalised sequence ratio over all tokens; the mean over the micro-batch's sequences of
    their token means, divided by the accumulation steps (TRL's ``grpo`` scope)."""
    t = _surrogate(inputs, decoupled=False)
    return _finish(inputs, t, coupled_sequence_loss(t.per_token_loss, t.mask) / t.accum)


@dataclass
class _Terms:
    per_token_loss: torch.Tensor
    mask: torch.Tensor
    effective_mask: torch.Tensor  # the mask times the entropy mask
    coef_1: torch.Tensor
    advantages: torch.Tensor
    old: torch.Tensor
    per_token_kl: torch.Tensor | None
    accum: int | float


def _surrogate(inp: LossInputs, *, decoupled: bool) -> _Terms:
    """TRL's per-token clipped surrogate plus β·KL, with the decoupled shape's control-token safeguards: column 0
    stays in the mask (a truncated row's mode decision keeps its loss), out of the entropy mask's reach, and keeps its
    own token ratio under a sequence-level ratio (TRL's or vLLM's)."""
    mask = inp.mask
    if decoupled:  # every row has a generated first token; truncation masking must not hide it
        mask = mask.clone()
        mask[:, 0] = 1
    logps, entropies = inp.logps, inp.entropies
    advantages = inp.advantages.unsqueeze(1) if inp.advantages.dim() == 1 else inp.advantages
    old = logps.detach() if inp.old_logps is None else inp.old_logps
    forced = inp.first_token_old_logp
    if forced is not None:  # AdaptThink: the forced first token's old log-prob is the forcing's
        old = old.clone()
        rows = ~torch.isnan(forced)
        old[rows, 0] = forced[rows].to(old.dtype)
    log_ratio = logps - old
    if not decoupled:  # one length-normalised ratio per sequence, the first token included (AdaptThink's)
        seq = (log_ratio * mask).sum(-1, keepdim=True) / mask.sum(-1, keepdim=True).clamp(min=1)
        log_ratio = seq.expand_as(log_ratio)
    elif inp.importance_sampling_level == "sequence":
        # column 0 keeps its own token ratio; the response shares the sequence ratio of its tokens
        resp_mask = mask[:, 1:]
        seq = (log_ratio[:, 1:] * resp_mask).sum(-1, keepdim=True) / resp_mask.sum(-1, keepdim=True).clamp(min=1)
        log_ratio = torch.cat([log_ratio[:, :1], seq.expand_as(log_ratio[:, 1:])], dim=1)
    per_token_loss, coef_1 = clipped_surrogate(log_ratio, advantages, inp.epsilon_low, inp.epsilon_high, inp.delta)

    if inp.off_policy_mask_threshold is not None:
        from trl import GRPOTrainer  # TRL's Off-Policy Sequence Mask (a static method)

        sampling = old if inp.sampling_logps is None else inp.sampling_logps
        per_token_loss = per_token_loss * GRPOTrainer.get_off_policy_mask(
            advantages, logps, sampling, mask, inp.off_policy_mask_threshold)
    effective_mask = mask
    if inp.top_entropy_quantile < 1.0:
        entropy_mask = inp.high_entropy_mask(entropies, mask, 1 - inp.top_entropy_quantile)
        entropy_mask[:, 0] = 1
        per_token_loss = per_token_loss * entropy_mask
        effective_mask = mask * entropy_mask
    if inp.is_ratio is not None:
        ratio = inp.is_ratio
        if decoupled and ratio.shape[1] == 1 and inp.sampling_logps is not None:
            col0 = torch.exp(torch.nan_to_num(old[:, :1] - inp.sampling_logps[:, :1]))
            lo, hi = inp.is_clip_min, inp.is_clip_max
            col0 = col0.clamp(min=lo if lo is not None else 0.0, max=hi if hi is not None else math.inf)
            ratio = torch.cat([col0, ratio.expand(-1, per_token_loss.shape[1] - 1)], dim=1)
        per_token_loss = per_token_loss * ratio
    per_token_kl = None
    if inp.beta != 0.0:
        per_token_kl = k3_kl(inp.ref_logps, logps)
        if inp.kl_bias_correction:
            per_token_kl = per_token_kl * coef_1
        per_token_loss = per_token_loss + inp.beta * per_token_kl
    accum = inp.accumulation_steps if inp.training else 1.0
    return _Terms(per_token_loss, mask, effective_mask, coef_1, advantages, old, per_token_kl, accum)


def _finish(inp: LossInputs, t: _Terms, loss: torch.Tensor) -> LossOutput:
    """The entropy bonus and the logged statistics, shared by the surrogate shapes.

    The bonus (``entropy_coef``, the official recipe's 0.001) is ``loss -= coef · H`` with H the mean entropy over
    *all* completion tokens, the control token one among them (weight 1/Σ|o|): the official verl code's
    ``masked_mean(entropy, response_mask)`` and TRL's definition. Deliberately not decoupled: a bonus of weight ~1 on
    the mode token would push the mode decision towards 50/50."""
    if inp.entropy_coef != 0.0:
        entropy = (inp.entropies * t.effective_mask).sum() / t.effective_mask.sum().clamp(min=1.0)
        loss = loss - inp.entropy_coef * entropy / t.accum
    mask, per_token_loss, coef_1, advantages = t.mask, t.per_token_loss.detach(), t.coef_1, t.advantages
    stats = {"loss/control": (per_token_loss[:, :1], mask[:, :1]),
             "loss/response": (per_token_loss[:, 1:], mask[:, 1:])}
    if t.per_token_kl is not None:
        stats["kl"] = (t.per_token_kl, mask)
    stats["entropy"] = (inp.entropies, mask)
    low = (coef_1 < 1 - inp.epsilon_low) & (advantages < 0)
    high = (coef_1 > 1 + inp.epsilon_high) & (advantages > 0)
    stats["clip_ratio/low_mean"] = (low.float(), mask)
    stats["clip_ratio/high_mean"] = (high.float(), mask)
    stats["clip_ratio/region_mean"] = ((low | high).float(), mask)
    return LossOutput(loss, stats, old_logps=t.old, mask=mask)


# ---------------------------------------------------------------------------------------------- the pieces


def degrpo_loss(per_token_loss: torch.Tensor, completion_mask: torch.Tensor, alpha: float,
                response_norm: str = "sequence", *, control_denominator: float | torch.Tensor | None = None,
                response_denominator: float | torch.Tensor | None = None) -> torch.Tensor:
    """``alpha * C + R`` for ``per_token_loss`` and ``completion_mask`` of shape [B, T]; column 0 = control token.

    The optional denominators replace the local counts (valid control tokens; response rows for "sequence",
    response tokens for "token"). Trainers pass global counts so that the loss of a micro-batch is its exact
    share of the loss of the whole batch, independent of how the batch is split over devices and accumulation.
    """
    if response_norm not in RESPONSE_NORMS:
        raise ValueError(f"response_norm={response_norm!r}: valid choices are {RESPONSE_NORMS}")
    if per_token_loss.shape != completion_mask.shape or per_token_loss.dim() != 2:
        raise ValueError(f"per_token_loss {tuple(per_token_loss.shape)} and completion_mask "
                         f"{tuple(completion_mask.shape)} must both be [B, T]")
    mask = completion_mask.to(per_token_loss.dtype)
    ctrl_mask = mask[:, 0]
    ctrl_den = ctrl_mask.sum().clamp(min=1.0) if control_denominator is None else control_denominator
    control = (per_token_loss[:, 0] * ctrl_mask).sum() / ctrl_den

    resp_loss, resp_mask = per_token_loss[:, 1:], mask[:, 1:]
    if response_norm == "sequence":
        tokens = resp_mask.sum(-1)
        has_resp = (tokens > 0).to(per_token_loss.dtype)
        per_row = (resp_loss * resp_mask).sum(-1) / tokens.clamp(min=1.0)
        den = has_resp.sum().clamp(min=1.0) if response_denominator is None else response_denominator
        response = (per_row * has_resp).sum() / den
    else:
        den = resp_mask.sum().clamp(min=1.0) if response_denominator is None else response_denominator
        response = (resp_loss * resp_mask).sum() / den
    return alpha * control + response


def coupled_sequence_loss(per_token_loss: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """Plain GRPO aggregation (mean over rows of per-sequence token means), for comparison and tests."""
    mask = completion_mask.to(per_token_loss.dtype)
    return ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()


def clipped_surrogate(log_ratio: torch.Tensor, advantages: torch.Tensor, eps_low: float, eps_high: float,
                      delta: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO/GRPO per-token clipped surrogate ``-min(r·A, clip(r)·A)`` and the ratio ``r`` (same as TRL's)."""
    coef_1 = torch.exp(log_ratio)
    coef_2 = torch.clamp(coef_1, 1 - eps_low, 1 + eps_high)
    if delta is not None:
        coef_1 = torch.clamp(coef_1, max=delta)
    return -torch.min(coef_1 * advantages, coef_2 * advantages), coef_1


def k3_kl(ref_logps: torch.Tensor, logps: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(π‖π_ref) (TRL's)."""
    d = ref_logps - logps
    return torch.exp(d) - d - 1


def importance_sampling_stats(trainer_logps: torch.Tensor, sampling_logps: torch.Tensor, mask: torch.Tensor,
                              modes: dict[str, torch.Tensor], is_mode: str, clip_min: float | None,
                              clip_max: float | None) -> dict[str, float]:
    """Per mode: samples and tokens, and how many of them TRL's vLLM importance-sampling correction affects.

    Mirrors TRL 1.16: the weight is ``exp(trainer − sampler)`` log-probs per token (``token_*`` modes) or summed
    over the sequence (``sequence_*``); ``*_mask`` zeroes weights outside ``[clip_min, clip_max]``, ``*_truncate``
    clamps them. A sequence weight compounds over the sequence, so with ``sequence_mask`` (TRL's default, cap 3) a
    20k-token think trace is far more likely to be dropped than a 200-token short answer; these counts show it.
    Returns ``{"<mode>/samples", "<mode>/tokens", "<mode>/affected_samples", "<mode>/affected_tokens"}``.
    """
    m = mask.bool()
    diff = torch.nan_to_num((trainer_logps - sampling_logps).float() * m, nan=0.0)
    lo = -math.inf if clip_min is None else clip_min
    hi = math.inf if clip_max is None else clip_max
    if is_mode.startswith("sequence"):
        w = torch.exp(diff.sum(-1))
        affected_rows = (w < lo) | (w > hi)
        affected_tokens = affected_rows.unsqueeze(1) & m
    else:
        w = torch.exp(diff)
        affected_tokens = ((w < lo) | (w > hi)) & m
        affected_rows = affected_tokens.any(-1)
    out = {}
    for name, sel in modes.items():
        sel = sel.bool()
        out[f"{name}/samples"] = float(sel.sum())
        out[f"{name}/tokens"] = float(m[sel].sum())
        out[f"{name}/affected_samples"] = float(affected_rows[sel].sum())
        out[f"{name}/affected_tokens"] = float(affected_tokens[sel].sum())
    return out
