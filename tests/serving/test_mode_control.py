"""Thinking on demand (thinkless/serving/mode_control.py): the template switch and the first-position think bias (HF)."""

import pytest
import torch
from transformers import AutoTokenizer

import thinkless
from thinkless.format import render_prompt
from thinkless.generation import HFGenerator, SamplingConfig
from thinkless.tasks.synthetic import build_tiny_model
from thinkless.tokens import THINKING_SWITCH, control_token_ids, fix_chat_template

from ..conftest import QWEN, R1


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


def _recording(model):
    """``model.generate`` that also records the processed scores of every step (what the logits processors made)."""
    original, seen = model.generate, []

    def generate(**kw):
        out = original(**kw, output_scores=True, return_dict_in_generate=True)
        seen.append((out.sequences, torch.stack(out.scores, dim=1)))
        return out.sequences

    model.generate = generate
    return seen


def test_think_bias_acts_at_the_first_position_only(tiny_tokenizer):
    """Through HFGenerator: the scores it decodes from equal the model's logits plus ``b`` on <think> at the first
    generated position, and the model's logits unchanged at every later position."""
    tok = tiny_tokenizer
    model = build_tiny_model(len(tok), seed=5, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id).eval()
    gen = HFGenerator(model, tok, batch_size=1)  # one prompt per batch: no padding in the forward check below
    ids = control_token_ids(tok)
    prompts = [render_prompt(tok, f"{i} ~ 3") for i in range(3)]
    seen = _recording(model)
    b = 2.5
    gen.generate(prompts, SamplingConfig(temperature=0.0, max_new_tokens=6, think_bias=b))
    assert len(seen) == len(prompts)
    for seq, scores in seen:
        n_new = scores.shape[1]
        with torch.no_grad():
            logits = model(input_ids=seq[:, :-1]).logits[0, -n_new:]  # the model's own logits at each new position
        want = logits.clone()
        want[0, ids.think] += b
        assert n_new > 1 and torch.allclose(scores[0], want, atol=1e-4)  # +b at position 0 only
    # and a bias of +-100 decides the mode
    up = gen.generate(prompts, SamplingConfig(temperature=0.0, max_new_tokens=2, think_bias=100.0))
    down = gen.generate(prompts, SamplingConfig(temperature=0.0, max_new_tokens=2, think_bias=-100.0))
    assert all(o[0].token_ids[0] == ids.think for o in up) and all(o[0].token_ids[0] != ids.think for o in down)
    # a bias beyond float32's reach (1e39 is inf in the scores) is refused, as by the server (issue 38, case 6)
    with pytest.raises(ValueError, match=r"think_bias must be within \[-10000, 10000\], got 1e\+39"):
        gen.generate(prompts, SamplingConfig(temperature=0.0, max_new_tokens=2, think_bias=1e39))


def test_log_odds_move_by_the_bias(tiny_tokenizer):
    """log p(<think>) - log p(<short>) at the first position moves by exactly ``b`` under the bias (what the think
    threshold and the calibration rely on), and the decoded mode follows the sign of ``z + b``."""
    tok = tiny_tokenizer
    model = build_tiny_model(len(tok), seed=5, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id).eval()
    gen = HFGenerator(model, tok, batch_size=4)
    ids = control_token_ids(tok)
    prompts = [render_prompt(tok, "1 ~ 2"), render_prompt(tok, "9 ~ 9 ~ 9")]
    z = gen.mode_log_odds(prompts)
    seen = _recording(model)
    for b in (-3.0, 1.5, 6.0):
        gen.generate(prompts, SamplingConfig(temperature=0.0, max_new_tokens=1, think_bias=b))
        first = torch.log_softmax(seen[-1][1][:, 0].float(), dim=-1)
        moved = (first[:, ids.think] - first[:, ids.short]).tolist()
        assert moved == pytest.approx([v + b for v in z], abs=1e-4)


def test_bias_for_think_ratio_by_hand():
    """The bias that moves a policy to a think ratio in expectation: mean σ((z + b)/T) = ratio."""
    import math

    from thinkless.serving.mode_control import bias_for_think_ratio

    assert bias_for_think_ratio([0.0], 1 / (1 + math.exp(-1.0))) == pytest.approx(1.0, abs=1e-9)
    assert bias_for_think_ratio([-2.0, 2.0], 0.5) == pytest.approx(0.0, abs=1e-9)  # symmetric: no bias
    assert bias_for_think_ratio([3.0, 3.0, 3.0], 0.5) == pytest.approx(-3.0, abs=1e-9)
    assert bias_for_think_ratio([0.0], 1 / (1 + math.exp(-0.5)), temperature=2.0) == pytest.approx(1.0, abs=1e-9)
    assert bias_for_think_ratio([0.0, 1.0], 0.0) == -20.0 and bias_for_think_ratio([0.0], 1.0) == 20.0  # the ends
    with pytest.raises(ValueError, match="think ratio 1.2"):
        bias_for_think_ratio([0.0], 1.2)


def test_the_probability_of_drawing_a_first_token_under_the_sampling_settings_by_hand():
    from thinkless.serving.mode_control import sampled_token_prob

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]]))
    assert sampled_token_prob(logits, 1).tolist() == pytest.approx([0.3, 0.1])
    # temperature 0.5 squares the probabilities: 0.09 / (0.25 + 0.09 + 0.04)
    assert sampled_token_prob(logits, 1, temperature=0.5)[0].item() == pytest.approx(0.09 / 0.38)
    # top-p 0.7 keeps the smallest set reaching 0.7 (0.5 + 0.3; the second row's 0.8 alone), renormalised; the rest
    # is never drawn
    assert sampled_token_prob(logits, 1, top_p=0.7).tolist() == pytest.approx([0.3 / 0.8, 0.0])
    assert sampled_token_prob(logits, 2, top_p=0.7)[0].item() == 0.0
    assert sampled_token_prob(logits, 1, top_k=1).tolist() == pytest.approx([0.0, 0.0])
    assert sampled_token_prob(logits, 1, min_p=0.5)[0].item() == pytest.approx(0.3 / 0.8)  # p >= 0.5 x 0.5


def test_first_logits_from_token_ids_equal_those_from_text(tiny_tokenizer):
    # the RL trainer's probe (rl.budget.probe) forwards the rollouts' token ids; the report forwards rendered text
    tok = tiny_tokenizer
    model = build_tiny_model(len(tok), seed=0, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    texts = [render_prompt(tok, q) for q in ("2+2?", "fold 3 4 then 17 5 9")]  # two lengths: left padding
    gen = HFGenerator(model, tok, batch_size=2)
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert len(ids[0]) != len(ids[1])
    assert torch.allclose(gen.first_logits(ids), gen.first_logits(texts), atol=1e-5)
