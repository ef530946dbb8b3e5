"""pass@k against brute force, majority vote and confidence selection on fixed samples, self-certainty, summaries."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from thinkless.evaluation.metrics import (Graded, Grader, confidence_select, default_ks, majority_vote, pass_at_k,
                                         summarize)
from thinkless.generation import SamplingConfig, SelfCertaintyProcessor


def brute_pass_at_k(correct: list[bool], k: int) -> float:
    subsets = list(itertools.combinations(range(len(correct)), k))
    return sum(any(correct[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_pass_at_k_matches_enumeration(n):
    for c in range(n + 1):
        correct = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(correct, k), abs=1e-12), (n, c, k)
            assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), abs=1e-12)


def test_pass_at_k_edges():
    assert pass_at_k(16, 0, 8) == 0.0 and pass_at_k(16, 16, 1) == 1.0 and pass_at_k(16, 9, 8) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    for bad in ((4, 5, 1), (4, 1, 0), (4, 1, 5)):
        with pytest.raises(ValueError):
            pass_at_k(*bad)
    assert default_ks(8) == [1, 2, 4, 8] and default_ks(6) == [1, 2, 4, 6] and default_ks(1) == [1]


def test_majority_vote_on_fixed_samples():
    answers = ["3", "\\frac{1}{2}", "0.5", "3", "\\dfrac12", None, "1/2"]
    # by normalized string only, "3" (twice) beats each spelling of one half (once each)
    assert majority_vote(answers) == 0
    # with math-verify equivalence the four spellings of 1/2 form one group of 4 and win
    assert majority_vote(answers, Grader().equivalent) == 1
    assert majority_vote(["7", "8", "8", "7"]) == 0  # tie: the answer seen first
    assert majority_vote(["025", "25", "24"]) == 0  # normalized: AIME leading zeros vote together
    assert majority_vote(["1,234", "1234", "999", "999", "999"]) == 2
    assert majority_vote([None, None]) is None and majority_vote([]) is None


def test_confidence_selection_on_fixed_samples():
    answers = ["1", "2", None, "3", "2"]
    scores = [0.5, 2.0, 9.0, 2.0, 1.0]
    assert confidence_select(answers, scores) == 1  # the unanswered sample is skipped; tie 2.0: earliest
    assert confidence_select(answers, [0.1, 0.2, 0.3, 0.4, 5.0]) == 4
    assert confidence_select([None, None], [1.0, 2.0]) is None
    assert confidence_select(["1", "2"], [None, 0.3]) == 1


def test_self_certainty_processor_is_kl_from_uniform():
    torch.manual_seed(0)
    logits = torch.randn(3, 50) * 3
    proc = SelfCertaintyProcessor()
    out = proc(None, logits.clone())
    assert torch.equal(out, logits)  # pass-through
    p = torch.softmax(logits.double(), -1)
    u = torch.full_like(p, 1 / 50)
    kl = (u * (u.log() - p.log())).sum(-1)
    assert torch.allclose(proc.steps[0].double(), kl, atol=1e-5)
    proc(None, torch.zeros(3, 50))  # uniform: KL = 0
    vals = proc.per_sequence([2, 1, 0])
    assert vals[0] == pytest.approx(float(kl[0] + 0) / 2, abs=1e-5)
    assert vals[1] == pytest.approx(float(kl[1]), abs=1e-5) and vals[2] == pytest.approx(float(kl[2]), abs=1e-5)
    masked = torch.randn(1, 10)
    masked[0, :5] = float("-inf")  # masked entries are left out of the mean
    proc2 = SelfCertaintyProcessor()
    proc2(None, masked)
    q = torch.softmax(masked[0, 5:].double(), -1)
    assert float(proc2.steps[0][0]) == pytest.approx(float((-math.log(5) - q.log().mean())), abs=1e-5)


def test_hf_generator_self_certainty_matches_a_forward_pass(tiny_tokenizer):
    from thinkless.generation import HFGenerator
    from thinkless.synthetic import build_tiny_model

    tok = tiny_tokenizer
    model = build_tiny_model(len(tok), seed=3, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id).eval()
    gen = HFGenerator(model, tok, batch_size=4)
    prompts = ["<|im_start|>user\n1~2<|im_end|>\n<|im_start|>assistant\n", "<|im_start|>user\n3<|im_end|>\n"]
    out = gen.generate(prompts, SamplingConfig(temperature=0.0, max_new_tokens=6, self_certainty=True))
    for p, (c,) in zip(prompts, out):
        assert c.self_certainty is not None and c.num_tokens >= 1
        ids = tok(p, add_special_tokens=False)["input_ids"]
        full = torch.tensor([ids + c.token_ids])
        with torch.no_grad():
            logits = model(full).logits[0, len(ids) - 1: len(ids) - 1 + c.num_tokens].double()
        logp = torch.log_softmax(logits, -1)
        expected = float((-math.log(logits.shape[-1]) - logp.mean(-1)).mean())
        assert c.self_certainty == pytest.approx(expected, rel=1e-3, abs=1e-4)
    plain = gen.generate(prompts[:1], SamplingConfig(temperature=0.0, max_new_tokens=6))
    assert plain[0][0].self_certainty is None and plain[0][0].token_ids == out[0][0].token_ids


def g(correct, answer, mode, tokens, sc=None, finished=True):
    return Graded(correct, answer, mode, tokens, tokens, finished, sc)


def fixed_problems():
    return [
        {"level": 1, "seconds": 1.0, "samples": [g(True, "2", "short", 4, 0.9), g(True, "2", "short", 6, 0.8),
                                                  g(False, "3", "think", 20, 0.1), g(True, "2", "short", 2, 0.5)]},
        {"level": 2, "seconds": 3.0, "samples": [g(False, "5", "think", 30, 0.9), g(False, "5", "think", 10, 0.2),
                                                  g(True, "4", "think", 40, 0.3),
                                                  g(False, None, None, 50, 1.0, finished=False)]},
    ]


def test_summarize_single_sample_method():
    s = summarize(fixed_problems(), parallel=False, grader=Grader(exact=True))
    assert s["n_samples"] == 4 and s["ks"] == [1, 2, 4] and s["k"] == 4
    assert s["pass@1"] == pytest.approx((3 / 4 + 1 / 4) / 2) and s["acc"] == s["pass@1"]
    assert s["pass@k"] == 1.0 and s["maj@k"] == pytest.approx(0.5)  # "2" wins problem 1, "5" (wrong) problem 2
    assert s["pass_at"]["2"] == pytest.approx((pass_at_k(4, 3, 2) + pass_at_k(4, 1, 2)) / 2)
    assert s["think_ratio"] == pytest.approx(4 / 8)
    assert s["tokens"] == pytest.approx(162 / 8)
    assert s["tokens_think"] == pytest.approx((20 + 30 + 10 + 40) / 4)
    assert s["tokens_short"] == pytest.approx(12 / 3)
    assert s["cost_tokens"] == s["latency_tokens"] == pytest.approx(162 / 8)
    assert s["invalid_mode_ratio"] == pytest.approx(1 / 8) and s["truncated_ratio"] == pytest.approx(1 / 8)
    assert s["no_answer_ratio"] == pytest.approx(1 / 8)
    assert s["wall_s"] == 4.0 and s["generated_tokens"] == 162 and s["tokens_per_s"] == pytest.approx(162 / 4)
    assert s["per_level"]["1"]["acc"] == pytest.approx(0.75) and s["per_level"]["2"]["think_ratio"] == 0.75
    # conf@4: problem 1 -> sample 0 ("2", right); problem 2 -> sample 0 (0.9, "5", wrong; the 1.0 has no answer)
    assert s["conf_at"]["4"] == pytest.approx(0.5)


@pytest.mark.parametrize("selection,acc", [("majority", 0.5), ("confidence", 0.5), ("verifier", 1.0)])
def test_summarize_parallel_selection(selection, acc):
    s = summarize(fixed_problems(), parallel=True, selection=selection, grader=Grader(exact=True))
    assert s["acc"] == pytest.approx(acc) and s["selection"] == selection
    assert s["cost_tokens"] == pytest.approx((12 + 20 + 130) / 2)  # sum over the 4 samples, mean over problems
    assert s["latency_tokens"] == pytest.approx((20 + 50) / 2)  # the longest of the parallel samples
