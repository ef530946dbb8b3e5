"""Serving on vLLM's CPU build: `trl vllm-serve` with the think-bias logits processor
(thinkless/serving/vllm_think_bias.py), TRL's client, and the OpenAI-client example over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ..conftest import ROOT
from ..helpers import vllm_serve

pytestmark = pytest.mark.slow


# ------------------------------------------------------------------ server mode: trl vllm-serve and its client


@pytest.fixture(scope="module")
def server(distilled, tmp_path_factory):
    """`trl vllm-serve` on the tiny policy, on CPU, with the think-bias logits processor (one server for the TRL
    client and the OpenAI-client tests of thinking on demand)."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    with vllm_serve(distilled / "model", log, "--logits-processors", "thinkless.vllm_think_bias:ThinkBias",
                    "--served-model-name", "thinkless-demo", "--middleware", "thinkless.serving.check_request") as url:
        yield {"url": url, "port": int(url.rsplit(":", 1)[1]), "model": "thinkless-demo", "path": distilled / "model"}


def test_trl_client_talks_to_the_server(server):
    """Everything the trainer's server mode does, up to the weight sync (NCCL: GPUs only)."""
    from transformers import AutoTokenizer
    from trl.generation.vllm_client import VLLMClient

    from thinkless.format import render_prompt

    client = VLLMClient(base_url=server["url"], connection_timeout=60)
    client.check_server()
    tok = AutoTokenizer.from_pretrained(server["path"])
    ids = tok(render_prompt(tok, "3 ~ 4 . . . . . . . . . ."), add_special_tokens=False)["input_ids"]
    out = client.generate(prompts=[ids], n=4, temperature=1.0, max_tokens=24, logprobs=0)
    assert len(out["completion_ids"]) == 4 and all(len(c) >= 1 for c in out["completion_ids"])
    assert len(out["logprobs"][0]) == len(out["completion_ids"][0])  # the sampled tokens' log-probs, for IS
    client.reset_prefix_cache()
    with pytest.raises(Exception, match="CUDA|NCCL|cuda"):
        client.init_communicator(device="cpu")  # the weight sync: vLLM's NCCL transfer engine, GPUs only


# ------------------------------------------------------------------ thinking on demand, served


def test_openai_client_example_forces_the_modes_and_moves_the_threshold(server):
    """examples/openai_client.py (docs/serving.md's serving example) against the server, over real HTTP."""
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "openai_client.py"), "--base-url",
                           server["url"] + "/v1", "--question", "3 ~ 4 ~ 8 . . . . . . . . .", "--json",
                           "--bias", "-100", "100", "--max-tokens", "48"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    recs = {r["case"]: r for r in map(json.loads, proc.stdout.splitlines())}
    assert recs["forced think"]["mode"] == "think" and "</think>" in recs["forced think"]["reply"]
    assert recs["forced short"]["mode"] == "short" and "<think>" not in recs["forced short"]["reply"]
    assert recs["auto"]["mode"] in ("think", "short")
    # a first-position bias of +-100 decides the mode and leaves the rest of the response alone
    assert recs["think bias +100"]["mode"] == "think" and recs["think bias -100"]["mode"] == "short"
    assert recs["think bias +100"]["reply"].count("<think>") == 1
    assert all(r["tokens"] > 0 for r in recs.values())


def test_logit_bias_acts_at_every_position_unlike_the_threshold(server):
    from openai import OpenAI

    from thinkless.tokens import control_token_ids
    from transformers import AutoTokenizer

    think = control_token_ids(AutoTokenizer.from_pretrained(server["path"])).think
    client = OpenAI(base_url=server["url"] + "/v1", api_key="EMPTY")
    r = client.chat.completions.create(model=server["model"], messages=[{"role": "user", "content": "1 ~ 2"}],
                                       max_tokens=8, temperature=0.0, logit_bias={str(think): 100})
    assert r.choices[0].message.content.count("<think>") >= 4  # the stock parameter ruins the response
    bad = client.with_options(max_retries=0)
    with pytest.raises(Exception, match="think_bias must be a number"):
        bad.chat.completions.create(model=server["model"], messages=[{"role": "user", "content": "1"}],
                                    max_tokens=2, extra_body={"vllm_xargs": {"think_bias": "lots"}})


def test_requests_it_cannot_honour_are_a_400_and_the_server_stays_healthy(server):
    import requests

    url = server["url"] + "/v1/chat/completions"
    base = {"model": server["model"], "messages": [{"role": "user", "content": "1 ~ 2"}], "max_tokens": 4}
    for extra, message in [({"vllm_xargs": {"think_bias": float("nan")}}, "finite"),
                           ({"chat_template_kwargs": {"thinking": "off"}, "vllm_xargs": {"think_bias": 100}},
                            "contradict"),
                           ({"chat_template_kwargs": {"enable_thinking": True}}, "unknown chat_template_kwargs")]:
        r = requests.post(url, data=__import__("json").dumps({**base, **extra}),
                          headers={"content-type": "application/json"}, timeout=60)
        assert r.status_code == 400 and message in r.text
    assert requests.get(server["url"] + "/health", timeout=10).status_code == 200
    assert requests.post(url, json=base, timeout=120).status_code == 200
