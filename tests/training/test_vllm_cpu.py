"""DeGRPO with colocated vLLM rollouts on vLLM's CPU build: the weight sync (thinkless/training/vllm_cpu.py) verified
against a control run without it; our loss branches on real vLLM log-probs; a token budget priced on vLLM's
rollouts; no silent fallback."""

from __future__ import annotations

import json
import os

import pytest

from thinkless.training.budget import Budget

from ..conftest import ROOT
from ..helpers import run_train_cli

pytestmark = pytest.mark.slow

VLLM_ENV = {"OMP_NUM_THREADS": "1"}  # the in-process CPU engine and the trainer share 2 cores


# ------------------------------------------------------------------ DeGRPO with vLLM rollouts


COLOCATE = ["rl.args.use_vllm=true", "rl.args.vllm_mode=colocate", "rl.args.vllm_gpu_memory_utilization=0.1",
            "rl.args.vllm_max_model_length=256", "rl.args.max_steps=4", "rl.args.per_device_train_batch_size=32",
            "rl.args.num_generations=8", "rl.args.max_completion_length=40", "rl.args.save_steps=100",
            "rl.args.learning_rate=1e-2", "rl_data.validation=null", "report.enabled=false",
            "rl.args.entropy_coef=0.2"]  # the entropy bonus moves the policy every step, whatever the rewards


NO_SYNC_SITE = """
import thinkless.training.vllm_cpu as v
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


def test_degrpo_with_colocated_vllm_follows_the_policy(distilled, tmp_path, unsynced_gaps):
    """Rollouts from vLLM, weights synced every step: the sampler-vs-trainer log-prob gap stays at numerical noise
    while the policy moves; without the sync (the control run, sequence-level masking) it grows with every step.
    The per-mode importance-sampling metrics come from real vLLM log-probs. (Column 0's own ratio under
    sequence-level correction is tests/objectives/test_adaptthink.py's, on a fixed batch.)"""
    is_mode = "token_truncate"  # the shipped configs' mode
    # a token budget, priced on vLLM's rollout lengths
    budget = ["rl.budget.tokens=12", "rl.budget.step_size=0.5", "rl.budget.proportional=1.0"]
    res, recs = train_with_vllm(distilled, tmp_path / "train", f"rl.args.vllm_importance_sampling_mode={is_mode}",
                                *budget)
    assert [r["step"] for r in recs] == [1, 2, 3, 4] and "RL done: 4 steps" in res.stdout
    gaps = [r["sampling/sampling_logp_difference/mean"] for r in recs]
    assert gaps[0] == pytest.approx(unsynced_gaps[0], abs=0.02)  # step 1: both sample the initial policy
    assert unsynced_gaps[-1] > 5 * max(gaps[-1], 0.005), (gaps, unsynced_gaps)
    verb = "masked" if is_mode.endswith("mask") else "truncated"
    values = [v for r in recs for k, v in r.items() if k.startswith(f"sampling/is_{verb}_")]
    assert values and all(0.0 <= v <= 1.0 for v in values)
    assert "loss/control" in recs[-1]  # our decoupled loss ran on vLLM's sampling log-probs
    # the token budget's multiplier, replayed from the logged batch costs, is the one each step priced with
    b = Budget(cost="tokens", target=12.0, step_size=0.5, bound=2.0, proportional=1.0)
    for r in recs:
        assert r["budget/multiplier"] == pytest.approx(b.multiplier, abs=1e-6) and r["budget/cost"] >= 2
        b.update(r["budget/cost"])
    result = json.loads((tmp_path / "train" / "train_result.json").read_text())
    assert result["budget"]["final_multiplier"] == pytest.approx(b.multiplier, abs=1e-6)


def test_use_vllm_never_falls_back_silently(distilled, tmp_path):
    proc = run_train_cli(tmp_path / "t", distilled / "model", *COLOCATE, "rl.args.vllm_mode=server",
                         check=False, env=VLLM_ENV)
    assert proc.returncode != 0 and "NCCL" in proc.stderr and "vllm_mode=colocate" in proc.stderr


def test_cpu_limits_are_refused_in_one_place():
    """``check_cpu_args`` is the one message for what vLLM's CPU build cannot do (``rl.check_vllm`` calls it before
    any work; the weight sync checks again)."""
    from types import SimpleNamespace

    from thinkless.training.vllm_cpu import check_cpu_args, use_cpu_weight_sync

    check_cpu_args("colocate")
    with pytest.raises(ValueError, match="NCCL.*rl.args.vllm_mode=colocate"):
        check_cpu_args("server")
    with pytest.raises(ValueError, match="no sleep mode"):
        check_cpu_args("colocate", sleep_mode=True)
    with pytest.raises(ValueError, match="NCCL"):
        use_cpu_weight_sync(SimpleNamespace(vllm_generation=SimpleNamespace(mode="server")))


def test_adaptthink_forcing_on_colocated_vllm(distilled, tmp_path):
    """AdaptThink's forced first token through vLLM's CPU engine: half of each group starts with <short>, the
    forced token's sampling log-prob is the forcing's, and the sequence loss trains on vLLM's rollouts."""
    res, recs = train_with_vllm(distilled, tmp_path / "train", "objective=adaptthink", "objective.ref_samples=2",
                                "rl.args.vllm_importance_sampling_mode=token_truncate")
    assert [r["step"] for r in recs] == [1, 2, 3, 4] and "RL done: 4 steps" in res.stdout
    assert all(r["modes/think_ratio"] == 0.5 for r in recs) and "loss/control" in recs[-1]
