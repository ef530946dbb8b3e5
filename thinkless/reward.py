"""The Thinkless reward: 1 (correct, short), 1−γ (correct, think), −1 (wrong or malformed).

The format check is strict on purpose: a prototype with a looser one was gamed within ~150 steps (coupled
GRPO learned to write ``<short>``, then a full trace and ``</think>``, then the answer). A short response may
contain no reasoning tags at all; a think response has exactly one ``<think>`` (its first token), exactly one
``</think>``, no ``<short>``, and is graded only on what follows ``</think>``.
"""

from __future__ import annotations

from collections import Counter

from .grading import answers_match, extract_boxed, normalize_gold
from .tokens import END_THINK, SHORT, THINK

REWARD_STATS: Counter = Counter()  # "unparseable_gold": samples whose gold could not be graded


def split_response(response: str) -> tuple[str | None, str | None]:
    """(mode, graded part) of a completion, or (mode, None) when the format is invalid."""
    s = response.lstrip()
    if s.startswith(SHORT):
        body = s[len(SHORT):]
        if THINK in body or END_THINK in body or SHORT in body:
            return "short", None
        return "short", body
    if s.startswith(THINK):
        body = s[len(THINK):]
        if THINK in body or SHORT in body or body.count(END_THINK) != 1:
            return "think", None  # nested, mixed, or truncated before </think>
        return "think", body.split(END_THINK, 1)[1]
    return None, None


def is_correct(response: str, gold, *, exact: bool = False) -> bool:
    """Correct answer in a well-formed response (either mode)."""
    _, graded = split_response(response)
    if graded is None:
        return False
    pred = extract_boxed(graded)
    if pred is None:
        return False
    if exact:
        return pred.strip() == str(gold).strip()
    return answers_match(pred, gold)


def gold_is_gradable(gold, *, exact: bool = False) -> bool:
    """Can ``gold`` be graded at all? Prompts failing this are skipped (and counted), not rewarded −1."""
    golds = normalize_gold(gold)
    if not golds:
        return False
    if exact:
        return True
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    cfg = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    try:
        return any(bool(parse(f"${g}$", extraction_config=cfg, parsing_timeout=None)) for g in golds)
    except Exception:
        return False


def thinkless_reward(response: str, gold, gamma: float = 0.5, *, exact: bool = False) -> float:
    """Reward of one completion (decoded with control tokens kept) against its gold answer."""
    mode, _ = split_response(response)
    if mode is None or not is_correct(response, gold, exact=exact):
        return -1.0
    return 1.0 if mode == "short" else 1.0 - gamma


def make_reward_func(gamma: float = 0.5):
    """A TRL reward function: ``(prompts, completions, answer, task=None, **kw) -> list[float | None]``.

    ``answer`` and the optional ``task`` (``"synthetic"`` → exact match) are dataset columns that TRL passes
    through. A gold answer that cannot be graded yields ``None`` for the sample and is counted in
    ``REWARD_STATS``. (``thinkless.monitor.ThinklessRewardFunc`` without a trainer attached: no statistics.)
    """
    from .monitor import ThinklessRewardFunc

    return ThinklessRewardFunc(gamma)
