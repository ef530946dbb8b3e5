"""Export: a Hugging Face folder with a model card, and (optionally) a push to the Hub.

The token comes from the environment only (``HF_TOKEN`` / ``HUGGING_FACE_HUB_TOKEN``, or the login cache), is
never a config value and is never logged. ``dry_run`` writes the exact folder that would be uploaded and
returns the upload plan without touching the network.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)


def model_card(info: dict) -> str:
    """README.md for a Thinkless policy. ``info``: base_model, data, alpha, gamma, steps, mode_usage, eval, ..."""
    usage = info.get("mode_usage") or {}
    ev = info.get("eval") or {}
    lines = [
        "---",
        "library_name: transformers",
        "tags: [thinkless, degrpo, hybrid-reasoning, trl]",
        f"base_model: {info.get('base_model', 'unknown')}",
        "---",
        "",
        f"# {info.get('name', 'Thinkless policy')}",
        "",
        "A hybrid-reasoning model trained with [Thinkless](https://arxiv.org/abs/2505.13379): its first generated "
        "token is `<short>` (answer directly) or `<think>` (reason inside `<think>…</think>`, then answer).",
        "",
        "## Training",
        "",
        "| | |",
        "|---|---|",
        f"| base model | `{info.get('base_model', 'unknown')}` |",
        f"| RL data | `{info.get('data', 'unknown')}` |",
        f"| loss | {info.get('loss', 'DeGRPO')} |",
        f"| α (control-token weight) | {info.get('alpha')} |",
        f"| γ (think penalty) | {info.get('gamma')} |",
        f"| steps | {info.get('steps')} |",
    ]
    if usage:
        lines += ["", "## Final mode usage (last training step)", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in usage.items() if isinstance(v, (int, float))]
    if ev:
        lines += ["", "## Evaluation", "", "```json", json.dumps(ev, indent=2), "```"]
    lines += ["", "## Use", "", "```python",
              "from transformers import AutoModelForCausalLM, AutoTokenizer",
              "tok = AutoTokenizer.from_pretrained(PATH); model = AutoModelForCausalLM.from_pretrained(PATH)",
              "prompt = tok.apply_chat_template([{'role': 'user', 'content': question}], add_generation_prompt=True,"
              " tokenize=False)",
              "# the model chooses <short> or <think> itself; prefill either to force a mode", "```", ""]
    return "\n".join(lines)


def write_model_card(folder: str | Path, info: dict) -> Path:
    path = Path(folder) / "README.md"
    path.write_text(model_card(info))
    return path


def hub_token() -> str | None:
    return os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")


def push_folder(folder: str | Path, repo_id: str, *, private: bool = True, revision: str | None = None,
                commit_message: str = "Upload Thinkless policy", dry_run: bool = False) -> dict:
    """Upload ``folder`` to ``repo_id`` (branch ``revision`` if given). Returns the plan / result (no token)."""
    folder = Path(folder)
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    plan = {"repo_id": repo_id, "private": private, "revision": revision or "main", "folder": str(folder),
            "files": files, "dry_run": dry_run}
    if dry_run:
        (folder.parent / f"{folder.name}.upload_plan.json").write_text(json.dumps(plan, indent=2))
        logger.info("hub dry run: would upload %d files to %s@%s", len(files), repo_id, plan["revision"])
        return plan
    from huggingface_hub import HfApi

    token = hub_token()
    if token is None:
        raise RuntimeError("hub.push=true but no token: set HF_TOKEN in the environment (never in a config)")
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    if revision:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), revision=revision, commit_message=commit_message)
    return plan
