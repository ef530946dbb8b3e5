"""The publish step after training (thinkless/reporting/publish.py): it reads what training returned (``Trained``) and
the run's metrics.jsonl, writes the card, pushes (a dry run here), says the last line; other processes publish
nothing. The reports themselves run end to end in tests/training/test_sft.py and test_rl.py."""

import json
from types import SimpleNamespace

from omegaconf import OmegaConf

from thinkless.reporting.publish import publish_distill, publish_train
from thinkless.tasks.data import DropStats
from thinkless.training.loop import Trained


def run_folder(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"weights")
    return model


def cfg(**report):
    return OmegaConf.create({"report": {"enabled": False, **report}, "hub": {"dry_run": True, "repo_id": "org/x"}})


def trained(model, card, **kw):
    stats = DropStats()
    stats["kept"] += 12
    return Trained({"data": dict(stats), "steps": 7}, model, None, None, 7, 3.2, card=card, stats=stats, **kw)


def test_publish_train_reads_the_last_mode_line_and_pushes(tmp_path, capsys):
    model = run_folder(tmp_path)
    with open(tmp_path / "metrics.jsonl", "w") as f:
        for rec in ({"step": 5, "modes/think_ratio": 0.4}, {"step": 7, "modes/think_ratio": 0.25, "loss": 1.0},
                    {"step": 7, "train_runtime": 3.0}):  # the trainer's summary line carries no mode usage
            f.write(json.dumps(rec) + "\n")
    card = {"name": "policy", "objective": {"name": "thinkless"}}
    result = publish_train(cfg(), SimpleNamespace(is_main=True, out_dir=tmp_path), trained(model, card))
    assert card["mode_usage"] == {"modes/think_ratio": 0.25} and card["steps"] == 7  # the card fields, in place
    assert list(result) == ["data", "steps", "model_dir", "hub"]  # train_result.json's key order, as before
    assert result["model_dir"] == str(model) and result["hub"]["commit_message"] == "Upload Thinkless policy"
    text = (model / "README.md").read_text()
    assert "| modes/think_ratio | 0.250 |" in text and "| steps | 7 |" in text
    assert json.loads((tmp_path / "model.upload_plan.json").read_text())["repo_id"] == "org/x"
    assert capsys.readouterr().out.strip().endswith(
        f"RL done: 7 steps in 3s; prompts kept 12, dropped 0 {{}}; model -> {model}")


def test_publish_distill_writes_the_warmup_card(tmp_path, capsys):
    model = run_folder(tmp_path)
    result = publish_distill(cfg(), SimpleNamespace(is_main=True, out_dir=tmp_path),
                             trained(model, {"stage": "distill", "name": "warm-up", "data": "the synthetic task"}))
    assert result["hub"]["commit_message"] == "Upload Thinkless warm-up model"
    text = (model / "README.md").read_text()
    assert "# warm-up" in text and "| SFT data | the synthetic task |" in text and "| steps | 7 |" in text
    assert capsys.readouterr().out.strip() == "data: kept 12, dropped 0 {}  train 3s"


def test_other_processes_publish_nothing(tmp_path, capsys):
    model = run_folder(tmp_path)
    rank1 = SimpleNamespace(is_main=False, out_dir=tmp_path)
    for publish in (publish_train, publish_distill):
        done = trained(model, {"name": "x"})
        assert publish(cfg(enabled=True), rank1, done) == {"data": {"kept": 12}, "steps": 7}
    assert not (model / "README.md").exists() and not (tmp_path / "model.upload_plan.json").exists()
    assert capsys.readouterr().out == ""
