"""train.py states the global batch it will roll out, and says how to restore a recipe's declared one
(``recipe_batch``) when the process count changes it, before the model loads (thinkless.training.rl.check_global_batch)."""

import re

import pytest

from thinkless.runs import checks
from thinkless.training.rl import check_global_batch, global_batch

from .test_configs import compose_cfg


@pytest.fixture(autouse=True)
def _fresh_warnings():
    checks.reset_warnings()
    yield
    checks.reset_warnings()


@pytest.mark.parametrize("experiment,G,rollout,step", [("degrpo", 8, 128, 64), ("adaptthink", 16, 128, 128)])
def test_recipe_declares_its_batch_and_gets_it_on_8_processes(experiment, G, rollout, step, capsys):
    cfg = compose_cfg("train", [f"+experiment={experiment}"])
    assert dict(cfg.recipe_batch) == {"prompts_per_rollout": rollout, "prompts_per_step": step, "processes": 8}
    b = check_global_batch(cfg, 8)
    assert (b["prompts_per_rollout"], b["prompts_per_step"], b["generations"]) == (rollout, step, G)
    assert checks.collected_warnings() == []
    out = capsys.readouterr().out
    assert f"= {rollout * G} completions = {rollout} prompts x {G} generations per rollout" in out
    assert f"{step * G} completions = {step} prompts per optimizer step" in out


@pytest.mark.parametrize("experiment,processes", [("degrpo", 1), ("degrpo", 2), ("degrpo", 4), ("adaptthink", 1),
                                                  ("degrpo", 16)])
def test_fewer_or_more_processes_are_told_the_arithmetic_that_restores_the_recipe(experiment, processes, capsys):
    cfg = compose_cfg("train", [f"+experiment={experiment}"])
    b = check_global_batch(cfg, processes)
    want = (cfg.recipe_batch.prompts_per_rollout, cfg.recipe_batch.prompts_per_step)
    assert (b["prompts_per_rollout"], b["prompts_per_step"]) == (want[0] * processes / 8, want[1] * processes / 8)
    [w] = checks.collected_warnings()
    assert w["key"] == "recipe_batch"
    msg = w["message"]
    assert f"this run has {processes} and rolls out {want[0] * processes / 8:g} prompts per rollout" in msg
    # the proposed overrides, applied, give the recipe's batch on this many processes: no warning then
    fix = re.search(r"To restore it on \d+: ((?:rl\.args\.\w+=\d+ ?)+)", msg).group(1).split()
    fixed = compose_cfg("train", [f"+experiment={experiment}", *fix])
    checks.reset_warnings()
    b = check_global_batch(fixed, processes)
    assert (b["prompts_per_rollout"], b["prompts_per_step"]) == want and checks.collected_warnings() == []
    if experiment == "degrpo" and processes == 1:  # the case: 16 prompts a rollout instead of 128
        assert "rolls out 16 prompts per rollout and 8 per optimizer step" in msg
        assert fix == ["rl.args.gradient_accumulation_steps=256", "rl.args.steps_per_generation=512"]


def test_no_per_device_batch_divides_says_so():
    cfg = compose_cfg("train", ["+experiment=degrpo"])
    check_global_batch(cfg, 3)
    [w] = checks.collected_warnings()
    assert "no per-device batch divides 128 x 8 completions over 3 processes" in w["message"]


def test_the_demo_declares_none_and_is_only_stated(capsys):
    b = check_global_batch(compose_cfg("train", []), 1)
    assert (b["prompts_per_rollout"], b["prompts_per_step"]) == (16, 16) and checks.collected_warnings() == []
    assert "16 prompts x 8 generations per rollout" in capsys.readouterr().out
    # TRL's generation_batch_size, when set, is the rollout
    b = global_batch({"per_device_train_batch_size": 4, "num_generations": 4, "generation_batch_size": 32}, 2)
    assert (b["steps_per_generation"], b["prompts_per_rollout"], b["prompts_per_step"]) == (4, 8, 2)


@pytest.mark.parametrize("bad", ["recipe_batch.prompts_per_rollout=0", "recipe_batch.processes=2.5",
                                 "recipe_batch.prompts_per_step=null"])
def test_a_bad_recipe_batch_names_the_key(bad):
    cfg = compose_cfg("train", ["+experiment=degrpo", bad])
    with pytest.raises(checks.ConfigError, match=re.escape(bad.split("=")[0]) + ".*whole number >= 1"):
        check_global_batch(cfg, 8)


def test_train_states_the_batch_before_the_model_loads(tmp_path, monkeypatch, capsys):
    """The train stage: the statement and the warning come before load_checkpoint is ever called."""
    from thinkless.training import rl
    from train import train_stage

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "tokenizer.json").write_text("{}")
    seen = []

    def no_load(*a, **k):
        seen.append(checks.collected_warnings())
        raise RuntimeError("the model would load here")

    monkeypatch.setattr(rl, "load_checkpoint", no_load)
    cfg = compose_cfg("train", ["+experiment=degrpo", f"model.path={model}", f"output_dir={tmp_path / 'out'}",
                                "rl.args.use_vllm=false", "quiet=false"])
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(RuntimeError, match="would load here"):
        train_stage(cfg)
    assert [w["key"] for w in seen[0]].count("recipe_batch") == 1
    assert "16 prompts x 8 generations per rollout" in capsys.readouterr().out


def test_the_declared_batch_does_not_shape_the_run_state():
    """recipe_batch documents an intent: changing it is no configuration change for a rerun (thinkless.runs.stage)."""
    from thinkless.runs.stage import run_config

    a = run_config(compose_cfg("train", ["+experiment=degrpo"]), "train")
    b = run_config(compose_cfg("train", ["+experiment=degrpo", "recipe_batch.processes=4"]), "train")
    assert a["fingerprint"] == b["fingerprint"] and "recipe_batch" not in a["config"]
