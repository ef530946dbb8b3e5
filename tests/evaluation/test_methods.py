"""Each method's prompt construction on the real R1-Distill (and Qwen2.5) tokenizer, and budget forcing's phases."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from thinkless.evaluation.methods import NOTHINKING_PREFILL, budget_tokens, method_from_cfg, sample
from thinkless.format import parse, render_prompt
from thinkless.tokens import add_control_tokens

from ..conftest import QWEN, R1
from ..helpers import ScriptedGenerator

INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
BOXED = INSTRUCTION + "\n{problem}"  # conf/prompt/boxed.yaml
PROBLEM = "What is $1+1$? Give the answer as {an integer}."


def build_prompt(tok, problem, m, instruction=BOXED):
    return render_prompt(tok, problem, instruction=instruction, prefill=m.prefill)


def chat_prompt(tok, problem, **kw):
    return render_prompt(tok, problem, instruction=kw.pop("instruction", BOXED), **kw)


@pytest.fixture(scope="module")
def r1():
    tok = AutoTokenizer.from_pretrained(R1)
    add_control_tokens(tok)
    return tok


@pytest.fixture(scope="module")
def qwen():
    tok = AutoTokenizer.from_pretrained(QWEN)
    add_control_tokens(tok)
    return tok


def method(name, **kw):
    return method_from_cfg(name, kw)


ADAPTIVE = method("adaptive", type="prefill", prefill="", mode="auto")
THINK = method("forced_think", type="prefill", prefill="<think>", mode="think")
SHORT = method("forced_short", type="prefill", prefill="<short>", mode="short")
NOTHINK = method("nothinking", type="prefill", prefill=NOTHINKING_PREFILL, mode="short")


def test_adaptive_prompt_leaves_the_mode_to_the_model(r1):
    p = build_prompt(r1, PROBLEM, ADAPTIVE)
    assert p == render_prompt(r1, f"{INSTRUCTION}\n{PROBLEM}")
    assert p.endswith("<｜User｜>" + INSTRUCTION + "\n" + PROBLEM + "<｜Assistant｜>")
    assert p.startswith("<｜begin▁of▁sentence｜>")
    assert "<think>" not in p  # R1's template prefill is removed: the model chooses
    ids = r1(p, add_special_tokens=False)["input_ids"]
    assert ids[0] == r1.bos_token_id and ids.count(r1.bos_token_id) == 1  # no double BOS
    assert p.index(INSTRUCTION) < p.index(PROBLEM)  # the instruction comes before the problem


def test_forced_modes_prefill_one_control_token(r1):
    base = build_prompt(r1, PROBLEM, ADAPTIVE)
    ids = control = None
    for m, tok_str in ((THINK, "<think>"), (SHORT, "<short>")):
        p = build_prompt(r1, PROBLEM, m)
        assert p == base + tok_str
        ids = r1(p, add_special_tokens=False)["input_ids"]
        control = r1.convert_tokens_to_ids(tok_str)
        assert ids[-1] == control and ids[:-1] == r1(base, add_special_tokens=False)["input_ids"]
    assert r1.convert_tokens_to_ids("<think>") == 151648
    assert r1.convert_tokens_to_ids("<short>") == 151665


def test_nothinking_prefills_a_closed_thinking_box(r1):
    p = build_prompt(r1, PROBLEM, NOTHINK)
    assert p.endswith("<｜Assistant｜><think>\nOkay, I think I have finished thinking.\n</think>\n\n")
    ids = r1(p, add_special_tokens=False)["input_ids"]
    assert ids.count(151648) == 1 and ids.count(151649) == 1  # <think>, </think> as single tokens
    assert ids.index(151648) < ids.index(151649)
    # the response (prefill + answer) is well formed, graded after </think>, and counted as no thinking (the method)
    resp = NOTHINK.prefill + "The answer is \\boxed{2}."
    assert parse(resp).graded_part.strip() == "The answer is \\boxed{2}." and NOTHINK.mode == "short"


def test_budget_tokens():
    assert budget_tokens(method("budget_forcing", type="budget_forcing", prefill="<think>", budget=8), 4096) == 8
    assert budget_tokens(method("b", type="budget_forcing", budget=0.25), 48) == 12


def test_qwen_prompts(qwen):
    p = build_prompt(qwen, PROBLEM, SHORT)
    assert p.endswith("<|im_start|>assistant\n<short>")
    assert qwen(p, add_special_tokens=False)["input_ids"][-1] == qwen.convert_tokens_to_ids("<short>")
    assert build_prompt(qwen, PROBLEM, ADAPTIVE).endswith("<|im_start|>assistant\n")


def test_system_prompt_comes_first(r1):
    sys_p = chat_prompt(r1, PROBLEM, system="Be brief.")
    assert sys_p.index("Be brief.") < sys_p.index(PROBLEM)


def test_method_config_errors():
    with pytest.raises(ValueError, match="valid choices are .*prefill"):
        method_from_cfg("x", {"type": "beam"})
    with pytest.raises(ValueError, match="valid keys"):
        method_from_cfg("x", {"type": "prefill", "prefil": "<think>"})
    with pytest.raises(ValueError, match="selection"):
        method_from_cfg("x", {"type": "parallel", "base": "adaptive", "n": 4, "selection": "best"})
    with pytest.raises(ValueError, match="budget"):
        method_from_cfg("x", {"type": "budget_forcing", "budget": 0})
    with pytest.raises(ValueError, match="mode"):
        method_from_cfg("x", {"type": "prefill", "mode": "sometimes"})
    assert method_from_cfg("x", {"type": "budget_forcing"}).prefill == "<think>"  # thinks first by default
    with pytest.raises(ValueError, match="grading"):
        method_from_cfg("x", {"type": "prefill", "grading": "loose"})
    with pytest.raises(ValueError, match="mode_temperature"):
        method_from_cfg("x", {"type": "mode_sampled", "mode_temperature": 0})


# ------------------------------------------------------------------ sampling mechanics (scripted model)


def sampling(max_new_tokens=64, n=1):
    from thinkless.generation import SamplingConfig

    return SamplingConfig(temperature=0.6, top_p=0.95, max_new_tokens=max_new_tokens, n=n, seed=0)


def test_prefill_samples_count_prefill_tokens(r1):
    gen = ScriptedGenerator(r1, lambda p, i: "\n\nThe answer is \\boxed{2}.")
    out = sample(gen, r1, [chat_prompt(r1, PROBLEM)], NOTHINK, 3, sampling())
    assert len(out) == 1 and len(out[0]) == 3
    s = out[0][0]
    assert gen.calls[0][0] == [build_prompt(r1, PROBLEM, NOTHINK)] and gen.calls[0][1].n == 3
    n_pre = len(r1(NOTHINK.prefill, add_special_tokens=False)["input_ids"])
    n_gen = len(r1("\n\nThe answer is \\boxed{2}.", add_special_tokens=False)["input_ids"])
    assert (s.tokens, s.gen_tokens) == (n_pre + n_gen, n_gen)
    assert s.response == NOTHINK.prefill + "\n\nThe answer is \\boxed{2}."


def test_budget_forcing_cuts_thinking_at_the_budget(r1):
    long_thought = " step" * 50 + "</think>\\boxed{2}"

    def script(p, i):
        return long_thought if p.endswith("<think>") else " \\boxed{2}"

    m = method("bf", type="budget_forcing", prefill="<think>", budget=10)
    gen = ScriptedGenerator(r1, script)
    out = sample(gen, r1, [chat_prompt(r1, PROBLEM)], m, 1, sampling(max_new_tokens=40))
    s = out[0][0]
    phase1, phase2 = gen.calls
    assert phase1[1].max_new_tokens == 10
    assert phase2[0][0] == chat_prompt(r1, PROBLEM) + "<think>" + " step" * 10 + "</think>\n\nFinal Answer:"
    assert r1(phase2[0][0], add_special_tokens=False)["input_ids"].count(151649) == 1  # </think>: one R1 token
    closing = len(r1("</think>\n\nFinal Answer:", add_special_tokens=False)["input_ids"])
    assert phase2[1].max_new_tokens == 40 - 10 - closing  # what is left of max_new_tokens (injected text counts)
    assert s.response == "<think>" + " step" * 10 + "</think>\n\nFinal Answer: \\boxed{2}"
    assert s.extra["forced_end"] and s.extra["thinking_tokens"] == 10
    answer = len(r1(" \\boxed{2}", add_special_tokens=False)["input_ids"])
    assert s.tokens == 1 + 10 + closing + answer  # <think> + thinking + injected closing + answer
    assert s.gen_tokens == 10 + answer


def test_budget_forcing_wait_extends_thinking(r1):
    m = method("bf", type="budget_forcing", prefill="<think>", budget=100, num_wait=2, wait="Wait")
    gen = ScriptedGenerator(r1, lambda p, i: " short thought</think> \\boxed{2}")
    out = sample(gen, r1, [chat_prompt(r1, PROBLEM)], m, 2, sampling(max_new_tokens=200))
    assert len(gen.calls) == 3  # think; think after "Wait"; think after "Wait", then it answers in the same call
    assert gen.calls[0][1].n == 2 and gen.calls[1][1].n == 1 and len(gen.calls[1][0]) == 2
    assert gen.calls[1][0][0].endswith("<think> short thoughtWait")  # "</think> \\boxed{2}" replaced by "Wait"
    s = out[0][1]
    assert s.response == "<think> short thoughtWait short thoughtWait short thought</think> \\boxed{2}"
    assert not s.extra["forced_end"] and s.extra["waits_used"] == 2 and s.finished
    assert parse(s.response).graded_part.strip() == "\\boxed{2}"
    n_tok = lambda t: len(r1(t, add_special_tokens=False)["input_ids"])  # noqa: E731
    assert s.tokens == n_tok("<think>") + 3 * n_tok(" short thought") + 2 * n_tok("Wait") + n_tok("</think> \\boxed{2}")


def test_budget_forcing_natural_end_needs_no_second_call(r1):
    m = method("bf", type="budget_forcing", prefill="<think>", budget=20)
    gen = ScriptedGenerator(r1, lambda p, i: " 1+1=2.</think> The answer is \\boxed{2}.")
    out = sample(gen, r1, [chat_prompt(r1, PROBLEM)] * 2, m, 1, sampling(max_new_tokens=64))
    assert len(gen.calls) == 1 and len(gen.calls[0][0]) == 2  # thinking closed, answer written, EOS: done
    s = out[1][0]
    assert s.response == "<think> 1+1=2.</think> The answer is \\boxed{2}." and not s.extra["forced_end"]
    # the answer runs past the budget: it continues (the budget caps thinking only)
    gen = ScriptedGenerator(r1, lambda p, i: " 2.</think>" + " so" * 30 if p.endswith("<think>") else " \\boxed{2}")
    out = sample(gen, r1, [chat_prompt(r1, PROBLEM)], m, 1, sampling(max_new_tokens=64))
    s = out[0][0]
    assert len(gen.calls) == 2 and gen.calls[1][1].max_new_tokens == 64 - 20
    k = len(r1(" 2.</think>", add_special_tokens=False)["input_ids"])  # thinking tokens, </think> included
    assert s.response == "<think> 2.</think>" + " so" * (20 - k) + " \\boxed{2}" and s.extra["thinking_tokens"] == k


def test_mode_sampled_samples_the_control_token_then_continues(r1):
    heads = {0: "<think>", 1: "<short>", 2: "<think>"}
    gen = ScriptedGenerator(r1, lambda p, i: heads[i] if not p.endswith(("<think>", "<short>")) else
                            ("1+1=2</think>\\boxed{2}" if p.endswith("<think>") else "\\boxed{2}"))
    m = method("free_choice", type="mode_sampled", mode_temperature=1.0)
    out = sample(gen, r1, [chat_prompt(r1, PROBLEM)], m, 3, sampling())
    assert [s.response for s in out[0]] == ["<think>1+1=2</think>\\boxed{2}", "<short>\\boxed{2}",
                                            "<think>1+1=2</think>\\boxed{2}"]
    head_cfg, rest_cfg = gen.calls[0][1], gen.calls[1][1]
    assert (head_cfg.max_new_tokens, head_cfg.n, head_cfg.temperature) == (1, 3, 1.0)  # the mode: one token, sampled
    assert rest_cfg.n == 1 and rest_cfg.temperature == 0.6                         # the rest: the shared settings
    assert out[0][1].tokens == 1 + len(r1("\\boxed{2}", add_special_tokens=False)["input_ids"])


def test_greedy_continuations_are_generated_once_and_shared(tiny_tokenizer):
    """Greedy continuations after a sampled mode depend only on the text: with a shared memo, each distinct
    ``prompt + mode`` is generated once (the reports' free choice and threshold points reuse them) and every sample
    equals the one generated without the memo. Sampled continuations are never reused."""
    from thinkless.generation import HFGenerator, SamplingConfig
    from thinkless.tasks.synthetic import build_tiny_model

    tok = tiny_tokenizer
    model = build_tiny_model(len(tok), seed=5, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id).eval()

    class Counting(HFGenerator):
        continued = 0

        def generate(self, prompts, cfg, **kw):
            if cfg.max_new_tokens > 1:
                self.continued += len(prompts)
            return super().generate(prompts, cfg, **kw)

    prompts = [chat_prompt(tok, f"{i} ~ 3 ~ 5") for i in range(3)]
    free = method("free_choice", type="mode_sampled", mode_temperature=1.0, think_bias=100.0)  # every head <think>
    greedy = SamplingConfig(temperature=0.0, top_p=1.0, max_new_tokens=6)
    # the reference: each prompt continued on its own after a prefilled <think>
    rest = SamplingConfig(**{**greedy.__dict__, "max_new_tokens": 5})
    expected = ["<think>" + HFGenerator(model, tok).generate([p + "<think>"], rest)[0][0].text for p in prompts]
    gen, memo = Counting(model, tok, batch_size=8), {}
    got = sample(gen, tok, prompts, free, 4, greedy, memo)
    again = sample(gen, tok, prompts, method("point", type="mode_sampled", mode_temperature=1.0, think_bias=100.0),
                   1, greedy, memo)
    assert gen.continued == 3  # one per prompt, reused by the 4 samples and by the second method
    assert [[s.response for s in ss] for ss in got] == [[e] * 4 for e in expected]
    assert [ss[0].response for ss in again] == expected
    hot = SamplingConfig(temperature=1.0, top_p=1.0, max_new_tokens=6)
    sample(gen, tok, prompts, free, 4, hot, memo)
    assert gen.continued == 3 + 12


def test_first_tokens_are_drawn_like_generate_from_one_forward_per_prompt(tiny_tokenizer):
    """``sample_heads`` on HF: one forward pass per distinct prompt (shared through the memo), tokens distributed as
    HF ``generate``'s own first-token samples, greedy = generate's argmax, the think bias applied."""
    from collections import Counter

    from thinkless.evaluation.methods import sample_heads
    from thinkless.generation import HFGenerator, SamplingConfig
    from thinkless.tasks.synthetic import build_tiny_model

    tok = tiny_tokenizer
    model = build_tiny_model(len(tok), seed=7, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id).eval()

    class Counting(HFGenerator):
        forwards = 0

        def first_logits(self, prompts):
            self.forwards += len(prompts)
            return super().first_logits(prompts)

    gen = Counting(model, tok, batch_size=64)
    prompts = [chat_prompt(tok, "1 ~ 2"), chat_prompt(tok, "9 ~ 9 ~ 9")]
    hot = SamplingConfig(temperature=1.0, top_p=1.0, max_new_tokens=1, n=3000, seed=3)
    memo = {}
    ours = sample_heads(gen, prompts, hot, memo)
    theirs = gen.generate(prompts, SamplingConfig(**{**hot.__dict__, "n": 3000}))
    for a, b in zip(ours, theirs):
        fa, fb = Counter(c.text for c in a), Counter(c.text for c in b)
        for t, _ in fb.most_common(5):
            assert abs(fa[t] - fb[t]) / 3000 < 0.04, (t, fa[t], fb[t])
        assert all(c.num_tokens == 1 and not c.finished for c in a if c.text)
    greedy = SamplingConfig(temperature=0.0, top_p=1.0, max_new_tokens=1, n=2)
    assert [[c.token_ids for c in o] for o in sample_heads(gen, prompts, greedy, memo)] == \
        [[o[0].token_ids] * 2 for o in gen.generate(prompts, SamplingConfig(**{**greedy.__dict__, "n": 1}))]
    biased = sample_heads(gen, prompts, SamplingConfig(**{**hot.__dict__, "n": 5, "think_bias": 100.0}), memo)
    assert all(c.text == "<think>" for o in biased for c in o)
    assert gen.forwards == 2  # every call above after the first reused the memo's logits
    topp = sample_heads(gen, prompts, SamplingConfig(**{**hot.__dict__, "top_p": 1e-6, "n": 20}), memo)
    assert all(len({c.text for c in o}) == 1 for o in topp)  # top-p this low keeps only the most likely token
