"""DeGRPO: the decoupled policy loss (pure, differentiable).

Coupled GRPO averages the one control token with the hundreds of response tokens of its sequence, so the
mode decision gets a weight of 1/|o| that shrinks as responses grow: long (think) sequences update their mode
token far less than short ones, and mode selection collapses. DeGRPO gives the control token (column 0) its own
term C, weighted by α, and normalizes the response tokens (columns ≥ 1) separately in R:

    loss = α · C + R
    C = mean_i l[i, 0]                                    over rows whose column 0 is valid
    R = mean_i Σ_{t≥1} l m / Σ_{t≥1} m                    response_norm="sequence" (the paper)
    R = Σ_{i,t≥1} l m / Σ_{i,t≥1} m                       response_norm="token" (the official code)

Rows without response tokens do not count in R.
"""

from __future__ import annotations

import math

import torch

RESPONSE_NORMS = ("sequence", "token")


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
