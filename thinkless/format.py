"""The Thinkless response format and prompt rendering: the one parser and the one prompt renderer.

A response is ``<short>ANSWER`` or ``<think>REASONING</think>ANSWER``. ``parse`` is the only code that reads it (the
reward, reports, evaluation, SFT data and teachers all call it): the mode, the reasoning, the *answer part* (the text
after the last ``</think>``; ``None`` when thinking never closed; all of a text without control tokens) and whether
the response is well formed; how strictly that is used is the grading policy's business (``thinkless.grading``).
``render_prompt`` is the only code that turns a problem into model input: the chat template around the user turn,
ending where the model writes its control token. Both in detail: docs/pipeline.md, "Prompts, response format, grading".
"""

from __future__ import annotations

from dataclasses import dataclass

from .tokens import END_THINK, SHORT, THINK

MODES = ("think", "short")
BARE = "{problem}"  # the user turn is the problem itself


@dataclass(frozen=True)
class Parsed:
    mode: str | None  # "think" / "short" by the leading control token, None without one
    reasoning: str | None  # inside <think>...</think> (think responses whose thinking closed)
    answer: str | None  # the text an answer is read from (see the module docstring)
    well_formed: bool

    @property
    def graded_part(self) -> str | None:
        """The answer part of a well-formed response, else None (what the strict policy grades)."""
        return self.answer if self.well_formed else None


def parse(text: str) -> Parsed:
    """Parse one decoded response (control tokens kept, leading whitespace ignored)."""
    s = text.lstrip()
    if s.startswith(SHORT):
        body = s[len(SHORT):]
        well = not (THINK in body or END_THINK in body or SHORT in body)
        answer = body.rsplit(END_THINK, 1)[1] if END_THINK in body else (None if THINK in body else body)
        return Parsed("short", None, answer, well)
    if s.startswith(THINK):
        body = s[len(THINK):]
        if END_THINK not in body:
            return Parsed("think", None, None, False)  # truncated inside its thinking: no answer
        reasoning, _, after = body.partition(END_THINK)
        well = body.count(END_THINK) == 1 and THINK not in body and SHORT not in body
        return Parsed("think", reasoning, body.rsplit(END_THINK, 1)[1], well)
    answer = s.rsplit(END_THINK, 1)[1] if END_THINK in s else (None if THINK in s else s)
    return Parsed(None, None, answer, False)


# ------------------------------------------------------------------ SFT targets


def think_target(text) -> str | None:
    """A teacher's long response as a well-formed think target ``<think>...</think>ANSWER``, else None.

    R1-style teachers start inside the reasoning block (their template prefills ``<think>\\n``), so a missing
    opening tag is added. Rejected: a short response, a truncated or nested trace, an empty answer.
    """
    if not isinstance(text, str) or not text.strip():
        return None
    s = text.strip()
    if not s.startswith((THINK, SHORT)):
        s = THINK + "\n" + s
    p = parse(s)
    if p.mode != "think" or not p.well_formed or not p.answer.strip():
        return None
    return s


def short_target(text) -> str | None:
    """A teacher's direct response as a well-formed short target ``<short>ANSWER``, else None.

    The text after an existing ``<short>`` is kept as is (the official warm-up data writes ``<short>\\n``); a
    response without it gets ``<short>`` prepended. Rejected: empty, or containing reasoning tags.
    """
    if not isinstance(text, str) or not text.strip():
        return None
    s = text.strip()
    if not s.startswith(SHORT):
        s = SHORT + s
    p = parse(s)
    if not p.well_formed or not p.answer.strip():
        return None
    return s


def conclusion_of(long_text) -> str | None:
    """The official cheap pair builder: the short response is the conclusion of the long one.

    ``<short>\\n`` + the text after ``</think>`` of a well-formed long response (VainF/Reasoning-SFT,
    ``tools/create_long_short_dataset.py``), or None when the long response has no closed reasoning.
    """
    long = think_target(long_text)
    if long is None:
        return None
    return short_target(SHORT + "\n" + parse(long).answer.lstrip("\n"))


# ------------------------------------------------------------------ prompts


def user_turn(problem: str, instruction: str | None = None) -> str:
    """The user message: ``instruction`` with ``{problem}`` replaced (None: the bare problem)."""
    instruction = BARE if instruction is None else instruction
    if "{problem}" not in instruction:
        raise ValueError(f"prompt instruction {instruction!r} has no '{{problem}}' placeholder")
    return instruction.replace("{problem}", problem)


def messages(problem: str, *, instruction: str | None = None, system: str | None = None,
             suffix: str = "") -> list[dict]:
    """Chat messages for one problem (what TRL's GRPOTrainer takes as a conversational prompt); ``suffix`` is
    appended to the user turn (an objective's per-prompt extra, ``Objective.prompt_extra``: L1's target length)."""
    return ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user_turn(problem, instruction) + suffix}]


def render_prompt(tokenizer, problem: str, *, instruction: str | None = None, system: str | None = None,
                  prefill: str = "", suffix: str = "", **template_kwargs) -> str:
    """The model input for one problem: chat template, generation prompt (no mode chosen), then ``prefill``."""
    text = tokenizer.apply_chat_template(messages(problem, instruction=instruction, system=system, suffix=suffix),
                                         add_generation_prompt=True, tokenize=False, **template_kwargs)
    return text + prefill
