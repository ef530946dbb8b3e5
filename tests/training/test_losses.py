import math

import pytest
import torch

import thinkless
from thinkless.training.losses import coupled_sequence_loss


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


def test_importance_sampling_stats_per_mode_long_vs_short():
    """Sampler-vs-trainer log-prob gaps typical of bf16 vLLM rollouts (i.i.d. per token, std 0.05): TRL's default
    sequence_mask (cap 3) drops a large share of 4k-token think traces and almost no 100-token short answers; the
    recipe's token_truncate (cap 2) drops nothing and clamps (almost) no token, whatever the length."""
    from thinkless.training.losses import importance_sampling_stats

    g = torch.Generator().manual_seed(0)
    n, long_len, short_len = 400, 4000, 100
    T = long_len
    gap = torch.randn(2 * n, T, generator=g) * 0.05
    mask = torch.zeros(2 * n, T)
    mask[:n] = 1.0
    mask[n:, :short_len] = 1.0
    trainer = torch.randn(2 * n, T, generator=g) - 2.0
    sampler = trainer - gap
    modes = {"think": torch.arange(2 * n) < n, "short": torch.arange(2 * n) >= n}
    seq = importance_sampling_stats(trainer, sampler, mask, modes, "sequence_mask", None, 3.0)
    think_dropped = seq["think/affected_samples"] / seq["think/samples"]
    short_dropped = seq["short/affected_samples"] / seq["short/samples"]
    # log w ~ N(0, 0.05^2 * len): P(log w > log 3) is ~31% at 4000 tokens and ~0% at 100 tokens
    assert 0.2 < think_dropped < 0.45 and short_dropped < 0.02
    assert seq["think/tokens"] == n * long_len and seq["think/affected_tokens"] == think_dropped * n * long_len
    tok = importance_sampling_stats(trainer, sampler, mask, modes, "token_truncate", None, 2.0)
    assert tok["think/affected_tokens"] == 0 and tok["short/affected_tokens"] == 0
    assert tok["think/affected_samples"] == 0 == tok["short/affected_samples"]
    # NaN sampler log-probs (vLLM could not score a token) count as no gap, like TRL
    sampler[0, 0] = float("nan")
    assert importance_sampling_stats(trainer, sampler, mask, modes, "token_mask", None, 2.0)["think/tokens"] == n * T


# ---------------------------------------------------------------- the registered loss shapes, by hand

def shape_inputs(forced=None, **kw):
    """Two rows, three completion tokens (row 1 without its last): log π − log π_old = [[0, ln 1.5, ln 0.5],
    [ln 1.1, 0, 0]], advantages [1, −1], ε = 0.2, one process, no accumulation."""
    from thinkless.training.losses import LossInputs

    logps = torch.tensor([[0.0, math.log(1.5), math.log(0.5)], [math.log(1.1), 0.0, 0.0]], requires_grad=True)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    args = {"forward": lambda: (logps, torch.ones(2, 3)), "advantages": torch.tensor([1.0, -1.0]), "mask": mask,
            "old_logps": torch.zeros(2, 3), "num_items_in_batch": mask.sum(), "generation_batch_size": 2,
            "first_token_old_logp": forced}
    return LossInputs(**{**args, **kw})


def test_shape_lookup_names_the_valid_shapes():
    from thinkless.training.losses import LOSS_SHAPES, loss_shape, register_loss

    assert sorted(LOSS_SHAPES) == ["decoupled", "sequence", "trl"]
    with pytest.raises(ValueError, match=r"loss shape 'bogus': valid choices are \['decoupled', 'sequence', 'trl'\]"):
        loss_shape("bogus")
    with pytest.raises(ValueError, match="'decoupled' is empty or taken"):
        register_loss("decoupled")(lambda inputs: None)


