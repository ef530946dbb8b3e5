"""The built-in synthetic tasks' shared helpers, and a tiny Qwen2 student.

The tasks themselves are ``thinkless.tasks.fold`` (digit chains, split by level) and ``thinkless.tasks.graded``
(fold with a graded memo, split by class); their names are re-exported here. ``make_problems`` and
``paired_records`` work for any generated task (``variant``: its registered name, ``thinkless.tasks.base``).

The student is a real ``Qwen2ForCausalLM`` with a byte-level ``Qwen2Tokenizer`` (the fold text one token per
character; the chat roles and ``boxed`` one token each, as in Qwen2.5's) and a Qwen-style chat template: the same
classes and code paths as Qwen2.5-1.5B, four orders of magnitude smaller.
"""

from __future__ import annotations

import random

from .base import get_task
from .fold import MAX_LEVEL, OP, PAD, FoldProblem, fold, long_teacher, parse_fold, short_teacher  # noqa: F401
from .graded import GRADES, GradedProblem, parse_graded  # noqa: F401


def parse_prompt(prompt: str):
    """Inverse of ``FoldProblem.prompt`` and ``GradedProblem.prompt`` (used by tests and the gym's oracle)."""
    toks = prompt.split()
    if len(toks) == 2 * MAX_LEVEL + 6 and toks[-5] == "|":
        return parse_graded(prompt)
    return parse_fold(prompt)


def make_problems(n: int, levels, seed: int, weights=None, variant: str = "fold") -> list:
    """``n`` problems of the generated task ``variant`` over ``levels`` in a fixed round robin (level i repeated
    ``weights[i]`` times per round), from stream ``seed`` (``Task.make_problems``)."""
    return get_task(variant, key="synthetic variant", generated=True).make_problems(n, levels, seed, weights)


def paired_records(n: int, levels, seed: int, weights=None, short_solve_rate=None, variant: str = "fold",
                   max_trace: int = 0) -> list[dict]:
    """Records in the common paired schema (see ``thinkless.tasks.data``) of the generated task ``variant``.

    ``short_solve_rate`` (one rate per level 1..MAX_LEVEL, or None: always) is how often the short teacher gets a
    level right at a glance. Its other answers fail verification and are dropped, as ``data=teacher`` drops a real
    teacher's (``short`` is None: the SFT rows count them as ``short_missing``), so hard problems keep fewer short rows.
    A short answer the task's short teacher gets wrong (graded: a wrong memo) is dropped the same way.

    ``max_trace`` (``data.max_trace``; 0: off) writes each long response at a length drawn per problem between its
    own and ``max_trace`` (one of ``Task.stretched_responses``): traces of several lengths, for an L1 warm-up that states each
    trace's own length (``data.budget_prompts``).
    """
    task = get_task(variant, key="synthetic variant", generated=True)
    if short_solve_rate is not None:
        try:
            rates = [float(r) for r in short_solve_rate]
        except (TypeError, ValueError):
            rates = []
        if len(rates) != task.highest_level or not all(0.0 <= r <= 1.0 for r in rates):
            raise ValueError(f"data.short_solve_rate={short_solve_rate!r}: one rate in [0, 1] per level "
                             f"1..{task.highest_level}")
    if int(max_trace) != max_trace or max_trace < 0:
        raise ValueError(f"data.max_trace={max_trace!r}: a non-negative integer (0: each trace at its own length)")
    rng = random.Random(seed + 7919)  # its own stream: the problems are the same with and without it
    lengths = random.Random(seed + 104729)  # the trace lengths' stream: the same problems and short answers
    out = []
    for p in task.make_problems(n, levels, seed, weights):
        level, klass = task.level(p), task.problem_class(p)
        solved = (short_solve_rate is None or rng.random() < rates[level - 1]) and task.short_is_right(p)
        try:
            long = lengths.choice(task.stretched_responses(p, int(max_trace))) if max_trace else task.long_response(p)
        except NotImplementedError as e:
            raise ValueError(f"data.max_trace={max_trace}: {e}; 0 keeps each trace at its own length") from None
        out.append({"problem": task.prompt(p), "answer": task.gold(p), "long": long,
                    "short": task.short_response(p) if solved else None, "level": level,
                    **({"problem_class": klass} if klass is not None else {})})
    return out


# ---------------------------------------------------------------- tiny tokenizer and model

SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
TINY_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)


def _byte_alphabet() -> list[str]:
    """GPT-2/Qwen byte-to-unicode alphabet: one printable symbol per byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


# Words that Qwen2.5's tokenizer keeps whole and the fold task spends tokens on: the chat roles of every prompt and
# the answer wrapper of every response. One merge chain each makes them one token, as in the real tokenizer
# (``<|im_start|>assistant\n`` is 3 tokens, ``\boxed{5}`` is 5); byte by byte they were a quarter of every row.
# The fold text itself stays one token per character: Qwen would merge " ~" and " .", and the trace's steps would
# no longer sit at a constant distance from their operands (see ``FoldProblem.prompt``).
WHOLE_WORDS = ("user", "assistant", "system", "boxed")


def _merge_chains(words) -> list[tuple[str, str]]:
    """Left-to-right BPE merges that turn each word into one token (``u s``, ``us e``, ``use r``)."""
    merges: list[tuple[str, str]] = []
    for w in words:
        for i in range(1, len(w)):
            if (w[:i], w[i]) not in merges:
                merges.append((w[:i], w[i]))
    return merges


def build_tiny_tokenizer():
    """A byte-level ``Qwen2Tokenizer`` with Qwen's chat special tokens and merges for ``WHOLE_WORDS`` only.

    Same class, pre-tokenizer and decoder as Qwen2.5's tokenizer, so saving and ``AutoTokenizer`` reloading
    behave exactly as for the real model; a 259-entry byte vocabulary plus the merged words' prefixes.
    """
    from transformers import Qwen2Tokenizer

    merges = _merge_chains(WHOLE_WORDS)
    tokens = list(SPECIALS) + _byte_alphabet()
    tokens += [a + b for a, b in merges]  # one new entry per merge: each is a distinct word prefix
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges, unk_token=None, eos_token="<|im_end|>",
                         pad_token="<|endoftext|>", additional_special_tokens=["<|im_start|>"])
    tok.chat_template = TINY_CHAT_TEMPLATE
    return tok


def build_tiny_model(vocab_size: int, *, hidden_size=128, num_layers=2, num_heads=4, num_kv_heads=2,
                     intermediate_size=512, max_position_embeddings=256, seed=0, eos_token_id=None, pad_token_id=None):
    """A randomly initialised ``Qwen2ForCausalLM`` of the given size (0.53 M parameters by default)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        bos_token_id=None,
    )
    return Qwen2ForCausalLM(cfg)
