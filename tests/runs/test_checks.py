"""Config checks before any work and config warnings (thinkless/runs/checks.py), and clean CLI errors (stage.run_cli)."""

import json

import pytest
from omegaconf import OmegaConf

from thinkless.runs.checks import (NUMERIC_KEYS, SYNTHETIC_KEYS, ConfigError, check_number, check_numbers,
                              check_trainer_args, collected_warnings, reset_warnings, warn)

from ..helpers import run_cli, run_train_cli
from ..test_configs import compose_cfg


@pytest.fixture(scope="module")
def degrpo_config():
    from thinkless.training.trainer import AdaptiveGRPOConfig

    return AdaptiveGRPOConfig


@pytest.mark.parametrize("value,expected", [("abc", "expected a number"), (float("nan"), "finite"),
                                            (float("inf"), "finite"), (True, "expected a number")])
def test_trainer_args_numbers_are_checked_against_the_trl_field_types(degrpo_config, value, expected):
    with pytest.raises(ConfigError, match=rf"rl.args.learning_rate=.*{expected}.*AdaptiveGRPOConfig.learning_rate"):
        check_trainer_args(degrpo_config, {"learning_rate": value}, "rl.args")


def test_trainer_args_other_field_kinds(degrpo_config):
    with pytest.raises(ConfigError, match=r"rl.args.max_steps=1.5: expected an integer"):
        check_trainer_args(degrpo_config, {"max_steps": 1.5}, "rl.args")
    with pytest.raises(ConfigError, match=r"rl.args.gradient_checkpointing='maybe': expected true or false"):
        check_trainer_args(degrpo_config, {"gradient_checkpointing": "maybe"}, "rl.args")
    with pytest.raises(ConfigError, match=r"rl.args.learning_rat: not a field of AdaptiveGRPOConfig; did you mean "
                                          r"learning_rate"):
        check_trainer_args(degrpo_config, {"learning_rat": 1e-3}, "rl.args")
    # legal values pass: strategies as text, None where the field allows it, ints in float fields
    check_trainer_args(degrpo_config, {"lr_scheduler_type": "cosine", "eval_steps": None, "learning_rate": 1,
                                       "bf16": None, "report_to": []}, "rl.args")


@pytest.mark.parametrize("name,overrides", [("distill", []), ("distill", ["+experiment=distill"]), ("train", []),
                                            ("train", ["+experiment=degrpo"]), ("eval", [])])
def test_every_shipped_config_passes_the_checks(name, overrides, degrpo_config):
    from thinkless.training.sft import DistillConfig

    cfg = compose_cfg(name, overrides)
    check_numbers(cfg, NUMERIC_KEYS[name])
    if name != "eval":
        key, cls = ("training.args", DistillConfig) if name == "distill" else ("rl.args", degrpo_config)
        check_trainer_args(cls, OmegaConf.select(cfg, key), key)


@pytest.mark.parametrize("override,message", [
    ("rl.grading_timeout=abc", "rl.grading_timeout='abc': expected a number"),
    ("rl_data.num_problems=nan", "rl_data.num_problems=nan: expected an integer"),
    ("seed=inf", "seed=inf: expected an integer"),
])
def test_declared_numeric_keys_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        check_numbers(compose_cfg("train", [override]), NUMERIC_KEYS["train"])


def test_a_budget_prompt_share_outside_0_1_names_the_key():
    for bad, message in (("1.5", "must be in [0, 1]"), ("half", "expected a number")):
        with pytest.raises(ConfigError, match=f"data.budget_prompts=.*{message}".replace("[", r"\[")):
            check_numbers(compose_cfg("distill", [f"data.budget_prompts={bad}"]), NUMERIC_KEYS["distill"])
    check_numbers(compose_cfg("distill", ["data.budget_prompts=0.5"]), NUMERIC_KEYS["distill"])


@pytest.mark.parametrize("override,message", [
    ("objective.alpha=abc", "objective.alpha='abc': a finite number is expected"),
    ("objective.alpha=nan", "objective.alpha=nan: a finite number is expected"),
    ("objective.rewards.correct_think=abc", "objective.rewards.correct_think='abc': a finite number is expected"),
    ("objective.reward_schedule=[{after_step:1.5,correct_think:0.8}]", "objective.reward_schedule[0] needs "
                                                                       "after_step: a non-negative integer"),
    ("objective.alpha=1e39", "objective.alpha=1e+39: a number within float32's range"),
    ("objective.rewards.correct_think=-1e39", "objective.rewards.correct_think=-1e+39: a number within float32's"),
])
def test_objective_knobs_name_the_key(override, message):
    from thinkless.training.rl import objective_from

    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(".", r"\.").replace("+", r"\+")):
        objective_from(compose_cfg("train", [override]))


