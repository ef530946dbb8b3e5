"""The Hugging Face Hub: the Thinkless model card, pushes, per-checkpoint branches and the dry run.

Saving checkpoints is ``thinkless.checkpoints``' job (``Trainer.save_model``); this module only publishes folders,
through ``huggingface_hub`` (``upload_folder`` with ``UPLOAD_IGNORE``; the dry run lists the same files with
``huggingface_hub``'s own pattern filter, so the rehearsal and the upload cannot disagree).

* ``push_folder`` uploads a model folder to ``repo_id`` (branch ``revision``; created private unless
  ``private=false``). Only model files go up: optimizer/scheduler/RNG states, DeepSpeed shards and pickled
  training arguments are left out (``UPLOAD_IGNORE``).
* ``hub.revision_per_checkpoint=true``: ``HubCheckpointCallback`` (registered by ``thinkless.training.rl``) pushes every
  saved checkpoint, with a model card, to its own branch ``step-<N>`` (``hub.checkpoint_branch_prefix``), so
  any point of a run can be loaded with ``from_pretrained(repo_id, revision="step-200")``.
* ``dry_run``: no network and no token needed. The exact folder that would be uploaded is written beside the
  source (hard links, so it costs no space) as ``<name>.hub_upload/``, with the upload plan in
  ``<name>.upload_plan.json``.

The token comes from the environment only (``HF_TOKEN`` or ``HUGGING_FACE_HUB_TOKEN``): it is never a config
value, never read from the login cache, never logged and never written to a plan, a card or a result file.
A missing token fails at the start of training (``HubCheckpointCallback.on_train_begin``), not after it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from transformers import TrainerCallback

from ..checkpoints import RECORD
from ..modeling import looks_like_hub_id
from ..objectives import OBJECTIVES
from ..training.budget import measured_on
from .markdown import markdown_table

logger = logging.getLogger(__name__)

TOKEN_ENV_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
# Never uploaded: training state (optimizer, scheduler, RNG, DeepSpeed shards and helpers), pickles, our plans.
UPLOAD_IGNORE = ("optimizer.pt", "scheduler.pt", "rng_state*.pth", "global_step*", "global_step*/*", "latest",
                 "zero_to_fp32.py", "zero_to_torch.py", "training_args.bin", "*.upload_plan.json", ".*", "*/.*")


# The paper every card cites (the control tokens, the warm-up, DeGRPO); an objective's own paper is its ``citation``.
THINKLESS_CITATION = """@article{fang2025thinkless,
  title   = {Thinkless: LLM Learns When to Think},
  author  = {Fang, Gongfan and Ma, Xinyin and Wang, Xinchao},
  journal = {arXiv preprint arXiv:2505.13379},
  year    = {2025}
}"""
CARD_FILE = "README.md"


def objective_tags(name: str) -> list[str]:
    """The Hub tags of the objective registered as ``name`` (its ``Objective.tags()``)."""
    return list(OBJECTIVES[name].tags()) if name in OBJECTIVES else [name.replace("_", "-")]


def card_metadata(folder: str | Path) -> dict:
    """The YAML front matter of ``folder``'s model card ({} when there is none)."""
    from huggingface_hub.repocard import metadata_load

    path = Path(folder) / CARD_FILE
    return (metadata_load(path) or {}) if path.is_file() else {}


def pushed_repo(folder: str | Path) -> str | None:
    """The Hub repo a stage of ours pushed ``folder`` to (its ``<stage>_result.json`` beside it), else None. A dry
    run pushed nothing."""
    folder = Path(folder).resolve()
    for result in sorted(folder.parent.glob("*_result.json")):
        try:
            rec = json.loads(result.read_text())
        except (OSError, ValueError):
            continue
        hub = rec.get("hub") or {}
        if hub.get("repo_id") and hub.get("dry_run") is False and rec.get("model_dir") \
                and Path(rec["model_dir"]).resolve() == folder:
            return hub["repo_id"]
    return None


