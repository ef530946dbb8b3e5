"""Serving checks: a request a Thinkless server cannot honour is a 400 with a clear message, never a wrong reply.

``vllm serve <model> --logits-processors thinkless.vllm_think_bias:ThinkBias --middleware
thinkless.serving.check_request`` (``trl vllm-serve`` forwards both flags). The middleware reads the JSON body of
``/v1/chat/completions`` and ``/v1/completions`` and rejects, before the engine sees them, what would otherwise be
ignored or misapplied in silence: a ``think_bias`` outside ``±MAX_THINK_BIAS`` (or not a number), a ``thinking``
other than auto/on/off or together with a bias, a ``token_budget`` outside ``[1, MAX_TOKEN_BUDGET]``, and keys that
look like a misspelling of ours. ``ThinkBias.validate_params`` applies the bias rule too, for a server started
without the middleware. Each rule and why: docs/serving.md.
"""

from __future__ import annotations

import json
import math

THINKING = ("auto", "on", "off")
TEMPLATE_KEYS = ("thinking", "token_budget")
# The largest |think bias|: ±100 already decides every prompt (logits differ by tens); the bound keeps the biased
# logit, also divided by a small temperature, finite in float32 (a bias of 1e39 became inf there, then NaN).
MAX_THINK_BIAS = 1e4
# The largest token budget a request may ask an L1 policy for: beyond any context window we serve (Qwen2.5: 131072);
# "Think for 10000000000 tokens." is out of every training distribution and a typo, not a budget.
MAX_TOKEN_BUDGET = 1_000_000


def bias_problem(bias) -> str | None:
    """Why ``bias`` cannot be a think bias (None when it can)."""
    if bias is None:
        return None
    if isinstance(bias, bool) or not isinstance(bias, (int, float)):
        return f"think_bias must be a number, got {bias!r}"
    if not math.isfinite(bias):
        return f"think_bias must be a finite number, got {bias!r}"
    if abs(bias) > MAX_THINK_BIAS:
        return f"think_bias must be within [-{MAX_THINK_BIAS:g}, {MAX_THINK_BIAS:g}], got {bias!r}"
    return None


def token_budget_problem(budget) -> str | None:
    """Why ``budget`` cannot be a token budget (``chat_template_kwargs.token_budget``; None when it can)."""
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, int) or not 1 <= budget <= MAX_TOKEN_BUDGET:
        return f"token_budget must be an integer in [1, {MAX_TOKEN_BUDGET}], got {budget!r}"
    return None


def _looks_like_ours(key: str) -> bool:
    k = key.lower().replace("-", "_")
    return "think" in k or "reason" in k or "budget" in k or k in ("mode", "short")


# Our keys sent at the request's top level (the OpenAI client's extra_body={"think_bias": 3}): vLLM ignores them.
MISPLACED = {"think_bias": "vllm_xargs.think_bias", "thinking": "chat_template_kwargs.thinking",
             "token_budget": "chat_template_kwargs.token_budget"}


def request_problem(body: dict) -> str | None:
    """Why an OpenAI-API request body cannot be honoured by a Thinkless server (None when it can)."""
    for k, where in MISPLACED.items():
        if k in body:
            return f"{k} at the top level of the request is ignored by vLLM: send it as {where}"
    xargs = body.get("vllm_xargs") or {}
    bias = xargs.get("think_bias") if isinstance(xargs, dict) else None
    why = bias_problem(bias)
    if why:
        return why
    for k in xargs if isinstance(xargs, dict) else ():
        if k != "think_bias" and _looks_like_ours(str(k)):  # a misspelt bias would be ignored: the model's own mode
            return f"unknown vllm_xargs key {k!r}: a Thinkless server takes vllm_xargs.think_bias"
    kw = body.get("chat_template_kwargs") or {}
    if not isinstance(kw, dict):
        return f"chat_template_kwargs must be an object, got {kw!r}"
    for k in kw:
        if k not in TEMPLATE_KEYS and _looks_like_ours(str(k)):
            hint = " (the think threshold goes in vllm_xargs.think_bias)" if "bias" in str(k) else \
                " (an L1 policy's token budget is token_budget)" if "budget" in str(k).lower() else ""
            return (f"unknown chat_template_kwargs key {k!r}: a Thinkless model takes thinking = auto | on | off"
                    f"{hint}")
    why = token_budget_problem(kw.get("token_budget"))
    if why:
        return why
    thinking = kw.get("thinking")
    if thinking is not None and thinking not in THINKING:
        return f"chat_template_kwargs.thinking must be auto, on or off, got {thinking!r}"
    if thinking in ("on", "off") and bias:
        return (f"thinking={thinking!r} and think_bias={bias!r} contradict each other: thinking=on|off forces the "
                "mode, think_bias moves the model's own choice (thinking=auto); send one of them")
    return None


async def check_request(request, call_next):
    """ASGI http middleware (``vllm serve --middleware thinkless.serving.check_request``)."""
    if request.method == "POST" and request.url.path.rstrip("/").endswith(("/chat/completions", "/completions")):
        try:
            body = json.loads(await request.body() or b"{}")
        except (ValueError, UnicodeDecodeError):
            body = None  # not JSON: vLLM's own validation answers
        why = request_problem(body) if isinstance(body, dict) else None
        if why:
            from fastapi.responses import JSONResponse

            return JSONResponse({"error": {"message": why, "type": "BadRequestError", "param": None, "code": 400}},
                                status_code=400)
    return await call_next(request)
