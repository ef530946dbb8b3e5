"""Fingerprints of what shaped a piece of state (a run's checkpoints, a resumable generation file), and their diff.

One owner for "is this state from the same configuration?": the stage runner records the run's configuration with
every checkpoint (``thinkless.runs.stage``), evaluation and teacher generation record theirs beside each resumable file
(``check_meta``); a mismatch stops before any work, listing the differing keys. ``model_stamp`` names the model a
piece of state was made with.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path


def fingerprint(d: dict) -> str:
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:10]


def content_id(path: str | Path) -> str | None:
    """What a local input holds, as a short hash (None: not a local path, e.g. a Hub id, which its name identifies).

    A model folder (``config.json``): its small files in full (config, generation config, tokenizer, chat template,
    the saving stage's ``run_config.json`` with its ``saved_at`` stamp) and each weight file's size, safetensors
    header and 64 KiB at 16 evenly spaced places (training moves every weight, so new weights differ there): about a
    megabyte read per file at any model size; a folder that a stage saved again also has a new stamp. Any other file
    or folder (data): every byte."""
    p = Path(os.path.expanduser(str(path)))
    if not p.exists():
        return None
    h = hashlib.sha1()
    if p.is_dir() and (p / "config.json").is_file():
        for f in sorted(q for q in p.iterdir() if q.is_file()):
            h.update(f.name.encode() + b"\0")
            if f.suffix in (".safetensors", ".bin", ".pt", ".pth", ".gguf"):
                h.update(_sampled(f))
            elif f.stat().st_size <= 100_000_000:
                h.update(f.read_bytes())
        return h.hexdigest()[:12]
    for f in sorted(q for q in ([p] if p.is_file() else p.rglob("*")) if q.is_file()):
        h.update(str(f.relative_to(p) if f != p else f.name).encode() + b"\0")
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:12]


def _sampled(f: Path, blocks: int = 16, block: int = 1 << 16) -> bytes:
    """A weight file's size, safetensors header (if any) and ``blocks`` evenly spaced blocks of its bytes."""
    size = f.stat().st_size
    out = [str(size).encode()]
    with f.open("rb") as fh:
        if f.suffix == ".safetensors":
            head = fh.read(8)
            n = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
            out.append(head + fh.read(min(n, 100_000_000)))
        if size <= blocks * block:
            fh.seek(0)
            out.append(fh.read())
        else:
            for i in range(blocks):
                fh.seek((size - block) * i // (blocks - 1))
                out.append(fh.read(block))
    return b"".join(out)


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


def model_stamp(model) -> dict:
    """Which model this is, cheaply: a local folder by its weight files' and config's sizes and mtimes, a Hub id by
    name (what evaluations, reports and pre-pass caches record of the model they ran)."""
    p = Path(os.path.expanduser(str(model)))
    if p.is_dir():
        files = sorted(p.glob("*.safetensors")) + sorted(p.glob("*.bin")) + [p / "config.json"]
        return {"path": str(p.resolve()),
                "files": [[f.name, f.stat().st_size, int(f.stat().st_mtime)] for f in files if f.exists()]}
    return {"hub": str(model)}
