"""Each distinct prompt of a batch scored once: GRPO asks every prompt G times, and TRL's scoring forward computes the
prompt's tokens again for each of its G completions. With ``rl.args.share_prompts`` the RL trainer's log-probs (the
loss's forward, the old and reference log-probs: ``AdaptiveGRPOTrainer._get_per_token_logps_and_entropies``) come
from two forwards: the prompts less their last token, once per distinct prompt, whose keys and values (the model's
cache) are then indexed out to every row asking it; and each row's last prompt token and completion on that cache,
scored by TRL's fused head. Positions, masks and the scored tokens are TRL's own, so the log-probs are its
one-forward ones (float rounding aside) for any model whose forward takes a cache; the gradient reaches the shared
prompt through the indexing (the sum over its rows, as in the one forward). Generation (HF's, not vLLM's, which
caches prefixes itself) prefills each distinct prompt once the same way (``generate_sharing_prompts``)."""

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


def prompt_cache(model, prompt_ids, prompt_mask, first, inverse, position_ids=None):
    """The keys and values of each distinct prompt (rows ``first``), computed once and indexed out to every row
    (``inverse``: autograd sums each prompt's gradients); None where the model returns no plain cache of every past
    token (a sliding window's or a static one's would not hold the whole prompt)."""
    shared = model(input_ids=prompt_ids[first], attention_mask=prompt_mask[first], use_cache=True, logits_to_keep=1,
                   **({} if position_ids is None else {"position_ids": position_ids[first]}))
    cache = getattr(shared, "past_key_values", None)
    if cache is None or any(type(layer).__name__ != "DynamicLayer" for layer in getattr(cache, "layers", [None])):
        return None
    cache.batch_select_indices(inverse)
    return cache


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
    cache = prompt_cache(model, input_ids[:, :start - 1], attention_mask[:, :start - 1], first, inverse)
    if cache is None:
        return None
    labels = input_ids[:, start:].masked_fill(attention_mask[:, start:] == 0, -100)  # TRL's: unattended is unscored
    out = model(input_ids=input_ids[:, start - 1:-1], attention_mask=attention_mask[:, :-1], past_key_values=cache,
                shift_labels=labels, fused_lm_head=True)
    return out.log_probs, (out.entropy if compute_entropy else None)


def generate_sharing_prompts(model, generate, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs):
    """``generate(input_ids=..., attention_mask=..., **kwargs)`` (HF's, TRL's arguments) with each distinct prompt's
    prefill computed once: the prompts less their last token, at the positions HF's generate gives them (from the
    mask), once per distinct prompt and indexed out to every row asking it, are the cache generate then starts from,
    so its first forward is each row's last prompt token. The same keys and values, so the same samples (float
    rounding aside; the random stream is generate's own, untouched). Plain ``generate`` where that saves nothing or
    cannot hold: every prompt distinct, a one-token prompt, a cache already given or asked of another kind, or a model
    whose forward returns no plain cache."""
    plain = kwargs.get("past_key_values") is not None or input_ids.size(1) < 2 or \
        getattr(kwargs.get("generation_config"), "cache_implementation", None) is not None
    # what is cached is the prompt less its last token: rows that differ only there (a forced first token) share it
    first, inverse = (None, None) if plain else distinct_prompts(input_ids[:, :-1], attention_mask[:, :-1])
    cache = None
    if first is not None and len(first) < len(input_ids):
        positions = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)  # generate's own
        with torch.no_grad():
            cache = prompt_cache(model, input_ids[:, :-1], attention_mask[:, :-1], first, inverse,
                                 position_ids=positions[:, :-1])
    if cache is not None:
        kwargs["past_key_values"] = cache
    return generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)


def check_scoring(length_bucket_rows, share_prompts, key: str = "rl.args") -> None:
    """One way to score a batch: buckets of similar length or shared prompts (each cuts the forward its own way)."""
    if share_prompts and isinstance(length_bucket_rows, int) and length_bucket_rows > 0:
        raise ValueError(f"{key}.share_prompts=true with {key}.length_bucket_rows={length_bucket_rows}: one way "
                         f"to score a batch; set {key}.length_bucket_rows=0 (or {key}.share_prompts=false)")


# ---------------------------------------------------------------------- distillation: a prompt's rows in one batch

def prompt_lengths(labels: torch.Tensor) -> torch.Tensor:
    """Each SFT row's prompt length: the position of its first scored token (labels are -100 on the prompt; a
    batch's rows, as ``PromptGroups.of_rows`` reads a dataset's)."""
    scored = labels != -100
    return torch.where(scored.any(1), scored.int().argmax(1), labels.new_full((len(labels),), labels.size(1)))


