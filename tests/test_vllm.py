"""vLLM for real (vLLM's CPU build, installed by scripts/setup.sh): evaluation, DeGRPO rollouts with weight sync, the
TRL server and its client. Every test runs a real engine; none is mocked.

The engines run on the `distilled` tiny checkpoint (a 60-step distill.py run: it knows the format, and its greedy
answers are deterministic). Evaluation and training run as their CLIs, in subprocesses, like a user runs them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from .conftest import ROOT
from .helpers import run_cli, run_train_cli

pytestmark = pytest.mark.slow

VLLM_ENV = {"OMP_NUM_THREADS": "1"}  # the in-process CPU engine and the trainer share 2 cores


def test_the_stack_is_the_one_the_extra_pins():
    import importlib.metadata as md

    import transformers
    import trl
    import vllm
    from packaging.requirements import Requirement

    extra = [Requirement(r) for r in md.requires("thinkless") if "extra == \"vllm\"" in r]
    assert len(extra) == 1 and extra[0].specifier.contains(vllm.__version__.split("+")[0])
    assert trl.__version__ == "1.16.0" and transformers.__version__ == "5.17.0"
    from trl.import_utils import is_vllm_available

    assert is_vllm_available()  # TRL's own check: vLLM within 0.22-0.31


# ------------------------------------------------------------------ evaluation


EVAL = ["benchmarks=[synthetic]", "benchmark.synthetic.n_per_level=8", "progress=false", "plots=false",
        "sampling.n=2", "method.parallel_majority.n=4", "method.parallel_verifier.n=4"]
VLLM_METHODS = "methods=[adaptive,forced_think,forced_short,nothinking,budget_forcing,parallel_majority," \
               "parallel_verifier]"


@pytest.fixture(scope="module")
def evals(distilled, tmp_path_factory):
    """The same evaluation through both backends: greedy (forced modes) and sampled (every method vLLM supports)."""
    out = {}
    for backend in ("hf", "vllm"):
        for mode, extra in (("greedy", ["sampling.temperature=0", "methods=[forced_think,forced_short]"]),
                            ("sampled", [VLLM_METHODS])):
            d = tmp_path_factory.mktemp(f"{backend}_{mode}")
            proc = run_cli("eval.py", f"model={distilled / 'model'}", f"output_dir={d}",
                           f"generation.backend={backend}", *EVAL, *extra, env=VLLM_ENV)
            out[backend, mode] = (json.loads((d / "results.json").read_text()), d, proc)
    return out


def samples(d, bench="synthetic"):
    rows = {}
    for f in sorted((d / "generations" / bench).glob("*.jsonl")):
        for ln in f.read_text().splitlines():
            r = json.loads(ln)
            rows[f.name.split("_n")[0], r["uid"]] = [s["response"] for s in r["samples"]]
    return rows


def test_vllm_greedy_forced_modes_match_hf(evals):
    """The same greedy responses, token for token (both backends run the checkpoint's fp32 weights)."""
    hf, vl = samples(evals["hf", "greedy"][1]), samples(evals["vllm", "greedy"][1])
    assert hf.keys() == vl.keys() and len(hf) == 2 * 48
    differ = [k for k in hf if hf[k] != vl[k]]
    assert not differ, f"{len(differ)} of {len(hf)} greedy responses differ, e.g. {hf[differ[0]]} vs {vl[differ[0]]}"
    r_hf, r_vl = evals["hf", "greedy"][0], evals["vllm", "greedy"][0]
    for m in ("forced_think", "forced_short"):
        a, b = r_hf["benchmarks"]["synthetic"]["methods"][m], r_vl["benchmarks"]["synthetic"]["methods"][m]
        assert (a["acc"], a["tokens"]) == (b["acc"], b["tokens"])


def test_vllm_sampled_statistics_are_within_noise_of_hf(evals):
    a = evals["hf", "sampled"][0]["benchmarks"]["synthetic"]["methods"]
    b = evals["vllm", "sampled"][0]["benchmarks"]["synthetic"]["methods"]
    assert list(a) == list(b)
    n = 48 * 2  # samples per single-sample method
    for m in a:
        for key in ("acc", "think_ratio"):
            # two independent estimates of the same proportion: |diff| within 4 standard errors
            p = (a[m][key] + b[m][key]) / 2
            se = (2 * max(p * (1 - p), 0.02) / n) ** 0.5
            assert abs(a[m][key] - b[m][key]) <= 4 * se + 1e-9, (m, key, a[m][key], b[m][key])
        assert b[m]["tokens"] > 0 and b[m]["invalid_mode_ratio"] <= 0.2
    # n samples of one prompt are distinct draws (vLLM repeats a seeded prompt's sample if seeds collide)
    vl_samples = samples(evals["vllm", "sampled"][1])
    four = [v for k, v in vl_samples.items() if k[0] == "adaptive" and len(v) == 4]  # the parallel methods' samples
    assert len(four) == 48 and sum(len(set(v)) > 1 for v in four) >= 24


def test_vllm_refuses_self_certainty_clearly(distilled, tmp_path):
    proc = run_cli("eval.py", f"model={distilled / 'model'}", f"output_dir={tmp_path}", "generation.backend=vllm",
                   *EVAL, "methods=[parallel_confidence]", check=False, env=VLLM_ENV)
    assert proc.returncode != 0
    assert "self-certainty" in proc.stderr and "generation.backend=hf" in proc.stderr


# ------------------------------------------------------------------ DeGRPO with vLLM rollouts


COLOCATE = ["rl.args.use_vllm=true", "rl.args.vllm_mode=colocate", "rl.args.vllm_gpu_memory_utilization=0.1",
            "rl.args.vllm_max_model_length=256", "rl.args.max_steps=4", "rl.args.per_device_train_batch_size=32",
            "rl.args.num_generations=8", "rl.args.max_completion_length=40", "rl.args.save_steps=100",
            "rl.args.learning_rate=1e-2", "rl_data.validation=null", "report.enabled=false",
            "rl.args.entropy_coef=0.2"]  # the entropy bonus moves the policy every step, whatever the rewards


NO_SYNC_SITE = """
import thinkless.vllm_cpu as v
v.use_cpu_weight_sync = lambda trainer: setattr(trainer.vllm_generation, "sync_weights", lambda: None)
"""


def train_with_vllm(distilled, out, *extra, site=None):
    env = {**VLLM_ENV}
    if site is not None:
        env["PYTHONPATH"] = f"{site}{os.pathsep}{ROOT}"
    res = run_train_cli(out, distilled / "model", *COLOCATE, *extra, env=env)
    recs = [r for r in (json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines())
            if "modes/think_ratio" in r]
    return res, recs


@pytest.fixture(scope="module")
def unsynced_gaps(distilled, tmp_path_factory):
    """The control experiment: the same run with the weight sync disabled (vLLM keeps sampling the initial policy)."""
    site = tmp_path_factory.mktemp("site")
    (site / "sitecustomize.py").write_text(NO_SYNC_SITE)
    _, recs = train_with_vllm(distilled, tmp_path_factory.mktemp("nosync") / "train",
                              "rl.args.vllm_importance_sampling_mode=sequence_mask", site=site)
    return [r["sampling/sampling_logp_difference/mean"] for r in recs]


@pytest.mark.parametrize("is_mode", ["sequence_mask", "token_truncate"])
def test_degrpo_with_colocated_vllm_follows_the_policy(distilled, tmp_path, is_mode, unsynced_gaps):
    """Rollouts from vLLM, weights synced every step: the sampler-vs-trainer log-prob gap stays at numerical noise
    while the policy moves; without the sync (the control run) it grows with every step. The per-mode
    importance-sampling metrics come from real vLLM log-probs."""
    res, recs = train_with_vllm(distilled, tmp_path / "train", f"rl.args.vllm_importance_sampling_mode={is_mode}")
    assert [r["step"] for r in recs] == [1, 2, 3, 4] and "RL done: 4 steps" in res.stdout
    gaps = [r["sampling/sampling_logp_difference/mean"] for r in recs]
    assert gaps[0] == pytest.approx(unsynced_gaps[0], abs=0.02)  # step 1: both sample the initial policy
    assert unsynced_gaps[-1] > 5 * max(gaps[-1], 0.005), (gaps, unsynced_gaps)
    verb = "masked" if is_mode.endswith("mask") else "truncated"
    values = [v for r in recs for k, v in r.items() if k.startswith(f"sampling/is_{verb}_")]
    assert values and all(0.0 <= v <= 1.0 for v in values)
    assert "loss/control" in recs[-1]  # our decoupled loss ran on vLLM's sampling log-probs


def test_use_vllm_never_falls_back_silently(distilled, tmp_path):
    proc = run_train_cli(tmp_path / "t", distilled / "model", *COLOCATE, "rl.args.vllm_mode=server",
                         check=False, env=VLLM_ENV)
    assert proc.returncode != 0 and "NCCL" in proc.stderr and "vllm_mode=colocate" in proc.stderr


# ------------------------------------------------------------------ server mode: trl vllm-serve and its client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(distilled, tmp_path_factory):
    """`trl vllm-serve` on the tiny policy, on CPU, with the think-bias logits processor (one server for the TRL
    client and the OpenAI-client tests of thinking on demand)."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    trl = os.path.join(os.path.dirname(sys.executable), "trl")
    cmd = [trl, "vllm-serve", "--model", str(distilled / "model"), "--host", "127.0.0.1", "--port", str(port),
           "--dtype", "float32", "--enforce_eager", "--max_model_len", "256", "--gpu_memory_utilization", "0.1",
           "--logits-processors", "thinkless.vllm_think_bias:ThinkBias", "--served-model-name", "thinkless-demo"]
    env = {**os.environ, **VLLM_ENV, "PYTHONPATH": str(ROOT)}
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        import requests

        deadline = time.time() + 240
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"trl vllm-serve exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
            try:
                if requests.get(url + "/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(1)
        else:
            raise RuntimeError(f"trl vllm-serve not healthy after 240 s:\n{log.read_text()[-4000:]}")
        yield {"url": url, "port": port, "model": "thinkless-demo", "path": distilled / "model"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


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
    """examples/openai_client.py (the README's serving example) against the server, over real HTTP."""
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
