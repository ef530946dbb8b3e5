"""Evaluation harness: benchmarks x inference methods -> accuracy, think ratio, token cost (``eval.py``)."""

from .benchmarks import BenchmarkData, Problem, load_benchmark
from .methods import NOTHINKING_PREFILL, Method, build_prompt, chat_prompt, method_from_cfg, resolve_methods
from .metrics import confidence_select, majority_vote, pass_at_k, summarize

__all__ = ["BenchmarkData", "Method", "NOTHINKING_PREFILL", "Problem", "build_prompt", "chat_prompt",
           "confidence_select", "load_benchmark", "majority_vote", "method_from_cfg", "pass_at_k",
           "resolve_methods", "run_eval", "summarize"]


def run_eval(cfg, **kw):
    from .runner import run_eval as _run

    return _run(cfg, **kw)
