"""Evaluation harness: benchmarks x inference methods -> accuracy, think ratio, token cost (``eval.py``, reports)."""

from .benchmarks import BenchmarkData, Problem, load_benchmark, synthetic_benchmark
from .methods import NOTHINKING_PREFILL, Method, method_from_cfg, resolve_methods
from .metrics import confidence_select, majority_vote, pass_at_k, summarize
from .runner import evaluate, run_eval

__all__ = ["BenchmarkData", "Method", "NOTHINKING_PREFILL", "Problem", "confidence_select", "evaluate",
           "load_benchmark", "majority_vote", "method_from_cfg", "pass_at_k", "resolve_methods", "run_eval",
           "summarize", "synthetic_benchmark"]
