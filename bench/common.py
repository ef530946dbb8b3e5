"""Shared helpers for the benchmarks: a tiny RL setup, timers, medians, machine description."""

from __future__ import annotations

import os
import platform
import statistics
import time
from contextlib import contextmanager
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def cpu_name() -> str:
    """The CPU's model name and family from /proc/cpuinfo ("AMD EPYC, family 25"): machines of one name differ."""
    try:
        info = dict(ln.split(":", 1) for ln in Path("/proc/cpuinfo").read_text().splitlines() if ":" in ln)
        info = {k.strip(): v.strip() for k, v in info.items()}
        return f"{info.get('model name', platform.machine())}, family {info.get('cpu family', '?')}"
    except OSError:
        return platform.processor() or platform.machine()


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{gpu}, torch threads {torch.get_num_threads()}")


def median(xs):
    return statistics.median(xs) if xs else float("nan")


class Timers:
    """Accumulates wall time per label; wraps bound methods of an object in place."""

    def __init__(self):
        self.t: dict[str, float] = {}

    @contextmanager
    def time(self, label):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.t[label] = self.t.get(label, 0.0) + time.perf_counter() - t0

    def wrap(self, obj, name, label):
        fn = getattr(obj, name)

        def wrapped(*a, **kw):
            with self.time(label):
                return fn(*a, **kw)

        setattr(obj, name, wrapped)

    def pop(self):
        out, self.t = self.t, {}
        return out


def tiny_rl_setup(tmp: Path, *, hidden=128, layers=2, n_prompts=64, seed=0):
    """A tiny Qwen2 policy saved to ``tmp`` (so a frozen reference can be loaded) and a fold-task dataset."""
    from datasets import Dataset

    from thinkless.tasks.synthetic import build_tiny_model, build_tiny_tokenizer, make_problems
    from thinkless.tokens import add_control_tokens

    tok = build_tiny_tokenizer()
    add_control_tokens(tok)
    model = build_tiny_model(len(tok), hidden_size=hidden, num_layers=layers, seed=seed,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": p.prompt}], "answer": p.answer,
                             "task": "synthetic", "level": p.level}
                            for p in make_problems(n_prompts, [1, 2, 3, 4, 5, 6], seed=seed)])
    return tok, ds
