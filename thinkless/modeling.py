"""Loading students and saving checkpoints that plain ``AutoModelForCausalLM``/``AutoTokenizer`` load."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from .checkpoints import CONTROL_TOKENS_KEY, check_safetensors, incomplete_save, set_generation_defaults
from .tokens import CONTROL_TOKENS, add_control_tokens
from .tasks.synthetic import build_tiny_model, build_tiny_tokenizer

logger = logging.getLogger(__name__)

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}


def looks_like_hub_id(path: str) -> bool:
    """``org/name`` and nothing on disk by that name: a Hub id, not a filesystem path."""
    return not (path.startswith(("/", ".", "~")) or Path(os.path.expanduser(path)).exists() or path.count("/") != 1)


def check_model_path(path: str | None, *, what: str = "model.path", tokenizer: bool = True) -> None:
    """Fail before any work if ``path`` is neither a local folder nor a Hub id that can be resolved.

    A local folder must hold a ``config.json`` and, when ``tokenizer`` (its own tokenizer is used), tokenizer files.

    A string that looks like a filesystem path (absolute, relative, ``~``, or an existing file) must exist.
    A Hub id is checked for reachability only when offline (``HF_HUB_OFFLINE=1``): then it must be cached.
    """
    if path is None:
        return
    p = Path(os.path.expanduser(path))
    if p.is_dir():
        if not (p / "config.json").exists():
            raise FileNotFoundError(f"{what}={path!r} is a folder but has no config.json: not a model folder")
        if tokenizer and not any((p / f).exists() for f in TOKENIZER_FILES):
            if incomplete_save(p):
                raise FileNotFoundError(f"{what}={path!r}: {incomplete_save(p)}")
            raise FileNotFoundError(f"{what}={path!r} has no tokenizer files ({' / '.join(TOKENIZER_FILES[:2])}): "
                                    "save the tokenizer with the model, or name a tokenizer folder (model.tokenizer / "
                                    "tokenizer=)")
        check_safetensors(p)
        return
    if not looks_like_hub_id(path):
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
        tok = build_tiny_tokenizer()
        add_control_tokens(tok)
        model = build_tiny_model(len(tok), seed=seed, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                 **dict(model_cfg.get("tiny") or {}))
    else:
        path = model_cfg.path
        check_model_path(path, tokenizer=not model_cfg.get("tokenizer"))
        tok = AutoTokenizer.from_pretrained(model_cfg.get("tokenizer") or path)
        kwargs = {"dtype": torch_dtype(model_cfg.get("dtype", "auto"))}
        if model_cfg.get("attn_implementation"):
            kwargs["attn_implementation"] = model_cfg.attn_implementation
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        prepare_control_tokens(tok, model.config, model, reuse=dict(model_cfg.get("reuse_tokens") or {}), what=path)
    set_generation_defaults(model, tok)
    return model, tok



def prepare_control_tokens(tokenizer, config, model=None, *, reuse: dict | None = None, what: str = "model"):
    """Control tokens for a model to be trained or run; says which of the two cases it was.

    A trained Thinkless checkpoint (its config records ``CONTROL_TOKENS_KEY``) must come with a tokenizer that has
    the control tokens at exactly those ids: adding them would give new ids over trained embedding rows. Only a
    base model gets tokens added (``thinkless.tokens.add_control_tokens``), its new rows initialised.
    ``config``: the model's config (a ``PretrainedConfig`` or the ``config.json`` dict)."""
    recorded = config.get(CONTROL_TOKENS_KEY) if isinstance(config, dict) else getattr(config, CONTROL_TOKENS_KEY,
                                                                                       None)
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError(f"{what}: the tokenizer has no chat template (tokenizer_config.json 'chat_template' or "
                         "chat_template.jinja); use the tokenizer saved with the model")
    if recorded:
        got = {t: tokenizer.encode(t, add_special_tokens=False) for t in CONTROL_TOKENS}
        bad = [f"{t}: trained id {recorded.get(t)}, tokenizer gives {got[t] if got[t] else 'nothing'}"
               for t in CONTROL_TOKENS if got[t] != [recorded.get(t)]]
        if bad:
            raise ValueError(f"{what} is a trained Thinkless checkpoint, but its tokenizer does not have the control "
                             f"tokens at the trained ids ({'; '.join(bad)}). Adding them would overwrite trained "
                             "embedding rows: use the tokenizer saved with the checkpoint")
        ids = add_control_tokens(tokenizer, model)  # template and pad only: nothing is added
        logger.info("%s: trained Thinkless checkpoint, control tokens verified (ids %s)", what, recorded)
        return ids
    n = len(tokenizer)
    ids = add_control_tokens(tokenizer, model, reuse=reuse)
    if len(tokenizer) > n:
        logger.warning("%s: base model: control tokens added to the tokenizer (now <think>=%d </think>=%d <short>=%d)"
                       "%s", what, ids.think, ids.end_think, ids.short,
                       ", their embedding rows set to the mean" if model is not None else "")
    else:
        logger.info("%s: control tokens already in the tokenizer (ids %s)", what, ids)
    return ids


def load_checkpoint(path: str | Path, *, dtype: str = "auto", tokenizer: str | None = None):
    """A saved student: (model, tokenizer). Works for anything the stages wrote, and raw checkpoints.
    ``tokenizer``: another tokenizer folder or id (default: the checkpoint's)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_model_path(str(path), tokenizer=not tokenizer)
    tok = AutoTokenizer.from_pretrained(tokenizer or path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype(dtype))
    prepare_control_tokens(tok, model.config, model, what=str(path))  # verified on ours; added to base models
    return model, tok
