"""Answer extraction and grading: one grader, two named policies, safe in threads and processes.

``Grader(policy)`` (``GRADING_POLICIES``: ``strict``, the default and the reward's, reads the last ``\\boxed{}`` of a
well-formed Thinkless response's answer part; ``lenient`` the last box or number after the last ``</think>``) is
what the reward, the reports, evaluation and teacher verification all grade with. An answer is compared with the gold
exactly after a light normalization, then with math-verify, or exactly only where the problem's task says so
(``TASKS``, ``is_exact``; a task's ``thinkless.tasks.base.Task.grading`` names it). math-verify runs in a killable worker subprocess (a watchdog thread where none can start),
because a pathological answer can hold the GIL past any timeout; every timeout, parse error and over-long answer is
counted in ``GRADE_STATS``. Details: docs/evaluation.md, "Grading".
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import select
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from ._verify_worker import __file__ as _worker_file
from ._verify_worker import verify as _verify
from .format import Parsed, parse

logger = logging.getLogger(__name__)

GRADE_STATS: Counter = Counter()  # "timeout", "parse_error", "too_long": pathological inputs seen by this process
_STATS_LOCK = threading.Lock()
MAX_ANSWER_CHARS = 1000

# A plain number: thousands-separated (groups of exactly three digits) or ordinary, optionally decimal.
_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d])|-?\d+(?:\.\d+)?")


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
    """The last boxed answer, else the last plain number in the response (for models that do not box)."""
    boxed = extract_boxed(response)
    if boxed is not None:
        return boxed
    nums = _NUMBER.findall(response)
    return nums[-1] if nums else None


def normalize_gold(gold) -> list[str]:
    """Gold answers as a list of strings: accepts str, numbers, lists, GSM8K solutions ending ``#### N``."""
    if gold is None:
        return []
    if isinstance(gold, bool):
        return [str(gold)]
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