def base_model_id(model_path, explicit: str | None = None) -> str | None:
    """The Hub id the run's weights come from, never a local path: ``hub.base_model`` if set; ``model_path`` itself
    when it is a Hub id; for a folder one of our stages wrote, the repo it was pushed to, else its card's own
    ``base_model``; None when unknown (a model built from scratch, a folder none of our stages wrote)."""
    if explicit:
        return str(explicit)  # checked by check_hub
    if model_path is None:
        return None
    path = Path(os.path.expanduser(str(model_path)))
    if path.is_dir():
        if not (path / RECORD).is_file():  # not ours (e.g. a downloaded snapshot): its card describes another model
            return None
        base = pushed_repo(path) or card_metadata(path).get("base_model")
        return base if isinstance(base, str) and looks_like_hub_id(base) else None
    return str(model_path) if looks_like_hub_id(str(model_path)) else None


def hub_datasets(*names) -> list[str]:
    """The names among ``names`` that are Hub dataset ids (local files and None left out), in order, once each."""
    out = []
    for n in names:
        if isinstance(n, str) and looks_like_hub_id(n) and not n.endswith((".json", ".jsonl", ".parquet", ".csv")) \
                and n not in out:
            out.append(n)
    return out


def check_hub(hub_cfg) -> None:
    """The ``hub`` group's values, checked before any work (train.py and distill.py)."""
    hub = hub_cfg or {}
    base = hub.get("base_model")
    if base is not None and not (isinstance(base, str) and looks_like_hub_id(base)):
        raise ValueError(f"hub.base_model={base!r}: a Hub model id 'org/name' is expected (null: read it from "
                         "model.path or the warm-up model's card); a local path is never a base_model")
    lic = hub.get("license")
    if lic is not None and not (isinstance(lic, str) and lic.strip() and " " not in lic):
        raise ValueError(f"hub.license={lic!r}: a Hub license identifier is expected (e.g. apache-2.0, mit; "
                         "https://huggingface.co/docs/hub/repositories-licenses), or null for none")
    repo = hub.get("repo_id")
    if (hub.get("push") or hub.get("dry_run") or hub.get("revision_per_checkpoint")) and not repo:
        raise ValueError("hub.push / hub.dry_run / hub.revision_per_checkpoint need hub.repo_id=<org/name>")
    if repo is not None and not (isinstance(repo, str) and repo.count("/") == 1 and all(repo.split("/"))):
        raise ValueError(f"hub.repo_id={repo!r}: a Hub repo id 'org/name' is expected")


def card_front_matter(info: dict, tags: list[str]) -> list[str]:
    """The YAML header the Hub reads: library, license, base model (a Hub id only), datasets (Hub ids only), tags."""
    import yaml

    meta = {"library_name": "transformers"}
    if info.get("license"):
        meta["license"] = info["license"]
    if info.get("base_model"):
        meta["base_model"] = info["base_model"]
    if info.get("datasets"):
        meta["datasets"] = list(info["datasets"])
    meta["tags"] = tags
    return ["---", yaml.safe_dump(meta, sort_keys=False, default_flow_style=None, width=1000).rstrip(), "---"]


def citation_lines(objective: str | None) -> list[str]:
    own = OBJECTIVES[objective].citation if objective in OBJECTIVES else ""
    return ["", "## Citation", "", "```bibtex", "\n\n".join(c for c in (THINKLESS_CITATION, own) if c), "```"]


