"""Paired SFT data: one interface over three sources, and the rows SFT trains on.

Every source yields *paired records* ``{"problem", "answer", "long", "short", "level"?}``; ``build_sft_rows``
turns each into two prompt/completion rows, one per mode, with the control token first and the EOS last.
Rows that cannot be trained on are dropped and counted in a ``DropStats`` (reported at the end of the run),
never silently and never with a crash.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path

from .tokens import END_THINK, SHORT, THINK, generation_prompt

logger = logging.getLogger(__name__)

LOCAL_SUFFIXES = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}


class DropStats(Counter):
    """Counts of records dropped, by reason, plus ``kept``."""

    def summary(self) -> str:
        dropped = {k: v for k, v in self.items() if k != "kept"}
        return f"kept {self.get('kept', 0)}, dropped {sum(dropped.values())} {dict(sorted(dropped.items()))}"


def looks_local(name: str) -> bool:
    return os.path.exists(name) or name.startswith(("/", "./", "../", "~")) or Path(name).suffix in LOCAL_SUFFIXES


def load_rows(name: str, *, split: str = "train", subset: str | None = None, limit: int | None = None) -> list[dict]:
    """Rows of a local JSON / JSONL / parquet / CSV file (a JSON list or JSON lines) or a Hub dataset by name."""
    if looks_local(name):
        path = Path(name).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"data file {str(path)!r} does not exist")
        if path.suffix in (".json", ".jsonl"):
            text = path.read_text()
            stripped = text.lstrip()
            if stripped.startswith("["):
                rows = json.loads(text)
            else:
                rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        elif path.suffix in LOCAL_SUFFIXES:
            import datasets

            rows = datasets.load_dataset(LOCAL_SUFFIXES[path.suffix], data_files=str(path), split="train").to_list()
        else:
            raise ValueError(f"unsupported data file {str(path)!r}: use one of {sorted(LOCAL_SUFFIXES)}")
    else:
        import datasets

        try:
            ds = datasets.load_dataset(name, subset, split=split)
        except Exception as e:  # offline, typo, gated: say which dataset and why
            raise RuntimeError(f"could not load dataset {name!r} (split {split!r}) from the Hub: {e}") from e
        if limit is not None:
            ds = ds.select(range(min(limit, len(ds))))
        rows = ds.to_list()
    return rows[:limit] if limit is not None else rows


def _field(row: dict, key: str | None):
    """``row[key]`` with dotted access into nested dicts (``"extra.level"``); None if missing."""
    if key is None:
        return None
    cur = row
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def normalize_long(text) -> str | None:
    """``<think>trace</think>answer`` from an R1-style response; None if it has no closed reasoning block."""
    if not isinstance(text, str) or not text.strip():
        return None
    s = text.strip()
    if s.startswith(SHORT):
        return None
    if not s.startswith(THINK):
        s = THINK + "\n" + s  # R1 templates prefill "<think>\n", so teachers' outputs start inside the block
    if s.count(THINK) != 1 or s.count(END_THINK) != 1 or not s.split(END_THINK, 1)[1].strip():
        return None  # truncated, nested, or no answer after reasoning
    return s


def normalize_short(text) -> str | None:
    """``<short>answer`` from a direct response; None if empty or if it contains reasoning tags."""
    if not isinstance(text, str) or not text.strip():
        return None
    s = text.strip()
    if s.startswith(SHORT):
        s = s[len(SHORT):].lstrip()
    if not s or THINK in s or END_THINK in s or SHORT in s:
        return None
    return SHORT + s


def records_from_rows(rows: list[dict], fields: dict, stats: DropStats, *, require_answer: bool = True) -> list[dict]:
    """Map arbitrary rows to paired records using ``fields`` = {problem, answer, long, short, level} keys."""
    out = []
    for row in rows:
        problem = _field(row, fields.get("problem"))
        answer = _field(row, fields.get("answer"))
        if not isinstance(problem, str) or not problem.strip():
            stats["no_problem"] += 1
            continue
        if require_answer and (answer is None or str(answer).strip() == ""):
            stats["no_answer"] += 1
            continue
        rec = {"problem": problem, "answer": None if answer is None else answer,
               "long": _field(row, fields.get("long")), "short": _field(row, fields.get("short"))}
        level = _field(row, fields.get("level"))
        if level is not None:
            rec["level"] = level
        out.append(rec)
    return out


def build_sft_rows(records: list[dict], tokenizer, stats: DropStats, *, system: str | None = None,
                   max_length: int | None = None, modes=("think", "short")) -> list[dict]:
    """Two rows per record (think and short), prompt rendered with the fixed chat template, EOS appended.

    A record whose response for a mode is missing, empty or malformed loses that row (counted as
    ``empty_<mode>``); a row longer than ``max_length`` tokens is dropped (``too_long``) rather than truncated,
    because truncation would cut the EOS and teach the model never to stop.
    """
    eos = tokenizer.eos_token
    rows = []
    for rec in records:
        prompt = generation_prompt(tokenizer, rec["problem"], system=system)
        for mode in modes:
            resp = normalize_long(rec.get("long")) if mode == "think" else normalize_short(rec.get("short"))
            if resp is None:
                stats[f"empty_{mode}"] += 1
                continue
            rows.append({"prompt": prompt, "completion": resp + eos, "mode": mode,
                         "level": rec.get("level", -1), "answer": str(rec.get("answer"))})
    if max_length is not None and rows:
        lengths = [len(ids) for ids in tokenizer([r["prompt"] + r["completion"] for r in rows],
                                                 add_special_tokens=False)["input_ids"]]
        kept = []
        for r, n in zip(rows, lengths):
            if n > max_length:
                stats["too_long"] += 1
            else:
                kept.append(r)
        rows = kept
    stats["kept"] += len(rows)
    return rows
