"""Checkpoints: the final model as a plain Hugging Face folder, on any number of processes and any ZeRO stage.

``Trainer.save_model`` does the saving (ZeRO-3 gathering through ``stage3_gather_16bit_weights_on_model_save``, the
processing class, the generation config); this module only sets the Thinkless generation defaults first and hands
the main process a complete model for its reports.
"""

from __future__ import annotations

from pathlib import Path

from .modeling import set_generation_defaults


def is_zero3(trainer) -> bool:
    if not getattr(trainer, "is_deepspeed_enabled", False):
        return False
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    return bool(is_deepspeed_zero3_enabled())


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