def test_decoupled_shape_by_hand():
    """Per-token surrogate −min(r·A, clip(r)·A): row 0 (A = 1) r = [1, 1.5, 0.5] -> [−1, −1.2, −0.5]; row 1 (A = −1)
    r = [1.1, 1, ·] -> [1.1, 1, ·]. C = (−1 + 1.1) / 2 = 0.05. token: R = (−1.2 − 0.5 + 1) / 3 (the generation
    batch's 5 tokens minus its 2 control tokens); sequence: R = mean(−0.85, 1) = 0.075."""
    from thinkless.training.losses import loss_shape

    decoupled = loss_shape("decoupled")
    out = decoupled(shape_inputs(), alpha=0.5, response_norm="token")
    assert out.loss.item() == pytest.approx(0.5 * 0.05 + (-1.2 - 0.5 + 1.0) / 3, abs=1e-6)
    assert decoupled(shape_inputs(), alpha=0.5, response_norm="sequence").loss.item() == \
        pytest.approx(0.5 * 0.05 + 0.075, abs=1e-6)
    # what the trainer logs: the control term's mean, and one token of five clipped high (r = 1.5 > 1.2, A > 0)
    values, mask = out.stats["loss/control"]
    assert ((values * mask).sum() / mask.sum()).item() == pytest.approx(0.05, abs=1e-6)
    values, mask = out.stats["clip_ratio/high_mean"]
    assert (values.expand_as(mask) * mask).sum().item() == 1.0 and mask.sum().item() == 5
    # truncation masking never hides the control token: a row without a valid column 0 still pays its term
    masked = shape_inputs(mask=torch.tensor([[0, 1, 1], [1, 1, 0]]))
    assert decoupled(masked, alpha=0.5, response_norm="sequence").loss.item() == pytest.approx(0.1, abs=1e-6)
    # β·KL (k3, with π_ref = π_old here): log π_ref − log π = −log r per token, k3 = r⁻¹ + log r − 1
    kl = shape_inputs(beta=0.1, ref_logps=torch.zeros(2, 3))
    k3 = [[0.0, 1 / 1.5 + math.log(1.5) - 1, 1 / 0.5 + math.log(0.5) - 1], [1 / 1.1 + math.log(1.1) - 1, 0.0, 0.0]]
    want = 0.5 * (0.05 + 0.1 * (k3[0][0] + k3[1][0]) / 2) + 0.075 + 0.1 * ((k3[0][1] + k3[0][2]) / 2 + k3[1][1]) / 2
    assert decoupled(kl, alpha=0.5, response_norm="sequence").loss.item() == pytest.approx(want, abs=1e-6)


def test_sequence_shape_by_hand():
    """AdaptThink: one ratio per sequence, exp of the mean log-ratio over its tokens: row 0 r = 0.75^(1/3) (inside
    the clip, A = 1: −r); row 1, whose first token was forced with log-prob log 0.5, r = (1.1 / 0.5)^(1/2) = 1.483
    (A = −1: −min(−1.483, −1.2) = 1.483). The loss: the mean over the two sequences."""
    from thinkless.training.losses import loss_shape

    forced = torch.tensor([float("nan"), math.log(0.5)])
    out = loss_shape("sequence")(shape_inputs(forced=forced))
    assert out.loss.item() == pytest.approx((-(0.75 ** (1 / 3)) + 2.2 ** 0.5) / 2, abs=1e-6)
    assert out.old_logps[1, 0].item() == pytest.approx(math.log(0.5)) and out.old_logps[0, 0].item() == 0.0
    # unforced, row 1's ratio is 1.1^(1/2) (inside the clip)
    assert loss_shape("sequence")(shape_inputs()).loss.item() == \
        pytest.approx((-(0.75 ** (1 / 3)) + 1.1 ** 0.5) / 2, abs=1e-6)
    # the entropy bonus: −coef · the mean entropy over all completion tokens (1 here), divided by the accumulation
    bonus = loss_shape("sequence")(shape_inputs(entropy_coef=0.5, accumulation_steps=2))
    assert bonus.loss.item() == pytest.approx(((-(0.75 ** (1 / 3)) + 1.1 ** 0.5) / 2 - 0.5) / 2, abs=1e-6)


def test_trl_shape_is_trls_own_loss_without_a_second_forward():
    from thinkless.training.losses import LossInputs, loss_shape

    def forward():
        raise AssertionError("TRL's shape forwards the policy itself")

    out = loss_shape("trl")(LossInputs(forward=forward, advantages=torch.zeros(2), mask=torch.ones(2, 3),
                                       trl_loss=lambda: torch.tensor(3.0)))
    assert out.loss.item() == 3.0 and out.stats == {} and out.old_logps is None