def score_sft_shared(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor):
    """TRL's fused SFT forward (``model(input_ids, attention_mask, labels, fused_lm_head=True)`` on right-padded rows
    whose labels are -100 on the prompt: per-token log-probs, entropies, top-1 hits and the label mask, shifted one
    to the left) with each distinct prompt of the batch computed once, as ``score_shared`` does for GRPO: the prompts
    less their last token, left-aligned to their own positions (``position_ids``: no position moves), then every row's
    last prompt token and completion on the indexed cache. The outputs are laid out as TRL's one forward's, so its
    loss and metrics read them unchanged; None where it cannot save work or the layout is not that (a row without a
    scored token, a one-token prompt, a mask that is not a prefix, every prompt distinct, a model without a plain
    cache): the caller then runs TRL's forward."""
    from trl.trainer.utils import FusedCausalLMOutput

    n, L = input_ids.shape
    lengths = attention_mask.sum(1)
    cols = torch.arange(L, device=input_ids.device)
    plen = prompt_lengths(labels)
    if (plen < 2).any() or (plen >= lengths).any() or \
            not torch.equal(attention_mask.bool(), cols[None] < lengths[:, None]):
        return None
    P, C = int(plen.max()), int((lengths - plen).max())
    # prompts right-aligned in P columns (their tokens keep their positions), completions left-aligned in C
    src = torch.arange(P, device=cols.device)[None] - (P - plen)[:, None]
    pmask = src >= 0
    pids = torch.gather(input_ids, 1, src.clamp(min=0)).masked_fill(~pmask, 0)
    first, inverse = distinct_prompts(pids, pmask.long())
    if len(first) == n:
        return None
    cache = prompt_cache(model, pids[:, :P - 1], pmask[:, :P - 1].long(), first, inverse,
                         position_ids=src[:, :P - 1].clamp(min=0))
    if cache is None:
        return None
    # the completion pass reads the last prompt token and the completion but its last token (whose logit predicts
    # nothing); its labels are the completion's own (-100 past each row's end)
    csrc = (plen - 1)[:, None] + torch.arange(C + 1, device=cols.device)[None]
    cmask = csrc < lengths[:, None]
    cids = torch.gather(input_ids, 1, csrc.clamp(max=L - 1)).masked_fill(~cmask, 0)
    clabels = torch.gather(labels, 1, csrc[:, 1:].clamp(max=L - 1)).masked_fill(~cmask[:, 1:], -100)
    out = model(input_ids=cids[:, :C], attention_mask=torch.cat([pmask[:, :P - 1], cmask[:, :C]], 1).long(),
                position_ids=csrc[:, :C], past_key_values=cache, shift_labels=clabels, fused_lm_head=True)
    # back to TRL's layout: column t scores the token at t + 1 (completion token j of row i: column plen_i - 1 + j);
    # a row's columns past its end receive zeros, where TRL's masked ones are zero too
    where = csrc[:, :C]

    def laid_out(x):
        if x is None:
            return None
        full = x.new_zeros(n, L - 1 + C)
        return full.scatter(1, where, x)[:, :L - 1]

    log_probs, label_mask = laid_out(out.log_probs), labels[:, 1:] != -100
    return FusedCausalLMOutput(loss=-log_probs.sum() / label_mask.sum().clamp(min=1), log_probs=log_probs, entropy=laid_out(out.entropy),
                               log_sum_sq_probs=laid_out(out.log_sum_sq_probs), mean_logits=laid_out(out.mean_logits),
                               is_top1=laid_out(out.is_top1), label_mask=label_mask, aux_loss=None)


class PromptGroups(torch.utils.data.Sampler):
    """The distillation's sampler with ``training.args.share_prompts``: each run of consecutive rows that ask one
    prompt (a paired problem's think and short answers, as ``tasks.data.sft_table`` writes them) stays together, the
    runs in a random order each epoch (seeded by ``seed`` and the epoch: a resumed run sees the order it would have),
    so a batch holds whole pairs and ``score_sft_shared`` computes each prompt once. Runs, not every row of a prompt:
    a prompt that several problems share (the fold task's level 1 has 100) would otherwise fill batches alone.
    ``keys``: each row's prompt (any comparable value)."""

    def __init__(self, keys, seed: int):
        self.groups, self.seed, self.epoch, self.n = [], int(seed), 0, len(keys)
        last = object()
        for i, k in enumerate(keys):
            if k == last:
                self.groups[-1].append(i)
            else:
                self.groups.append([i])
            last = k

    @classmethod
    def of_rows(cls, input_ids, labels, seed: int) -> "PromptGroups":
        """Grouped by each row's prompt: its ids before its first scored label (a dataset's ragged columns)."""
        return cls([tuple(ids[:next((i for i, t in enumerate(lab) if t != -100), len(lab))])
                    for ids, lab in zip(input_ids, labels)], seed)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        for j in torch.randperm(len(self.groups), generator=g).tolist():
            yield from self.groups[j]