def warmup_card(info: dict) -> str:
    """README.md for a warm-up (distilled) model, ``distill.py``'s output. ``info``: name, base_model, datasets,
    data (in words), license, steps, report_md."""
    lines = card_front_matter(info, ["thinkless", "hybrid-reasoning", "sft", "trl"]) + [
        "",
        f"# {info.get('name') or 'Thinkless warm-up model'}",
        "",
        "The warm-up (distillation) stage of [Thinkless](https://arxiv.org/abs/2505.13379): SFT on responses of both "
        "kinds, so that the model's first generated token is `<short>` (answer directly) or `<think>` (reason inside "
        "`<think>…</think>`, then answer). It picks either about half the time; RL (`train.py`) then teaches it when "
        "to think.",
        "",
        "## Training",
        "",
        markdown_table([None, None], [
            ["base model", f"`{info['base_model']}`" if info.get("base_model") else str(info.get("base", "unknown"))],
            ["SFT data", str(info.get("data", "unknown"))],
            ["steps", str(info.get("steps"))]]),
    ]
    if info.get("report_md"):  # distill.py's mode report of this model (thinkless.reporting.report.format_report)
        lines += ["", info["report_md"].strip()]
    lines += citation_lines(None)
    lines.append("")
    return "\n".join(lines)


def model_card(info: dict) -> str:
    """README.md for a Thinkless policy. ``info``: base_model (a Hub id, or absent), base (what it started from,
    in words), data, datasets (Hub ids), license, loss, objective ({name, knobs...}), steps, mode_usage, eval, ...
    ``stage: distill``: the warm-up model's card (``warmup_card``)."""
    if info.get("stage") == "distill":
        return warmup_card(info)
    usage = info.get("mode_usage") or {}
    ev = info.get("eval") or {}
    objective = dict(info.get("objective") or {})
    name = objective.get("name")
    tags = [*(objective_tags(name) if name else []), "hybrid-reasoning", "trl"]
    base = f"`{info['base_model']}`" if info.get("base_model") else info.get("base", "unknown")
    lines = card_front_matter(info, tags) + [
        "",
        f"# {info.get('name') or 'Thinkless policy'}",
        "",
        "A hybrid-reasoning model trained with [Thinkless](https://arxiv.org/abs/2505.13379): its first generated "
        "token is `<short>` (answer directly) or `<think>` (reason inside `<think>…</think>`, then answer).",
        "",
        "## Training",
        "",
    ]
    training = [["base model", base], ["RL data", info.get("data", "unknown")], ["loss", info.get("loss", "DeGRPO")]]
    if objective:
        training.append(["objective", f"`{objective.pop('name', 'unknown')}`"])
        training += [[f"objective.{k}", v] for k, v in objective.items()]
    training.append(["steps", info.get("steps")])
    budget = info.get("budget")
    if budget:
        cost = budget.get("final_cost")
        derivative = f", derivative {budget['derivative']:.4g}" if budget.get("derivative") else ""  # off: not shown
        training += [["budget", f"{budget['cost']} {'at most' if budget.get('at_most') else '='} {budget['target']:g} "
                      f"(rl.budget; gains: integral {budget['step_size']:.4g}, proportional "
                      f"{budget.get('proportional', 0.0):.4g}{derivative})"],
                     ["budget: final multiplier λ", f"{budget['final_multiplier']:+.4f}"],
                     ["budget: last measured cost", f"{'n/a' if cost is None else f'{cost:.3f}'} ("
                      f"{measured_on(budget.get('probe', 0))})"]]  # no probe key: written before it, the batch
    lines.append(markdown_table([None, None], [[k, str(v)] for k, v in training]))
    for i, r in enumerate(info.get("resumed_with_changes") or []):
        lines += ["", f"**Resumed with a changed configuration** (rerun=resume, {i + 1}): the weights come from a run "
                  "whose settings changed mid-run:", ""] + [f"- `{c}`" for c in r.get("changes", [])]
    if usage:
        lines += ["", "## Final mode usage (last training step)", "", markdown_table(
            ["metric", "value"], [[k, f"{v:.3f}"] for k, v in usage.items() if isinstance(v, (int, float))])]
    if ev:
        lines += ["", "## Evaluation", "", "```json", json.dumps(ev, indent=2), "```"]
    lines += ["", "## Use", "", "```python",
              "from transformers import AutoModelForCausalLM, AutoTokenizer",
              "tok = AutoTokenizer.from_pretrained(PATH); model = AutoModelForCausalLM.from_pretrained(PATH)",
              "msgs = [{'role': 'user', 'content': question}]",
              "prompt = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)  # the model chooses",
              "prompt = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False, thinking='on')   # think",
              "prompt = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False, thinking='off')  # short",
              "```", "",
              "**Thinking switch.** The chat template takes `thinking` = `auto` (default: the model picks its first "
              "token, `<short>` or `<think>`) | `on` (prefills `<think>`) | `off` (prefills `<short>`). With vLLM's "
              "OpenAI server: `extra_body={\"chat_template_kwargs\": {\"thinking\": \"off\"}}`.", "",
              "**Think threshold.** A bias `b` on the `<think>` logit at the first generated position only trades "
              "accuracy for tokens (`b > 0` thinks more): `thinkless.serving.mode_control.ThinkBiasProcessor` for HF "
              "`generate`; `vllm serve PATH --logits-processors thinkless.vllm_think_bias:ThinkBias --middleware "
              "thinkless.serving.check_request` and "
              "`extra_body={\"vllm_xargs\": {\"think_bias\": b}}` per request. (The API's `logit_bias` acts at "
              "every position and breaks the response for large `b`.)"]
    curve = info.get("threshold") or []
    if curve:
        lines += ["", "### Measured threshold curve", "",
                  f"On {info.get('threshold_benchmark', 'the report benchmark')}: the mode token sampled with the "
                  "bias, the response greedy.", "",
                  markdown_table(["think bias", "accuracy", "think ratio", "response tokens"],
                                 [[f"{c['bias']:+g}", f"{c['acc']:.3f}", f"{c['think_ratio']:.2f}",
                                   f"{c['tokens']:.1f}"] for c in curve])]
    lines += citation_lines(name)
    lines.append("")
    return "\n".join(lines)


