"""Length buckets (thinkless/training/buckets.py): rows sorted by attended length, each bucket cut to its own padding;
the trainers that use them: tests/training/test_trainer.py (RL) and tests/training/test_sft.py (distillation)."""

import torch
from transformers import GPT2Config, Qwen2Config

from thinkless.training.buckets import length_buckets, rotary


def test_length_buckets_sort_rows_and_cut_each_bucket_to_its_padding():
    """Left-padded prompts (4 columns), completions from column 4: rows sorted by attended length, 2 per bucket,
    each bucket's columns spanning its rows' tokens; a fully masked completion keeps its first (mode) token."""
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 1, 1],   # length 9
                         [0, 0, 1, 1, 1, 0, 0, 0, 0],   # 3
                         [0, 1, 1, 1, 1, 1, 1, 0, 0],   # 6
                         [0, 0, 0, 1, 0, 0, 0, 0, 0]])  # completion fully masked: still column 4 (length 2)
    got = [(idx.tolist(), lo, hi) for idx, lo, hi in length_buckets(mask, 4, 2)]
    assert got == [([3, 1], 2, 5), ([2, 0], 0, 9)]
    assert [(idx.tolist(), lo, hi) for idx, lo, hi in length_buckets(mask, 4, 8)] == [([3, 1, 2, 0], 0, 9)]
    assert [(idx.tolist(), lo, hi) for idx, lo, hi in length_buckets(mask, 4, 1)][0] == ([3], 3, 5)


def test_right_padded_rows_keep_their_positions():
    """SFT's rows are right-padded: every bucket starts at column 0, so no position moves (any position scheme)."""
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    got = [(idx.tolist(), lo, hi) for idx, lo, hi in length_buckets(mask, 0, 2)]
    assert got == [([2, 0], 0, 3), ([1], 0, 5)]


def test_a_bucket_keeps_the_logit_that_predicts_the_first_completion_token():
    """A row attending no prompt token (column start - 1 unattended) still gets it: the log-prob of the completion's
    first token is read there."""
    mask = torch.tensor([[0, 0, 1, 1, 0], [0, 1, 1, 1, 1]])
    assert [(idx.tolist(), lo, hi) for idx, lo, hi in length_buckets(mask, 2, 1)] == [([0], 1, 4), ([1], 1, 5)]


def test_rotary_positions_are_recognised():
    """Relative rotary kinds pass; absolute positions and length-dependent rescaling (dynamic NTK, longrope) do not."""
    assert rotary(Qwen2Config()) and not rotary(GPT2Config())
    assert rotary(Qwen2Config(rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 1e4}))
    assert not rotary(Qwen2Config(rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 1e4}))
