"""The Hub (thinkless/reporting/hub.py): model card, upload selection, dry run, push, per-checkpoint branches.

Offline throughout: the push path runs against a recording stand-in for ``huggingface_hub.HfApi`` (monkeypatched
in-process, and through a ``sitecustomize`` for the end-to-end ``train.py`` runs). The token must come from
the environment and must never reach a log, a plan, a model card or any file of the run.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from thinkless.reporting import hub as export
from thinkless.reporting.hub import HubCheckpointCallback, hub_callbacks, push_folder, upload_files

REPO = Path(__file__).resolve().parents[2]
SECRET = "hf_SECRETtoken0123456789abcdef"

MODEL_FILES = ["README.md", "chat_template.jinja", "config.json", "generation_config.json", "model.safetensors",
               "tokenizer.json", "tokenizer_config.json", "trainer_state.json"]
STATE_FILES = ["optimizer.pt", "scheduler.pt", "rng_state_0.pth", "rng_state_1.pth", "training_args.bin",
               "latest", "zero_to_fp32.py", "global_step20/zero_pp_rank_0_mp_rank_00_optim_states.pt"]


class RecordingHfApi:
    """Stands in for huggingface_hub.HfApi: records calls (and whether the token is the environment's)."""

    calls: list = []

    def __init__(self, token=None, **kw):
        RecordingHfApi.calls.append(("init", {"token_is_env": token == os.environ.get("HF_TOKEN")
                                              or token == os.environ.get("HUGGING_FACE_HUB_TOKEN"),
                                              "token_given": token is not None}))

    def create_repo(self, repo_id, **kw):
        RecordingHfApi.calls.append(("create_repo", {"repo_id": repo_id, **kw}))

    def create_branch(self, repo_id, **kw):
        RecordingHfApi.calls.append(("create_branch", {"repo_id": repo_id, **kw}))

    def upload_folder(self, **kw):
        """Records the files huggingface_hub would upload (its own pattern filter over the folder)."""
        from huggingface_hub.utils import filter_repo_objects

        root = Path(kw["folder_path"])
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        kw["files"] = list(filter_repo_objects(files, ignore_patterns=kw.pop("ignore_patterns")))
        RecordingHfApi.calls.append(("upload_folder", kw))


@pytest.fixture
def hub(monkeypatch):
    import huggingface_hub

    RecordingHfApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingHfApi)
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    return RecordingHfApi


def make_folder(root: Path, files=MODEL_FILES + STATE_FILES) -> Path:
    for i, rel in enumerate(files):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"content {i} of {rel}")
    return root


def all_text_under(path: Path) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in path.rglob("*") if p.is_file())


# ---------------------------------------------------------------- units

def test_model_card():
    card = export.model_card({"name": "exp1", "base_model": "Qwen/Qwen2.5-1.5B-Instruct", "data": "deepscaler",
                              "loss": "DeGRPO", "steps": 600, "mode_usage": {"modes/think_ratio": 0.25},
                              "objective": {"name": "thinkless", "alpha": 0.001, "gamma": 0.5}})
    assert card.startswith("---\nlibrary_name: transformers\n")
    assert "base_model: Qwen/Qwen2.5-1.5B-Instruct" in card and "# exp1" in card
    assert "| objective | `thinkless` |" in card and "| objective.alpha | 0.001 |" in card
    assert "| objective.gamma | 0.5 |" in card and "| modes/think_ratio | 0.250 |" in card
    assert "budget" not in card
    card = export.model_card({"steps": 100, "budget": {"cost": "think_ratio", "target": 0.3, "step_size": 0.2,
                                                       "proportional": 4.0, "bound": 2.0, "at_most": False,
                                                       "final_multiplier": 0.21, "probe": 512,
                                                       "final_cost": 0.3125}})
    assert "| budget | think_ratio = 0.3 (rl.budget; gains: integral 0.2, proportional 4) |" in card
    assert "| budget: final multiplier λ | +0.2100 |" in card
    assert "| budget: last measured cost | 0.312 (the policy's think probability on 512 fixed training prompts) |" \
        in card
    card = export.model_card({"steps": 100, "budget": {"cost": "think_ratio", "target": 0.3, "step_size": 0.2,
                                                       "proportional": 4.0, "derivative": 40.0, "bound": 2.0,
                                                       "final_multiplier": 0.21, "probe": 512}})
    assert "(rl.budget; gains: integral 0.2, proportional 4, derivative 40) |" in card  # shown only when on
    card = export.model_card({"steps": 100, "budget": {"cost": "tokens", "target": 20, "step_size": 0.2,
                                                       "final_multiplier": 0.21, "probe": 0, "final_cost": 19.5}})
    assert "| budget: last measured cost | 19.500 (the generation batch's sampled rollouts) |" in card


