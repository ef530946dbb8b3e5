"""TRL's fused LM head on a CPU: only the labelled positions scored, as on CUDA.

Both trainers score tokens through TRL's fused head (``add_fused_lm_head``, trl/trainer/utils.py:1548): the hidden
states go through the LM head and a chunked log-softmax without materialising the logits. Where Triton runs (CUDA,
XPU) it scores only the positions with a label; elsewhere every position, so that a compiled backend (Neuron) keeps
one tile shape per batch (trl/trainer/utils.py:1640-1642). A CPU runs eager, so nothing recompiles there, while the
chunked log-softmax's torch ops fold every unlabelled position too: a distillation row's prompt (two thirds of it on
the fold task) and the padding. ``score_labelled_positions`` makes the CPU take the labelled-only branch: the same
log-probs and entropies (float rounding aside; 0 at unlabelled positions either way), a distillation step about 0.91
of before on the Zen 3 kind (docs/performance.md, "The fused head on a CPU"). Every other device keeps TRL's choice.
"""

from __future__ import annotations

import trl.trainer.utils as _trl_utils

_TRL_CHOICE = getattr(_trl_utils, "_use_triton", None)  # TRL's rule: labelled positions only where Triton runs


def _labelled_only(device) -> bool:
    return device.type == "cpu" or _TRL_CHOICE(device)


def score_labelled_positions() -> None:
    """From now on (this process), TRL's fused head scores only the labelled positions on a CPU. Idempotent. A TRL
    without the rule this relies on is an error naming it: the pinned TRL has it (tests/training/test_fused_head.py)."""
    if _TRL_CHOICE is None:
        raise RuntimeError("trl.trainer.utils._use_triton is gone: the fused head's labelled-positions rule "
                           "(thinkless/training/fused_head.py) was written for TRL 1.16")
    _trl_utils._use_triton = _labelled_only
