"""The built-in synthetic tasks, *fold* and *graded*, with their two teachers and a tiny Qwen2 student.

``a ~ b`` is ``a+b`` when ``a+b <= 9`` and ``19-a-b`` otherwise; a problem of level k folds k+1 digits left to
right. One fold is answerable at a glance (short mode), six need the written trace (think mode), so *when to
think* is a real, level-dependent decision. Prompts are padded to a fixed width of ``MAX_LEVEL`` operations so
every step of the trace sits at a constant distance from its operand, which is what lets a 2-layer model learn
to copy operands in a couple of minutes on a CPU.

*graded* (``GradedProblem``) is fold with a memo: the prompt also shows the running value before the last operation,
with a grade saying how often such memos are right (``GRADES``: A always, B 90%, ..., E 60%, F 20%), and the last
operand beside it. Short mode answers at a glance from the memo (one fold); think mode traces the whole chain and
ignores it. So whether a problem needs thought is written in its text (the grade), not in its length (every prompt
has one width) or its level (chain lengths 2..6 in every class), and the oracle's choice for grades B..E moves as γ
does: short pays iff ``p_short > p_think·(2−γ)/2``, i.e. at ``p_think = 1`` for γ above 0.2, 0.4, 0.6, 0.8.
A problem's class (``group``) is its grade's index, 1..6.

The student is a real ``Qwen2ForCausalLM`` with a byte-level ``Qwen2Tokenizer`` (the fold text one token per
character; the chat roles and ``boxed`` one token each, as in Qwen2.5's) and a Qwen-style chat template: the same
classes and code paths as Qwen2.5-1.5B, four orders of magnitude smaller.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..tokens import END_THINK, SHORT, THINK

MAX_LEVEL = 6
PAD = "."
OP = "~"


def fold(a: int, b: int) -> int:
    s = a + b
    return s if s <= 9 else 19 - s


@dataclass(frozen=True)
class FoldProblem:
    digits: tuple[int, ...]

    @property
    def level(self) -> int:
        return len(self.digits) - 1

    @property
    def prompt(self) -> str:
        # 4 characters per operation (" ~ d"), like the trace ("~d=r"): every trace step sits at the same
        # distance from its operand, so one relative-attention pattern copies all of them.
        body = f" {OP} ".join(str(d) for d in self.digits)
        pad = " ".join([PAD] * (2 * (MAX_LEVEL - self.level)))
        return f"{body} {pad}".rstrip()

    def partials(self) -> list[int]:
        acc, out = self.digits[0], [self.digits[0]]
        for d in self.digits[1:]:
            acc = fold(acc, d)
            out.append(acc)
        return out

    @property
    def answer(self) -> str:
        return str(self.partials()[-1])

    @property
    def glance(self) -> str:
        """The short teacher's answer: fold's is always right (``short_solve_rate`` makes it miss)."""
        return self.answer

    group = None  # fold has no classes beyond its levels


VARIANTS = ("fold", "graded")
LOWEST_LEVEL = {"fold": 1, "graded": 2}  # a graded memo needs two folds or more
# grade -> how often a memo of that grade is right. Short pays iff p_short > p_think·(2−γ)/2: B..E flip at
# γ = 0.2, 0.4, 0.6, 0.8 (at p_think = 1), one between each two points of the γ sweep 0.1, 0.3, ..., 0.9.
GRADES = {"A": 1.0, "B": 0.9, "C": 0.8, "D": 0.7, "E": 0.6, "F": 0.2}


@dataclass(frozen=True)
class GradedProblem:
    """A fold chain with a graded memo: ``memo`` is shown as the value before the last fold (right or wrong)."""

    digits: tuple[int, ...]
    grade: str
    memo: int

    @classmethod
    def draw(cls, digits, grade: str, rng: random.Random) -> "GradedProblem":
        """The memo is the true running value with probability ``GRADES[grade]``; otherwise one of the values
        whose fold with the last operand is *not* the answer, so the glance is right exactly when the memo is."""
        fp = FoldProblem(tuple(digits))
        true, last = fp.partials()[-2], digits[-1]
        if rng.random() < GRADES[grade]:
            return cls(fp.digits, grade, true)
        wrong = [m for m in range(10) if fold(m, last) != fold(true, last)]
        return cls(fp.digits, grade, rng.choice(wrong))

    @property
    def level(self) -> int:
        return len(self.digits) - 1

    @property
    def group(self) -> int:
        """The class every statistic is grouped by: the grade's index, 1 (A) .. 6 (F)."""
        return list(GRADES).index(self.grade) + 1

    @property
    def prompt(self) -> str:
        # the fold prompt (its trace alignment untouched), then the memo at a fixed place: "| B 6 ~ 7"
        return f"{FoldProblem(self.digits).prompt} | {self.grade} {self.memo} {OP} {self.digits[-1]}"

    def partials(self) -> list[int]:
        return FoldProblem(self.digits).partials()

    @property
    def answer(self) -> str:
        return FoldProblem(self.digits).answer

    @property
    def glance(self) -> str:
        return str(fold(self.memo, self.digits[-1]))


