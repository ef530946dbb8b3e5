"""The stage runner (thinkless/runs/stage.py): the rerun decision, the lock, and resuming after SIGKILL from the last checkpoint
(no step lost or repeated, the same weights, the reward schedule exact)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from ..helpers import ROOT, run_train_cli

OVERRIDES = ["rl.args.max_steps=6", "rl.args.save_steps=2", "rl.args.per_device_train_batch_size=16",
             "rl.args.num_generations=4", "rl.args.max_completion_length=40", "report.enabled=false",
             "rl_data.validation=null", "rl.args.warmup_steps=0"]  # full-size steps from the first (the demo warms up)


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
    for text in ("different configuration", "rl.args.learning_rate: 0.0005 -> 0.001", "objective.alpha: 1.0 -> 0.01",
                 "rl.args.num_generations: 4 -> 8", "rerun=resume", "rerun=fresh"):
        assert text in bad.stderr, text
    assert not (out / "checkpoints" / "checkpoint-4").exists() and steps(metrics) == [1, 2, 3]
    assert json.loads((out / "checkpoints" / "checkpoint-2" / "run_config.json").read_text())["config"]["objective"][
        "alpha"] == 1.0  # the checkpoint carries the configuration that made it

    res = run_train_cli(out, model, *overrides, "rl.args.logging_steps=1", "wandb.enabled=false")  # excluded keys
    assert "resuming from" in res.stdout and "checkpoint-" in res.stdout
    assert steps(metrics) == [1, 2, 3, 4, 5, 6]
    # the reward schedule is read from the trainer step: exact across the resume (the fold task's 0.1 for steps 1-2,
    # then 0.8)
    got = [r["rewards/correct_think"] for r in lines(metrics)]
    assert got == [r["rewards/correct_think"] for r in lines(ref / "metrics.jsonl")] == [0.1] * 2 + [0.8] * 4
    # the budget's multiplier came back from checkpoint-2: the same price at every step as the uninterrupted run
    lam = [r["budget/multiplier"] for r in lines(metrics)]
    # (to float noise, as the weights below: two processes' sums of the same numbers may differ in the last bits)
    assert lam == pytest.approx([r["budget/multiplier"] for r in lines(ref / "metrics.jsonl")], rel=1e-6) and lam[0] == 0
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

    from thinkless.checkpoints import RECORD
    from thinkless.runs.stage import run_config

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

    from thinkless.runs.checks import ConfigError
    from thinkless.runs.stage import StageFinished, decide_rerun, run_config

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
    from thinkless.runs.stage import EXCLUDED_ARGS, EXCLUDED_KEYS, run_config

    base = run_config(cfg_(), "train")
    assert "output_dir" in EXCLUDED_KEYS and "wandb" in EXCLUDED_KEYS and "logging_steps" in EXCLUDED_ARGS
    assert run_config(cfg_(logging_steps=3), "train")["fingerprint"] == base["fingerprint"]
    assert run_config(cfg_(max_steps=3), "train")["fingerprint"] != base["fingerprint"]
    assert run_config(cfg_(0.5), "train")["fingerprint"] != base["fingerprint"]


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


def test_a_second_run_into_a_busy_folder_is_refused(tmp_path):
    """The hostile audit: two train.py runs into one folder both trained and exited 0, their metrics interleaved.
    The folder's lock (held by another process here) stops the second before any work, naming the holder."""
    import subprocess
    import sys

    from thinkless.runs.checks import ConfigError
    from thinkless.runs.stage import LOCK, lock_output, move_aside

    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); f.write('train, pid 4242'); f.flush(); "
                               "print('held', flush=True); time.sleep(60)", str(tmp_path / LOCK)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match=r"is in use by another run \(train, pid 4242\).*another output_dir"):
            lock_output(tmp_path, "train")
    finally:
        holder.kill()
        holder.wait()
    lock_output(tmp_path, "train")  # free once the holder is gone (however it ended); again in-process: a no-op
    lock_output(tmp_path, "train")
    (tmp_path / "metrics.jsonl").write_text("{}\n")
    dest = move_aside(tmp_path, "train", "rerun=fresh")  # the lock stays with the folder, not the old files
    assert (tmp_path / LOCK).is_file() and not (dest / LOCK).exists() and (dest / "metrics.jsonl").is_file()


