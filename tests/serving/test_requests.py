"""Serving checks (thinkless/serving/requests.py): what a Thinkless server cannot honour is a 400, and it stays healthy."""

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from thinkless.serving.requests import check_request, request_problem


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

    from thinkless.serving.vllm_think_bias import ThinkBias

    ThinkBias.validate_params(SamplingParams(extra_args={"think_bias": 2.0}))
    for b in (float("nan"), float("inf"), "2", False):
        with pytest.raises(ValueError, match="think_bias must be a"):
            ThinkBias.validate_params(SamplingParams(extra_args={"think_bias": b}))


def test_a_bias_beyond_float32s_reach_is_a_400_everywhere(client):
    """Issue 38, case 6: 1e39 is finite in Python but inf in the float32 logits: the reply started with the other
    mode. The middleware, the processor's own check and the config (tests/runs/test_checks.py) refuse it."""
    for b in (1e39, -1e39, 2e4):
        r = client.post("/v1/chat/completions", json={"messages": [], "vllm_xargs": {"think_bias": b}})
        assert r.status_code == 400 and "think_bias must be within [-10000, 10000]" in r.json()["error"]["message"]
    r = post_raw('{"messages": [], "vllm_xargs": {"think_bias": 1e39}}')
    assert r.status_code == 400 and "within [-10000, 10000]" in r.json()["error"]["message"]
    assert client.post("/v1/chat/completions", json={"messages": [], "vllm_xargs": {"think_bias": -1e4}}) \
        .status_code == 200
    pytest.importorskip("vllm")
    from vllm import SamplingParams

    from thinkless.serving.vllm_think_bias import ThinkBias

    with pytest.raises(ValueError, match=r"think_bias must be within \[-10000, 10000\], got 1e\+39"):
        ThinkBias.validate_params(SamplingParams(extra_args={"think_bias": 1e39}))


def test_a_misspelt_think_bias_is_a_400(client):
    for key in ("thinkbias", "think-bias", "reasoning_bias"):
        r = client.post("/v1/chat/completions", json={"messages": [], "vllm_xargs": {key: 3}})
        assert r.status_code == 400 and f"unknown vllm_xargs key {key!r}" in r.json()["error"]["message"]
    assert client.post("/v1/chat/completions", json={"messages": [], "vllm_xargs": {"other_processor": 1}}) \
        .status_code == 200


def test_the_vllm_processor_biases_the_first_generated_position_only(tiny_tokenizer, tmp_path):
    """The vLLM processor's rule, without a server (the slow server test in test_vllm_think_bias.py notices it
    too): the bias lands on <think> at a request's first generated position, never later, never after a prefilled
    mode token, and never on a request without a bias."""
    pytest.importorskip("vllm")
    from types import SimpleNamespace

    import torch
    from vllm import SamplingParams
    from vllm.v1.sample.logits_processor import BatchUpdate

    from thinkless.tokens import control_token_ids
    from thinkless.serving.vllm_think_bias import ThinkBias

    tiny_tokenizer.save_pretrained(tmp_path)
    proc = ThinkBias(SimpleNamespace(model_config=SimpleNamespace(tokenizer=str(tmp_path))), torch.device("cpu"),
                     False)
    ids = control_token_ids(tiny_tokenizer)
    biased = SamplingParams(extra_args={"think_bias": 5.0})
    prompt = tiny_tokenizer("3 ~ 4", add_special_tokens=False)["input_ids"]
    outs = [[], [], []]  # the engine's running output lists, shared by reference with the processor
    proc.update_state(BatchUpdate(batch_size=3, removed=[], moved=[], added=[
        (0, biased, prompt, outs[0]), (1, biased, prompt + [ids.short], outs[1]),
        (2, SamplingParams(), prompt, outs[2])]))
    V = len(tiny_tokenizer)
    first = proc.apply(torch.zeros(3, V))
    assert first[0, ids.think] == 5.0 and first[0].abs().sum() == 5.0  # row 0: <think> only, by the bias
    assert first[1:].abs().sum() == 0  # prefilled mode token (thinking=on|off), and no bias: untouched
    for o in outs:
        o.append(ids.think)  # one token generated
    assert proc.apply(torch.zeros(3, V)).abs().sum() == 0  # later positions: untouched


