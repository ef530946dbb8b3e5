"""Serving checks (thinkless/serving.py): what a Thinkless server cannot honour is a 400, and it stays healthy."""

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from thinkless.serving import check_request, request_problem


@pytest.fixture(scope="module")
def client():
    app = FastAPI()
    app.middleware("http")(check_request)

    @app.post("/v1/chat/completions")
    async def chat(body: dict):
        return {"ok": True}

    @app.get("/health")
    async def health():
        return {}

    return TestClient(app)


BAD = [
    ({"vllm_xargs": {"think_bias": "NaN"}}, "think_bias must be a number"),
    ({"vllm_xargs": {"think_bias": True}}, "think_bias must be a number"),
    ({"vllm_xargs": {"think_bias": "lots"}}, "think_bias must be a number"),
    ({"chat_template_kwargs": {"thinking": "off"}, "vllm_xargs": {"think_bias": 100}}, "contradict each other"),
    ({"chat_template_kwargs": {"thinking": "on"}, "vllm_xargs": {"think_bias": -3}}, "contradict each other"),
    ({"chat_template_kwargs": {"enable_thinking": False}}, "unknown chat_template_kwargs key 'enable_thinking'"),
    ({"chat_template_kwargs": {"think_bias": 2}}, "goes in vllm_xargs.think_bias"),
    ({"chat_template_kwargs": {"thinking": "maybe"}}, "thinking must be auto, on or off"),
]


@pytest.mark.parametrize("extra,message", BAD)
def test_requests_it_cannot_honour_are_a_400(client, extra, message):
    r = client.post("/v1/chat/completions", json={"model": "m", "messages": [], **extra})
    assert r.status_code == 400 and message in r.json()["error"]["message"]
    assert client.get("/health").status_code == 200  # the server stays healthy


def test_non_finite_bias_is_refused():
    # JSON has no NaN literal, but Python's json (and so the OpenAI client) writes one: NaN acted as +inf
    for b in (float("nan"), float("inf"), -float("inf")):
        assert "finite number" in request_problem({"vllm_xargs": {"think_bias": b}})
    r = post_raw('{"messages": [], "vllm_xargs": {"think_bias": NaN}}')
    assert r.status_code == 400 and "finite" in r.json()["error"]["message"]


def post_raw(body: str):
    app = FastAPI()
    app.middleware("http")(check_request)
    return TestClient(app).post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})


@pytest.mark.parametrize("extra", [{}, {"chat_template_kwargs": {"thinking": "off"}},
                                   {"chat_template_kwargs": {"thinking": "auto"}, "vllm_xargs": {"think_bias": 4}},
                                   {"vllm_xargs": {"think_bias": -2.5}}, {"chat_template_kwargs": {"other": 1}},
                                   {"chat_template_kwargs": {"thinking": "on"}, "vllm_xargs": {"think_bias": 0}}])
def test_valid_requests_pass(client, extra):
    assert client.post("/v1/chat/completions", json={"messages": [], **extra}).status_code == 200


def test_the_logits_processor_refuses_a_bad_bias_itself():
    pytest.importorskip("vllm")
    from vllm import SamplingParams

    from thinkless.vllm_think_bias import ThinkBias

    ThinkBias.validate_params(SamplingParams(extra_args={"think_bias": 2.0}))
    for b in (float("nan"), float("inf"), "2", False):
        with pytest.raises(ValueError, match="think_bias must be a"):
            ThinkBias.validate_params(SamplingParams(extra_args={"think_bias": b}))
