"""vLLM for real (vLLM's CPU build, installed by scripts/setup.sh): evaluation, DeGRPO rollouts with weight sync, the
TRL server and its client. Every test runs a real engine; none is mocked.

The engines run on the `distilled` tiny checkpoint (a 60-step distill.py run: it knows the format, and its greedy
answers are deterministic). Evaluation and training run as their CLIs, in subprocesses, like a user runs them.
"""

from __future__ import annotations

import json

import pytest

from .helpers import run_cli

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
