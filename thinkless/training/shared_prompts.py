"""Each distinct prompt of a batch scored once: GRPO asks every prompt G times, and TRL's scoring forward computes the
prompt's tokens again for each of its G completions. With ``rl.args.share_prompts`` the RL trainer's log-probs (the
loss's forward, the old and reference log-probs: ``AdaptiveGRPOTrainer._get_per_token_logps_and_entropies``) come
from two forwards: the prompts less their last token, once per distinct prompt, whose keys and values (the model's
cache) are then indexed out to every row asking it; and each row's last prompt token and completion on that cache,
scored by TRL's fused head. Positions, masks and the scored tokens are TRL's own, so the log-probs are its
one-forward ones (float rounding aside) for any model whose forward takes a cache; the gradient reaches the shared
prompt through the indexing (the sum over its rows, as in the one forward)."""

from __future__ import annotations

import torch


def distinct_prompts(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(first, inverse)``: the index of one row per distinct prompt (ids and mask alike; its first row) and, for
    every row, the position of its prompt in ``first``."""
    key = torch.cat([prompt_ids, prompt_mask.to(prompt_ids.dtype)], 1)
    _, inverse = torch.unique(key, dim=0, return_inverse=True)
    rows = torch.arange(len(key), device=key.device)
    first = torch.full((int(inverse.max()) + 1,), len(key), dtype=rows.dtype, device=key.device)
    first = first.scatter_reduce(0, inverse, rows, reduce="amin")
    return first, inverse


def caches_every_token(config) -> bool:
    """Whether the model's cache keeps every past token of every layer (``config.layer_types`` all full attention, or
    none declared): a shared prompt's cache must hold the whole prompt. A sliding window's, a chunked or a linear
    attention's layer keeps less; such a model is scored by TRL's one forward, decided once before any prompt pass."""
    return all(t == "full_attention" for t in (getattr(config, "layer_types", None) or []))


def score_shared(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, logits_to_keep: int,
                 compute_entropy: bool = False):
    """The completions' log-probs (and entropies) of rows ``input_ids`` (left-padded prompts, completions in the last
    ``logits_to_keep`` columns) with each distinct prompt computed once; None where that cannot save work or the
    model returns no cache (the caller then runs TRL's one forward): every prompt distinct, or a one-token prompt."""
    start = input_ids.size(1) - logits_to_keep
    if start < 2:
        return None
    first, inverse = distinct_prompts(input_ids[:, :start], attention_mask[:, :start])
    if len(first) == len(input_ids):
        return None
    # the prompt less its last token: the last one is scored with the completion (its logit predicts column 0)
    shared = model(input_ids=input_ids[first, :start - 1], attention_mask=attention_mask[first, :start - 1],
                   use_cache=True, logits_to_keep=1)
    cache = getattr(shared, "past_key_values", None)
    # a plain cache of every past token only: a sliding window's or a static one's would not hold the whole prompt
    if cache is None or any(type(layer).__name__ != "DynamicLayer" for layer in getattr(cache, "layers", [None])):
        return None
    cache.batch_select_indices(inverse)  # every row's prompt, indexed (autograd sums each prompt's gradients)
    labels = input_ids[:, start:].masked_fill(attention_mask[:, start:] == 0, -100)  # TRL's: unattended is unscored
    out = model(input_ids=input_ids[:, start - 1:-1], attention_mask=attention_mask[:, :-1], past_key_values=cache,
                shift_labels=labels, fused_lm_head=True)
    return out.log_probs, (out.entropy if compute_entropy else None)


def check_scoring(length_bucket_rows, share_prompts) -> None:
    """One way to score a batch: buckets of similar length or shared prompts (each cuts the forward its own way)."""
    if share_prompts and isinstance(length_bucket_rows, int) and length_bucket_rows > 0:
        raise ValueError(f"rl.args.share_prompts=true with rl.args.length_bucket_rows={length_bucket_rows}: one way "
                         "to score a batch; set rl.args.length_bucket_rows=0 (or rl.args.share_prompts=false)")
