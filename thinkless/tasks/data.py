"""Data: the one loader (local files and Hub datasets, used by distill, RL and evaluation) and the SFT rows.

Loading (``load_table`` / ``load_rows``). A local JSON / JSONL / parquet / CSV file, or a Hub dataset by name.
The rule for bad input, everywhere: a row that cannot be used is **dropped and counted** (``DropStats``, reported
at the end of the run), never silently and never with a bare traceback:

* a JSON-lines line that is not valid JSON (or not an object) is skipped and counted as ``bad_json_line``, with
  its ``file:line`` in a warning — unless more than ``MAX_BAD_LINE_FRACTION`` (10%) of the lines are bad, which
  means the file is not what the config says: then the run stops with an error naming ``file:line`` of the first;
* a row whose field holds the wrong type (``ROLE_TYPES``: a problem that is a number, an answer that is a dict)
  is a bad row by the same rule, counted as ``bad_type``; a line that is not UTF-8 is a bad line;
* a JSON file (a list) that does not parse stops the run with an error naming ``file:line:column``; a UTF-8
  byte-order mark at the start of a JSON / JSONL file is skipped;
* an empty source (a file or split without rows) stops the run with one message naming it;
* a row without a required field (problem, answer, response) is dropped and counted (``no_problem``,
  ``no_answer``, ``no_output``, ``no_control_token``); when *no* row has the field, the run stops
  naming the field and the keys the rows do have (a wrong field name, not bad rows);
* SFT rows, per role (think / short): a response that is there but cannot be trained is a bad row of its role,
  counted by what is wrong (``think_unclosed``: no ``</think>``; ``think_is_short``; ``think_malformed``: nested
  or repeated tags; ``think_no_answer``: nothing after ``</think>``; ``short_has_think_tags``; ``short_no_answer``;
  ``short_no_conclusion``: the conclusion layout's long response has none; ``too_long``), and a role that loses
  more than ``MAX_BAD_LINE_FRACTION`` of its rows that way, or keeps none at all, stops the stage before training
  with the counts per reason and an example (``role_drop_problem``). A missing response (null or blank:
  ``think_missing`` / ``short_missing``) is counted but is not a bad row: teachers store an unverified response
  as null, by design.

SFT rows (``sft_table``). Three row layouts become prompt/completion rows, one per trained response:

* ``paired``: ``{problem, answer?, long, short}`` -> two rows (think and short);
* ``flat`` (the official warm-up data, ``Vinnnf/Hybrid-OpenThoughts2-1M-1.5B``): ``{instruction, output}``, one row
  per response, the mode read from the output's leading control token, no answer needed (pre-verified data);
* ``conclusion`` (the official cheap pair builder): ``{problem, long}`` -> the long row plus a short row whose
  response is the long one's conclusion (``thinkless.format.conclusion_of``).

The prompt is rendered by ``thinkless.format.render_prompt``; the completion is the response in the Thinkless
format (``think_target`` / ``short_target``) plus the EOS. A row longer than ``max_length`` tokens is dropped
(``too_long``, a bad row of its role), never truncated: truncation would cut the EOS and teach the model never to
stop. The rows are built with ``datasets.map`` (Arrow-backed, ``num_proc`` workers), so a million-row warm-up set
is never held in Python lists.
"""

from __future__ import annotations

import codecs
import json
import logging
import numbers
import os
import re
from collections import Counter
from pathlib import Path

from ..format import conclusion_of, parse, render_prompt, short_target, think_target
from ..tokens import END_THINK, SHORT, THINK

logger = logging.getLogger(__name__)

LOCAL_SUFFIXES = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}
MAX_BAD_LINE_FRACTION = 0.1
LAYOUTS = ("paired", "flat", "conclusion")


class DropStats(Counter):
    """Counts of records dropped, by reason, plus ``kept``."""

    def summary(self) -> str:
        dropped = {k: v for k, v in self.items() if k != "kept"}
        return f"kept {self.get('kept', 0)}, dropped {sum(dropped.values())} {dict(sorted(dropped.items()))}"


