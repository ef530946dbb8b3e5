"""math-verify equivalence check, and the worker loop ``thinkless.grading`` runs it in (a killable subprocess).

Standalone on purpose: the worker interpreter loads this file by path, without importing the ``thinkless`` package
(and torch), so it starts in about a second.
"""

import json
import logging
import sys


def verify(pred: str, gold: str) -> bool:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify as mv_verify

    cfg = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    g = parse(f"${gold}$", extraction_config=cfg, parsing_timeout=None)
    p = parse(f"${pred}$", extraction_config=cfg, parsing_timeout=None)
    if not g or not p:
        return False
    return bool(mv_verify(g, p, timeout_seconds=None))


def main() -> None:  # runs in the child interpreter: one JSON request per line, one JSON answer per line
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.CRITICAL)
    import math_verify  # noqa: F401  (import before announcing readiness, so startup is not timed)

    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        try:
            pred, gold = json.loads(line)
            out = {"ok": verify(pred, gold)}
        except Exception as e:  # malformed LaTeX: reported to the parent, counted there
            out = {"error": f"{type(e).__name__}: {e}"[:300]}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