def test_rerun_refuses_what_a_resume_cannot_honour(tmp_path):
    """rerun=resume refuses, before any work, a changed optimizer or scheduler class and a max_steps below the
    checkpoint's step; the learning rate is no longer among the refused keys (a resume applies it)."""
    from thinkless.runs.checks import ConfigError
    from thinkless.runs.stage import NOT_ON_RESUME, decide_rerun, run_config

    def decide(out, cfg):
        return decide_rerun(cfg, "train", out, run_config(cfg, "train"))

    _state(a := tmp_path / "a", ckpt=4)
    assert "learning_rate" not in NOT_ON_RESUME
    assert decide(a, cfg_(rerun="resume", learning_rate=5e-4)) == ["rl.args.learning_rate: 0.001 -> 0.0005"]
    for key, value in (("optim", "sgd"), ("lr_scheduler_type", "cosine")):
        with pytest.raises(ConfigError, match=rf"rl.args.{key} cannot change on resume"):
            decide(a, cfg_(rerun="resume", **{key: value}))
    with pytest.raises(ConfigError, match=r"rl.args.max_steps=3 is below the 4 steps"):
        decide(a, cfg_(rerun="resume", max_steps=3))


def test_a_start_that_trained_nothing_is_replaced_by_a_corrected_rerun(tmp_path, capsys):
    """A start that failed before its first step (no checkpoint, no step logged) does not block a rerun under
    another configuration: its files move aside and the new one starts fresh. One that trained steps still stops."""
    from thinkless.runs.checks import ConfigError
    from thinkless.runs.stage import decide_rerun, run_config

    def decide(out, cfg):
        return decide_rerun(cfg, "train", out, run_config(cfg, "train"))

    failed = tmp_path / "failed"
    failed.mkdir()
    (failed / "run_config.json").write_text(json.dumps(run_config(cfg_(), "train")))
    (failed / "metrics.jsonl").write_text('{"step": 0, "eval_loss": 1.0}\n')  # eval_on_start, then a crash
    assert decide(failed, cfg_(0.5)) == []
    assert "trained nothing" in capsys.readouterr().out
    moved = list(failed.glob("replaced-*"))
    assert len(moved) == 1 and (moved[0] / "run_config.json").is_file() and not (failed / "run_config.json").exists()
    trained = tmp_path / "trained"
    trained.mkdir()
    (trained / "run_config.json").write_text(json.dumps(run_config(cfg_(), "train")))
    (trained / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "lo')  # torn by the kill
    with pytest.raises(ConfigError, match="would mix the two"):
        decide(trained, cfg_(0.5))


def test_a_rewritten_base_model_or_data_file_is_seen_downstream(tmp_path):
    """The fingerprint covers what a stage starts from: the distilled model saved again by a rerun of distill.py
    (or other weights under the same path), or an edited data file, stops the train rerun that would otherwise have
    had nothing to do, naming the input and the stage to rerun."""
    from omegaconf import OmegaConf

    from thinkless.runs.checks import ConfigError
    from thinkless.checkpoints import RECORD
    from thinkless.runs.stage import Stage, StageFinished, decide_rerun, finish_stage, run_config

    from ..helpers import save_tiny

    distill = tmp_path / "distill"
    data = tmp_path / "math.jsonl"
    data.write_text('{"problem": "1+1", "answer": "2"}\n')

    def distil():  # what distill.py leaves: model/ and, at its end, the record with its saved_at stamp
        save_tiny(distill / "model")
        (distill / RECORD).write_text(json.dumps({"stage": "distill", "fingerprint": "x", "config": {}}))
        finish_stage(Stage(OmegaConf.create({"seed": 0}), "distill", distill, True), {}, "distill")

    def cfg():
        return OmegaConf.create({"model": {"path": str(distill / "model")}, "rl_data": {"name": str(data)},
                                 "rl": {"args": {"learning_rate": 1e-3}}, "objective": {"name": "thinkless"},
                                 "seed": 0, "rerun": "auto"})

    def decide(out):
        return decide_rerun(cfg(), "train", out, run_config(cfg(), "train"))

    distil()
    out = tmp_path / "train"
    (out / "model").mkdir(parents=True)
    (out / "model" / RECORD).write_text(json.dumps(run_config(cfg(), "train")))
    (out / "train_result.json").write_text("{}")
    with pytest.raises(StageFinished):
        decide(out)
    assert run_config(cfg(), "train")["fingerprint"] == run_config(cfg(), "train")["fingerprint"]
    distil()  # distill.py ... rerun=fresh: the same path, a new save
    with pytest.raises(ConfigError, match=r"(?s)content of model.path \(.*distill/model\) changed.*"
                                          r"model.path .* was rewritten.*Rerun this stage \(rerun=fresh\)"):
        decide(out)
    (out / "model" / RECORD).write_text(json.dumps(run_config(cfg(), "train")))
    save_tiny(distill / "model", seed=1)  # other weights of the same shapes, no stage record changed
    with pytest.raises(ConfigError, match=r"content of model.path"):
        decide(out)
    (out / "model" / RECORD).write_text(json.dumps(run_config(cfg(), "train")))
    data.write_text('{"problem": "1+1", "answer": "3"}\n')  # the data file edited in place
    with pytest.raises(ConfigError, match=r"content of rl_data.name"):
        decide(out)
    old = run_config(cfg(), "train")  # a record from before inputs were recorded: compared by its config only
    old.pop("inputs")
    (out / "model" / RECORD).write_text(json.dumps(old))
    with pytest.raises(StageFinished):
        decide(out)
    old["config"]["objective"]["run_dir"] = "train"  # ... and from before 0.2.0: its objective.run_dir was no knob
    (out / "model" / RECORD).write_text(json.dumps(old))
    with pytest.raises(StageFinished):
        decide(out)


# every key of the stage configs that may change across a resume without changing what is computed (docs/reruns.md)
MAY_CHANGE = {"run_name", "output_dir", "quiet", "threads", "rerun", "wandb", "hub", "report", "official",
              "progress", "plots", "recipe_batch", "run_dirs"}
MAY_CHANGE_ARGS = {"logging_steps", "logging_first_step", "logging_strategy", "logging_dir", "logging_nan_inf_filter",
                   "log_level", "log_completions", "num_completions_to_print", "save_steps", "save_strategy",
                   "save_total_limit", "save_only_model", "report_to", "disable_tqdm", "dataloader_num_workers",
                   "push_to_hub", "hub_model_id", "hub_strategy", "hub_private_repo", "run_name", "output_dir",
                   "long_short_multiple"}


@pytest.mark.parametrize("name,job_type,extra", [("train", "train", []), ("distill", "distill", []),
                                                 ("train", "train", ["+experiment=degrpo"]),
                                                 ("distill", "distill", ["+experiment=distill"])])
def test_every_config_key_counts_unless_it_may_change(name, job_type, extra):
    """The rerun fingerprint's excluded keys are exactly the documented ones: every other leaf of the real stage
    configs (learning rate, schedule, objective.*, data, model, seed, ...) changes the fingerprint when changed."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from thinkless.runs.fingerprint import flatten
    from thinkless.runs.stage import ARGS_KEYS, EXCLUDED_ARGS, EXCLUDED_KEYS, run_config

    assert set(EXCLUDED_KEYS) == MAY_CHANGE and set(EXCLUDED_ARGS) == MAY_CHANGE_ARGS
    docs = (ROOT / "docs" / "reruns.md").read_text()
    assert all(f"`{k}`" in docs for k in MAY_CHANGE | MAY_CHANGE_ARGS)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name=name, overrides=extra)
    base = run_config(cfg, job_type)["fingerprint"]
    args = ARGS_KEYS[job_type]
    leaves = flatten(OmegaConf.to_container(cfg, resolve=False))
    counted = 0
    for key, value in leaves.items():
        if isinstance(value, str) and "${" in value:
            continue  # an interpolation: the key it reads is perturbed itself
        top, arg = key.split(".")[0], key[len(args) + 1:].split(".")[0] if key.startswith(args + ".") else None
        new = cfg.copy()
        bumped = {"x": 1} if isinstance(value, dict) else value + ["x"] if isinstance(value, list) else [value, "x"]
        OmegaConf.update(new, key, bumped, force_add=True, merge=False)
        rec = run_config(new, job_type)
        if top in MAY_CHANGE or arg in MAY_CHANGE_ARGS:  # left out (it may still reach a key that counts, e.g.
            assert key not in flatten(rec["config"]), key  # run_name in the default model.path)
        else:
            assert rec["fingerprint"] != base, key
            counted += 1
    assert counted > 20
    for key in (f"{args}.learning_rate", f"{args}.max_steps", f"{args}.lr_scheduler_type", "seed"):
        assert key in leaves
    if job_type == "train":
        assert any(k.startswith("objective.") for k in leaves) and "objective.alpha" in leaves


def test_resume_reads_a_metrics_log_with_a_torn_last_line(tmp_path, caplog):
    """What kill -9 leaves in metrics.jsonl: the torn last line is dropped with a warning naming the file (and the
    resume trims the file to whole lines); a bad line elsewhere is an error naming the file and the line."""
    import logging

    from transformers import TrainerControl, TrainerState

    from thinkless.reporting.monitor import MetricsLogCallback, read_metrics

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 0.5}\n{"step": 2, "loss": 0.4}\n{"step": 3, "lo')
    with caplog.at_level(logging.WARNING, logger="thinkless.reporting.monitor"):
        assert read_metrics(path) == [{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.4}]
    assert str(path) in caplog.text and "torn" in caplog.text
    state = TrainerState()
    state.global_step = 2
    MetricsLogCallback(tmp_path).on_train_begin(None, state, TrainerControl())
    assert path.read_text() == '{"step": 1, "loss": 0.5}\n{"step": 2, "loss": 0.4}\n'
    path.write_text('{"step": 1, "loss": 0.5}\n{"step": 2, "lo\n{"step": 3, "loss": 0.4}\n')
    with pytest.raises(ValueError, match=rf"{path}:2: not a JSON log line"):
        read_metrics(path)


def test_train_rerun_sees_a_redistilled_model(tmp_path):
    """distill.py, train.py, then distill.py ... rerun=fresh (new data) into the same folder: the train rerun with
    the same run name stops naming model.path and the stage to rerun, instead of "nothing to do" with the old
    policy; rerun=fresh then trains from the new student."""
    from ..helpers import run_distill_cli

    distill, out = tmp_path / "distill", tmp_path / "train"
    small = ["training.args.max_steps=4", "data.num_problems=200", "report.enabled=false"]
    run_distill_cli(distill, *small)
    train = ["rl.args.max_steps=2", "rl.args.per_device_train_batch_size=8", "rl.args.num_generations=4",
             "rl.args.max_completion_length=16", "report.enabled=false", "rl_data.validation=null"]
    run_train_cli(out, distill / "model", *train)
    run_distill_cli(distill, *small, "data.seed=1", "rerun=fresh")  # new data, the same model folder
    bad = run_train_cli(out, distill / "model", *train, check=False)
    assert bad.returncode == 1 and "nothing to do" not in bad.stdout, bad.stdout
    for text in ("finished train run", "content of model.path", "was rewritten since this run was made",
                 "Rerun this stage (rerun=fresh)"):
        assert text in bad.stderr, text
    again = run_train_cli(out, distill / "model", *train, "rerun=fresh")
    assert "RL done: 2 steps" in again.stdout


def test_only_the_entry_points_run_stages():
    """The entry points (distill.py, train.py, eval.py) own the stage lifecycle: no library module imports the stage
    runner (its start, finish and CLI wrapper); what the library needs of a run lives elsewhere (training/loop.py,
    checkpoints.RECORD) or comes in as the ``Stage`` the entry point hands it."""
    import ast

    importers = []
    for p in sorted((ROOT / "thinkless").rglob("*.py")):
        if p == ROOT / "thinkless" / "runs" / "stage.py":
            continue
        package = list(p.relative_to(ROOT).with_suffix("").parts[:-1])
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package[:len(package) - node.level + 1] if node.level else []
                names = [".".join(base + (node.module or "").split("."))] + \
                    [".".join(base + [*(node.module or "").split("."), a.name]) for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            if any(n.replace("..", ".").startswith("thinkless.runs.stage") for n in names):
                importers.append(p.relative_to(ROOT).as_posix())
    assert importers == []
    for script in ("distill.py", "train.py", "eval.py"):
        text = (ROOT / script).read_text()
        assert all(f"{step}(" in text for step in ("start_stage", "finish_stage", "run_cli")), script
