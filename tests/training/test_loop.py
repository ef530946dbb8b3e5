"""A trainer's run inside a stage (thinkless/training/loop.py): trainer arguments, and a resume that honours the run
(its optimizer settings, max_steps, a checkpoint's missing or truncated state)."""

import json

import pytest

from .test_trainer import make_trainer, tiny  # noqa: F401  (the fixture)


def test_trainer_args_cpu_fallback_and_precedence(tmp_path):
    from omegaconf import OmegaConf
    from trl import SFTConfig

    from thinkless.runs.stage import Stage
    from thinkless.training.loop import trainer_args

    cfg = OmegaConf.create({"seed": 3, "wandb": {"enabled": False}})
    stage = Stage(cfg, "distill", tmp_path, True)
    args = trainer_args(SFTConfig, OmegaConf.create({"bf16": True, "max_steps": 5, "learning_rate": 1e-3}), stage,
                        max_steps=7)
    assert (args.bf16, args.use_cpu, args.seed, args.max_steps, args.report_to) == (False, True, 3, 7, [])
    assert args.output_dir == str(tmp_path / "checkpoints") and args.learning_rate == 1e-3


# ------------------------------------------------------------------ resume honours the run (issue 38)

def _stop_at(step):
    """A callback that ends training after ``step`` (its checkpoint is saved first): a kill after that save."""
    from transformers import TrainerCallback

    class Stop(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step >= step:
                control.should_training_stop = True

    return Stop()


def _lrs(trainer, after=0):
    return {r["step"]: r["learning_rate"] for r in trainer.state.log_history if "learning_rate" in r
            and r["step"] > after}


def test_resume_applies_the_run_configs_learning_rate_and_optimizer_settings(tiny, tmp_path, capsys):  # noqa: F811
    """rerun=resume with a changed learning rate and weight decay: the restored optimizer and schedule take the run
    config's values (printed), the schedule's position stays the checkpoint's."""
    from thinkless.training.loop import train

    common = dict(max_steps=4, save_strategy="steps", save_steps=2, lr_scheduler_type="linear")
    first = make_trainer(tiny, tmp_path, learning_rate=1.0, **common)
    first.add_callback(_stop_at(2))
    train(first)
    assert first.state.global_step == 2 and (tmp_path / "checkpoint-2" / "trainer_state.json").is_file()
    assert _lrs(first) == {1: 1.0, 2: 0.75}
    second = make_trainer(tiny, tmp_path, learning_rate=0.5, weight_decay=0.1, **common)
    train(second)
    # linear decay over 4 steps from the new base, at the checkpoint's position: 0.5 x (1 - 2/4), 0.5 x (1 - 3/4)
    assert _lrs(second, after=2) == pytest.approx({3: 0.25, 4: 0.125})
    out = capsys.readouterr().out
    assert "resuming from" in out and "checkpoint-2" in out
    assert "learning_rate (the schedule's base) 1.0 -> 0.5" in out and "weight_decay 0.0 -> 0.1" in out
    assert {g["weight_decay"] for g in second.optimizer.param_groups} <= {0.0, 0.1}
    assert 0.1 in {g["weight_decay"] for g in second.optimizer.param_groups}


def test_a_run_never_exceeds_max_steps_after_a_kill_past_its_last_checkpoint(tiny, tmp_path, capsys):  # noqa: F811
    """Killed after its final checkpoint (in the report or the final save): the rerun takes no step."""
    from thinkless.reporting.monitor import MetricsLogCallback
    from thinkless.training.loop import train

    first = make_trainer(tiny, tmp_path / "checkpoints", max_steps=3, save_strategy="steps", save_steps=2)
    first.add_callback(MetricsLogCallback(tmp_path, ("loss",)))
    train(first)
    assert first.state.global_step == 3 and (tmp_path / "checkpoints" / "checkpoint-3").is_dir()
    again = make_trainer(tiny, tmp_path / "checkpoints", max_steps=3, save_strategy="steps", save_steps=2)
    again.add_callback(MetricsLogCallback(tmp_path, ("loss",)))
    train(again)
    assert again.state.global_step == 3 and not (tmp_path / "checkpoints" / "checkpoint-4").exists()
    assert "already holds all 3 steps" in capsys.readouterr().out
    recs = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs if "loss" in r and "train_runtime" not in r] == [1, 2, 3]
    assert sum("train_runtime" in r for r in recs) == 1  # the summary of the last attempt only


def test_a_checkpoint_without_its_optimizer_state_is_not_resumed_in_silence(tiny, tmp_path):  # noqa: F811
    """The hostile audit: a checkpoint whose optimizer.pt was lost resumed with a fresh optimizer, said "resuming",
    exited 0 and ended on other weights. Now the resume stops, naming the file and the two ways on."""
    from thinkless.runs.checks import ConfigError
    from thinkless.training.loop import train

    first = make_trainer(tiny, tmp_path, max_steps=4, save_strategy="steps", save_steps=2)
    first.add_callback(_stop_at(2))
    train(first)
    weights = tmp_path / "checkpoint-2" / "model.safetensors"
    intact = weights.read_bytes()
    weights.write_bytes(intact[: len(intact) // 2])  # a kill or a full disk during a copy of the checkpoint
    with pytest.raises(ValueError, match=r"checkpoint-2/model.safetensors: truncated safetensors file"):
        train(make_trainer(tiny, tmp_path, max_steps=4, save_strategy="steps", save_steps=2))
    weights.write_bytes(intact)
    (tmp_path / "checkpoint-2" / "optimizer.pt").unlink()
    with pytest.raises(ConfigError, match=r"checkpoint-2 lacks optimizer.pt: resuming from it would restart the "
                                          r"optimizer in silence.*Delete that folder.*rerun=fresh"):
        train(make_trainer(tiny, tmp_path, max_steps=4, save_strategy="steps", save_steps=2))