def test_card_front_matter_tags_the_objective_and_holds_hub_ids_only():
    """What the Hub reads (huggingface_hub's own parser): the objective's tags, license, base model, datasets."""
    from thinkless.objectives import OBJECTIVES

    assert export.objective_tags("thinkless") == ["thinkless", "degrpo"]  # DeGRPO is the Thinkless paper's
    assert export.objective_tags("length_penalty") == ["length-penalty"]  # Hub tags are hyphenated
    assert "arXiv:2505.13417" in OBJECTIVES["adaptthink"].citation
    for name, cls in OBJECTIVES.items():
        tags = list(cls.tags())
        card = export.model_card({"name": "r", "base_model": "org/warm-up", "license": "mit", "steps": 1,
                                  "datasets": ["agentica-org/DeepScaleR-Preview-Dataset"],
                                  "objective": {"name": name}})
        meta = metadata_load_text(card)
        assert meta == {"library_name": "transformers", "license": "mit", "base_model": "org/warm-up",
                        "datasets": ["agentica-org/DeepScaleR-Preview-Dataset"],
                        "tags": [*tags, "hybrid-reasoning", "trl"]}, name
        assert "degrpo" not in meta["tags"] or name == "thinkless"
        assert "## Citation" in card and "arXiv:2505.13379" in card  # Thinkless, and the objective's own paper
        assert cls.citation in card and (cls.citation or name == "thinkless")  # every objective cites its paper
    # nothing known: no base_model and no datasets field, the table says so in words
    card = export.model_card({"base": "a local model with no known Hub id", "objective": {"name": "grpo"}})
    assert "base_model" not in metadata_load_text(card) and "datasets" not in metadata_load_text(card)
    assert "| base model | a local model with no known Hub id |" in card


def metadata_load_text(card: str) -> dict:
    import tempfile

    from huggingface_hub.repocard import metadata_load

    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "README.md").write_text(card)
        return metadata_load(Path(d) / "README.md")


