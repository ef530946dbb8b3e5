"""thinkless/training/fused_head.py: on a CPU TRL's fused head scores only the labelled positions — the same
log-probs, entropies and gradient as its every-position branch, from fewer rows — and both trainers turn it on."""

import pytest
import torch
from trl.kernels import ChunkedLogProbFunction
from trl.trainer import utils as trl_utils
from trl.trainer.utils import add_fused_lm_head

from tests.training.test_trainer import make_trainer, tiny  # noqa: F401  (its tiny policy)
from thinkless.training import fused_head


@pytest.fixture
def scored_rows(monkeypatch):
    """The number of positions each call of TRL's chunked log-softmax scores."""
    rows = []
    real = ChunkedLogProbFunction.apply

    def spy(hidden, *a):
        rows.append(hidden.shape[0])
        return real(hidden, *a)

    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", spy)
    return rows


def scored(model, batch, decide, monkeypatch):
    """log-probs, entropies and the loss's weight gradient with TRL's branch chosen by ``decide``."""
    monkeypatch.setattr(trl_utils, "_use_triton", decide)
    model.zero_grad()
    out = model(**batch, fused_lm_head=True)
    (-out.log_probs.sum()).backward()
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    return out.log_probs.detach(), out.entropy.detach(), grads


def test_cpu_scores_labelled_positions_only_with_the_same_numbers(tiny, scored_rows, monkeypatch):  # noqa: F811
    model, tok, _ = tiny
    import copy

    model = copy.deepcopy(model).train()
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, len(tok), (4, 10), generator=g)
    mask = torch.ones_like(ids)
    mask[2, 7:] = 0  # a right-padded row
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :6] = -100  # the prompt: no label
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    n_labelled = int((labels[:, 1:] != -100).sum())  # the head scores positions 0..T-2 against the next token

    every = scored(model, batch, fused_head._TRL_CHOICE, monkeypatch)
    assert scored_rows == [4 * 9]  # TRL's CPU branch: every position
    fused_head.score_labelled_positions()
    labelled = scored(model, batch, trl_utils._use_triton, monkeypatch)
    assert scored_rows[1:] == [n_labelled] and n_labelled < 4 * 9
    lp0, ent0, gr0 = every
    lp1, ent1, gr1 = labelled
    valid = labels[:, 1:] != -100
    assert torch.allclose(lp0, lp1, atol=1e-6) and (lp1[~valid] == 0).all()
    assert torch.allclose(ent0[valid], ent1[valid], atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(gr0, gr1)) and len(gr0) == len(gr1)


def test_other_devices_keep_trls_choice():
    fused_head.score_labelled_positions()
    assert trl_utils._use_triton(torch.device("cpu")) is True
    assert trl_utils._use_triton(torch.device("meta")) is fused_head._TRL_CHOICE(torch.device("meta")) is False


def test_both_trainers_turn_it_on(tiny, tmp_path, monkeypatch):  # noqa: F811
    from thinkless.training.sft import DistillTrainer

    monkeypatch.setattr(trl_utils, "_use_triton", fused_head._TRL_CHOICE)
    make_trainer(tiny, tmp_path)
    assert trl_utils._use_triton is fused_head._labelled_only
    monkeypatch.setattr(trl_utils, "_use_triton", fused_head._TRL_CHOICE)
    try:
        DistillTrainer(model=None)
    except Exception:  # noqa: BLE001 - only the switch, made before TRL's own checks, is under test
        pass
    assert trl_utils._use_triton is fused_head._labelled_only


def test_a_trl_without_the_rule_is_an_error(monkeypatch):
    monkeypatch.setattr(fused_head, "_TRL_CHOICE", None)
    with pytest.raises(RuntimeError, match="_use_triton is gone"):
        fused_head.score_labelled_positions()
