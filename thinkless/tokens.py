"""Control tokens and chat-template handling.

The model's first generated token is a mode decision: ``<short>`` (answer directly) or ``<think>`` (reason
inside ``<think>…</think>`` first). Everything downstream (SFT targets, reward, evaluation) relies on three facts
this module establishes for any tokenizer:

* each control token is exactly one token id;
* the ids are *not* special, so ``decode(..., skip_special_tokens=True)`` (what TRL hands reward functions) keeps
  them;
* the chat template's generation prompt ends right before the mode token, so the model chooses it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from tokenizers import AddedToken

logger = logging.getLogger(__name__)

THINK = "<think>"
END_THINK = "</think>"
SHORT = "<short>"
CONTROL_TOKENS = (THINK, END_THINK, SHORT)
# A mode as a number, wherever modes are tensors (rollouts, the monitor, evaluation): 1 think, 0 short; -1 (absent
# here) neither control token.
MODE_CODES = {"think": 1.0, "short": 0.0}

# Fallback pad tokens, tried in order, for tokenizers whose pad is their EOS (R1-Distill): a model trained with
# pad == eos has its EOS masked out of the loss and never learns to stop (open-r1's "model never stops" bug).
_PAD_CANDIDATES = ("<|fim_pad|>", "<|endoftext|>", "<pad>")

# Known generation prompts that prefill a mode, and what they become. R1-Distill forces "<think>\n".
_PREFILL_FIXES = (
    ("{{'<｜Assistant｜><think>\\n'}}", "{{'<｜Assistant｜>'}}"),
    ("{{'<｜Assistant｜><think>\n'}}", "{{'<｜Assistant｜>'}}"),
)
# The official Thinkless tokenizer (VainF/Reasoning-SFT README) names id 151650 "<short>" in tokenizer.json but
# "<|short|>" in tokenizer_config.json; transformers 5 gives the config's name precedence, so the official models'
# short-mode token decodes as "<|short|>". It is renamed back to <short> (same id: the trained embedding row).
_ALIASES = {SHORT: "<|short|>"}

# R1-Distill's template drops everything up to </think> from assistant turns; a template used to render SFT
# targets must keep the whole response (control token and trace), so that branch is removed.
_STRIP_REASONING = "{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}"


@dataclass(frozen=True)
class ControlTokenIds:
    think: int
    end_think: int
    short: int


def control_token_ids(tokenizer) -> ControlTokenIds:
    """Ids of the three control tokens; raises if any is not a single token (run ``add_control_tokens`` first)."""
    ids = []
    for tok in CONTROL_TOKENS:
        enc = tokenizer.encode(tok, add_special_tokens=False)
        if len(enc) != 1:
            raise ValueError(
                f"control token {tok!r} encodes to {len(enc)} ids {enc}; call thinkless.add_control_tokens(tokenizer)"
            )
        ids.append(enc[0])
    return ControlTokenIds(*ids)


# The mode switch, appended to every template: a template variable ``thinking`` = auto (default: the model chooses)
# | on (prefill <think>) | off (prefill <short>), after the generation prompt (the last thing these templates emit).
# `{%-` strips the template source's trailing newline, so `auto` renders exactly the original generation prompt.
THINKING_SWITCH = (
    "{#- thinkless: thinking switch #}"
    "{%- if add_generation_prompt is defined and add_generation_prompt and thinking is defined and thinking %}"
    "{%- if thinking == 'on' %}{{- '" + THINK + "' }}"
    "{%- elif thinking == 'off' %}{{- '" + SHORT + "' }}"
    "{%- elif thinking != 'auto' %}{{- raise_exception('thinking must be auto, on or off, got ' ~ thinking) }}"
    "{%- endif %}{%- endif %}"
)


def fix_chat_template(template: str | None) -> str | None:
    """Return ``template`` with mode prefill and reasoning stripping removed and the thinking switch (idempotent)."""
    if template is None:
        return None
    for old, new in _PREFILL_FIXES:
        template = template.replace(old, new)
    template = template.replace(_STRIP_REASONING, "")
    if THINKING_SWITCH not in template:
        template = template + THINKING_SWITCH
    return template


def add_control_tokens(tokenizer, model=None, reuse: dict | None = None) -> ControlTokenIds:
    """Make ``<think>``, ``</think>``, ``<short>`` single, non-special tokens; fix template, pad and embeddings.

    Existing tokens are reused (R1-Distill already has ``<think>``/``</think>``). Missing ones are added as
    non-special added tokens. If ``model`` is given, its embedding matrix is grown when needed and the rows of
    every *newly added* id are set to the mean of the pre-existing token embeddings (input and, if untied,
    output), so the new tokens start at a neutral point instead of random noise — also when the id falls in
    the unused padding rows that Qwen checkpoints carry beyond the tokenizer's length. Idempotent.
    """
    # ``reuse`` names existing (unused) tokens to become control tokens, id and embedding row unchanged: the
    # official warm-up turns R1-Distill's <|quad_start|> (151650) into <short> (conf/model/r1-distill-qwen-1.5b.yaml).
    for name, alias in {**_ALIASES, **(reuse or {})}.items():
        if len(tokenizer.encode(name, add_special_tokens=False)) != 1 and \
                len(tokenizer.encode(alias, add_special_tokens=False)) == 1:
            _rename_added_token(tokenizer, alias, name)
    n_before = len(tokenizer)
    missing = [t for t in CONTROL_TOKENS if len(tokenizer.encode(t, add_special_tokens=False)) != 1]
    if missing:
        tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in missing])
    ids = control_token_ids(tokenizer)

    tokenizer.chat_template = fix_chat_template(tokenizer.chat_template)
    if tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        for cand in _PAD_CANDIDATES:
            cid = tokenizer.convert_tokens_to_ids(cand)
            if cid is not None and cid != tokenizer.unk_token_id and cid != tokenizer.eos_token_id:
                tokenizer.pad_token = cand
                break
        else:
            tokenizer.add_special_tokens({"pad_token": "<pad>"})
        logger.info("pad token set to %r (was the EOS)", tokenizer.pad_token)

    if model is not None:
        new_ids = [tokenizer.convert_tokens_to_ids(t) for t in missing]
        _init_new_embeddings(model, len(tokenizer), n_before, new_ids)
        model.config.pad_token_id = tokenizer.pad_token_id
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.pad_token_id = tokenizer.pad_token_id
    return ids


def _rename_added_token(tokenizer, old: str, new: str) -> None:
    """Give the added token ``old`` the content ``new`` (same id, non-special), in the fast tokenizer's backend."""
    import json

    from tokenizers import Tokenizer

    state = json.loads(tokenizer.backend_tokenizer.to_str())
    for t in state["added_tokens"]:
        if t["content"] == old:
            t["content"], t["special"] = new, False
    tokenizer._tokenizer = Tokenizer.from_str(json.dumps(state))
    logger.info("control token %r: the tokenizer's %r (id %d) renamed", new, old, tokenizer.convert_tokens_to_ids(new))


@torch.no_grad()
def _init_new_embeddings(model, vocab_len: int, n_before: int, new_ids: list[int]) -> None:
    emb = model.get_input_embeddings()
    if emb.weight.shape[0] < vocab_len:
        model.resize_token_embeddings(vocab_len, pad_to_multiple_of=64, mean_resizing=False)
        emb = model.get_input_embeddings()
    if not new_ids:
        return
    out = model.get_output_embeddings()
    for layer in (emb, out):
        if layer is None:
            continue
        w = layer.weight
        mean = w[:n_before].float().mean(dim=0).to(w.dtype)
        for i in new_ids:
            w[i] = mean
        if layer is out and getattr(out, "bias", None) is not None:
            out.bias[new_ids] = out.bias[:n_before].mean()