def test_base_model_is_a_hub_id_never_a_local_path(tmp_path):
    from thinkless.reporting.hub import base_model_id

    assert base_model_id("Vinnnf/Thinkless-1.5B-Warmup") == "Vinnnf/Thinkless-1.5B-Warmup"
    assert base_model_id("runs/demo/distill/model") is None  # a path that does not exist: not an id either
    assert base_model_id(None) is None  # the tiny model, built from scratch
    assert base_model_id("/any/where", explicit="org/named") == "org/named"
    warm = tmp_path / "distill" / "model"
    warm.mkdir(parents=True)
    assert base_model_id(warm) is None  # a folder without a card
    export.write_model_card(warm, {"stage": "distill", "base_model": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"})
    assert base_model_id(warm) is None  # a folder no stage of ours wrote (a snapshot's card describes another model)
    (warm / "run_config.json").write_text("{}")  # what finish_stage leaves in every model/ it writes
    assert base_model_id(warm) == "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"  # its card's own base
    result = tmp_path / "distill" / "distill_result.json"
    result.write_text(json.dumps({"model_dir": str(warm), "hub": {"repo_id": "org/warm-up", "dry_run": True}}))
    assert base_model_id(warm) == "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"  # a dry run pushed nothing
    result.write_text(json.dumps({"model_dir": str(warm), "hub": {"repo_id": "org/warm-up", "dry_run": False}}))
    assert base_model_id(warm) == "org/warm-up"  # pushed: the warm-up on the Hub is the base
    export.write_model_card(warm, {"stage": "distill", "base_model": str(tmp_path)})  # a hand-edited card
    result.unlink()
    assert base_model_id(warm) is None


def test_bad_hub_values_fail_before_work_naming_the_key():
    from thinkless.reporting.hub import check_hub

    check_hub(OmegaConf.load(REPO / "conf" / "hub" / "none.yaml"))
    check_hub(None)
    for bad, key in [({"base_model": "./runs/demo/distill/model"}, "hub.base_model"),
                     ({"base_model": "no-slash"}, "hub.base_model"), ({"license": "Apache 2.0"}, "hub.license"),
                     ({"push": True}, "hub.repo_id"), ({"dry_run": True, "repo_id": "a/b/c"}, "hub.repo_id")]:
        with pytest.raises(ValueError, match=key.replace(".", r"\.")):
            check_hub(OmegaConf.create(bad))


def test_only_model_files_are_uploaded(tmp_path):
    folder = make_folder(tmp_path / "checkpoint-20")
    assert upload_files(folder) == sorted(MODEL_FILES)


def test_dry_run_writes_the_exact_folder_and_plan_without_network_or_token(tmp_path, hub):
    folder = make_folder(tmp_path / "model")
    plan = push_folder(folder, "org/thinkless", private=True, revision="exp-1", dry_run=True)
    stage = tmp_path / "model.hub_upload"
    staged = sorted(str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file())
    assert staged == sorted(MODEL_FILES) == plan["files"]
    for rel in staged:  # same bytes; hard links, so no copy of the weights
        assert (stage / rel).read_bytes() == (folder / rel).read_bytes()
        assert (stage / rel).stat().st_ino == (folder / rel).stat().st_ino
    on_disk = json.loads((tmp_path / "model.upload_plan.json").read_text())
    assert on_disk == plan and plan["repo_id"] == "org/thinkless" and plan["revision"] == "exp-1"
    assert plan["private"] is True and plan["dry_run"] is True
    assert hub.calls == []  # no Hub client was even created
    # a second dry run replaces the staged folder (no stale files)
    (folder / "config.json").unlink()
    push_folder(folder, "org/thinkless", dry_run=True)
    assert not (stage / "config.json").exists()


def test_push_takes_the_token_from_the_environment_and_never_logs_it(tmp_path, hub, monkeypatch, caplog):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    folder = make_folder(tmp_path / "model")
    with caplog.at_level(logging.DEBUG):
        plan = push_folder(folder, "org/thinkless", private=False, revision="exp-1", commit_message="final")
    assert hub.calls == [
        ("init", {"token_is_env": True, "token_given": True}),
        ("create_repo", {"repo_id": "org/thinkless", "private": False, "exist_ok": True}),
        ("create_branch", {"repo_id": "org/thinkless", "branch": "exp-1", "exist_ok": True}),
        ("upload_folder", {"repo_id": "org/thinkless", "folder_path": str(folder), "revision": "exp-1",
                           "commit_message": "final", "files": sorted(MODEL_FILES)}),
    ]
    assert plan["token_from"] == "HF_TOKEN"
    assert SECRET not in json.dumps(plan) and SECRET not in caplog.text
    assert "token from $HF_TOKEN" in caplog.text
    assert SECRET not in all_text_under(tmp_path)


def test_push_to_main_creates_no_branch_and_accepts_the_legacy_variable(tmp_path, hub, monkeypatch):
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", SECRET)
    push_folder(make_folder(tmp_path / "model"), "org/thinkless")
    assert [c[0] for c in hub.calls] == ["init", "create_repo", "upload_folder"]
    assert hub.calls[0][1]["token_is_env"] and hub.calls[1][1]["private"] is True  # private by default


def test_push_without_token_fails_before_any_call(tmp_path, hub, monkeypatch):
    # a token in the login cache is not used: only the environment counts
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    (tmp_path / "hf_home").mkdir()
    (tmp_path / "hf_home" / "token").write_text(SECRET)
    with pytest.raises(RuntimeError, match="HF_TOKEN"):
        push_folder(make_folder(tmp_path / "model"), "org/thinkless")
    assert hub.calls == []
    with pytest.raises(ValueError, match="repo_id"):
        push_folder(tmp_path / "model", None, dry_run=True)


def test_callbacks_only_when_something_is_pushed():
    info = {"name": "r", "loss": "DeGRPO"}
    assert hub_callbacks(OmegaConf.create({"push": False, "dry_run": False}), info) == []
    assert hub_callbacks(None, info) == []
    cbs = hub_callbacks(OmegaConf.create({"revision_per_checkpoint": True, "repo_id": "o/n"}), info)
    assert len(cbs) == 1 and isinstance(cbs[0], HubCheckpointCallback) and cbs[0].card_info == info


def fake_trainer_args(tmp_path, step=20):
    ckpts = tmp_path / "train" / "checkpoints"
    make_folder(ckpts / f"checkpoint-{step}")
    args = SimpleNamespace(output_dir=str(ckpts))
    state = SimpleNamespace(global_step=step, is_world_process_zero=True,
                            log_history=[{"step": step, "loss": 0.1, "modes/think_ratio": 0.4}])
    return args, state


def test_checkpoint_callback_pushes_each_checkpoint_to_its_branch(tmp_path, hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    cfg = OmegaConf.create({"push": True, "repo_id": "org/thinkless", "revision_per_checkpoint": True})
    cb = HubCheckpointCallback(cfg, {"name": "exp1", "base_model": "m", "gamma": 0.5})
    args, state = fake_trainer_args(tmp_path)
    cb.on_train_begin(args, state, None)
    cb.on_save(args, state, None)
    ckpt = Path(args.output_dir) / "checkpoint-20"
    card = (ckpt / "README.md").read_text()
    assert "| steps | 20 |" in card and "| modes/think_ratio | 0.400 |" in card
    names = [c[0] for c in hub.calls]
    assert names == ["init", "create_repo", "create_branch", "upload_folder"]
    assert hub.calls[2][1]["branch"] == "step-20"
    up = hub.calls[3][1]
    assert up["revision"] == "step-20" and up["folder_path"] == str(ckpt)
    assert up["files"] == sorted(MODEL_FILES) and "optimizer.pt" not in up["files"]
    # not the main process: nothing
    hub.calls.clear()
    cb.on_save(args, SimpleNamespace(**{**vars(state), "is_world_process_zero": False}), None)
    assert hub.calls == []


def test_checkpoint_callback_fails_at_train_begin_without_token(tmp_path, hub):
    args, state = fake_trainer_args(tmp_path)
    cb = HubCheckpointCallback(OmegaConf.create({"push": True, "repo_id": "o/n"}))
    with pytest.raises(RuntimeError, match="HF_TOKEN"):
        cb.on_train_begin(args, state, None)
    with pytest.raises(ValueError, match="repo_id"):
        HubCheckpointCallback(OmegaConf.create({"dry_run": True})).on_train_begin(args, state, None)
    HubCheckpointCallback(OmegaConf.create({"dry_run": True, "repo_id": "o/n"})).on_train_begin(args, state, None)


# ---------------------------------------------------------------- end to end through train.py

FAKE_HUB_SITE = textwrap.dedent('''
    import json, os
    if os.environ.get("FAKE_HUB_LOG"):
        from pathlib import Path
        import huggingface_hub

        class _FakeHfApi:
            def __init__(self, token=None, **kw):
                self._log("init", token_is_env=token is not None and token == os.environ.get("HF_TOKEN"))

            def _log(self, call, **kw):
                with open(os.environ["FAKE_HUB_LOG"], "a") as f:
                    f.write(json.dumps({"call": call, **kw}) + "\\n")

            def create_repo(self, repo_id, **kw):
                self._log("create_repo", repo_id=repo_id, **kw)

            def create_branch(self, repo_id, **kw):
                self._log("create_branch", repo_id=repo_id, **kw)

            def upload_folder(self, *, folder_path, ignore_patterns, **kw):
                from huggingface_hub.utils import filter_repo_objects

                root = Path(folder_path)
                files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
                files = list(filter_repo_objects(files, ignore_patterns=ignore_patterns))
                self._log("upload_folder", folder=root.name, files=files, all_present=True, **kw)

        huggingface_hub.HfApi = _FakeHfApi
''')

FAST_TRAIN = ["report.enabled=false", "rl_data.validation=null", "rl_data.num_problems=64",
              "rl.args.max_steps=2", "rl.args.per_device_train_batch_size=8", "rl.args.num_generations=4",
              "rl.args.max_completion_length=16", "rl.args.save_steps=1", "rl.args.save_total_limit=1"]


def cli(script, *overrides, env_extra=None, site=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join([str(p) for p in (site, REPO) if p]), **(env_extra or {})}
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if var not in (env_extra or {}):
            env.pop(var, None)
    proc = subprocess.run([sys.executable, str(REPO / script), *overrides], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


@pytest.fixture(scope="module")
def tiny_distilled(tmp_path_factory):
    out = tmp_path_factory.mktemp("distill")
    cli("distill.py", f"output_dir={out}", "training.args.max_steps=2", "training.args.per_device_train_batch_size=8",
        "data.num_problems=64", "report.enabled=false", "training.args.disable_tqdm=true")
    return out / "model"


@pytest.mark.slow
def test_train_dry_run_stages_every_checkpoint_and_the_final_model(tiny_distilled, tmp_path):
    out = tmp_path / "train"
    cli("train.py", f"output_dir={out}", f"model.path={tiny_distilled}", *FAST_TRAIN, "hub.dry_run=true",
        "hub.repo_id=org/thinkless-test", "hub.revision_per_checkpoint=true")
    for step in (1, 2):
        plan = json.loads((out / "hub_dry_run" / f"step-{step}.upload_plan.json").read_text())
        assert plan["revision"] == f"step-{step}" and plan["repo_id"] == "org/thinkless-test"
        staged = out / "hub_dry_run" / f"step-{step}.hub_upload"
        assert sorted(p.name for p in staged.iterdir()) == plan["files"]
        assert "model.safetensors" in plan["files"] and "README.md" in plan["files"]
        assert not {"optimizer.pt", "scheduler.pt", "training_args.bin"} & set(plan["files"])
        assert f"| steps | {step} |" in (staged / "README.md").read_text()
    final = json.loads((out / "model.upload_plan.json").read_text())
    assert final["revision"] == "main" and (out / "model.hub_upload" / "model.safetensors").is_file()
    assert "| steps | 2 |" in (out / "model.hub_upload" / "README.md").read_text()


@pytest.mark.slow
def test_train_push_end_to_end_with_recorded_hub(tiny_distilled, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(FAKE_HUB_SITE)
    log = tmp_path / "hub_calls.jsonl"
    out = tmp_path / "train"
    proc = cli("train.py", f"output_dir={out}", f"model.path={tiny_distilled}", *FAST_TRAIN, "hub=push",
               "hub.repo_id=org/thinkless-test", "hub.private=true",
               env_extra={"HF_TOKEN": SECRET, "FAKE_HUB_LOG": str(log)}, site=site)
    calls = [json.loads(x) for x in log.read_text().splitlines()]
    assert all(c["token_is_env"] for c in calls if c["call"] == "init")
    branches = [c["branch"] for c in calls if c["call"] == "create_branch"]
    uploads = [c for c in calls if c["call"] == "upload_folder"]
    assert branches == ["step-1", "step-2"]
    assert [(u["folder"], u["revision"]) for u in uploads] == [
        ("checkpoint-1", "step-1"), ("checkpoint-2", "step-2"), ("model", None)]
    assert all(u["all_present"] and "model.safetensors" in u["files"] and "optimizer.pt" not in u["files"]
               for u in uploads)
    assert all(c["private"] is True for c in calls if c["call"] == "create_repo")
    # the token never appears in the output, the logs or any file the run wrote
    assert SECRET not in proc.stdout + proc.stderr
    assert SECRET not in all_text_under(out)
    result = json.loads((out / "train_result.json").read_text())
    assert result["hub"]["token_from"] == "HF_TOKEN" and result["hub"]["repo_id"] == "org/thinkless-test"


# ---------------------------------------------------------------- distill.py's warm-up model on the Hub

FAST_DISTILL = ["training.args.max_steps=2", "training.args.per_device_train_batch_size=8", "data.num_problems=64",
                "report.enabled=false", "training.args.disable_tqdm=true"]


@pytest.fixture(scope="module")
def pushed_distilled(tmp_path_factory):
    """distill.py pushing its warm-up model to a recording Hub: (output folder, recorded calls, stdout+stderr)."""
    root = tmp_path_factory.mktemp("pushed")
    site = root / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(FAKE_HUB_SITE)
    log = root / "hub_calls.jsonl"
    out = root / "distill"
    proc = cli("distill.py", f"output_dir={out}", *FAST_DISTILL, "hub.push=true", "hub.repo_id=org/thinkless-warmup",
               env_extra={"HF_TOKEN": SECRET, "FAKE_HUB_LOG": str(log)}, site=site)
    return out, [json.loads(x) for x in log.read_text().splitlines()], proc.stdout + proc.stderr


@pytest.mark.slow
def test_distill_pushes_the_warm_up_model_with_its_own_card(pushed_distilled):
    from thinkless.reporting.hub import card_metadata

    out, calls, output = pushed_distilled
    assert [c["call"] for c in calls] == ["init", "create_repo", "upload_folder"]
    assert calls[0]["token_is_env"] and calls[1]["repo_id"] == "org/thinkless-warmup" and calls[1]["private"] is True
    up = calls[2]
    assert up["folder"] == "model" and up["revision"] is None and "model.safetensors" in up["files"]
    assert "README.md" in up["files"] and "optimizer.pt" not in up["files"]
    assert up["commit_message"] == "Upload Thinkless warm-up model"
    card = (out / "model" / "README.md").read_text()
    meta = card_metadata(out / "model")
    assert meta["tags"] == ["thinkless", "hybrid-reasoning", "sft", "trl"] and meta["license"] == "apache-2.0"
    assert "base_model" not in meta and "datasets" not in meta  # the tiny model from scratch, the synthetic task
    assert "| base model | a tiny Qwen2 built from scratch (model=tiny) |" in card
    assert "| SFT data | the built-in synthetic fold task" in card and "| steps | 2 |" in card
    assert str(out) not in card  # no local path on the Hub
    result = json.loads((out / "distill_result.json").read_text())
    assert result["hub"]["repo_id"] == "org/thinkless-warmup" and result["hub"]["dry_run"] is False
    assert SECRET not in output and SECRET not in all_text_under(out)


@pytest.mark.slow
def test_distill_dry_run_and_a_bad_hub_value_before_work(tmp_path):
    out = tmp_path / "distill"
    cli("distill.py", f"output_dir={out}", *FAST_DISTILL, "hub.dry_run=true", "hub.repo_id=org/thinkless-warmup",
        "hub.license=mit")
    plan = json.loads((out / "model.upload_plan.json").read_text())
    assert plan["repo_id"] == "org/thinkless-warmup" and "README.md" in plan["files"]
    assert "license: mit" in (out / "model.hub_upload" / "README.md").read_text()
    bad = subprocess.run([sys.executable, str(REPO / "distill.py"), f"output_dir={tmp_path / 'bad'}",
                          "hub.base_model=./runs/x"], cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"})
    assert bad.returncode == 1 and "hub.base_model='./runs/x'" in bad.stderr
    assert not (tmp_path / "bad" / "checkpoints").exists()  # before any work


@pytest.mark.slow
@pytest.mark.parametrize("objective,tag", [("length_penalty", "length-penalty"), ("adaptthink", "adaptthink")])
def test_card_of_a_trained_policy_names_its_objective_and_base_model_by_id(pushed_distilled, tmp_path, objective,
                                                                            tag):
    """RL from the pushed warm-up folder: the card's base_model is the warm-up's Hub id, its tags the objective's."""
    from thinkless.reporting.hub import card_metadata

    warm = pushed_distilled[0] / "model"
    out = tmp_path / "train"
    cli("train.py", f"output_dir={out}", f"model.path={warm}", *FAST_TRAIN, f"objective={objective}")
    meta = card_metadata(out / "model")
    assert meta["base_model"] == "org/thinkless-warmup"
    assert meta["tags"] == [tag, "hybrid-reasoning", "trl"] and meta["license"] == "apache-2.0"
    card = (out / "model" / "README.md").read_text()
    assert f"| objective | `{objective}` |" in card and "| base model | `org/thinkless-warmup` |" in card
    front = card.split("---\n")[1]
    assert str(warm) not in front and str(tmp_path) not in front  # no local path reaches what the Hub reads
    # a base named by the config key wins, and the card cites the objective's paper
    if objective == "length_penalty":
        assert "arXiv:2502.04463" in card
        cli("train.py", f"output_dir={tmp_path / 'named'}", f"model.path={warm}", *FAST_TRAIN,
            f"objective={objective}", "hub.base_model=org/another-base", "hub.license=mit")
        meta = card_metadata(tmp_path / "named" / "model")
        assert meta["base_model"] == "org/another-base" and meta["license"] == "mit"