def test_the_documented_serving_commands_are_the_checked_ones():
    """docs/serving.md and README's "Serving in five lines" start the server with the request-checking middleware
    (without it, misspelt keys and contradictory requests got 200), as the vLLM server test does; both flags name
    objects that exist (vLLM imports them by these paths)."""
    import importlib
    import re

    from ..conftest import ROOT

    server_test = (ROOT / "tests" / "serving" / "test_vllm_think_bias.py").read_text()
    flags = {"--logits-processors": "thinkless.vllm_think_bias:ThinkBias",
             "--middleware": "thinkless.serving.check_request"}
    for page in ("docs/serving.md", "README.md", "examples/openai_client.py"):
        text = (ROOT / page).read_text()
        commands = [c for c in re.findall(r"^\s*(vllm serve .*?)(?<!\\)\n", text.replace("\\\n", " "), flags=re.M)]
        assert commands, page
        for cmd in commands:
            for flag, value in flags.items():
                assert f"{flag} {value}" in " ".join(cmd.split()), (page, cmd)
    for flag, value in flags.items():
        assert f'"{flag}", "{value}"' in server_test  # the command the slow test serves with
        module, _, name = value.replace(":", ".").rpartition(".")
        if "vllm" not in module or importlib.util.find_spec("vllm"):
            assert callable(getattr(importlib.import_module(module), name))


@pytest.mark.parametrize("budget,message", [
    (-512, "token_budget must be an integer in [1, 1000000], got -512"),
    (0, "token_budget must be an integer in [1, 1000000], got 0"),
    (512.5, "got 512.5"), (512.0, "got 512.0"), ("512", "got '512'"), (True, "got True"),
    (10 ** 12, "got 1000000000000")])
def test_a_bad_token_budget_is_a_400(client, budget, message):
    """An L1 policy's per-request budget (chat_template_kwargs.token_budget, objective=l1): negative, zero,
    non-integer or absurdly large is refused before the engine renders "Think for N tokens."."""
    r = client.post("/v1/chat/completions", json={"messages": [], "chat_template_kwargs": {"token_budget": budget}})
    assert r.status_code == 400 and message in r.json()["error"]["message"]
    assert client.get("/health").status_code == 200


def test_token_budgets_that_pass_and_misspelt_budget_keys(client):
    for kw in ({"token_budget": 1}, {"token_budget": 512}, {"token_budget": 1_000_000}, {"token_budget": None},
               {"token_budget": 64, "thinking": "auto"}):
        assert client.post("/v1/chat/completions", json={"messages": [], "chat_template_kwargs": kw}).status_code == 200
    for key in ("max_tokens_budget", "budget", "thinking_budget"):  # the template would ignore them silently
        r = client.post("/v1/chat/completions", json={"messages": [], "chat_template_kwargs": {key: 512}})
        assert r.status_code == 400 and f"unknown chat_template_kwargs key '{key}'" in r.json()["error"]["message"]
        assert "token_budget" in r.json()["error"]["message"]


def test_our_keys_at_the_top_level_are_a_400(client):
    """The hostile audit: extra_body={"think_bias": 3} puts the key at the body's top level, which vLLM ignores (a
    200 with the model's own mode); the reply says where each key goes."""
    for key, value, where in (("think_bias", 3, "vllm_xargs.think_bias"), ("thinking", "off",
                                                                           "chat_template_kwargs.thinking"),
                              ("token_budget", 64, "chat_template_kwargs.token_budget")):
        r = client.post("/v1/chat/completions", json={"messages": [], key: value})
        assert r.status_code == 400 and f"{key} at the top level of the request is ignored by vLLM: send it as " \
            f"{where}" in r.json()["error"]["message"]
