"""Checkpoints: the final model as a plain Hugging Face folder, on any number of processes and any ZeRO stage.

``Trainer.save_model`` does the saving (ZeRO-3 gathering through ``stage3_gather_16bit_weights_on_model_save``, the
processing class, the generation config); this module sets the Thinkless generation defaults and the control-token
record first, hands the main process a complete model for its reports, and tells a complete checkpoint folder from an
interrupted one.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from .tokens import CONTROL_TOKENS

# config.json key recording the control-token ids a Thinkless model was trained with (set_generation_defaults):
# a checkpoint that has it must be loaded with a tokenizer that has those tokens at those ids.
CONTROL_TOKENS_KEY = "thinkless_control_tokens"

# The configuration record a stage writes into its output folder, copies into every checkpoint and the final model/
# (thinkless.runs.stage; docs/reruns.md): what shaped those weights, and the mark of a folder this project wrote.
RECORD = "run_config.json"


def is_zero3(trainer) -> bool:
    if not getattr(trainer, "is_deepspeed_enabled", False):
        return False
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    return bool(is_deepspeed_zero3_enabled())


def set_generation_defaults(model, tokenizer, *, temperature: float = 0.6, top_p: float = 0.95) -> None:
    """EOS = the assistant-turn terminator the student was trained to emit; pad distinct from it."""
    gc = model.generation_config
    gc.eos_token_id = tokenizer.eos_token_id
    gc.pad_token_id = tokenizer.pad_token_id
    gc.bos_token_id = tokenizer.bos_token_id
    gc.do_sample, gc.temperature, gc.top_p = True, temperature, top_p
    model.config.eos_token_id = tokenizer.eos_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    setattr(model.config, CONTROL_TOKENS_KEY, {t: tokenizer.convert_tokens_to_ids(t) for t in CONTROL_TOKENS})


def save_final_model(trainer, tokenizer, out_dir: str | Path):
    """Save the trained model to ``out_dir``. COLLECTIVE: call it on every process.

    Returns ``(folder, model)`` on the main process, ``(None, None)`` elsewhere: ``model`` is a complete model the
    main process can generate with. Under ZeRO-3 every process holds only a shard of each weight, so the main process
    reloads the gathered weights into an unsharded model.
    """
    out = Path(out_dir)
    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    set_generation_defaults(unwrapped, tokenizer)  # config + generation config, written by save_model
    trainer.save_model(str(out))
    trainer.accelerator.wait_for_everyone()
    if not trainer.is_world_process_zero():
        return None, None
    if not is_zero3(trainer):
        return out, unwrapped
    import transformers.integrations.deepspeed as hf_ds
    from transformers import AutoModelForCausalLM

    # Training is over: leave ZeRO-3 mode for good on this process, so that from_pretrained builds unsharded models
    # (no zero.Init) and generate() does not wait for the other ranks (synced_gpus) in the reports.
    hf_ds.unset_hf_deepspeed_config()
    model = AutoModelForCausalLM.from_pretrained(out, dtype=unwrapped.dtype)
    set_generation_defaults(model, tokenizer)
    return out, model.to(trainer.accelerator.device).eval()


def incomplete_save(folder: str | Path) -> str | None:
    """Why ``folder`` looks like a stage's final model whose save was interrupted, or None.

    ``save_model`` writes the config and the weights, then the tokenizer; the stage writes its result JSON last. A
    ``model/`` folder without tokenizer files inside a run folder that has a configuration record but no result is
    such a save."""
    folder = Path(folder)
    run = folder.parent
    try:
        stage = json.loads((run / RECORD).read_text()).get("stage")
    except (OSError, ValueError, AttributeError):
        return None
    if folder.name != "model" or not stage or (run / f"{stage}_result.json").exists():
        return None
    return (f"{folder} is the final model of an unfinished {stage} run ({run} has no {stage}_result.json): its save "
            f"was interrupted before the tokenizer was written. Rerun that stage ({stage}.py output_dir={run}): it "
            "finishes from its last checkpoint")


def check_safetensors(folder: str | Path) -> None:
    """Every ``*.safetensors`` file of ``folder`` holds the bytes its header promises, and every shard its index
    names exists: a truncated file (an interrupted save or copy) is named here, before any loading."""
    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text()).get("weight_map", {}).values())
        except ValueError as e:
            raise ValueError(f"{index}: not valid JSON ({e}): an interrupted save or copy") from None
        missing = sorted(s for s in shards if not (folder / s).is_file())
        if missing:
            raise FileNotFoundError(f"{index} names shards that are missing: {', '.join(missing)} (an interrupted "
                                    "save or copy): save or copy the model again")
    for f in sorted(folder.glob("*.safetensors")):
        size = f.stat().st_size
        with f.open("rb") as fh:
            head = fh.read(8)
            n = struct.unpack("<Q", head)[0] if len(head) == 8 else None
            try:
                header = json.loads(fh.read(n)) if n is not None and 8 + n <= size else None
            except ValueError:
                header = None
        if header is None:
            raise ValueError(f"{f}: not a readable safetensors file ({size} bytes, its header is cut or corrupt): "
                             "a truncated file from an interrupted save or copy; save or copy the model again")
        need = 8 + n + max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
        if size < need:
            raise ValueError(f"{f}: truncated safetensors file ({size} of the {need} bytes its header promises): an "
                             "interrupted save or copy; save or copy the model again")


def missing_training_state(ckpt: str | Path) -> list[str]:
    """What a checkpoint lacks of the state an exact resume restores: the optimizer (``optimizer.pt``, or DeepSpeed's
    ``global_step*/`` shards) and the scheduler (``scheduler.pt``). transformers resumes without them in silence,
    with a fresh optimizer, so a deleted or unsaved file would change the run without a word."""
    ckpt = Path(ckpt)
    missing = []
    if not (ckpt / "optimizer.pt").is_file() and not any(ckpt.glob("global_step*")):
        missing.append("optimizer.pt")
    if not (ckpt / "scheduler.pt").is_file() and not any(ckpt.glob("global_step*")):
        missing.append("scheduler.pt")
    return missing



def complete_checkpoints(folder: str | Path) -> list[Path]:
    """Checkpoints of ``folder``, oldest first, that finished saving (``trainer_state.json`` is written last)."""
    from transformers.trainer_utils import sort_checkpoints  # transformers' import is heavy: only when asked

    if not Path(folder).is_dir():
        return []
    return [Path(c) for c in sort_checkpoints(str(folder)) if (Path(c) / "trainer_state.json").is_file()]


def checkpoint_step(ckpt: str | Path) -> int:
    return int(Path(ckpt).name.rsplit("-", 1)[-1])
