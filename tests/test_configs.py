"""Every config in conf/ composes; bad choices fail naming the valid ones."""

import json
import re
import sys

import pytest
import yaml
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
GROUPS = {"distill": ["model", "data", "training", "wandb", "hub"], "train": ["rl_data", "rl", "wandb", "hub"],
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


def test_distill_experiment_is_the_official_warm_up():
    d = compose_cfg("distill", ["+experiment=distill"])
    assert d.model.path == "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B" and d.data.source == "flat"
    assert d.data.name == "Vinnnf/Hybrid-OpenThoughts2-1M-1.5B" and not d.data.require_answer
    a = d.training.args
    assert (a.learning_rate, a.lr_scheduler_kwargs.min_lr, a.warmup_steps, a.max_steps) == (1e-5, 1e-6, 0.05, 17000)
    assert (a.weight_decay, a.adam_beta1, a.adam_beta2, a.max_grad_norm) == (0.1, 0.9, 0.95, 1.0)
    # the official tokenization pads each sample to its own 16,384-token row (no --sequence-packing): 128 samples
    # per optimizer step, 17,000 x 128 = 2,176,000 in all; packing=true is an opt-in that sees several times more
    assert not a.packing and a.max_length == 16384
    assert a.per_device_train_batch_size * 8 * a.gradient_accumulation_steps == 128
    assert a.max_steps * 128 == 2_176_000
    assert d.prompt.instruction == "{problem}"  # the instruction is the data's own


def check_mapping(t, renamed) -> int:
    """Every key of ``t.official.mapping`` whose counterpart is one of our keys holds the official value (``renamed``:
    keys whose value is expressed differently here); the number checked."""
    checked = 0
    for key, (official, ours, expected) in t.official.mapping.items():
        if OmegaConf.select(t, str(ours), default="__missing__") != "__missing__" and not isinstance(expected, str):
            assert OmegaConf.select(t, ours) == expected, (key, ours)
            assert official == expected or renamed(key), key
            checked += 1
    return checked


OFFICIAL = json.loads((ROOT / "tests" / "data" / "official_degrpo.json").read_text())


def _k3_is_low_var_kl() -> str:
    """verl's low_var_kl is k3 = exp(ref - logp) - (ref - logp) - 1 (clamped to [-10, 10]); ours must equal it."""
    import torch

    from thinkless.training.losses import k3_kl

    ref, logp = torch.tensor([-1.0, -2.0, -0.5]), torch.tensor([-1.5, -1.0, -0.5])
    d = ref - logp
    return "low_var_kl" if torch.allclose(k3_kl(ref, logp), torch.exp(d) - d - 1) else "other"


def official_units(t) -> dict:
    """Our composed +experiment=degrpo config, in the official script's keys and units (one entry per key)."""
    a, G, r = t.rl.args, t.rl.args.num_generations, t.objective.rewards
    gpus = 8
    per_rollout = a.steps_per_generation // a.gradient_accumulation_steps  # optimizer steps per official step
    sched = [dict(e) for e in t.objective.reward_schedule]
    return {
        "algorithm.adv_estimator": "grpo" if t.objective.name == "thinkless" and a.scale_rewards in ("none", "group") else "other",
        "algorithm.std_normalizer": a.scale_rewards != "none",
        "data.train_files": "data/deepscaler/train.parquet"
        if t.rl_data.name == "agentica-org/DeepScaleR-Preview-Dataset" else t.rl_data.name,
        "data.val_files": "data/deepscaler/aime24.parquet"
        if t.rl_data.validation.name == "HuggingFaceH4/aime_2024" else t.rl_data.validation.name,
        "data.train_batch_size": a.per_device_train_batch_size * gpus * a.steps_per_generation // G,
        "data.max_prompt_length": t.rl_data.max_prompt_tokens,
        "data.max_response_length": a.max_completion_length,
        "actor_rollout_ref.actor.optim.lr": a.learning_rate,
        "actor_rollout_ref.actor.ppo_mini_batch_size": a.per_device_train_batch_size * gpus
        * a.gradient_accumulation_steps // G,
        # deviations (README, "Reproducing the paper"): TRL has no token-budget micro-batches; the fixed micro-batch
        # of 2 sequences stands in for verl's 32768-token budget
        "actor_rollout_ref.actor.use_dynamic_bsz": a.per_device_train_batch_size == 2,
        "actor_rollout_ref.actor.ppo_max_token_len_per_gpu": 32768 if a.per_device_train_batch_size == 2 else None,
        "actor_rollout_ref.actor.use_kl_loss": a.beta > 0,
        "actor_rollout_ref.actor.kl_loss_coef": a.beta,
        "actor_rollout_ref.actor.kl_loss_type": _k3_is_low_var_kl(),
        "actor_rollout_ref.model.enable_gradient_checkpointing": a.gradient_checkpointing,
        "actor_rollout_ref.rollout.name": "vllm" if a.use_vllm else "hf",
        "actor_rollout_ref.rollout.temperature": a.temperature,
        "actor_rollout_ref.rollout.val_temperature": a.temperature,  # TRL validates at the training temperature
        "actor_rollout_ref.rollout.n": G,
        "actor_rollout_ref.rollout.n_val": a.num_generations_eval,
        "trainer.val_before_train": a.eval_on_start,
        "trainer.save_freq": a.save_steps / per_rollout,
        "trainer.test_freq": a.eval_steps / per_rollout,
        "actor_rollout_ref.actor.thinkless_alpha": t.objective.alpha,
        "thinkless_rewards.correct_short_reward": r.correct_short,
        "thinkless_rewards.correct_think_reward": r.correct_think,
        "thinkless_rewards.wrong_think_reward": r.wrong_think,
        "thinkless_rewards.wrong_short_reward": r.wrong_short,
        "actor_rollout_ref.actor.grad_clip": a.max_grad_norm,
        "actor_rollout_ref.actor.clip_ratio": a.epsilon,
        "actor_rollout_ref.actor.entropy_coeff": a.entropy_coef,
        "actor_rollout_ref.actor.ppo_epochs": a.num_iterations,
        "actor_rollout_ref.actor.optim.warmup_style": a.lr_scheduler_type if a.warmup_steps == 0 else "warm-up",
        "actor_rollout_ref.rollout.top_p": a.top_p,
        "actor_rollout_ref.actor.optim.betas": [a.adam_beta1, a.adam_beta2],
        "actor_rollout_ref.actor.optim.weight_decay": a.weight_decay,
        "README reproduction: correct_think_reward 0.8 after 300 steps":
            [sched[0]["after_step"] / per_rollout, sched[0]["correct_think"]] if len(sched) == 1 else sched,
        "README reproduction: 300 + 180 steps": a.max_steps / per_rollout,
        "README reproduction: resumed from the step-300 checkpoint":
            {k: bool(sched[0].get(k, False)) for k in ("reset_reference", "reset_optimizer")} if sched else None,
        "trainer.total_epochs": a.num_train_epochs,  # inert under max_steps, as the reproduction stopped at 480
        # inert there (the entry's "inert" names the official line): ours must have the mapping row, not a value
        "data.val_batch_size": "inert",
        "algorithm.kl_ctrl.kl_coef": "inert",
        "RL prompt (prepare_deepscaler_for_RL.py)": t.prompt.instruction,
    }


def test_degrpo_experiment_matches_the_official_values_key_by_key():
    """Every official value (tests/data/official_degrpo.json, with its file:line in VainF/Thinkless) against our
    config in the official units: all entries, none skipped."""
    t = compose_cfg("train", ["+experiment=degrpo"])
    ours = official_units(t)
    official = OFFICIAL["values"]
    assert set(ours) == set(official) == set(t.official.mapping)  # the documentation block covers the same keys
    wrong = {k: (v["value"], ours[k]) for k, v in official.items()
             if ours[k] != ("inert" if "inert" in v else v["value"])}
    assert not wrong, f"ours differ from the official values (official, ours): {wrong}"
    assert all(":" in v["source"] and ":" in v.get("inert", ":") for v in official.values())
    assert len(OFFICIAL["commit"]) == 40


def test_degrpo_experiment_structure():
    t = compose_cfg("train", ["+experiment=degrpo"])
    a = t.rl.args
    assert t.objective.response_norm == "token" and a.vllm_importance_sampling_mode == "token_truncate"
    assert t.objective.name == "thinkless" and t.output_dir.endswith("/train")
    g = compose_cfg("train", ["+experiment=degrpo", "objective=grpo_official"])
    assert g.objective.name == "grpo" and g.rl.args == t.rl.args and g.rl_data == t.rl_data
    assert g.objective.reward_schedule == t.objective.reward_schedule and g.output_dir.endswith("train_grpo")
    demo_grpo = compose_cfg("train", ["+experiment=grpo"])
    assert demo_grpo.objective.name == "grpo" and demo_grpo.output_dir.endswith("train_grpo")
    from thinkless.objectives import OBJECTIVES

    for name in OBJECTIVES:  # objective=NAME: its own folder (the default objective's: train, as it always was)
        c = compose_cfg("train", [f"objective={name}"])
        assert c.objective.name == name and c.output_dir.endswith("/train" if name == "thinkless" else f"/train_{name}")
        assert c.rl.args == compose_cfg("train", []).rl.args  # equal terms: one rl config for every objective


def test_the_demo_runs_the_authors_normalisation_and_the_gym_keeps_its_own():
    """The CPU demo (distill.py and train.py with no overrides): the authors' advantage (no std division) with what
    had to change with it — a warm-up, a shorter run at a higher rate, level 1 weighted up in both stages, γ 0.9 on
    the fold task for DeGRPO and the coupled ablation alike (conf/task_rewards/synthetic/) and for no other task or
    objective. The gym's RL config (conf/rl/gym_cpu.yaml) holds the settings its published runs were measured with."""
    d, t = compose_cfg("distill", []), compose_cfg("train", [])
    assert (d.training.args.max_steps, d.training.args.learning_rate, d.training.args.share_prompts) == \
        (450, 2e-3, False)
    assert list(d.data.level_weights) == [4, 1, 1, 1, 1, 1]  # level 1's table learnt on every seed measured
    a = t.rl.args
    assert (a.scale_rewards, a.warmup_steps, a.learning_rate, a.max_steps) == ("none", 30, 5e-4, 130)
    assert list(t.rl_data.level_weights) == [8, 2, 2, 2, 2, 2] and t.objective.rewards.correct_think == 0.1
    g = compose_cfg("train", ["objective=grpo"])
    assert g.objective.name == "grpo" and g.rl.args == t.rl.args and g.rl_data == t.rl_data
    assert g.objective.rewards == t.objective.rewards
    # the authors' γ elsewhere: another task, the paper recipe, a command line that says so
    assert compose_cfg("train", ["rl_data=graded"]).objective.rewards.correct_think == 0.5
    assert compose_cfg("train", ["+experiment=degrpo"]).objective.rewards.correct_think == 0.5
    assert compose_cfg("train", ["objective.rewards.correct_think=0.3"]).objective.rewards.correct_think == 0.3
    assert "rewards" not in compose_cfg("train", ["objective=adaptthink"]).objective
    # the gym: its RL config, whatever the demo's says, and the bench library names it
    sys.path.insert(0, str(ROOT))
    from bench.common import GYM_SCALE, TASK

    from thinkless.runs.config_reference import GYM_SHARED

    assert set(GYM_SHARED) <= {*GYM_SCALE["train"], *TASK} and "rl=gym_cpu" in GYM_SCALE["train"]
    gym = compose_cfg("train", [*GYM_SCALE["train"], *TASK]).rl.args
    assert (gym.scale_rewards, gym.warmup_steps, gym.learning_rate, gym.length_bucket_rows, gym.share_prompts) == \
        ("group", 0, 2e-4, 0, True)
    held = ("scale_rewards", "warmup_steps", "learning_rate", "max_steps", "length_bucket_rows", "share_prompts")
    assert {k: v for k, v in gym.items() if k not in held} == {k: v for k, v in a.items() if k not in held}
    # and its distillation: the one its published runs started from (buckets would move the weights' last bits)
    assert "training.args.length_bucket_rows=0" in GYM_SCALE["distill"]


def test_adaptthink_experiment_matches_their_script_key_by_key():
    t = compose_cfg("train", ["+experiment=adaptthink"])
    assert check_mapping(t, lambda key: key.startswith("actor_rollout_ref.actor.use_kl_loss")) >= 20
    a, G = t.rl.args, t.rl.args.num_generations
    assert t.objective.name == "adaptthink" and G == 16 and t.output_dir.endswith("train_adaptthink")
    assert a.per_device_train_batch_size * 8 * a.steps_per_generation // G == 128              # prompts per rollout
    assert a.steps_per_generation == a.gradient_accumulation_steps                             # one update per rollout
    assert a.vllm_importance_sampling_mode.startswith("token")  # objective=adaptthink refuses sequence-level IS


def test_cfg_job_prints_the_official_mapping():
    proc = run_cli("train.py", "+experiment=degrpo", "--cfg", "job")
    assert "actor_rollout_ref.actor.thinkless_alpha" in proc.stdout and "vllm_importance_sampling_mode" in proc.stdout


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


# ------------------------------------------------------------------ the gym's recipe arm (conf/recipe/, docs/gym.md)

# a source line as the recipe files cite it: path:line (ranges and lists allowed), then @ and a short commit
CITATION = re.compile(r"[\w./-]+\.(?:sh|py|yaml|md):\d+(?:[-,]\d+)*\b.*@[0-9a-f]{7}\b")


def test_every_registered_objective_has_a_recipe_and_every_recipe_an_objective():
    from thinkless.objectives import OBJECTIVES

    assert options("recipe") == sorted(OBJECTIVES)


def effective(cfg, tmp_path):
    """The run's objective and trainer arguments as train.py builds them (checked as it checks them first)."""
    from thinkless.runs.checks import check_trainer_args
    from thinkless.training.rl import budget_from, objective_from
    from thinkless.training.trainer import AdaptiveGRPOConfig

    check_trainer_args(AdaptiveGRPOConfig, cfg.rl.args, "rl.args")
    objective = objective_from(cfg)
    budget_from(cfg, objective)
    args = AdaptiveGRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False,
                              **OmegaConf.to_container(cfg.rl.args, resolve=True), **objective.trl_overrides())
    objective.check_args(args)  # what the trainer refuses before any work (AdaptiveGRPOTrainer.__init__)
    return objective, args