def looks_local(name: str) -> bool:
    return os.path.exists(name) or name.startswith(("/", "./", "../", "~")) or Path(name).suffix in LOCAL_SUFFIXES


def get_field(row: dict, key: str | None):
    """``row[key]`` with dotted access into nested dicts (``"extra.level"``); None if missing."""
    if key is None:
        return None
    cur = row
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def parse_level(value, missing=-1):
    """A difficulty level as a non-negative int: ``3``, ``3.0``, ``"3"``, ``"3.0"``, ``"Level 3"`` (any case) -> 3.

    The one reader of levels, for SFT rows, RL prompts and benchmarks alike, so a level means the same in training
    statistics and in evaluation tables. Anything else — missing, a bool, a negative or non-integral number, a string
    such as ``"Level ?"`` — is ``missing``: -1 by default, the training side's "no level" (``modes/think_ratio_L*``
    skip levels < 0); evaluation passes ``missing=None``.
    """
    if value is None or isinstance(value, bool):
        return missing
    if isinstance(value, numbers.Real):  # numpy scalars too
        f = float(value)
        return int(f) if f.is_integer() and f >= 0 else missing
    m = re.fullmatch(r"\s*(?:level\s*)?(\d+)(?:\.0+)?\s*", str(value), flags=re.IGNORECASE)
    return int(m.group(1)) if m else missing


# What each field role must hold. A present value of another type (an answer that is a dict, a problem that is a
# number) is a bad row: dropped and counted (``bad_type``) by the same rule as a malformed JSON line, because
# kept it would be silently wrong (a dict gold becomes the string "{'value': 5}" and can never be graded correct).
_TEXT = (str,)
_NUMBER = (int, float)
ROLE_TYPES = {"problem": "text", "instruction": "text", "long": "text", "short": "text", "output": "text",
              "answer": "answer", "level": "level"}
_TYPE_WORDS = {"text": "text", "answer": "text, a number or a list of them", "level": "a number or text"}


def field_roles(fields: dict) -> dict[str, str]:
    """``{field path: role}`` from a role -> field mapping (``data.fields``; a role may name a list of fields)."""
    out = {}
    for role, paths in (fields or {}).items():
        if role not in ROLE_TYPES or paths is None:
            continue
        for path in [paths] if isinstance(paths, str) else list(paths):
            out[str(path)] = role
    return out


def _type_ok(value, role: str) -> bool:
    kind = ROLE_TYPES[role]
    if kind == "text":
        return isinstance(value, str)
    scalar = isinstance(value, (*_TEXT, *_NUMBER)) and not isinstance(value, bool)
    if kind == "level":
        return scalar
    return scalar or (isinstance(value, (list, tuple)) and all(
        isinstance(v, (*_TEXT, *_NUMBER)) and not isinstance(v, bool) for v in value))


def type_problem(row: dict, roles: dict[str, str]) -> str | None:
    """Why ``row`` has a field of the wrong type (None when every present field is fine)."""
    for path, role in roles.items():
        v = get_field(row, path)
        if v is not None and not _type_ok(v, role):
            shown = repr(v)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            return f"field {path!r} is a {type(v).__name__} ({shown}), expected {_TYPE_WORDS[ROLE_TYPES[role]]}"
    return None


def _screen(source: str, rows: list[tuple[str, object]], bad: list[tuple[str, str, str]], roles: dict[str, str],
            stats: Counter | None, *, unit: str = "lines") -> list[dict]:
    """The drop-and-count rule for one source: ``rows`` are ``(location, row)``, ``bad`` the ``(location, reason,
    counter)`` of rows that did not parse. Rows of a wrong field type join ``bad``; more than
    ``MAX_BAD_LINE_FRACTION`` bad means the source is not what the config says: stop, naming the first."""
    kept = []
    bad = list(bad)
    for loc, row in rows:
        why = type_problem(row, roles) if roles else None
        if why:
            bad.append((loc, why, "bad_type"))
        else:
            kept.append(row)
    if bad:
        total = len(kept) + len(bad)
        first = f"{bad[0][0]}: {bad[0][1]}"
        if len(bad) > MAX_BAD_LINE_FRACTION * total:
            raise ValueError(f"{first}; {len(bad)} of {total} {unit} are bad (more than "
                             f"{MAX_BAD_LINE_FRACTION:.0%}): is {source} what the config says (format, field names)?")
        for loc, why, _ in bad[:5]:
            logger.warning("%s: %s: row skipped", loc, why)
        counts = Counter(c for _, _, c in bad)
        logger.warning("%s: %d of %d %s skipped, counted as %s", source, len(bad), total, unit, dict(counts))
        if stats is not None:
            stats.update(counts)
    return kept


