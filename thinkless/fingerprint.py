"""Fingerprints of what shaped a piece of state (a run's checkpoints, a resumable generation file), and their diff.

One owner for "is this state from the same configuration?": the stage runner records the run's configuration with
every checkpoint (``thinkless.stage``), evaluation and teacher generation record theirs beside each resumable file
(``check_meta``); a mismatch stops before any work, listing the differing keys.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def fingerprint(d: dict) -> str:
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:10]


def flatten(d, prefix: str = "") -> dict:
    """``{"a": {"b": 1}, "c": [2]}`` -> ``{"a.b": 1, "c": [2]}`` (lists are values)."""
    if not isinstance(d, dict) or (prefix and not d):
        return {prefix: d}
    out = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def diff(old: dict, new: dict) -> list[str]:
    """``["key: old -> new", ...]`` for every leaf that differs (``(unset)`` where one side lacks it)."""
    a, b = flatten(json.loads(json.dumps(old, default=str))), flatten(json.loads(json.dumps(new, default=str)))
    out = []
    for k in sorted(set(a) | set(b)):
        if a.get(k, "(unset)") != b.get(k, "(unset)"):
            out.append(f"{k}: {a.get(k, '(unset)')!r} -> {b.get(k, '(unset)')!r}")
    return out


def show(lines: list[str], limit: int = 20) -> str:
    more = f"\n  ... and {len(lines) - limit} more" if len(lines) > limit else ""
    return "".join(f"\n  {ln}" for ln in lines[:limit]) + more


def check_meta(meta_path: Path, meta: dict, *, what: str, data_exists: bool, hint: str) -> None:
    """Record ``meta`` at ``meta_path``, or check it against the one recorded there; ``ValueError`` on a mismatch
    (or on existing data without a record: it cannot be told apart from another configuration's)."""
    meta_path = Path(meta_path)
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        changes = diff(old, meta)
        if changes:
            raise ValueError(f"{what} was made with different settings; resuming it would mix them:"
                             f"{show(changes)}\n{hint}")
        return
    if data_exists:
        raise ValueError(f"{what} has no record of the settings that made it ({meta_path.name} is missing), so "
                         f"resuming it could mix two configurations.\n{hint}")
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    meta_path.write_text(json.dumps(json.loads(json.dumps(meta, default=str)), indent=2))
