from transformers import AutoTokenizer

import thinkless
from thinkless.format import render_prompt
from thinkless.tokens import CONTROL_TOKENS, fix_chat_template

from .conftest import QWEN, R1


def test_each_control_token_is_one_non_special_token(tok):
    ids = thinkless.control_token_ids(tok)
    assert len({ids.think, ids.end_think, ids.short}) == 3
    for t in CONTROL_TOKENS:
        assert len(tok.encode(t, add_special_tokens=False)) == 1
    text = "<think>a step</think>\\boxed{1}"
    # TRL decodes completions with skip_special_tokens=True: the control tokens must survive it
    assert tok.decode(tok.encode(text, add_special_tokens=False), skip_special_tokens=True) == text
    short = "<short>\\boxed{2}"
    assert tok.decode(tok.encode(short, add_special_tokens=False), skip_special_tokens=True) == short


def test_generation_prompt_does_not_prefill_a_mode(tok):
    p = render_prompt(tok, "What is 1+1?")
    assert not p.rstrip().endswith(("<think>", "<short>"))
    assert "<think>" not in p and "<short>" not in p
    # the assistant turn renders the full response (R1's template used to drop everything before </think>)
    full = tok.apply_chat_template([{"role": "user", "content": "q"}, {"role": "assistant",
                                    "content": "<think>trace</think>ans"}], tokenize=False)
    assert "<think>trace</think>ans" in full


def test_pad_differs_from_eos(tok):
    assert tok.pad_token_id is not None and tok.pad_token_id != tok.eos_token_id


def test_r1_reuses_existing_think_tokens():
    t = AutoTokenizer.from_pretrained(R1)
    before = len(t)
    ids = thinkless.add_control_tokens(t)
    assert (ids.think, ids.end_think) == (151648, 151649)  # reused, not re-added
    assert len(t) == before + 1  # only <short> is new
    assert render_prompt(t, "x").endswith("<｜Assistant｜>")
    assert t.pad_token == "<|fim_pad|>"


def test_qwen_adds_three_tokens_and_keeps_template():
    t = AutoTokenizer.from_pretrained(QWEN)
    before = len(t)
    thinkless.add_control_tokens(t)
    assert len(t) == before + 3
    assert render_prompt(t, "x").endswith("<|im_start|>assistant\n")


def test_idempotent(tiny_tokenizer):
    n = len(tiny_tokenizer)
    a = thinkless.add_control_tokens(tiny_tokenizer)
    b = thinkless.add_control_tokens(tiny_tokenizer)
    assert a == b and len(tiny_tokenizer) == n


def test_fix_chat_template_on_r1_text():
    raw = (R1 / "chat_template.jinja").read_text()
    fixed = fix_chat_template(raw)
    assert "<think>\\n'" not in fixed and "content.split('</think>')" not in fixed
    assert fix_chat_template(fixed) == fixed


def test_embeddings_of_new_tokens_are_mean_initialised():
    import torch
    from transformers import AutoConfig, Qwen2ForCausalLM

    cfg = AutoConfig.from_pretrained(QWEN)
    cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size = 1, 64, 128
    cfg.num_attention_heads, cfg.num_key_value_heads, cfg.vocab_size = 4, 2, 151665  # no spare rows: must grow
    model = Qwen2ForCausalLM(cfg)
    t = AutoTokenizer.from_pretrained(QWEN)
    n_before = len(t)
    ids = thinkless.add_control_tokens(t, model)
    emb = model.get_input_embeddings().weight
    assert emb.shape[0] >= len(t)
    mean = emb[:n_before].mean(0)
    for i in (ids.think, ids.end_think, ids.short):
        assert torch.allclose(emb[i], mean, atol=1e-6)


def test_the_official_warm_up_reuses_quad_start_as_short():
    t = AutoTokenizer.from_pretrained(R1)
    n = len(t)
    ids = thinkless.add_control_tokens(t, reuse={"<short>": "<|quad_start|>"})  # conf/model/r1-distill-qwen-1.5b.yaml
    assert (ids.think, ids.end_think, ids.short) == (151648, 151649, 151650) and len(t) == n
    text = "<short>\\boxed{2}"
    assert t.decode(t.encode(text, add_special_tokens=False), skip_special_tokens=True) == text
