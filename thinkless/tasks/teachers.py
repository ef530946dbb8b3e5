"""Teacher generation: paired data from a long (R1-style) and a short (Qwen-Math-Instruct-style) teacher.

Both teachers run over prompts with gold answers; a response is kept only if, in the Thinkless format
(``thinkless.format.think_target`` / ``short_target``), it is well formed and its boxed answer verifies against the
gold (``strict`` grading). The stored responses are those training targets. Finished batches are appended to a
JSONL file as they complete, so a crash or a preemption keeps them, and a rerun resumes after the last finished
prompt.

Teachers use their *own* chat templates unchanged: R1's ``<think>\\n`` prefill is what makes it reason.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from .data import DropStats
from ..runs.fingerprint import check_meta
from ..format import render_prompt, short_target, think_target
from ..generation import SamplingConfig
from ..grading import Grader

logger = logging.getLogger(__name__)


def verified_target(text: str, gold, *, long: bool, grader: Grader) -> str | None:
    """The teacher response as a training target, if it is well formed and its boxed answer is right (strict)."""
    target = think_target(text) if long else short_target(text)
    return target if target is not None and grader.grade(target, gold).correct else None


def generate_pairs(problems: list[dict], long_teacher, short_teacher, out_file: str | Path, stats: DropStats, *,
                   long_cfg: SamplingConfig, short_cfg: SamplingConfig, batch_size: int = 64,
                   instruction: str | None = None, long_system: str | None = None,
                   short_system: str | None = None, progress: bool = True, meta: dict | None = None) -> list[dict]:
    """Run both teachers over ``problems`` ({problem, answer, level?}); return the paired records.

    ``long_teacher``/``short_teacher`` are generators (``thinkless.generation``) with a ``tokenizer``. Each
    written line holds one problem's index, both responses (None when not verified) and the verdicts. ``meta``
    (the teachers and their settings) is recorded beside the file; a resume under other settings, or over other
    problems, stops instead of mixing two configurations in one file.
    """
    from tqdm.auto import tqdm

    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    hint = "Move the file (and its .meta.json) away to generate again, or set data.out_file to a new file."
    if meta is not None:
        check_meta(out.with_suffix(".meta.json"), meta, what=f"teacher pairs file {out}",
                   data_exists=out.exists() and out.stat().st_size > 0, hint=hint)
    if out.exists():
        for line in out.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a torn last line from a kill mid-write: that batch is redone
                continue
            i = rec["index"]
            if i >= len(problems) or rec["problem"] != problems[i]["problem"]:
                raise ValueError(f"{out}: line for problem {i} does not match the configured prompts (another "
                                 f"prompt file or limit?); resuming would mix them. {hint}")
            done[i] = rec
        logger.info("teacher generation: resuming, %d of %d problems already done", len(done), len(problems))

    todo = [i for i in range(len(problems)) if i not in done]
    grader = Grader("strict")
    with out.open("a") as f:
        for start in tqdm(range(0, len(todo), batch_size), disable=not progress, desc="teachers"):
            idx = todo[start:start + batch_size]
            batch = [problems[i] for i in idx]
            lp = [render_prompt(long_teacher.tokenizer, p["problem"], instruction=instruction, system=long_system)
                  for p in batch]
            sp = [render_prompt(short_teacher.tokenizer, p["problem"], instruction=instruction, system=short_system)
                  for p in batch]
            longs = long_teacher.generate(lp, long_cfg)
            shorts = short_teacher.generate(sp, short_cfg)
            lines = []
            for i, p, lo, sh in zip(idx, batch, longs, shorts):
                # R1-style prompts end inside the reasoning block: think_target restores the opening tag.
                long_text = next((t for c in lo if c.finished and (t := verified_target(
                    c.text, p["answer"], long=True, grader=grader)) is not None), None)
                short_text = next((t for c in sh if c.finished and (t := verified_target(
                    c.text, p["answer"], long=False, grader=grader)) is not None), None)
                rec = {"index": i, "problem": p["problem"], "answer": p["answer"], "level": p.get("level"),
                       "long": long_text, "short": short_text}
                lines.append(json.dumps(rec) + "\n")
                done[i] = rec
            f.write("".join(lines))  # one write per batch: a kill loses at most the batch in flight
            f.flush()

    records = []
    for i in range(len(problems)):
        rec = done[i]
        if rec["long"] is None:
            stats["unverified_long"] += 1
        if rec["short"] is None:
            stats["unverified_short"] += 1
        records.append({k: rec[k] for k in ("problem", "answer", "long", "short") if k in rec}
                       | ({"level": rec["level"]} if rec.get("level") is not None else {}))
    return records