def group_name(group: int) -> str:
    """``"B (90%)"`` for the graded task's class 2: the label tables print."""
    grade = list(GRADES)[group - 1]
    return f"{grade} ({GRADES[grade]:.0%})"


def parse_prompt(prompt: str):
    """Inverse of ``FoldProblem.prompt`` and ``GradedProblem.prompt`` (used by tests and the gym's oracle)."""
    toks = prompt.split()
    if len(toks) == 2 * MAX_LEVEL + 6 and toks[-5] == "|":
        grade, memo, op, last = toks[-4:]
        fp = parse_prompt(" ".join(toks[:-5]))
        if grade not in GRADES or not memo.isdigit() or len(memo) != 1 or op != OP or last != str(fp.digits[-1]):
            raise ValueError(f"not a graded prompt: {prompt!r}")
        return GradedProblem(fp.digits, grade, int(memo))
    digits = [t for t in toks[0::2] if t != PAD]
    ops = toks[1::2]
    if (len(toks) != 2 * MAX_LEVEL + 1 or not digits or not all(d.isdigit() and len(d) == 1 for d in digits)
            or any(o not in (OP, PAD) for o in ops) or len(digits) < 2):
        raise ValueError(f"not a fold prompt: {prompt!r}")
    digits = [int(d) for d in digits]
    return FoldProblem(tuple(digits))


def make_problems(n: int, levels, seed: int, weights=None, variant: str = "fold") -> list:
    """``n`` problems over ``levels`` in a fixed round robin (level i repeated ``weights[i]`` times per round),
    digits uniform in 0..9. ``variant="graded"``: ``GradedProblem``s, the grades in a round robin of their own."""
    if variant not in VARIANTS:
        raise ValueError(f"synthetic variant {variant!r}: valid choices are {VARIANTS}")
    for lv in levels:
        if not LOWEST_LEVEL[variant] <= lv <= MAX_LEVEL:
            raise ValueError(f"synthetic level {lv} out of range {LOWEST_LEVEL[variant]}..{MAX_LEVEL}"
                             + (" (a graded memo needs two folds or more)" if variant == "graded" else ""))
    weights = list(weights) if weights is not None else [1] * len(levels)
    if len(weights) != len(levels) or any(int(w) != w or w < 0 for w in weights) or sum(weights) == 0:
        raise ValueError(f"level weights {weights} must be non-negative integers, one per level {list(levels)}")
    cycle = [lv for lv, w in zip(levels, weights) for _ in range(int(w))]
    rng = random.Random(seed)
    folds = [FoldProblem(tuple(rng.randrange(10) for _ in range(cycle[i % len(cycle)] + 1))) for i in range(n)]
    if variant == "fold":
        return folds
    # the memos from a stream of their own: the chains are the fold task's for the same seed
    mrng = random.Random(seed + 104729)
    grades = list(GRADES)
    # one grade per round of the level cycle: every grade sees every level equally often, whatever the cycle
    return [GradedProblem.draw(p.digits, grades[(i // len(cycle)) % len(grades)], mrng) for i, p in enumerate(folds)]


def long_teacher(p) -> str:
    """R1-style: the explicit left-to-right trace inside ``<think>…</think>``, then the boxed answer."""
    parts = p.partials()
    trace = str(p.digits[0]) + "".join(f"{OP}{d}={r}" for d, r in zip(p.digits[1:], parts[1:]))
    return f"{THINK}{trace}\n{END_THINK}\\boxed{{{p.answer}}}"


def short_teacher(p) -> str:
    """Qwen-Math-Instruct-style: the boxed answer directly (graded: what the memo gives at a glance, right or not)."""
    return f"{SHORT}\\boxed{{{p.glance}}}"


def paired_records(n: int, levels, seed: int, weights=None, short_solve_rate=None, variant: str = "fold") -> list[dict]:
    """Records in the common paired schema (see ``thinkless.tasks.data``).

    ``short_solve_rate`` (one rate per level 1..MAX_LEVEL, or None: always) is how often the short teacher gets a
    level right at a glance. Its other answers fail verification and are dropped, as ``data=teacher`` drops a real
    teacher's (``short`` is None: the SFT rows count them as ``short_missing``), so hard problems keep fewer short rows.
    ``variant="graded"``: the short teacher answers from the memo; its wrong answers are dropped the same way.
    """
    if short_solve_rate is not None:
        try:
            rates = [float(r) for r in short_solve_rate]
        except (TypeError, ValueError):
            rates = []
        if len(rates) != MAX_LEVEL or not all(0.0 <= r <= 1.0 for r in rates):
            raise ValueError(f"data.short_solve_rate={short_solve_rate!r}: one rate in [0, 1] per level "
                             f"1..{MAX_LEVEL}")
    rng = random.Random(seed + 7919)  # its own stream: the problems are the same with and without it
    out = []
    for p in make_problems(n, levels, seed, weights, variant):
        solved = (short_solve_rate is None or rng.random() < rates[p.level - 1]) and p.glance == p.answer
        out.append({"problem": p.prompt, "answer": p.answer, "long": long_teacher(p),
                    "short": short_teacher(p) if solved else None, "level": p.level,
                    **({"group": p.group} if p.group is not None else {})})
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
