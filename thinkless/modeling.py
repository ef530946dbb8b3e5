"""Loading students and saving checkpoints that plain ``AutoModelForCausalLM``/``AutoTokenizer`` load."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from .tokens import add_control_tokens

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}


def check_model_path(path: str | None, *, what: str = "model.path") -> None:
    """Fail before any work if ``path`` is neither a local folder nor a Hub id that can be resolved.

    A string that looks like a filesystem path (absolute, relative, ``~``, or an existing file) must exist.
    A Hub id is checked for reachability only when offline (``HF_HUB_OFFLINE=1``): then it must be cached.
    """
    if path is None:
        return
    p = Path(os.path.expanduser(path))
    if p.is_dir():
        if not (p / "config.json").exists():
            raise FileNotFoundError(f"{what}={path!r} is a folder but has no config.json: not a model folder")
        return
    looks_like_path = path.startswith(("/", ".", "~")) or p.exists() or path.count("/") != 1
    if looks_like_path:
        raise FileNotFoundError(f"{what}={path!r} does not exist (expected a model folder or a Hub id 'org/name')")
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(path, "config.json"), str):
            raise FileNotFoundError(f"{what}={path!r} is a Hub id, HF_HUB_OFFLINE is set and it is not in the local cache")


def torch_dtype(name: str):
    if name not in DTYPES:
        raise ValueError(f"model.dtype={name!r}: valid choices are {sorted(DTYPES)}")
    return DTYPES[name]


def load_student(model_cfg, *, seed: int = 0):
    """(model, tokenizer) for a model config, control tokens added and template fixed.

    ``model_cfg.path: null`` builds the tiny synthetic Qwen2 (``model_cfg.tiny`` holds its sizes).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if model_cfg.get("path") is None:
        from .synthetic import build_tiny_model, build_tiny_tokenizer

        tok = build_tiny_tokenizer()
        add_control_tokens(tok)
        model = build_tiny_model(len(tok), seed=seed, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                 **dict(model_cfg.get("tiny") or {}))
    else:
        path = model_cfg.path
        check_model_path(path)
        tok = AutoTokenizer.from_pretrained(model_cfg.get("tokenizer") or path)
        kwargs = {"dtype": torch_dtype(model_cfg.get("dtype", "auto"))}
        if model_cfg.get("attn_implementation"):
            kwargs["attn_implementation"] = model_cfg.attn_implementation
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        add_control_tokens(tok, model, reuse=dict(model_cfg.get("reuse_tokens") or {}))
    set_generation_defaults(model, tok)
    return model, tok


def set_generation_defaults(model, tokenizer, *, temperature: float = 0.6, top_p: float = 0.95) -> None:
    """EOS = the assistant-turn terminator the student was trained to emit; pad distinct from it."""
    gc = model.generation_config
    gc.eos_token_id = tokenizer.eos_token_id
    gc.pad_token_id = tokenizer.pad_token_id
    gc.bos_token_id = tokenizer.bos_token_id
    gc.do_sample, gc.temperature, gc.top_p = True, temperature, top_p
    model.config.eos_token_id = tokenizer.eos_token_id
    model.config.pad_token_id = tokenizer.pad_token_id


def load_checkpoint(path: str | Path, *, dtype: str = "auto"):
    """A saved student: (model, tokenizer). Works for anything the stages wrote, and raw checkpoints."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_model_path(str(path))
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype(dtype))
    add_control_tokens(tok, model)  # no-op on our checkpoints; makes raw checkpoints usable too
    return model, tok
