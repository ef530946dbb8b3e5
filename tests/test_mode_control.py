"""Thinking on demand (thinkless/mode_control.py): the template switch and the first-position think bias (HF)."""

import pytest
from transformers import AutoTokenizer

import thinkless
from thinkless.format import render_prompt
from thinkless.generation import HFGenerator, SamplingConfig
from thinkless.synthetic import build_tiny_model
from thinkless.tokens import THINKING_SWITCH, control_token_ids, fix_chat_template

from .conftest import QWEN, R1


@pytest.fixture(params=["r1", "qwen", "tiny"])
def tok(request, tiny_tokenizer):
    if request.param == "tiny":
        return tiny_tokenizer
    t = AutoTokenizer.from_pretrained(R1 if request.param == "r1" else QWEN)
    thinkless.add_control_tokens(t)
    return t


def test_thinking_switch_in_the_chat_template(tok):
    msgs = [{"role": "user", "content": "2+2?"}]
    auto = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    assert tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False, thinking="auto") == auto
    assert render_prompt(tok, "2+2?", thinking="on") == auto + "<think>"
    assert render_prompt(tok, "2+2?", thinking="off") == auto + "<short>"
    with pytest.raises(Exception, match="thinking must be auto, on or off"):
        render_prompt(tok, "2+2?", thinking="maybe")
    # the switch only touches the generation prompt: SFT targets render as before
    full = tok.apply_chat_template(msgs + [{"role": "assistant", "content": "<short>4"}], tokenize=False,
                                   thinking="on")
    assert full.count("<think>") == 0 and "<short>4" in full
    assert fix_chat_template(tok.chat_template) == tok.chat_template  # idempotent: one switch


def test_auto_renders_exactly_the_original_generation_prompt():
    for path in (R1, QWEN):
        raw = AutoTokenizer.from_pretrained(path)
        fixed = AutoTokenizer.from_pretrained(path)
        thinkless.add_control_tokens(fixed)
        a = raw.apply_chat_template([{"role": "user", "content": "q"}], add_generation_prompt=True, tokenize=False)
        b = render_prompt(fixed, "q")
        assert b == a.removesuffix("<think>\n")  # R1's own prefill is the one thing removed
        assert THINKING_SWITCH in fixed.chat_template and THINKING_SWITCH not in (raw.chat_template or "")


def test_saved_tokenizers_keep_the_switch(tmp_path, tiny_tokenizer):
    tiny_tokenizer.save_pretrained(tmp_path)
    t = AutoTokenizer.from_pretrained(tmp_path)
    assert render_prompt(t, "x", thinking="off").endswith("<short>")


def test_think_bias_acts_at_the_first_position_only(tiny_tokenizer):
    tok = tiny_tokenizer
    model = build_tiny_model(len(tok), seed=5, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id).eval()
    gen = HFGenerator(model, tok, batch_size=4)
    ids = control_token_ids(tok)
    prompts = [render_prompt(tok, f"{i} ~ 3") for i in range(4)]
    greedy = SamplingConfig(temperature=0.0, max_new_tokens=8)
    up = gen.generate(prompts, SamplingConfig(**{**greedy.__dict__, "think_bias": 100.0}))
    down = gen.generate(prompts, SamplingConfig(**{**greedy.__dict__, "think_bias": -100.0}))
    assert all(o[0].token_ids[0] == ids.think for o in up)
    assert all(o[0].token_ids[0] != ids.think for o in down)
    # after the mode token the bias is gone: the continuation equals the unbiased one after a prefilled <think>
    forced = gen.generate([p + "<think>" for p in prompts], SamplingConfig(**{**greedy.__dict__, "max_new_tokens": 7}))
    assert [o[0].token_ids[1:] for o in up] == [o[0].token_ids for o in forced]


def test_log_odds_move_by_the_bias(tiny_tokenizer):
    tok = tiny_tokenizer
    model = build_tiny_model(len(tok), seed=5, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id).eval()
    gen = HFGenerator(model, tok, batch_size=4)
    z = gen.mode_log_odds([render_prompt(tok, "1 ~ 2"), render_prompt(tok, "9 ~ 9 ~ 9")])
    assert len(z) == 2 and all(isinstance(v, float) for v in z)