def test_check_number():
    assert check_number(3, "k", integer=True) == 3 and check_number(None, "k", optional=True) is None
    with pytest.raises(ConfigError, match="k=-1: must be >= 0"):
        check_number(-1, "k", minimum=0)


def test_warnings_are_collected(caplog):
    reset_warnings()
    warn("rl.alpha", -1.0, "negative")
    assert collected_warnings() == [{"key": "rl.alpha", "value": -1.0, "message": "negative"}]
    assert "rl.alpha=-1.0: negative" in caplog.text
    reset_warnings()
    assert collected_warnings() == []


def test_config_error_is_a_few_lines_before_any_work(tmp_path, distilled):
    out = tmp_path / "t"
    proc = run_train_cli(out, distilled / "model", "objective.alpha=abc", check=False)
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()
    assert len(err) <= 3 and "Traceback" not in proc.stderr and "objective.alpha='abc': a finite number" in err[0]
    assert "HYDRA_FULL_ERROR=1" in proc.stderr and not (out / "checkpoints").exists()
    assert "Traceback" in (out / "train.log").read_text()  # the full trace stays in the run's log
    full = run_train_cli(out, distilled / "model", "objective.alpha=abc", check=False, env={"HYDRA_FULL_ERROR": "1"})
    assert "Traceback" in full.stderr
    proc = run_cli("distill.py", f"output_dir={tmp_path}/d", "training.args.learning_rate=nan", check=False)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) <= 3
    assert "training.args.learning_rate=nan: expected a finite number" in proc.stderr
    proc = run_cli("distill.py", f"output_dir={tmp_path}/e", "data=paired", f"data.name={tmp_path}/none.jsonl",
                   check=False)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) <= 3 and "does not exist" in proc.stderr


def test_negative_alpha_warns_in_the_log_and_the_result(tmp_path, distilled):
    out = tmp_path / "t"
    proc = run_train_cli(out, distilled / "model", "objective.alpha=-0.5", "rl.args.max_steps=1",
                         "rl.args.per_device_train_batch_size=8", "rl.args.num_generations=4",
                         "rl.args.max_completion_length=16", "report.enabled=false", "rl_data.validation=null")
    assert "objective.alpha=-0.5: negative" in proc.stderr + proc.stdout
    assert "objective.alpha=-0.5: negative" in (out / "train.log").read_text()
    res = json.loads((out / "train_result.json").read_text())
    assert [w["key"] for w in res["warnings"]] == ["objective.alpha"] and res["config_fingerprint"]


