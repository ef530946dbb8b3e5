"""Rows of similar length scored together: a padded batch sorted by length and cut into buckets, each bucket only as
wide as its own rows need. The RL trainer's log-probs (``AdaptiveGRPOTrainer._get_per_token_logps_and_entropies``,
``rl.args.length_bucket_rows``) and the distillation's loss (``sft.DistillTrainer``, ``training.args.length_bucket_rows``)
use it: a short answer no longer pays for the longest trace in its batch."""

from __future__ import annotations

import torch


def length_buckets(attention_mask: torch.Tensor, start: int, rows: int) -> list[tuple[torch.Tensor, int, int]]:
    """Rows of ``attention_mask`` in buckets of ``rows`` rows sorted by length: ``(row indices, lo, hi)``, the bucket's
    columns ``lo:hi`` covering each row's attended tokens and columns ``start - 1`` and ``start`` (RL: left-padded
    prompts, completions from ``start``, so no bucket is empty; SFT: right-padded rows, ``start`` 0). Cutting left
    padding moves every later position: the same scores only under rotary positions (``rotary``)."""
    n, width = attention_mask.shape
    cols = torch.arange(width, device=attention_mask.device)
    on = attention_mask.bool()
    # the logit at start - 1 predicts the first completion token: every bucket keeps that column and at least one more
    first = torch.where(on.any(1), torch.where(on, cols, width).amin(1), start).clamp(max=max(start - 1, 0))
    last = torch.where(on, cols + 1, 0).amax(1).clamp(min=start + 1)
    order = torch.sort(last - first, stable=True).indices
    out = []
    for i in range(0, n, rows):
        idx = order[i:i + rows]
        out.append((idx, int(first[idx].min()), int(last[idx].max())))
    return out


# rotary kinds whose angles depend on the relative position only: "dynamic" and "longrope" rescale with the sequence's
# length, so cutting padding would change them
RELATIVE_ROPE = ("default", "linear", "llama3", "yarn")


def rotary(config) -> bool:
    """Whether a model config's positions are rotary and relative only, so that cutting a row's left padding changes
    no score (Qwen2, Llama, ...: ``rope_parameters`` in transformers 5, ``rope_theta``/``rope_scaling`` before)."""
    params = getattr(config, "rope_parameters", None)
    if params is None and getattr(config, "rope_theta", None) is None:
        return False
    params = params if isinstance(params, dict) else (getattr(config, "rope_scaling", None) or {})
    # one set of parameters, or one per layer type (e.g. full and sliding attention)
    sets = list(params.values()) if params and all(isinstance(v, dict) for v in params.values()) else [params]
    return all((p.get("rope_type") or p.get("type") or "default") in RELATIVE_ROPE for p in sets)


def check_rotary(config, key: str, rows: int) -> None:
    """Buckets cut left padding: ``key`` > 0 needs a model whose positions are relative (``rotary``)."""
    if rows and not rotary(config):
        raise ValueError(f"{key}={rows}: scoring in length buckets needs rotary positions, and this "
                         f"{config.model_type!r} model has none (or rescales them with the length); set it to 0")
