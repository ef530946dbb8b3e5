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
             "rl_data.validation=null"]


def lines(metrics):
    return [r for r in (json.loads(ln) for ln in metrics.read_text().splitlines() if ln.strip())
            if "modes/think_ratio" in r]


def steps(metrics):
    return [r["step"] for r in lines(metrics)]


def kill_after_step_3(model, out, overrides):
    """train.py killed (SIGKILL) once step 3 is logged: checkpoint-2 exists, step 3 must be redone."""
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
    return metrics


def same_weights(ref, out):
    """The final weights of ``out`` equal those of ``ref`` (the uninterrupted run); ``out``'s tensors."""
    a = load_file(ref / "model" / "model.safetensors")
    b = load_file(out / "model" / "model.safetensors")
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k
    return b


def test_resume_after_sigkill(distilled, tmp_path):
    """Killed after step 3 and resumed from checkpoint-2: the same steps, rewards and weights as the uninterrupted
    run. The schedule is the authors' second phase at step 2 (reference = the switch policy, a fresh AdamW state;
    checkpoint-2 is written after it): the reference comes back from the checkpoint, the zeroed moments from its
    optimizer state. Then what a rerun into the folder does (refuse a changed config, nothing left to do)."""
    model = distilled / "model"
    overrides = [*OVERRIDES,
        "rl.args.beta=0.5",  # a KL term that the reference visibly moves
        "+rl.args.weight_decay=0.5",  # every weight moves each step, even where a group's rewards are all equal
        "objective.reward_schedule=[{after_step:2,correct_think:0.8,reset_reference:true,reset_optimizer:true}]",
        "rl.budget.think_ratio=0.3", "rl.budget.step_size=0.5"]  # the multiplier is run state too
    ref = tmp_path / "ref"
    run_train_cli(ref, model, *overrides)
    out = tmp_path / "killed"
    metrics = kill_after_step_3(model, out, overrides)
    assert (out / "checkpoints" / "checkpoint-2" / "ref_model.safetensors").exists()  # written after the reset
    policy2 = load_file(out / "checkpoints" / "checkpoint-2" / "model.safetensors")

    # a rerun with another learning rate, α and G stops before any work, naming the keys and the two ways on
    changed = [*overrides, "rl.args.learning_rate=1e-3", "objective.alpha=0.01", "rl.args.num_generations=8"]
    bad = run_train_cli(out, model, *changed, check=False)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    for text in ("different configuration", "rl.args.learning_rate: 0.0002 -> 0.001", "objective.alpha: 1.0 -> 0.01",
                 "rl.args.num_generations: 4 -> 8", "rerun=resume", "rerun=fresh"):
        assert text in bad.stderr, text
    assert not (out / "checkpoints" / "checkpoint-4").exists() and steps(metrics) == [1, 2, 3]
    assert json.loads((out / "checkpoints" / "checkpoint-2" / "run_config.json").read_text())["config"]["objective"][
        "alpha"] == 1.0  # the checkpoint carries the configuration that made it

    res = run_train_cli(out, model, *overrides, "rl.args.logging_steps=1", "wandb.enabled=false")  # excluded keys
    assert "resuming from" in res.stdout and "checkpoint-" in res.stdout
    assert steps(metrics) == [1, 2, 3, 4, 5, 6]
    # the reward schedule is read from the trainer step: exact across the resume (0.5 for steps 1-2, then 0.8)
    got = [r["rewards/correct_think"] for r in lines(metrics)]
    assert got == [r["rewards/correct_think"] for r in lines(ref / "metrics.jsonl")] == [0.5] * 2 + [0.8] * 4
    # the budget's multiplier came back from checkpoint-2: the same price at every step as the uninterrupted run
    lam = [r["budget/multiplier"] for r in lines(metrics)]
    assert lam == [r["budget/multiplier"] for r in lines(ref / "metrics.jsonl")] and lam[0] == 0.0
    assert len(set(lam)) > 2 and (out / "checkpoints" / "checkpoint-6" / "budget.json").is_file()
    assert "| budget: final multiplier λ |" in (out / "model" / "README.md").read_text()
    # same weights as the uninterrupted run: optimizer, scheduler, RNG, data position and reference were restored
    b = same_weights(ref, out)
    # the resumed run's reference is the step-2 policy, as the uninterrupted run's (its later checkpoints hold it)
    got, want = (load_file(d / "checkpoints" / "checkpoint-6" / "ref_model.safetensors") for d in (out, ref))
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    common = set(got) & set(policy2)
    assert common and all(torch.equal(got[k], policy2[k].to(got[k].dtype)) for k in common)
    start = load_file(model / "model.safetensors")  # ... which is not the warm-up model the run started from
    assert any(not torch.equal(start[k], policy2[k]) for k in common)

    # a finished run is not resumed into extra steps: a changed config is refused, the same one has nothing to do
    card = (out / "model" / "README.md").read_text()
    coupled = [o for o in overrides if not o.startswith("objective.")] + ["objective=grpo"]  # drops the schedule
    bad = run_train_cli(out, model, *coupled, check=False)
    assert bad.returncode == 1 and "finished train run" in bad.stderr
    assert "objective.name: 'thinkless' -> 'grpo'" in bad.stderr
    bad = run_train_cli(out, model, *overrides, "objective.alpha=5", "rerun=resume", check=False)
    assert bad.returncode == 1 and "not resumed into extra steps" in bad.stderr
    again = run_train_cli(out, model, *overrides)
    assert "nothing to do" in again.stdout and "step 7" not in again.stdout
    final = load_file(out / "model" / "model.safetensors")
    assert (out / "model" / "README.md").read_text() == card and all(torch.equal(final[k], b[k]) for k in b)
    assert json.loads((out / "model" / "run_config.json").read_text())["config"]["objective"]["alpha"] == 1.0

    # without the resets the run ends elsewhere: they are not a no-op at this scale
    plain = tmp_path / "plain"
    run_train_cli(plain, model, *[o for o in overrides if not o.startswith("objective.")],
                  "objective.reward_schedule=[{after_step:2,correct_think:0.8}]")
    a, c = (load_file(d / "model" / "model.safetensors") for d in (ref, plain))
    assert any(not torch.allclose(a[k], c[k], atol=1e-5) for k in a)