def write_model_card(folder: str | Path, info: dict) -> Path:
    path = Path(folder) / CARD_FILE
    path.write_text(model_card(info))
    return path


def hub_token() -> str | None:
    """The Hub token from the environment, or None. Never from a config, never logged."""
    for var in TOKEN_ENV_VARS:
        if os.environ.get(var):
            return os.environ[var]
    return None


def token_source() -> str | None:
    """Which environment variable holds the token (safe to log), or None."""
    return next((var for var in TOKEN_ENV_VARS if os.environ.get(var)), None)


def require_token() -> str:
    token = hub_token()
    if token is None:
        raise RuntimeError(f"Hub push requested but no token: export one of {' / '.join(TOKEN_ENV_VARS)} in the "
                           "environment (never put it in a config), or use hub.dry_run=true")
    return token


def upload_files(folder: str | Path, ignore=UPLOAD_IGNORE) -> list[str]:
    """Relative paths (POSIX) of the files ``push_folder`` uploads from ``folder``, sorted."""
    from huggingface_hub.utils import filter_repo_objects

    folder = Path(folder)
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return list(filter_repo_objects(files, ignore_patterns=list(ignore)))


def stage_folder(folder: str | Path, dest: str | Path, files: list[str]) -> Path:
    """``dest`` = exactly ``files`` of ``folder`` (hard links where possible, else copies); replaced if present."""
    folder, dest = Path(folder), Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(folder / rel, target)
        except OSError:
            shutil.copy2(folder / rel, target)
    return dest


