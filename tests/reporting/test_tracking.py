"""Weights & Biases: settings from the config, one group per experiment, offline runs, clean disabling.

The end-to-end test runs a tiny distill -> train -> eval of one experiment with ``wandb.enabled=true
wandb.mode=offline`` and reads the offline runs back from their ``run-<id>.wandb`` files (the record log
``wandb sync`` uploads: a LevelDB-style log of ``wandb_internal_pb2.Record`` protobufs), so what is checked is
exactly what would reach the W&B server: project, group, job type, name, tags, the step-metric definitions,
history rows and summary.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from thinkless.reporting import tracking

REPO = Path(__file__).resolve().parents[2]
API_KEY = "wandb-secret-0123456789abcdef0123456789abcdef01234567"


# ---------------------------------------------------------------- reading offline runs

def wandb_records(path: Path) -> list:
    """The ``Record`` protobufs of an offline ``.wandb`` file (LevelDB log format: 32 KiB blocks, 7-byte
    chunk headers crc32/length/type with types 1 full, 2 first, 3 middle, 4 last; a 7-byte file header)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a W&B record log"
    block, pos, buf, raw = 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:
            pos += left
            continue
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 1:
            raw.append(chunk)
        elif kind == 2:
            buf = chunk
        elif kind == 3:
            buf += chunk
        elif kind == 4:
            raw.append(buf + chunk)
    out = []
    for r in raw:
        rec = pb.Record()
        rec.ParseFromString(r)
        out.append(rec)
    return out


class OfflineRun:
    def __init__(self, run_dir: Path):
        runs = sorted((run_dir / "wandb").glob("offline-run-*"))
        assert len(runs) == 1, f"expected one offline run under {run_dir}/wandb, found {runs}"
        self.dir = runs[0]
        (self.file,) = self.dir.glob("run-*.wandb")
        recs = wandb_records(self.file)
        kinds = [r.WhichOneof("record_type") for r in recs]
        self.run = next(r.run for r, k in zip(recs, kinds) if k == "run")
        self.metrics = {(m.metric.name or m.metric.glob_name): m.metric.step_metric
                        for m, k in zip(recs, kinds) if k == "metric"}
        self.history = [{(i.key or "/".join(i.nested_key)): i.value_json for i in r.history.item}
                        for r, k in zip(recs, kinds) if k == "history"]
        self.summary = {}
        for r, k in zip(recs, kinds):
            if k == "summary":
                self.summary.update({(i.key or "/".join(i.nested_key)): i.value_json for i in r.summary.update})


# ---------------------------------------------------------------- units: settings from the config

def compose(config_name: str, overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=overrides)


@pytest.mark.parametrize("config_name,job_type", [("distill", "distill"), ("train", "train"), ("eval", "eval")])
def test_init_kwargs_from_the_stage_configs(config_name, job_type):
    cfg = compose(config_name, ["run_name=exp7", "wandb.enabled=true", "wandb.project=proj", "wandb.entity=team",
                                "wandb.tags=[paper,1.5b]", "wandb.mode=offline"])
    kw = tracking.init_kwargs(cfg.wandb, job_type=job_type, run_dir="/tmp/x", config={"a": 1})
    assert kw == {"project": "proj", "entity": "team", "group": "exp7", "job_type": job_type,
                  "name": f"exp7-{job_type}", "tags": ["paper", "1.5b"], "mode": "offline", "config": {"a": 1},
                  "dir": "/tmp/x"}
    assert tracking.report_to(cfg.wandb) == ["wandb"]


def test_explicit_name_and_group_win_and_defaults():
    cfg = compose("train", ["run_name=exp7", "wandb.group=sweep", "wandb.name=lr-1e-6"])
    kw = tracking.init_kwargs(cfg.wandb, job_type="train")
    assert (kw["group"], kw["name"], kw["project"], kw["entity"], kw["tags"]) == ("sweep", "lr-1e-6", "thinkless",
                                                                                   None, [])
    assert tracking.report_to(cfg.wandb) == []  # enabled: false by default
    assert tracking.report_to(None) == []


def test_invalid_mode_is_rejected():
    with pytest.raises(ValueError, match="wandb.mode"):
        tracking.init_kwargs(OmegaConf.create({"enabled": True, "mode": "online-ish"}), job_type="train")


def test_disabled_init_does_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_DISABLED", raising=False)
    assert tracking.init_wandb(OmegaConf.create({"enabled": False}), job_type="train", config={},
                               run_dir=str(tmp_path)) is None
    assert list(tmp_path.iterdir()) == [] and "WANDB_DISABLED" not in os.environ  # no leak into the process
    tracking.log_summary(None, {"a": 1})  # no-op