@pytest.mark.parametrize("name,override,message", [
    ("distill", "data=graded data.levels=[1,2]", "data.levels: 1 is not a level of the graded task (2..6"),
    ("train", "rl_data.variant=folded", "rl_data.variant='folded': valid choices are ['fold', 'graded']"),
    ("train", "rl_data=graded rl_data.validation.levels=[7]", "rl_data.validation.levels: 7 is not a level"),
    # a section set to a name (Hydra sets the text): the stage trained, then its report failed on a str's .keys()
    ("train", "report.benchmark=graded", "report.benchmark='graded': a section of settings, not a name; to pick "
                                         "conf/benchmark/graded.yaml use benchmark@report.benchmark=graded"),
    ("distill", "report.benchmark=graded", "use benchmark@report.benchmark=graded"),
    ("train", "rl_data.validation=graded", "use benchmark@rl_data.validation=graded"),
    ("eval", "benchmark.synthetic=graded", "benchmark.synthetic='graded': a section of settings, not a name; to "
                                           "pick conf/benchmark/graded.yaml use benchmark@benchmark.synthetic=graded"),
])
def test_synthetic_variant_and_levels_name_the_key(name, override, message):
    from thinkless.runs.checks import check_synthetic

    check_synthetic(compose_cfg(name, {"distill": ["data=graded"], "train": ["rl_data=graded"]}.get(name, [])),
                    SYNTHETIC_KEYS[name])  # the shipped graded configs pass
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.").replace("(", r"\(")):
        check_synthetic(compose_cfg(name, override.split()), SYNTHETIC_KEYS[name])


@pytest.mark.parametrize("name,override,message", [
    # issue 38, case 7: the whole RL run trained, then the report failed with KeyError 'acc'
    ("train", "report.benchmark.n_per_level=0", "report.benchmark.n_per_level=0: must be >= 1"),
    ("distill", "report.benchmark.n_per_level=0", "report.benchmark.n_per_level=0: must be >= 1"),
    ("train", "rl_data.validation.n_per_level=0", "rl_data.validation.n_per_level=0: must be >= 1"),
    ("train", "report.batch_size=0", "report.batch_size=0: must be >= 1"),
    # issue 38, case 6: a finite think bias that overflows float32 (the served reply started with the other mode)
    ("train", "report.threshold_biases=[0,1e39]", "report.threshold_biases.1=1e+39: must be in [-10000.0, 10000.0]"),
    ("eval", "+method.adaptive.think_bias=1e39", "method.adaptive.think_bias=1e+39: must be in [-10000.0, 10000.0]"),
    ("eval", "method.think_threshold.biases=[-2e4]", "method.think_threshold.biases.0=-20000.0: must be in"),
    ("eval", "+rewards.correct_think=1e39", "rewards.correct_think=1e+39: outside float32's range"),
    ("eval", "sampling.top_p=1.5", "sampling.top_p=1.5: must be in [0, 1]"),
    ("eval", "sampling.n=0", "sampling.n=0: must be >= 1"),
    # the hostile audit: a zero timeout graded every math-verify answer wrong in silence; limit=0 evaluated nothing
    ("train", "rl.grading_timeout=0", "rl.grading_timeout=0: must be >= 0.1"),
    ("train", "report.free_temperature=0", "report.free_temperature=0: must be >= 0.001"),
    ("train", "threads=0", "threads=0: must be >= 1"),
    ("eval", "grading.timeout=-1", "grading.timeout=-1: must be >= 0.1"),
    ("eval", "limit=0", "limit=0: must be >= 1"),
    ("eval", "ks=[0,1]", "ks.0=0: must be >= 1"),
])
def test_values_that_could_only_fail_later_are_refused_naming_key_and_range(name, override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.").replace("+", r"\+")):
        check_numbers(compose_cfg(name, [override]), NUMERIC_KEYS[name])


@pytest.mark.parametrize("args,message", [
    ({"num_generations": 0}, "rl.args.num_generations=0: valid values are >= 2"),
    ({"learning_rate": -1}, "rl.args.learning_rate=-1: valid values are >= 0"),
    ({"max_steps": 0}, r"rl.args.max_steps=0: valid values are -1 \(train num_train_epochs\) or an integer >= 1"),
    ({"learning_rate": 1e39}, "rl.args.learning_rate=1e\\+39: expected a number within float32's range"),
    # the hostile audit: refused after the model loaded (temperature) or accepted in silence
    ({"temperature": 0}, r"rl.args.temperature=0: valid values are in \(0, inf\] \(the rollouts' sampling"),
    ({"top_p": 2}, r"rl.args.top_p=2: valid values are in \(0, 1\]"),
    ({"epsilon": -0.2}, r"rl.args.epsilon=-0.2: valid values are in \(0, inf\]"),
    ({"beta": -1}, r"rl.args.beta=-1: valid values are >= 0 \(the KL penalty's weight"),
    ({"length_bucket_rows": -2}, r"rl.args.length_bucket_rows=-2: valid values are >= 0 \(rows per length bucket"),
])
def test_trainer_args_out_of_range_are_refused(degrpo_config, args, message):
    with pytest.raises(ConfigError, match=message):
        check_trainer_args(degrpo_config, args, "rl.args")
    check_trainer_args(degrpo_config, {"num_generations": 2, "learning_rate": 0, "max_steps": -1}, "rl.args")


def test_a_bad_bucket_size_stops_distill_before_any_work():
    """distill.py checks its trainer's args (its own config class, DistillConfig) before the stage starts."""
    from thinkless.training.sft import DistillConfig

    with pytest.raises(ConfigError, match=r"training.args.length_bucket_rows=-1: valid values are >= 0"):
        check_trainer_args(DistillConfig, {"length_bucket_rows": -1}, "training.args")
    with pytest.raises(ConfigError, match=r"training.args.length_bucket_rows='a': expected"):
        check_trainer_args(DistillConfig, {"length_bucket_rows": "a"}, "training.args")


def test_out_of_range_values_stop_train_py_before_the_model_loads(tmp_path):
    """The CLI path of the checks above: exit 1 with the key and the range, nothing trained (issue 38, case 7 and
    the weak cases num_generations=0, learning_rate=-1, max_steps=0)."""
    from ..helpers import save_tiny

    model = save_tiny(tmp_path / "tiny")
    for i, (override, message) in enumerate([
            ("report.benchmark.n_per_level=0", "report.benchmark.n_per_level=0: must be >= 1"),
            ("rl.args.num_generations=0", "rl.args.num_generations=0: valid values are >= 2"),
            ("rl.args.max_steps=0", "rl.args.max_steps=0: valid values are -1"),
            # the demo shares its prompts: buckets as well are one way too many to score a batch
            ("rl.args.length_bucket_rows=4", "rl.args.share_prompts=true with rl.args.length_bucket_rows=4: one way")]):
        out = tmp_path / f"t{i}"
        proc = run_train_cli(out, model, override, check=False)
        assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert not (out / "checkpoints").exists() and not (out / "train_result.json").exists()
    # length buckets cut left padding: a model with absolute positions is refused from its config alone
    from transformers import GPT2Config

    GPT2Config(n_embd=16, n_layer=1, n_head=2).save_pretrained(model)  # the folder's config.json: a GPT-2
    proc = run_train_cli(tmp_path / "gpt2", model, "rl.args.length_bucket_rows=4", "rl.args.share_prompts=false",
                         check=False)
    assert proc.returncode == 1 and "rl.args.length_bucket_rows=4: scoring in length buckets needs rotary positions, " \
        "and this 'gpt2' model" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "gpt2" / "checkpoints").exists()


def test_two_ways_to_score_a_batch_are_refused_before_the_model_loads(tmp_path):
    """rl.check_train (train.py's checks before any work): length buckets and shared prompts, both set, name both keys."""
    from thinkless.training.rl import check_train

    from ..helpers import save_tiny

    model = save_tiny(tmp_path / "tiny")
    with pytest.raises(ValueError, match=r"rl.args.share_prompts=true with rl.args.length_bucket_rows=4: one way"):
        check_train(compose_cfg("train", [f"model.path={model}", "rl.args.length_bucket_rows=4"]))  # the demo shares
    check_train(compose_cfg("train", [f"model.path={model}", "rl.args.length_bucket_rows=4", "rl.args.share_prompts=false"]))


def test_ctrl_c_prints_one_line_saying_how_to_resume_and_exits_130(tmp_path):
    """A Ctrl-C in distill.py (a real SIGINT, mid-training after a checkpoint) printed a 55-line trace; now one line
    naming the last complete checkpoint, exit code 130, and the rerun resumes from it."""
    import signal
    import subprocess
    import sys
    import time

    from ..helpers import ROOT, free_port

    out = tmp_path / "d"
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline",
           "MASTER_PORT": str(free_port())}
    # preexec_fn: a Ctrl-C reaches a foreground process; a suite started in the background (`cmd &`, nohup, some CI
    # runners) hands its children SIGINT ignored, and Python then installs no KeyboardInterrupt handler at all
    proc = subprocess.Popen([sys.executable, str(ROOT / "distill.py"), f"output_dir={out}",
                             "training.args.max_steps=5000",
                             "training.args.save_strategy=steps", "+training.args.save_steps=2",
                             "training.args.disable_tqdm=true", "report.enabled=false",
                             "data.num_problems=2000"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    while not (out / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("Interrupted: its last complete checkpoint is ") and \
        "checkpoint-" in lines[0] and "the same command resumes from there" in lines[0], err


def test_an_interruption_before_any_checkpoint_says_so(tmp_path, capsys):
    from thinkless.runs.stage import run_cli as stage_cli

    def interrupted(cfg):
        raise KeyboardInterrupt

    cfg = OmegaConf.create({"output_dir": str(tmp_path)})
    with pytest.raises(SystemExit) as e:
        stage_cli(interrupted, cfg)
    assert e.value.code == 130
    assert capsys.readouterr().err.strip() == (f"Interrupted: no checkpoint was saved yet: the same command starts "
                                               f"again from step 0 (its log: {tmp_path})")
    (tmp_path / "generations").mkdir()
    with pytest.raises(SystemExit):
        stage_cli(interrupted, cfg)
    assert "the finished generations are kept in" in capsys.readouterr().err