def push_folder(folder: str | Path, repo_id: str, *, private: bool = True, revision: str | None = None,
                commit_message: str = "Upload Thinkless policy", dry_run: bool = False,
                stage_dir: str | Path | None = None) -> dict:
    """Upload ``folder`` to ``repo_id`` (branch ``revision`` if given, created from main when missing).

    Returns the plan (never the token). ``dry_run`` writes the exact upload as ``stage_dir`` (default
    ``<folder>.hub_upload``) and the plan as ``<stage_dir minus .hub_upload>.upload_plan.json``.
    """
    if not repo_id:
        raise ValueError("hub.repo_id must be set (e.g. hub.repo_id=your-org/thinkless-1.5b) to push or dry-run")
    folder = Path(folder)
    files = upload_files(folder)
    plan = {"repo_id": repo_id, "private": bool(private), "revision": revision or "main", "folder": str(folder),
            "files": files, "commit_message": commit_message, "dry_run": bool(dry_run),
            "token_from": None if dry_run else token_source()}
    if dry_run:
        stage = Path(stage_dir) if stage_dir is not None else folder.parent / f"{folder.name}.hub_upload"
        stage_folder(folder, stage, files)
        plan["staged_folder"] = str(stage)
        name = stage.name[: -len(".hub_upload")] if stage.name.endswith(".hub_upload") else stage.name
        (stage.parent / f"{name}.upload_plan.json").write_text(json.dumps(plan, indent=2))
        logger.info("hub dry run: would upload %d files to %s@%s (exact folder: %s)", len(files), repo_id,
                    plan["revision"], stage)
        return plan
    from huggingface_hub import HfApi

    api = HfApi(token=require_token())
    api.create_repo(repo_id, private=private, exist_ok=True)
    if revision and revision != "main":
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), revision=revision, commit_message=commit_message,
                      ignore_patterns=list(UPLOAD_IGNORE))
    logger.info("pushed %d files to %s@%s (token from $%s)", len(files), repo_id, plan["revision"],
                plan["token_from"])
    return plan


class HubCheckpointCallback(TrainerCallback):
    """Checks the Hub settings before training; with ``revision_per_checkpoint``, pushes each checkpoint.

    Every saved ``checkpoint-N`` gets a model card (with the mode usage logged at that step) and is uploaded
    to branch ``<checkpoint_branch_prefix><N>`` of ``repo_id`` (``dry_run``: staged under
    ``<output_dir>/../hub_dry_run/<branch>``). Main process only; the upload is synchronous, so a checkpoint is
    never rotated away while it uploads.
    """

    def __init__(self, hub_cfg, card_info: dict | None = None):
        self.repo_id = hub_cfg.get("repo_id")
        self.private = bool(hub_cfg.get("private", True))
        self.dry_run = bool(hub_cfg.get("dry_run", False))
        self.per_checkpoint = bool(hub_cfg.get("revision_per_checkpoint", False))
        self.prefix = hub_cfg.get("checkpoint_branch_prefix") or "step-"
        self.card_info = dict(card_info or {})

    def on_train_begin(self, args, state, control, **kwargs):
        if not self.repo_id:
            raise ValueError("hub.push / hub.dry_run / hub.revision_per_checkpoint need hub.repo_id=<org/name>")
        if not self.dry_run and state.is_world_process_zero:
            require_token()  # fail now, not after the run

    def on_save(self, args, state, control, **kwargs):
        if not self.per_checkpoint or not state.is_world_process_zero:
            return
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if not ckpt.is_dir():
            logger.warning("hub: checkpoint folder %s not found, not pushed", ckpt)
            return
        usage = {}
        for rec in state.log_history:
            if rec.get("step") == state.global_step:
                usage.update({k: v for k, v in rec.items() if k.startswith("modes/")})
        write_model_card(ckpt, {**self.card_info, "steps": state.global_step, "mode_usage": usage})
        branch = f"{self.prefix}{state.global_step}"
        stage = Path(args.output_dir).parent / "hub_dry_run" / f"{branch}.hub_upload"
        push_folder(ckpt, self.repo_id, private=self.private, revision=branch,
                    commit_message=f"Checkpoint at step {state.global_step}", dry_run=self.dry_run, stage_dir=stage)


def hub_callbacks(hub_cfg, card_info: dict) -> list[TrainerCallback]:
    """The trainer callbacks for ``hub_cfg`` (empty when nothing is pushed or dry-run)."""
    hub = hub_cfg or {}
    if not (hub.get("push") or hub.get("dry_run") or hub.get("revision_per_checkpoint")):
        return []
    return [HubCheckpointCallback(hub, card_info)]
