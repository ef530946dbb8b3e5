"""Using a trained model: force a mode or move the think threshold (``mode_control``, ``vllm_think_bias``), and the
request checks a server runs (``requests``). ``vllm serve --middleware thinkless.serving.check_request`` names the
middleware by this package's path, as model cards and 0.2 docs do."""

from .requests import MAX_THINK_BIAS, MAX_TOKEN_BUDGET, check_request, request_problem

__all__ = ["MAX_THINK_BIAS", "MAX_TOKEN_BUDGET", "check_request", "request_problem"]