def _json_msg(e: json.JSONDecodeError) -> str:
    # json's messages end in " at" ("Unterminated string starting at"), which expects the position to follow
    return e.msg.removesuffix(" at")


def _json_lines(path: Path, stats: Counter | None, roles: dict[str, str]) -> list[dict]:
    rows, bad = [], []
    with path.open("rb") as f:
        for i, raw in enumerate(f, 1):
            loc = f"{path}:{i}"
            if i == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)  # editors on Windows save UTF-8 with a byte-order mark
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                bad.append((loc, f"not UTF-8 text (byte {raw[e.start]:#04x} at column {e.start + 1})",
                            "bad_json_line"))
                continue
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                bad.append((loc, f"invalid JSON at column {e.colno}: {_json_msg(e)}", "bad_json_line"))
                continue
            if not isinstance(row, dict):
                bad.append((loc, f"a JSON {type(row).__name__}, not an object", "bad_json_line"))
                continue
            rows.append((loc, row))
    return _screen(path.name, rows, bad, roles, stats)


def _read_text(path: Path) -> str:
    data = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text (byte {data[e.start]:#04x}); save the file as UTF-8") from None


def _read_local(path: Path, stats: Counter | None, roles: dict[str, str] | None = None) -> list[dict]:
    roles = roles or {}
    if not path.exists():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist")
    if path.suffix not in LOCAL_SUFFIXES:
        raise ValueError(f"unsupported data file {str(path)!r}: use one of {sorted(LOCAL_SUFFIXES)}")
    if path.suffix in (".json", ".jsonl"):
        with path.open("rb") as f:
            head = f.read(4096).removeprefix(codecs.BOM_UTF8).lstrip()
        if not head.startswith(b"["):
            return _json_lines(path, stats, roles)
        text = _read_text(path)
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{e.lineno}:{e.colno}: invalid JSON ({_json_msg(e)}); a .json file must be one JSON "
                             "list of objects (or JSON lines)") from None
        if not all(isinstance(r, dict) for r in rows):
            raise ValueError(f"{path}: the JSON list must hold objects (one per row)")
        return _screen(path.name, [(f"{path}: row {i}", r) for i, r in enumerate(rows)], [], roles, stats,
                       unit="rows")
    import datasets

    try:
        rows = datasets.load_dataset(LOCAL_SUFFIXES[path.suffix], data_files=str(path), split="train").to_list()
    except Exception as e:  # a corrupt parquet/CSV file: say which
        raise ValueError(f"{path}: could not read it as {LOCAL_SUFFIXES[path.suffix]}: {e}") from e
    first = 2 if path.suffix == ".csv" else 0  # a CSV's row i is on line i + 2 (after the header)
    where = (lambda i: f"{path}:{i + first}") if first else (lambda i: f"{path}: row {i}")
    return _screen(path.name, [(where(i), r) for i, r in enumerate(rows)], [], roles, stats, unit="rows")


def _nonempty(rows, name: str):
    if not len(rows):
        raise ValueError(f"data source {name!r} has no rows (an empty file or split)")
    return rows


def load_table(name: str, *, split: str = "train", subset: str | None = None, limit: int | None = None,
               stats: Counter | None = None, fields: dict | None = None):
    """A ``datasets.Dataset``: a local file (read by the rule above) or a Hub dataset (Arrow, memory-mapped).

    ``fields`` (role -> field name, e.g. ``data.fields``): the fields whose types are checked."""
    import datasets

    roles = field_roles(fields)
    if looks_local(name):
        rows = _nonempty(_read_local(Path(name).expanduser(), stats, roles), name)
        return datasets.Dataset.from_list(rows[:limit] if limit is not None else rows)
    try:
        ds = datasets.load_dataset(name, subset, split=split)
    except Exception as e:  # offline, typo, gated: say which dataset and why
        raise RuntimeError(f"could not load dataset {name!r} (split {split!r}) from the Hub: {e}") from e
    ds = _nonempty(ds, f"{name} (split {split})")
    if roles:  # Arrow columns have one type each: a sample shows a wrong column (the rows are kept as they are)
        sample = ds.select(range(min(len(ds), 1000))).to_list()
        _screen(name, [(f"{name}: row {i}", r) for i, r in enumerate(sample)], [], roles, None, unit="rows")
    return ds.select(range(min(limit, len(ds)))) if limit is not None else ds


def load_rows(name: str, *, split: str = "train", subset: str | None = None, limit: int | None = None,
              stats: Counter | None = None, fields: dict | None = None) -> list[dict]:
    """Rows as a list of dicts (small sets: RL prompts, benchmarks); ``fields`` as ``load_table``."""
    roles = field_roles(fields)
    if looks_local(name):
        rows = _nonempty(_read_local(Path(name).expanduser(), stats, roles), name)
        return rows[:limit] if limit is not None else rows
    rows = load_table(name, split=split, subset=subset, limit=limit, stats=stats).to_list()
    return _screen(name, [(f"{name}: row {i}", r) for i, r in enumerate(rows)], [], roles, stats, unit="rows")


def require_field(rows, field: str | None, what: str) -> None:
    """Fail when no row has ``field`` (a wrong field name), naming the keys the rows do have."""
    if field is None or not len(rows):
        return
    sample = rows[: min(len(rows), 1000)] if isinstance(rows, list) else rows.select(range(min(len(rows), 1000)))
    if not any(get_field(r, field) is not None for r in sample):
        first = sample[0]
        raise ValueError(f"{what}={field!r}: no row has this field (rows have keys {sorted(first)})")


def _present(v) -> bool:
    return v is not None and not (isinstance(v, str) and not v.strip())


def records_from_rows(rows, fields: dict, stats: DropStats, *, require_answer: bool = True,
                      what: str = "fields") -> list[dict]:
    """Rows -> ``{problem, answer, level?, long?, short?}`` records by ``fields`` (problem, answer, level, ...)."""
    require_field(rows, fields.get("problem"), f"{what}.problem")
    if require_answer:
        require_field(rows, fields.get("answer"), f"{what}.answer")
    out = []
    for row in rows:
        problem, answer = get_field(row, fields.get("problem")), get_field(row, fields.get("answer"))
        if not isinstance(problem, str) or not problem.strip():
            stats["no_problem"] += 1
            continue
        if require_answer and not _present(answer):
            stats["no_answer"] += 1
            continue
        rec = {"problem": problem, "answer": answer}
        for k in ("long", "short", "level"):
            if fields.get(k):
                rec[k] = get_field(row, fields[k])
        out.append(rec)
    return out


# ------------------------------------------------------------------ SFT rows


# Why one response cannot be an SFT row of its mode (the role); each reason names the role and what is wrong.
# ``<role>_missing``: there is no response (null or blank; teachers and the synthetic glance teacher store an
# unverified response as null, by design): counted, not a bad row. Every other reason is text that is there but
# cannot be trained: a bad row, under the role's limit (``role_drop_problem``).
MISSING = {"think": "think_missing", "short": "short_missing"}
REASON_HINTS = {
    "think_unclosed": "a long response must close its reasoning: <think>REASONING</think>ANSWER (a truncated trace?)",
    "think_is_short": "the long field holds <short> responses (are data.fields.long and data.fields.short swapped?)",
    "think_malformed": "a long response has one <think>, one </think> and no <short>",
    "think_no_answer": "a long response needs an answer after </think>",
    "short_has_think_tags": "a short response holds no <think> / </think> (is data.fields.short a long response?)",
    "short_no_answer": "a short response needs text after <short>",
    "short_no_conclusion": "the short row is the conclusion of the long response, which has none (see its reasons)",
    "too_long": "rows longer than training.args.max_length tokens are dropped, never cut: raise it or shorten the "
                "data",
}


def target_or_reason(role: str, text) -> tuple[str | None, str | None]:
    """(the SFT target of a ``role`` (think / short) response, None), or (None, the drop reason)."""
    if not _present(text) or not isinstance(text, str):
        return None, MISSING[role]
    if role == "think":
        target = think_target(text)
        if target is not None:
            return target, None
        s = text.strip()
        if s.startswith(SHORT):
            return None, "think_is_short"
        if END_THINK not in s:
            return None, "think_unclosed"
        well = parse(s if s.startswith(THINK) else THINK + "\n" + s).well_formed
        return None, "think_no_answer" if well else "think_malformed"
    target = short_target(text)
    if target is not None:
        return target, None
    s = text.strip()
    return None, "short_no_answer" if parse(s if s.startswith(SHORT) else SHORT + s).well_formed \
        else "short_has_think_tags"


def _responses(layout: str, row: dict, fields: dict) -> tuple[str | None, list[tuple[str, str | None, str | None,
                                                                                        str | None]]]:
    """(row drop reason or None, [(mode, target or None, drop reason or None, the source field)]) for one row."""
    if layout == "paired":
        return None, [(m, *target_or_reason(m, get_field(row, fields.get(k))), fields.get(k))
                      for m, k in (("think", "long"), ("short", "short"))]
    if layout == "conclusion":
        long = get_field(row, fields.get("long"))
        target, why = target_or_reason("think", long)
        short = conclusion_of(long) if target is not None else None
        short_why = None if short is not None else MISSING["short"] if why == MISSING["think"] else \
            "short_no_conclusion"
        return None, [("think", target, why, fields.get("long")), ("short", short, short_why, fields.get("long"))]
    output = get_field(row, fields.get("output"))
    if not _present(output):
        return "no_output", []
    mode = parse(output).mode
    if mode is None:
        return "no_control_token", []
    return None, [(mode, *target_or_reason(mode, output), fields.get("output"))]


def _example(problem, field: str | None, text, what: str = "problem") -> str:
    shown = repr(text) if len(repr(text)) <= 160 else repr(text)[:157] + "..."
    return f"{what} {str(problem)[:80]!r}: {field or 'response'} = {shown}"


def budget_drawn(share: float, seed: int, problem: str, mode: str) -> bool:
    """Whether one SFT row (a problem's response in ``mode``) states its length (``sft_table``'s ``budget``): a draw
    of probability ``share`` from a stream named by the seed, problem and mode, so that any batching or number of
    processes draws the same rows."""
    import random

    return share > 0 and random.Random(f"{seed}\0{mode}\0{problem}").random() < share


def sft_batch(batch: dict, *, layout: str, fields: dict, tokenizer, instruction: str | None, system: str | None,
              require_answer: bool, max_length: int | None, budget: tuple | None = None) -> dict:
    """``datasets.map`` function (batched): input rows -> SFT rows, one ``drop`` reason (or None) per output row.
    ``budget`` = (share, seed, suffix): that share of rows gets ``suffix(N)`` appended to its user turn, N the
    completion's own tokens (``sft_table``)."""
    keys = list(batch)
    n = len(batch[keys[0]]) if keys else 0
    out = {"prompt": [], "completion": [], "mode": [], "level": [], "answer": [], "drop": [], "example": []}

    def emit(prompt="", completion="", mode=None, level=-1, answer="", drop=None, example=None):
        for k, v in zip(("prompt", "completion", "mode", "level", "answer", "drop", "example"),
                        (prompt, completion, mode, level, answer, drop, example)):
            out[k].append(v)

    eos = tokenizer.eos_token
    pfield = fields.get("problem" if layout != "flat" else "instruction")
    for i in range(n):
        row = {k: batch[k][i] for k in keys}
        problem, answer = get_field(row, pfield), get_field(row, fields.get("answer"))
        if not isinstance(problem, str) or not problem.strip():
            emit(drop="no_problem")
            continue
        if require_answer and not _present(answer):
            emit(drop="no_answer")
            continue
        drop, responses = _responses(layout, row, fields)
        if drop:
            emit(drop=drop)
            continue
        level = parse_level(get_field(row, fields.get("level")))
        prompt = render_prompt(tokenizer, problem, instruction=instruction, system=system)
        for mode, target, why, field in responses:
            if target is None:
                emit(mode=mode, drop=why, example=_example(problem, field, get_field(row, field)))
            elif budget and budget_drawn(budget[0], budget[1], problem, mode):
                # the length a rollout's reward counts: the completion's tokens (control token, response, EOS)
                length = len(tokenizer(target + eos, add_special_tokens=False)["input_ids"])
                emit(render_prompt(tokenizer, problem, instruction=instruction, system=system,
                                   suffix=budget[2](length)),
                     target + eos, mode, level, "" if answer is None else str(answer))
            else:
                emit(prompt, target + eos, mode, level, "" if answer is None else str(answer))
    # Tokenized here, prompt and completion apart and without special tokens, exactly as the model meets them at
    # inference (render_prompt's text, then the generated ids); TRL takes input_ids + labels as they are.
    # (TRL's own tokenization of a text prompt adds the tokenizer's special tokens: a second BOS for R1-Distill.)
    # labels: the completion's ids, the prompt's -100 (the loss covers the completion only) -- what TRL's
    # SFTTrainer would build from a completion_mask in a per-row pass over every row; with them (and too-long rows
    # dropped below) the rows are trainer-ready, and sft.run_distill skips TRL's preparation
    # each distinct text tokenized once: a problem's two modes share their prompt, short answers repeat
    unique = list(dict.fromkeys(out["prompt"] + out["completion"]))
    ids_of = dict(zip(unique, tokenizer(unique, add_special_tokens=False)["input_ids"] if unique else []))
    prompt_ids, completion_ids = [ids_of[p] for p in out["prompt"]], [ids_of[c] for c in out["completion"]]
    out["input_ids"], out["labels"] = [], []
    for j, (p, c) in enumerate(zip(prompt_ids, completion_ids)):
        out["input_ids"].append(p + c)
        out["labels"].append([-100] * len(p) + c)
        if out["drop"][j] is None and max_length is not None and len(p) + len(c) > max_length:
            out["drop"][j] = "too_long"
            out["example"][j] = f"{len(p) + len(c)} tokens > max_length {max_length}: " + _example(
                out["prompt"][j][-80:], "completion", out["completion"][j], what="prompt ending")
    return out


def check_drop_share(what: str, kept: int, dropped: dict, example: str = "", hint: str = "",
                     limit: float = MAX_BAD_LINE_FRACTION) -> None:
    """The bad-row limit of every source, for rows that load but cannot be used (RL prompts whose gold the grader
    cannot read, benchmark rows without a problem or an answer): more than ``limit`` of them stops the stage, with the
    counts and an example, before any work (``role_drop_problem`` is the same rule per SFT role)."""
    n = sum(dropped.values())
    if kept + n and n > limit * (kept + n):
        counts = ", ".join(f"{k} {v}" for k, v in dropped.items() if v)
        raise ValueError(f"{what}: {n} of {kept + n} rows cannot be used ({counts}), more than the {limit:.0%} a "
                         f"data source may lose{f'. E.g. {example}' if example else ''}{f'. {hint}' if hint else ''}")


def role_drop_problem(modes, drops, examples, wanted=("think", "short"), layout: str = "paired",
                      limit: float = MAX_BAD_LINE_FRACTION) -> str | None:
    """Why the SFT rows cannot train (None when they can): a role (think / short) whose present responses are
    dropped for more than ``limit`` of its rows (the bad-row limit of every source, ``MAX_BAD_LINE_FRACTION``), or
    that keeps no row at all (the stage would train one mode and exit 0). ``modes``, ``drops``, ``examples``: per
    SFT row, its role, drop reason (None: kept) and a description of the response."""
    per = {m: Counter() for m in wanted}
    first: dict[tuple[str, str], str] = {}
    for m, d, e in zip(modes, drops, examples):
        if m in per:
            per[m][d or "kept"] += 1
            if d and (m, d) not in first:
                first[m, d] = e
    field = {"paired": {"think": "data.fields.long", "short": "data.fields.short"},
             "conclusion": {"think": "data.fields.long", "short": "data.fields.long"}}.get(layout, {})
    for m, c in per.items():
        total = sum(c.values())
        bad = {r: n for r, n in c.most_common() if r not in ("kept", MISSING[m])}
        counts = ", ".join(f"{r} {n}" for r, n in c.most_common() if r != "kept")
        key = field.get(m, "data.fields.output")
        if sum(bad.values()) > limit * total:
            top = next(iter(bad))
            return (f"{key}: {sum(bad.values())} of {total} {m} rows cannot be trained ({counts}), more than the "
                    f"{limit:.0%} a data source may lose: training on the rest would skew or drop the {m} mode. "
                    f"E.g. {top}: {first[m, top]}. {REASON_HINTS.get(top, '')}".rstrip())
        if total and not c["kept"]:
            top = next(r for r, _ in c.most_common())
            return (f"{key}: none of the {total} {m} rows can be trained ({counts}): the stage would train without "
                    f"the {m} mode. E.g. {top}: {first[m, top]}")
        if not total and layout == "flat":
            return (f"{key}: no row starts with the {m} mode's control token: the stage would train without the "
                    f"{m} mode")
    return None


def sft_table(table, layout: str, fields: dict, tokenizer, stats: DropStats, *, instruction: str | None = None,
              system: str | None = None, require_answer: bool = False, max_length: int | None = None,
              num_proc: int | None = None, modes=("think", "short"), budget: tuple | None = None):
    """SFT rows (a ``datasets.Dataset``: input_ids, labels, and prompt, completion, mode, level, answer as
    text) from any layout; drops counted.

    ``table``: a ``datasets.Dataset`` or a list of dicts. ``modes`` keeps only these modes' rows. ``budget``:
    ``(share, seed, suffix)`` — that share of the rows (drawn per problem and mode, ``budget_drawn``) states its own
    length: ``suffix(N)`` ends the user turn, N the completion's tokens (an L1 warm-up: ``data.budget_prompts``).
    """
    import datasets

    if layout not in LAYOUTS:
        raise ValueError(f"data.layout={layout!r}: valid choices are {LAYOUTS}")
    if not len(table):
        raise ValueError("no rows to build SFT rows from (an empty data source)")
    if isinstance(table, list):
        table = datasets.Dataset.from_list(table)
    pfield = fields.get("problem" if layout != "flat" else "instruction")
    require_field(table, pfield, f"data.fields.{'problem' if layout != 'flat' else 'instruction'}")
    main = {"paired": ("long", "short"), "flat": ("output",), "conclusion": ("long",)}[layout]
    for k in main:
        require_field(table, fields.get(k), f"data.fields.{k}")
    rows = table.map(sft_batch, batched=True, remove_columns=table.column_names, num_proc=num_proc,
                     desc="SFT rows", fn_kwargs=dict(layout=layout, fields=fields, tokenizer=tokenizer,
                                                     instruction=instruction, system=system,
                                                     require_answer=require_answer, max_length=max_length,
                                                     budget=budget))
    # whole columns through Arrow: a Dataset's column iterates row by row, formatting each (seconds at 27,200 rows)
    cols = rows.select_columns(["mode", "drop", "example"]).data.to_pydict()
    drop_col = cols["drop"]
    drops = Counter(drop_col)
    unwanted = [m for m in ("think", "short") if m not in modes]
    for reason, count in drops.items():
        if reason is not None:
            stats[reason] += count
    why = role_drop_problem(cols["mode"], drop_col, cols["example"], wanted=modes, layout=layout)
    if why:  # before training: a stage that lost (most of) a mode must not train in silence
        raise ValueError(why)
    keep = rows.filter(lambda d, m: d is None and m not in unwanted, input_columns=["drop", "mode"],
                       num_proc=num_proc, desc="SFT rows: drop")
    stats["kept"] += len(keep)
    return keep.remove_columns(["drop", "example"])
