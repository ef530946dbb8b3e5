"""Every config in conf/ composes; bad choices fail naming the valid ones."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from .conftest import ROOT
from .helpers import run_cli

CONF = ROOT / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def compose_cfg(name, overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=name, overrides=overrides)
    OmegaConf.resolve(cfg)  # every interpolation resolves
    return cfg


PRIMARY = [p.stem for p in CONF.glob("*.yaml")]
GROUPS = {"distill": ["model", "data", "training", "wandb"], "train": ["rl_data", "rl", "wandb", "hub"],
          "eval": []}


@pytest.mark.parametrize("name", PRIMARY)
def test_primary_configs_compose(name):
    compose_cfg(name, [])


@pytest.mark.parametrize("name,group,option", [(n, g, o) for n, gs in GROUPS.items() if (CONF / f"{n}.yaml").exists()
                                               for g in gs for o in options(g)])
def test_every_group_option_composes(name, group, option):
    cfg = compose_cfg(name, [f"{group}={option}"])
    assert cfg[group] is not None


def test_model_options_compose_for_distill_and_train():
    for option in options("model"):
        compose_cfg("distill", [f"model={option}"])
        compose_cfg("train", [f"model={option}"])


def test_experiments_compose():
    d = compose_cfg("distill", ["+experiment=distill"])
    assert d.model.path == "Qwen/Qwen2.5-1.5B-Instruct"
    a = d.training.args
    assert (a.learning_rate, a.lr_scheduler_kwargs.min_lr, a.warmup_steps, a.bf16, a.max_length) == \
        (1e-5, 1e-6, 0.05, True, 16384)
    t = compose_cfg("train", ["+experiment=degrpo"])
    r = t.rl
    assert (r.decoupled, r.alpha, r.rewards.correct_think, r.args.beta, r.args.learning_rate, r.args.temperature) == \
        (True, 1e-3, 0.5, 1e-3, 1e-6, 0.6)
    assert r.args.num_generations == 8 and r.args.use_vllm and r.args.max_completion_length >= 16384
    assert r.args.per_device_train_batch_size * 8 * r.args.gradient_accumulation_steps == 128 * 8  # 8 GPUs
    g = compose_cfg("train", ["+experiment=[degrpo,grpo]"])
    assert g.rl.decoupled is False and g.rl.args == t.rl.args and g.rl_data == t.rl_data
    demo_grpo = compose_cfg("train", ["+experiment=grpo"])
    assert demo_grpo.rl.decoupled is False and demo_grpo.output_dir.endswith("train_grpo")


def test_unknown_group_choice_names_valid_choices():
    proc = run_cli("distill.py", "model=no-such-model", check=False)
    assert proc.returncode != 0
    err = proc.stderr + proc.stdout
    assert "no-such-model" in err
    for valid in options("model"):
        assert valid in err


def test_missing_model_path_fails_before_work(tmp_path):
    proc = run_cli("train.py", f"output_dir={tmp_path}/out", f"model.path={tmp_path}/nope", check=False)
    assert proc.returncode != 0
    assert "does not exist" in proc.stderr and "model.path" in proc.stderr
    assert not (tmp_path / "out" / "checkpoints").exists()
    proc = run_cli("distill.py", f"output_dir={tmp_path}/d", "model=qwen2.5-1.5b",
                   f"model.path={tmp_path}/nope", check=False)
    assert proc.returncode != 0 and "does not exist" in proc.stderr


def test_hub_id_offline_not_cached_fails_clearly(tmp_path):
    proc = run_cli("distill.py", f"output_dir={tmp_path}/d", "model=qwen2.5-1.5b", check=False,
                   env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert proc.returncode != 0
    assert "Qwen/Qwen2.5-1.5B-Instruct" in proc.stderr and "HF_HUB_OFFLINE" in proc.stderr


def test_bad_source_names_valid_choices(tmp_path):
    proc = run_cli("distill.py", f"output_dir={tmp_path}/d", "data.source=bogus", check=False)
    assert proc.returncode != 0 and "synthetic" in proc.stderr and "teacher" in proc.stderr