@pytest.mark.parametrize("name", options("recipe"))
def test_a_recipe_composes_validates_and_every_value_reaches_the_trainer(name, tmp_path):
    """`objective=NAME +recipe=NAME` composes and passes train.py's checks; each recipe value is what the trainer
    (an AdaptiveGRPOConfig field) or the objective then holds; each carries its authors' file:line @commit; a value
    marked "= shared" is the shared arm's (`objective=NAME` alone)."""
    from thinkless.runs.config_reference import SHARED, parse

    objective, args = effective(compose_cfg("train", [f"objective={name}", f"+recipe={name}"]), tmp_path / "r")
    shared = compose_cfg("train", [f"objective={name}"])
    shared_obj, shared_args = effective(shared, tmp_path / "s")
    values = [k for k in parse(CONF / "recipe" / f"{name}.yaml").keys if k.default]
    assert {k.path.split(".")[0] for k in values} <= {"rl", "objective"} and values
    for k in values:
        assert CITATION.search(k.comment), f"conf/recipe/{name}.yaml:{k.line} {k.path}: no file:line @commit"
        head, field = k.path.rsplit(".", 1)
        assert head in ("rl.args", "objective"), k.path  # method choices only: trainer arguments, objective knobs
        held, theirs = (args, shared_args) if head == "rl.args" else (objective, shared_obj)
        assert getattr(held, field) == yaml.safe_load(k.default), k.path
        if k.comment.startswith(SHARED):
            assert getattr(theirs, field) == getattr(held, field), f"{k.path} is marked {SHARED!r} but differs"
        elif OmegaConf.select(shared, k.path, default=None) is None:  # unset there: the mark alone tells the docs
            assert getattr(theirs, field) != getattr(held, field), f"{k.path} is the shared arm's: mark it {SHARED!r}"
    # scale: 128 completions per optimizer step, prompts per step = 128 / G (the one rule of docs/gym.md)
    assert args.per_device_train_batch_size == shared_args.per_device_train_batch_size == 128
    assert (args.learning_rate, args.max_steps, args.max_completion_length) == (
        shared_args.learning_rate, shared_args.max_steps, shared_args.max_completion_length)