_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def _plain(s: str) -> str:
    """Light, safe normalization for the exact-match fast path (never merges answers that differ)."""
    s = s.strip().strip("$").strip()
    s = re.sub(r"\\text\{\s*([^{}]*?)\s*\}", r"\1", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.replace("{,}", ",").replace(",\\!", ",")
    for sp in ("\\!", "\\,", "\\;", "\\:", "\\ ", "~", " "):
        s = s.replace(sp, "")
    s = s.rstrip(".")
    if _THOUSANDS.fullmatch(s):
        s = s.replace(",", "")
    if re.fullmatch(r"-?\d+", s):
        s = str(int(s))  # leading zeros (AIME "025")
    elif re.fullmatch(r"-?\d+\.\d+", s):
        s = s.rstrip("0").rstrip(".")  # "18.00" -> "18"
        s = str(int(s)) if re.fullmatch(r"-?\d+", s) else s
    return s


def canonical_answer(s: str | None) -> str | None:
    """A hashable normal form of an extracted answer (for voting); ``None`` stays ``None``."""
    return None if s is None else _plain(s)


def _count(key: str) -> None:
    with _STATS_LOCK:
        GRADE_STATS[key] += 1


class _Timeout(Exception):
    pass


class _VerifyWorker:
    """math-verify in a child interpreter, one request at a time over JSON lines; killed on timeout."""

    START_TIMEOUT = 120.0

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()
        self.buf = b""

    def _start(self) -> None:
        code = ("import importlib.util, sys\n"
                f"spec = importlib.util.spec_from_file_location('_thinkless_verify_worker', {_worker_file!r})\n"
                "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); m.main()\n")
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, bufsize=0)
        self.buf = b""
        line = self._readline(self.START_TIMEOUT)
        if line != "ready":
            self._kill()
            raise RuntimeError(f"grading worker did not start (got {line!r})")

    def _readline(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Timeout
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                raise _Timeout
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError("grading worker exited")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def _kill(self) -> None:
        if self.proc is not None:
            try:
                self.proc.kill()
                self.proc.wait(timeout=10)
            except Exception:  # already gone
                pass
        self.proc = None

    def check(self, pred: str, gold: str, timeout: float) -> bool:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            try:
                self.proc.stdin.write((json.dumps([pred, gold]) + "\n").encode())
                out = json.loads(self._readline(timeout))
            except _Timeout:
                self._kill()
                raise
            except (BrokenPipeError, RuntimeError, ValueError):
                self._kill()
                raise
        if "error" in out:
            raise ValueError(out["error"])
        return bool(out["ok"])

    def close(self) -> None:
        self._kill()


_WORKER = _VerifyWorker()
atexit.register(_WORKER.close)
_ISOLATION = {"mode": os.environ.get("THINKLESS_GRADE_ISOLATION", "process")}  # "process" | "thread"
_POOL = {"pool": None}
_POOL_LOCK = threading.Lock()


def set_isolation(mode: str) -> None:
    """``"process"`` (default: a killable worker subprocess) or ``"thread"`` (an abandonable watchdog thread)."""
    if mode not in ("process", "thread"):
        raise ValueError(f"grading isolation {mode!r}: valid choices are ('process', 'thread')")
    _ISOLATION["mode"] = mode


def _thread_check(pred: str, gold: str, timeout: float) -> bool:
    with _POOL_LOCK:
        if _POOL["pool"] is None:
            _POOL["pool"] = ThreadPoolExecutor(max_workers=4, thread_name_prefix="grade")
        pool = _POOL["pool"]
    fut = pool.submit(_verify, pred, gold)
    try:
        return fut.result(timeout=timeout)
    except FutureTimeout:
        with _POOL_LOCK:  # the stuck thread keeps its pool: later checks get fresh threads
            if _POOL["pool"] is pool:
                _POOL["pool"] = None
        pool.shutdown(wait=False)
        raise _Timeout from None


def _check(pred: str, gold: str, timeout: float) -> bool:
    if _ISOLATION["mode"] == "process":
        try:
            return _WORKER.check(pred, gold, timeout)
        except (_Timeout, ValueError):
            raise
        except Exception as e:  # cannot start a subprocess here: degrade to a watchdog thread, once and loudly
            logger.warning("grading worker subprocess unavailable (%s); using a watchdog thread", e)
            _ISOLATION["mode"] = "thread"
    return _thread_check(pred, gold, timeout)


_BASE = re.compile(r"^\s*([0-9A-Za-z]+)\s*_\s*\{?\s*(\d+)\s*\}?\s*$")


def _bases_differ(pred: str, gold: str) -> bool:
    """``2516_8`` vs ``2516_1``: numbers in different bases (math-verify drops the subscript)."""
    mp, mg = _BASE.match(pred), _BASE.match(gold)
    return bool(mp and mg and (mp.group(2) != mg.group(2) or mp.group(1) != mg.group(1)))


def answers_match(pred: str | None, gold, *, timeout: float = 5.0) -> bool:
    """Does the extracted answer ``pred`` match any accepted gold answer? Exact-after-normalization first."""
    if pred is None:
        return False
    golds = normalize_gold(gold)
    p = _plain(pred)
    if not p:
        return False
    if any(p == _plain(g) for g in golds):
        return True
    if len(pred) > MAX_ANSWER_CHARS:
        _count("too_long")
        return False
    for g in golds:
        if _bases_differ(pred, g):
            continue
        try:
            if _check(pred, g, timeout):
                return True
        except _Timeout:
            _count("timeout")
        except Exception:  # math-verify raised on malformed LaTeX: a wrong answer, counted
            _count("parse_error")
    return False


GRADING_POLICIES = ("strict", "lenient")


@dataclass(frozen=True)
class Verdict:
    correct: bool
    answer: str | None  # the extracted final answer (None: nothing gradable under the policy)
    mode: str | None  # the response's leading control token ("think" / "short"), None without one
    well_formed: bool


TASKS = ("math", "synthetic")  # grading kinds: how an answer is compared with the gold (a Task says which it needs)


def is_exact(task: str | None) -> bool:
    """Is a problem of ``task`` graded by exact match (``Grader(exact=True)``: the synthetic task's integers) rather
    than with math-verify? The one map from a task to the grader's flag."""
    return task == "synthetic"


class Grader:
    """Grades responses under one policy; caches answer checks (the samples of a problem often share an answer)."""

    def __init__(self, policy: str = "strict", *, exact: bool = False, timeout: float = 5.0):
        if policy not in GRADING_POLICIES:
            raise ValueError(f"grading policy {policy!r}: valid choices are {GRADING_POLICIES}")
        self.policy, self.exact, self.timeout = policy, exact, timeout
        self._correct: dict = {}
        self._equivalent: dict = {}

    def extract(self, parsed: Parsed) -> str | None:
        """The answer of a parsed response under this policy."""
        if self.policy == "strict":
            part = parsed.graded_part
            return None if part is None else extract_boxed(part)
        return None if parsed.answer is None else final_answer(parsed.answer)

    def correct(self, answer: str | None, gold) -> bool:
        if answer is None:
            return False
        key = (answer, repr(gold))
        if key not in self._correct:
            if self.exact:
                self._correct[key] = any(answer.strip() == g.strip() for g in normalize_gold(gold))
            else:
                self._correct[key] = answers_match(answer, gold, timeout=self.timeout)
        return self._correct[key]

    def equivalent(self, a: str, b: str) -> bool:
        """Do two extracted answers agree (majority voting)?"""
        if self.exact:
            return a.strip() == b.strip()
        key = (a, b) if a <= b else (b, a)
        if key not in self._equivalent:
            self._equivalent[key] = answers_match(a, b, timeout=self.timeout)
        return self._equivalent[key]

    def grade(self, response: str, gold) -> Verdict:
        parsed = parse(response)
        answer = self.extract(parsed)
        return Verdict(self.correct(answer, gold), answer, parsed.mode, parsed.well_formed)


def grade(response: str, gold, *, policy: str = "strict", exact: bool = False, timeout: float = 5.0) -> bool:
    """Is the answer of ``response`` (read under ``policy``) equal to ``gold``?"""
    return Grader(policy, exact=exact, timeout=timeout).grade(response, gold).correct


def grade_completions(completions, answer, task=None, *, timeout: float = 5.0) -> list[Verdict | None]:
    """The strict grader's verdict on each RL completion (text or conversational) against its gold answer; None where
    the gold cannot be graded. ``task[i]``: the problem's task (``is_exact``: exact match, else math-verify). What
    the reward function and the trainer's rollout columns read."""
    graders = {ex: Grader("strict", exact=ex, timeout=timeout) for ex in (False, True)}
    out = []
    for i, (text, gold) in enumerate(zip(completions, answer)):
        text = text if isinstance(text, str) else text[-1]["content"]  # conversational completions
        exact = task is not None and is_exact(task[i])
        out.append(graders[exact].grade(text, gold) if normalize_gold(gold) else None)
    return out


def gold_is_gradable(gold, *, exact: bool = False) -> bool:
    """Can ``gold`` be graded at all? RL prompts failing this are dropped (and counted), never rewarded -1."""
    golds = normalize_gold(gold)
    if not golds:
        return False
    if exact:
        return True
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse as mv_parse

    cfg = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    try:
        return any(bool(mv_parse(f"${g}$", extraction_config=cfg, parsing_timeout=None)) for g in golds)
    except Exception:  # math-verify raised on this gold: not gradable
        return False
