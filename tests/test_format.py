"""The one parser and the one prompt renderer (thinkless/format.py), on the real tokenizers and the tiny one."""

import pytest

from thinkless.format import (Parsed, conclusion_of, messages, parse, render_prompt, short_target, think_target,
                              user_turn)

PARSE = [
    # text, mode, reasoning, answer, well_formed
    ("<short>\\boxed{5}", "short", None, "\\boxed{5}", True),
    ("  <short>\n\\boxed{5}", "short", None, "\n\\boxed{5}", True),
    ("<think>0~4=4\n</think>\\boxed{4}", "think", "0~4=4\n", "\\boxed{4}", True),
    ("<think>ran out of budget", "think", None, None, False),                    # truncated: no answer
    ("<think>a</think>b</think>\\boxed{5}", "think", "a", "\\boxed{5}", False),  # second </think>: after the last
    ("<think>a</think><think>b</think>c", "think", "a", "c", False),
    ("<think>a<short></think>c", "think", "a<short>", "c", False),
    ("<short>reason</think>\\boxed{5}", "short", None, "\\boxed{5}", False),     # tag in a short response
    ("<short><think>a</think>\\boxed{5}", "short", None, "\\boxed{5}", False),   # the gaming pattern
    ("<short><think>a", "short", None, None, False),
    ("\\boxed{5}", None, None, "\\boxed{5}", False),                             # no control token (a baseline)
    ("x</think>\\boxed{5}", None, None, "\\boxed{5}", False),
    ("x<think>y", None, None, None, False),
]


@pytest.mark.parametrize("text,mode,reasoning,answer,well", PARSE)
def test_parse(text, mode, reasoning, answer, well):
    p = parse(text)
    assert p == Parsed(mode, reasoning, answer, well)
    assert p.graded_part == (answer if well else None)


def test_sft_targets():
    assert think_target("reasoning</think>\\boxed{1}") == "<think>\nreasoning</think>\\boxed{1}"  # R1 prefill
    assert think_target("<think>x</think>y") == "<think>x</think>y"
    assert think_target("<think>truncated") is None
    assert think_target("<think>a</think>") is None  # nothing after the reasoning
    assert think_target("<short>x") is None
    assert think_target("") is None and think_target(None) is None
    assert short_target("\\boxed{3}") == "<short>\\boxed{3}"
    assert short_target("<short>\\boxed{3}") == "<short>\\boxed{3}"
    assert short_target("<short>\nTo solve... \\boxed{3}") == "<short>\nTo solve... \\boxed{3}"  # official: kept
    assert short_target("<think>x</think>\\boxed{3}") is None
    assert short_target("   ") is None and short_target("<short>  ") is None


def test_conclusion_pair_builder_matches_the_official_tool():
    long = "<think>\nLet me add 2 and 2.\n</think>\n\nThe answer is \\boxed{4}."
    # VainF/Reasoning-SFT tools/create_long_short_dataset.py: "<short>\n" + output.split("</think>")[-1].lstrip("\n")
    official = "<short>\n" + long.split("</think>")[-1].lstrip("\n")
    assert conclusion_of(long) == official
    assert conclusion_of("<think>never closed") is None
    assert conclusion_of("<think>x</think>   ") is None


def test_user_turn_and_messages():
    assert user_turn("2+2?") == "2+2?"
    assert user_turn("2+2?", "Solve in \\boxed{}.\n{problem}") == "Solve in \\boxed{}.\n2+2?"  # no str.format
    with pytest.raises(ValueError, match="placeholder"):
        user_turn("x", "no placeholder")
    assert messages("q", system="be brief") == [{"role": "system", "content": "be brief"},
                                                 {"role": "user", "content": "q"}]


def test_render_prompt_ends_before_the_mode_token(tok):
    p = render_prompt(tok, "What is 1+1?", instruction="Q: {problem}")
    assert "Q: What is 1+1?" in p and not p.rstrip().endswith(("<think>", "<short>"))
    assert render_prompt(tok, "x", prefill="<think>").endswith("<think>")
    sys_p = render_prompt(tok, "x", system="SYSTEM-TEXT")
    assert "SYSTEM-TEXT" in sys_p


def test_trl_renders_the_same_prompt(tok):
    """RL hands TRL ``messages(...)``; TRL tokenizes them with the chat template: the ids must be our prompt's."""
    from trl.data_utils import apply_chat_template

    msgs = messages("What is 2+2?", instruction="{problem}\nBox it.")
    trl_text = apply_chat_template({"prompt": msgs}, tok)["prompt"]
    assert trl_text == render_prompt(tok, "What is 2+2?", instruction="{problem}\nBox it.")
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    assert list(ids) == tok(render_prompt(tok, "What is 2+2?", instruction="{problem}\nBox it."),
                            add_special_tokens=False)["input_ids"]