def test_step_metrics_are_defined_against_the_trainer_step():
    calls = []

    class Run:
        def define_metric(self, name, **kw):
            calls.append((name, kw.get("step_metric")))

    tracking.define_step_metrics(Run())
    assert calls[0] == ("train/global_step", None)
    assert ("train/*", "train/global_step") in calls and ("modes/*", "train/global_step") in calls


# ---------------------------------------------------------------- end to end, offline

def cli(script, *overrides, env_extra=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO),
           "WANDB_API_KEY": API_KEY, **(env_extra or {})}
    for var in ("WANDB_MODE", "WANDB_DISABLED", "WANDB_RUN_ID", "WANDB_RESUME"):
        if var not in (env_extra or {}):
            env.pop(var, None)  # the config alone decides
    proc = subprocess.run([sys.executable, str(REPO / script), *overrides], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


WANDB_ON = ["run_name=exp-wb", "wandb.enabled=true", "wandb.mode=offline", "wandb.project=thinkless-test",
            "wandb.tags=[ci,tiny]"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("wandb_pipeline")
    runs = {"distill": root / "distill", "train": root / "train", "eval": root / "eval"}
    cli("distill.py", f"output_dir={runs['distill']}", *WANDB_ON, "training.args.max_steps=2",
        "training.args.per_device_train_batch_size=8", "training.args.logging_steps=1", "data.num_problems=64",
        "report.enabled=false", "training.args.disable_tqdm=true")
    # a requeued Slurm job exports a stable WANDB_RUN_ID (slurm/common.sh): the run keeps that id
    cli("train.py", f"output_dir={runs['train']}", f"model.path={runs['distill'] / 'model'}", *WANDB_ON,
        "report.enabled=false", "rl_data.num_problems=32", "rl.args.max_steps=2",
        "rl.args.per_device_train_batch_size=8", "rl.args.num_generations=4", "rl.args.max_completion_length=16",
        "rl.args.save_steps=100", "rl_data.validation=null",
        env_extra={"WANDB_RUN_ID": "exp-wb-train-4242", "WANDB_RESUME": "allow"})
    cli("eval.py", f"model={runs['train'] / 'model'}", f"output_dir={runs['eval']}", *WANDB_ON,
        "benchmarks=[synthetic]", "methods=[adaptive]", "benchmark.synthetic.n_per_level=2", "progress=false",
        "plots=false")
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["distill", "train", "eval"])
def test_offline_runs_of_one_experiment_share_a_group(pipeline, stage):
    run = OfflineRun(pipeline[stage])
    assert run.run.project == "thinkless-test"
    assert run.run.run_group == "exp-wb" and run.run.job_type == stage
    assert run.run.display_name == f"exp-wb-{stage}" and list(run.run.tags) == ["ci", "tiny"]
    assert API_KEY not in "\n".join(p.read_bytes().decode("latin-1") for p in pipeline[stage].rglob("*")
                                    if p.is_file())


@pytest.mark.slow
def test_training_curves_are_stepped_by_the_trainer_step(pipeline):
    train = OfflineRun(pipeline["train"])
    assert train.run.run_id == "exp-wb-train-4242" and train.dir.name.endswith("-exp-wb-train-4242")
    assert train.metrics["train/*"] == "train/global_step" and train.metrics["modes/*"] == "train/global_step"
    rows = [h for h in train.history if "train/modes/think_ratio" in h]
    assert [float(h["train/global_step"]) for h in rows] == [1.0, 2.0]  # one mode-usage point per step
    assert all("train/loss/control" in h and "train/modes/accuracy" in h for h in rows)
    assert "train/train_seconds" in train.summary and "train/steps" in train.summary

    distill = OfflineRun(pipeline["distill"])
    assert distill.metrics["train/*"] == "train/global_step"
    assert any("train/loss" in h for h in distill.history) and "distill/train_rows" in distill.summary

    ev = OfflineRun(pipeline["eval"])
    assert any(k.startswith("eval/synthetic/adaptive/") for k in ev.summary)


@pytest.mark.slow
def test_disabled_creates_no_wandb_files(tmp_path):
    out = tmp_path / "distill"
    proc = cli("distill.py", f"output_dir={out}", "run_name=exp-off", "wandb.enabled=false",
               "training.args.max_steps=1", "training.args.per_device_train_batch_size=8", "data.num_problems=64",
               "report.enabled=false", "training.args.disable_tqdm=true",
               env_extra={"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path / "wandb_dir")})
    assert (out / "model" / "model.safetensors").is_file()
    assert not list(tmp_path.rglob("wandb*")) and not list(tmp_path.rglob("*.wandb"))
    assert "wandb:" not in proc.stdout + proc.stderr
