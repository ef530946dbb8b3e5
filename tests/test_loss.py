import pytest
import torch

import thinkless
from thinkless.loss import coupled_sequence_loss


def reference(l, m, alpha, norm):
    """Literal transcription of the issue's formula."""
    B, T = l.shape
    valid = [i for i in range(B) if m[i, 0] > 0]
    C = sum(l[i, 0] for i in valid) / len(valid)
    rows = [i for i in range(B) if m[i, 1:].sum() > 0]
    if norm == "sequence":
        R = sum(sum(l[i, t] * m[i, t] for t in range(1, T)) / m[i, 1:].sum() for i in rows) / len(rows)
    else:
        R = sum(l[i, t] * m[i, t] for i in rows for t in range(1, T)) / sum(m[i, 1:].sum() for i in rows)
    return alpha * C + R


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    l = torch.randn(5, 7, generator=g, dtype=torch.float64)
    m = torch.ones(5, 7, dtype=torch.float64)
    m[0, 4:] = 0   # short response
    m[1, 1:] = 0   # control token only: no response tokens
    m[2, 0] = 0    # invalid control column
    m[3, 2:] = 0
    return l, m


@pytest.mark.parametrize("norm", ["sequence", "token"])
@pytest.mark.parametrize("alpha", [1e-3, 0.5, 1.0])
def test_matches_formula(batch, norm, alpha):
    l, m = batch
    got = thinkless.degrpo_loss(l, m, alpha, norm)
    assert torch.allclose(got, reference(l, m, alpha, norm))


@pytest.mark.parametrize("norm", ["sequence", "token"])
def test_gradient(batch, norm):
    l, m = batch
    l = l.clone().requires_grad_(True)
    alpha = 0.25
    thinkless.degrpo_loss(l, m, alpha, norm).backward()
    g = l.grad
    # control column: alpha / #valid rows on valid rows, 0 elsewhere
    n_ctrl = int(m[:, 0].sum())
    assert torch.allclose(g[:, 0], alpha * m[:, 0] / n_ctrl)
    # nothing flows through masked response positions
    assert torch.all(g[:, 1:][m[:, 1:] == 0] == 0)
    if norm == "sequence":
        rows = (m[:, 1:].sum(1) > 0).sum()
        for i in range(l.shape[0]):
            k = m[i, 1:].sum()
            if k > 0:
                assert torch.allclose(g[i, 1:][m[i, 1:] > 0], torch.full((int(k),), 1 / (rows * k), dtype=g.dtype))
    else:
        tokens = m[:, 1:].sum()
        assert torch.allclose(g[:, 1:][m[:, 1:] > 0], torch.full_like(g[:, 1:][m[:, 1:] > 0], 1 / tokens))
    # numerical gradient agrees
    assert torch.autograd.gradcheck(lambda x: thinkless.degrpo_loss(x, m, alpha, norm), (l.detach().requires_grad_(),))


def test_control_token_weight_is_length_independent():
    """The point of DeGRPO: the mode token's gradient does not shrink with response length (coupled GRPO's does)."""
    grads = {}
    for T in (5, 50, 500):
        l = torch.zeros(2, T, requires_grad=True)
        m = torch.ones(2, T)
        thinkless.degrpo_loss(l, m, 1.0).backward()
        grads[("de", T)] = l.grad[0, 0].item()
        l2 = torch.zeros(2, T, requires_grad=True)
        coupled_sequence_loss(l2, m).backward()
        grads[("co", T)] = l2.grad[0, 0].item()
    assert grads[("de", 5)] == grads[("de", 500)] == 0.5
    assert grads[("co", 500)] == pytest.approx(grads[("co", 5)] / 100)


def test_denominator_overrides_and_validation(batch):
    l, m = batch
    base = thinkless.degrpo_loss(l, m, 1.0, "token")
    ctrl = (l[:, 0] * m[:, 0]).sum()
    resp = (l[:, 1:] * m[:, 1:]).sum()
    got = thinkless.degrpo_loss(l, m, 1.0, "token", control_denominator=10.0, response_denominator=100.0)
    assert torch.allclose(got, ctrl / 10 + resp / 100)
    assert not torch.allclose(got, base)
    with pytest.raises(ValueError, match="response_norm"):
        thinkless.degrpo_loss(l, m, 1.0, "bogus")
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        thinkless.degrpo_loss(l[0], m[0], 1.0)


def test_empty_batch_is_finite():
    l = torch.randn(3, 4, requires_grad=True)
    out = thinkless.degrpo_loss(l, torch.zeros(3, 4), 1.0)
    assert out.item() == 0.0
    out.backward()
    assert torch.isfinite(l.grad).all()
