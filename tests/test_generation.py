"""Batched sampling (thinkless/generation.py): the HF backend on the tiny model, trimming, self-certainty."""

from __future__ import annotations

import math

import pytest
import torch

from thinkless.generation import (HFGenerator, SamplingConfig, SelfCertaintyProcessor, _trim, backend_of, gpu_visible,
                                  make_generator, resolve_backend, vllm_available)
from thinkless.tasks.synthetic import build_tiny_model


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
    from thinkless.tasks.synthetic import build_tiny_model

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


def test_greedy_is_deterministic_and_eos_trimmed(tiny_tokenizer):
    tok = tiny_tokenizer
    model = build_tiny_model(len(tok), seed=1, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id).eval()
    gen = HFGenerator(model, tok, batch_size=2)
    prompts = [f"<|im_start|>user\n{i}<|im_end|>\n<|im_start|>assistant\n" for i in range(3)]
    cfg = SamplingConfig(temperature=0.0, max_new_tokens=5)
    a, b = gen.generate(prompts, cfg), gen.generate(prompts, cfg)
    assert [c[0].token_ids for c in a] == [c[0].token_ids for c in b]  # batches of 2: padding does not matter
    assert all(c[0].num_tokens <= 5 and tok.eos_token_id not in c[0].token_ids for c in a)
    assert gen.context_length == model.config.max_position_embeddings
    assert tok.padding_side == gen.tokenizer.padding_side  # restored after generating


def test_trim_and_backend_choices(tiny_tokenizer):
    assert _trim([5, 6, 2, 7], [2], 0) == ([5, 6], True)
    assert _trim([5, 6, 0, 0], [2], 0) == ([5, 6], False)
    with pytest.raises(ValueError, match=r"valid choices are \('auto', 'vllm', 'hf'\)"):
        make_generator("tgi", model=None, tokenizer=tiny_tokenizer)
    # the one backend choice (make_generator, eval's load_generator): auto needs vLLM, a GPU and a checkpoint path
    assert resolve_backend("hf", model_path="m") == "hf" and resolve_backend("auto", model_path=None) == "hf"
    assert resolve_backend("auto", model_path="m") == ("vllm" if vllm_available() and gpu_visible() else "hf")
    if vllm_available():
        assert resolve_backend("vllm") == "vllm"  # also vLLM's CPU build


def test_one_backend_choice_for_every_caller(tiny_tokenizer, monkeypatch):
    """resolve_backend is the one place that decides HF or vLLM and says vLLM is missing, for eval's and the
    teachers' generation.backend and for train.py's rl.args.use_vllm; callers ask a generator its backend."""
    from types import SimpleNamespace

    from thinkless import generation
    from thinkless.tasks.synthetic import build_tiny_model
    from thinkless.training.rl import check_vllm

    from .helpers import ScriptedGenerator

    gen = make_generator("hf", model=build_tiny_model(len(tiny_tokenizer)), tokenizer=tiny_tokenizer, batch_size=3)
    assert isinstance(gen, HFGenerator) and backend_of(gen) == "hf" and gen.batch_size == 3
    assert backend_of(ScriptedGenerator(tiny_tokenizer, lambda p, i: "")) is None
    with pytest.raises(ValueError, match=r"^data.backend='tpu': valid choices"):  # the teachers' key, named
        make_generator("tpu", tokenizer=tiny_tokenizer, model_path="m", key="data.backend")
    monkeypatch.setattr(generation, "vllm_available", lambda: False)
    assert resolve_backend("auto", model_path="m") == "hf"
    with pytest.raises(RuntimeError, match=r"^generation.backend=vllm but vLLM is not installed: .*; or use "
                                           r"generation.backend=hf$"):
        resolve_backend("vllm")
    with pytest.raises(RuntimeError, match=r"^rl.args.use_vllm=true but vLLM is not installed: pip install "
                                           r"'thinkless\[vllm\]'.*; or rl.args.use_vllm=false$"):
        check_vllm(SimpleNamespace(vllm_mode="colocate", vllm_enable_sleep_mode=False))
