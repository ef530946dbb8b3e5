"""The stage runner (thinkless/stage.py): trainer arguments, and resuming after SIGKILL from the last checkpoint
(no step lost or repeated, the same weights, the reward schedule exact)."""

import json
import os
import signal
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file

from .helpers import ROOT, run_train_cli

OVERRIDES = ["rl.args.max_steps=6", "rl.args.save_steps=2", "rl.args.per_device_train_batch_size=16",
             "rl.args.num_generations=4", "rl.args.max_completion_length=40", "report.enabled=false",
             "rl_data.validation=null", "objective.reward_schedule=[{after_step:3,correct_think:0.8}]"]


def lines(metrics):
    return [r for r in (json.loads(ln) for ln in metrics.read_text().splitlines() if ln.strip())
            if "modes/think_ratio" in r]


def steps(metrics):
    return [r["step"] for r in lines(metrics)]


def kill_and_resume(model, tmp_path, overrides):
    """A run killed after step 3 is logged (checkpoint-2 exists), then rerun; and the uninterrupted reference."""
    ref = tmp_path / "ref"
    run_train_cli(ref, model, *overrides)

    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    cmd = [sys.executable, str(ROOT / "train.py"), f"output_dir={out}", f"model.path={model}", *overrides]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline:  # kill after step 3 is logged: checkpoint-2 exists, step 3 must be redone
        if metrics.exists() and len(steps(metrics)) >= 3:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    assert not (out / "model").exists()

    res = run_train_cli(out, model, *overrides)
    assert "resuming from" in res.stdout and "checkpoint-" in res.stdout
    assert steps(metrics) == [1, 2, 3, 4, 5, 6]
    return ref, out, res


def same_weights(ref, out):
    a = load_file(ref / "model" / "model.safetensors")
    b = load_file(out / "model" / "model.safetensors")
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k


def test_resume_after_sigkill(distilled, tmp_path):
    ref, out, _ = kill_and_resume(distilled / "model", tmp_path, OVERRIDES)
    metrics = out / "metrics.jsonl"
    # the reward schedule is read from the trainer step: exact across the resume (0.5 for steps 1-3, then 0.8)
    got = [r["rewards/correct_think"] for r in lines(metrics)]
    assert got == [r["rewards/correct_think"] for r in lines(ref / "metrics.jsonl")] == [0.5] * 3 + [0.8] * 3
    # same weights as the uninterrupted run: optimizer, scheduler, RNG and data position were restored
    same_weights(ref, out)


def test_adaptthink_resumes_exactly(distilled, tmp_path):
    """Forced first tokens, the reference cache (sampled by the first run, found by the others) and the naive
    advantage: a killed and resumed AdaptThink run ends on the uninterrupted run's weights."""
    overrides = [o for o in OVERRIDES if not o.startswith("objective.")] + ["objective=adaptthink",
                                                                            "objective.ref_samples=2"]
    ref, out, res = kill_and_resume(distilled / "model", tmp_path, overrides)
    assert "reference pre-pass" not in res.stdout and (tmp_path / "adaptthink_ref.json").exists()
    assert [r["modes/think_ratio"] for r in lines(out / "metrics.jsonl")] == [0.5] * 6
    same_weights(ref, out)


def test_trainer_args_cpu_fallback_and_precedence(tmp_path):
    from omegaconf import OmegaConf
    from trl import SFTConfig

    from thinkless.stage import Stage, trainer_args

    cfg = OmegaConf.create({"seed": 3, "wandb": {"enabled": False}})
    stage = Stage(cfg, "distill", tmp_path, True)
    args = trainer_args(SFTConfig, OmegaConf.create({"bf16": True, "max_steps": 5, "learning_rate": 1e-3}), stage,
                        max_steps=7)
    assert (args.bf16, args.use_cpu, args.seed, args.max_steps, args.report_to) == (False, True, 3, 7, [])
    assert args.output_dir == str(tmp_path / "checkpoints") and args.learning_rate == 1e-3
