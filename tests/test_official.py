"""The official Thinkless checkpoints as inputs: their tokenizer, built from R1-Distill's files exactly as documented
(tests/helpers.official_thinkless_tokenizer), through prompt rendering, mode parsing, the reward and evaluation."""

import pytest
from transformers import AutoTokenizer

from thinkless import add_control_tokens, thinkless_reward
from thinkless.format import parse, render_prompt
from thinkless.grading import Grader

from .conftest import R1
from .helpers import ScriptedGenerator, official_thinkless_tokenizer


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    folder = official_thinkless_tokenizer(tmp_path_factory.mktemp("thinkless_tok"), R1)
    tok = AutoTokenizer.from_pretrained(folder)
    # transformers 5 reads the id's name from tokenizer_config.json: the official short token loads as "<|short|>"
    assert tok.convert_ids_to_tokens(151650) == "<|short|>" and len(tok.encode("<short>", add_special_tokens=False)) > 1
    n = len(tok)
    ids = add_control_tokens(tok)  # what train.py / eval.py do with model.path=Vinnnf/Thinkless-1.5B-*
    return tok, ids, n


def test_control_tokens_are_the_official_ids(official):
    tok, ids, n = official
    assert (ids.think, ids.end_think, ids.short) == (151648, 151649, 151650)
    assert len(tok) == n  # nothing added: the official id 151650 is <short> again (its trained embedding row)
    assert not tok.convert_ids_to_tokens(151650).startswith("<|")
    text = "<short>\nThe answer is \\boxed{4}."
    assert tok.decode(tok.encode(text, add_special_tokens=False), skip_special_tokens=True) == text


def test_the_official_generation_prompt_is_kept(official):
    tok, ids, _ = official
    p = render_prompt(tok, "What is 2+2?")
    assert p.endswith("<｜User｜>What is 2+2?<｜Assistant｜>\n")  # the newline the official model was RL-trained with
    assert p.startswith("<｜begin▁of▁sentence｜>") and "<think>" not in p
    assert render_prompt(tok, "x", thinking="off").endswith("<｜Assistant｜>\n<short>")
    full = tok.apply_chat_template([{"role": "user", "content": "q"},
                                    {"role": "assistant", "content": "<think>\nr\n</think>\n\na"}], tokenize=False)
    assert "<think>\nr\n</think>\n\na" in full  # the reasoning is kept in assistant turns
    assert tok.pad_token_id != tok.eos_token_id


def test_mode_parsing_reward_and_grading_on_official_responses(official):
    tok, ids, _ = official
    short = tok.decode([ids.short] + tok.encode("\nSo \\boxed{4}.", add_special_tokens=False),
                       skip_special_tokens=True)
    think = tok.decode([ids.think] + tok.encode("\n2+2=4\n", add_special_tokens=False) + [ids.end_think]
                       + tok.encode("\n\n\\boxed{4}", add_special_tokens=False), skip_special_tokens=True)
    assert parse(short).mode == "short" and parse(think).mode == "think" and parse(think).well_formed
    assert thinkless_reward(short, "4") == 1.0 and thinkless_reward(think, "4") == 0.5
    assert Grader("strict").grade(think, "5").correct is False


def test_evaluation_on_the_official_tokenizer(official, tmp_path):
    from thinkless.evaluation.benchmarks import BenchmarkData, Problem
    from thinkless.evaluation.runner import evaluate
    from thinkless.generation import SamplingConfig

    tok, _, _ = official

    def script(prompt, i):
        assert prompt.rstrip("<think><short>").endswith("<｜Assistant｜>\n")
        if prompt.endswith("<think>"):
            return "\nlet me see\n</think>\n\n\\boxed{4}"
        if prompt.endswith("<short>"):
            return "\n\\boxed{5}"
        return "<short>\n\\boxed{4}"

    bench = BenchmarkData("b", [Problem("0", 0, "What is 2+2?", "4")], "inline")
    methods = {"adaptive": {"type": "prefill", "prefill": ""}, "forced_think": {"type": "prefill",
               "prefill": "<think>", "mode": "think"}, "forced_short": {"type": "prefill", "prefill": "<short>",
                                                                        "mode": "short"}}
    res = evaluate(ScriptedGenerator(tok, script), tok, {"b": bench}, list(methods), methods,
                   sampling=SamplingConfig(temperature=0.6, max_new_tokens=64), out_dir=tmp_path,
                   settings={"b": {"instruction": "Please reason step by step, and put your final answer within "
                                                  "\\boxed{}.\n{problem}"}}, progress=False)
    m = res["benchmarks"]["b"]["methods"]
    assert (m["adaptive"]["acc"], m["adaptive"]["think_ratio"]) == (1.0, 0.0)
    assert (m["forced_think"]["acc"], m["forced_short"]["acc"]) == (1.0, 0.0)