def _state(out, alpha=0.001, *, ckpt=2, finished=False):
    """A fake run folder: a complete checkpoint with its configuration record (and a result when finished)."""
    from omegaconf import OmegaConf

    from thinkless.stage import RECORD, run_config

    c = out / "checkpoints" / f"checkpoint-{ckpt}"
    c.mkdir(parents=True)
    (c / "trainer_state.json").write_text("{}")
    rec = run_config(OmegaConf.create({"rl": {"alpha": alpha, "args": {"learning_rate": 1e-3}}, "seed": 0}), "train")
    (c / RECORD).write_text(json.dumps(rec))
    if finished:
        (out / "train_result.json").write_text("{}")


def cfg_(alpha=0.001, rerun="auto", **args):
    from omegaconf import OmegaConf

    return OmegaConf.create({"rl": {"alpha": alpha, "args": {"learning_rate": 1e-3, **args}}, "seed": 0,
                             "rerun": rerun, "output_dir": "x", "wandb": {"enabled": False}})


def test_rerun_decision(tmp_path, capsys):
    import pytest

    from thinkless.checks import ConfigError
    from thinkless.stage import StageFinished, decide_rerun, run_config

    def decide(out, cfg):
        return decide_rerun(cfg, "train", out, run_config(cfg, "train"))

    assert decide(tmp_path / "empty", cfg_()) == []                         # nothing there: a plain start
    _state(a := tmp_path / "a")
    assert decide(a, cfg_()) == []                                          # same configuration: resume
    assert decide(a, cfg_(logging_steps=5, save_steps=9, report_to=[])) == []  # excluded keys may change
    with pytest.raises(ConfigError, match=r"(?s)checkpoint-2.*rl.alpha: 0.001 -> 0.5.*rerun=resume.*rerun=fresh"):
        decide(a, cfg_(0.5))
    assert decide(a, cfg_(0.5, "resume")) == ["rl.alpha: 0.001 -> 0.5"]    # the explicit override, recorded
    _state(f := tmp_path / "f", finished=True)
    with pytest.raises(StageFinished, match="nothing to do"):
        decide(f, cfg_())
    with pytest.raises(ConfigError, match="finished train run.*different"):
        decide(f, cfg_(5.0))
    with pytest.raises(ConfigError, match="not resumed into extra steps"):
        decide(f, cfg_(5.0, "resume"))
    assert decide(f, cfg_(5.0, "fresh")) == []                             # fresh: old files moved aside, none lost
    moved = list(f.glob("replaced-*"))
    assert len(moved) == 1 and (moved[0] / "train_result.json").exists() and not (f / "checkpoints").exists()
    old = tmp_path / "old"                                                  # state without a record (older version)
    (old / "checkpoints" / "checkpoint-1").mkdir(parents=True)
    (old / "checkpoints" / "checkpoint-1" / "trainer_state.json").write_text("{}")
    with pytest.raises(ConfigError, match="no recorded configuration"):
        decide(old, cfg_())
    nock = tmp_path / "nock"                                                # a kill without any checkpoint
    nock.mkdir()
    (nock / "run_config.json").write_text(json.dumps(run_config(cfg_(), "train")))
    assert decide(nock, cfg_()) == [] and "starting again from step 0" in capsys.readouterr().out


def test_run_config_excludes_only_what_may_change(tmp_path):
    from thinkless.stage import EXCLUDED_ARGS, EXCLUDED_KEYS, run_config

    base = run_config(cfg_(), "train")
    assert "output_dir" in EXCLUDED_KEYS and "wandb" in EXCLUDED_KEYS and "logging_steps" in EXCLUDED_ARGS
    assert run_config(cfg_(logging_steps=3), "train")["fingerprint"] == base["fingerprint"]
    assert run_config(cfg_(max_steps=3), "train")["fingerprint"] != base["fingerprint"]
    assert run_config(cfg_(0.5), "train")["fingerprint"] != base["fingerprint"]


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


def test_adaptthink_resumes_exactly(distilled, tmp_path):
    """Forced first tokens, the reference cache (sampled by the first run, found by the others) and the naive
    advantage: a killed and resumed AdaptThink run ends on the uninterrupted run's weights."""
    model = distilled / "model"
    overrides = [*OVERRIDES, "objective=adaptthink", "objective.ref_samples=2"]
    ref = tmp_path / "ref"
    run_train_cli(ref, model, *overrides)
    out = tmp_path / "killed"
    metrics = kill_after_step_3(model, out, overrides)
    res = run_train_cli(out, model, *overrides)
    assert "resuming from" in res.stdout and "reference pre-pass" not in res.stdout
    assert (tmp_path / "adaptthink_ref.json").exists()
    assert steps(metrics) == [1, 2, 3, 4, 5, 6]
    assert [r["modes/think_ratio"] for r in lines(metrics)] == [0.5] * 6
    same_weights(ref, out)
