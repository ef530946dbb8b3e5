"""Answer extraction and grading: pure functions, safe in threads and processes.

``grade(response, gold)`` takes the final answer of a response (the last ``\\boxed{}``; a plain trailing number as
a fallback) and checks it against the gold with math-verify. math-verify's own timeout uses SIGALRM, which only
works in the main thread of the main interpreter; we disable it and bound each check with our own watchdog (a
worker thread we can abandon), so grading works inside TRL reward workers, thread pools and DataLoader
processes alike. A check that times out counts as wrong and is counted in ``GRADE_STATS``.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

GRADE_STATS: Counter = Counter()  # "timeout", "parse_error": pathological inputs seen by this process
_STATS_LOCK = threading.Lock()
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="grade")

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def extract_boxed(text: str, *, last: bool = True) -> str | None:
    """Content of the last (or first) ``\\boxed{...}`` / ``\\fbox{...}``, braces matched; ``None`` if absent."""
    starts = [m.end() for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text)]
    if not starts:
        return None
    for start in reversed(starts) if last else starts:
        depth, i = 1, start
        while i < len(text):
            c = text[i]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    return text[start:i].strip()
            i += 1
    return None  # unbalanced


def final_answer(response: str) -> str | None:
    """The last boxed answer, else the last number in the response (for models that do not box)."""
    boxed = extract_boxed(response)
    if boxed is not None:
        return boxed
    nums = _NUMBER.findall(response)
    return nums[-1] if nums else None


def normalize_gold(gold) -> list[str]:
    """Gold answers as a list of strings: accepts str, numbers, lists, GSM8K solutions ending ``#### N``."""
    if gold is None:
        return []
    if isinstance(gold, (list, tuple)):
        return [g for item in gold for g in normalize_gold(item)]
    if isinstance(gold, float) and gold.is_integer():
        gold = int(gold)
    s = str(gold).strip()
    if "####" in s:
        s = s.rsplit("####", 1)[1].strip()
    boxed = extract_boxed(s)
    if boxed is not None and s.startswith("\\boxed"):
        s = boxed
    return [s] if s else []


def _plain(s: str) -> str:
    s = s.strip().strip("$").strip()
    s = re.sub(r"\\text\{\s*([^}]*)\}", r"\1", s)
    s = s.replace("\\!", "").replace("\\,", "").replace(" ", "")
    if re.fullmatch(r"-?[\d,]+(\.\d+)?", s):
        s = s.replace(",", "")
        if re.fullmatch(r"-?\d+", s):
            s = str(int(s))  # leading zeros (AIME "025")
    return s


def _verify(pred: str, gold: str) -> bool:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    cfg = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    g = parse(f"${gold}$", extraction_config=cfg, parsing_timeout=None)
    p = parse(f"${pred}$", extraction_config=cfg, parsing_timeout=None)
    if not g or not p:
        return False
    return bool(verify(g, p, timeout_seconds=None))


def _count(key: str) -> None:
    with _STATS_LOCK:
        GRADE_STATS[key] += 1


def answers_match(pred: str | None, gold, *, timeout: float = 5.0) -> bool:
    """Does the extracted answer ``pred`` match any accepted gold answer? Exact-after-normalization first."""
    if pred is None:
        return False
    golds = normalize_gold(gold)
    p = _plain(pred)
    if any(p == _plain(g) for g in golds):
        return True
    for g in golds:
        fut = _POOL.submit(_verify, pred, g)
        try:
            if fut.result(timeout=timeout):
                return True
        except FutureTimeout:
            _count("timeout")
        except Exception:  # math-verify raises on some malformed LaTeX: a wrong answer, counted
            _count("parse_error")
    return False


def grade(response: str, gold, *, timeout: float = 5.0) -> bool:
    """Is the final answer of ``response`` (last ``\\boxed{}``, else last number) equal to ``gold``?"""
    return answers_match(final_answer(response), gold, timeout=timeout)
