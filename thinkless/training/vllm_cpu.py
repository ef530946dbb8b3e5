"""CPU only: what vLLM's CPU build refuses, and TRL's colocated weight sync replaced for it. GPU runs never use this
module.

TRL's colocate sync calls ``model.load_weights`` on the engine's model, parameter by parameter. vLLM's CPU linear
layers repack their weights after loading and drop the ``weight`` parameters that call writes into
(``'Parameter' object has no attribute 'weight_loader'``). vLLM's layer-wise ``reload_weights`` works on CPU: the
whole state dict in one call, then the prefix cache is reset. ``state_dict()``, not ``named_parameters()``: a model
with tied embeddings has no ``lm_head.weight`` parameter, and vLLM would keep its old head.
"""

from __future__ import annotations

import torch


def check_cpu_args(vllm_mode: str, sleep_mode: bool = False) -> None:
    """What vLLM's CPU build cannot do, refused before any work (``rl.check_vllm``) and again here at the sync."""
    if vllm_mode != "colocate":
        raise ValueError(f"rl.args.vllm_mode={vllm_mode!r} on a CPU: the server mode syncs weights over NCCL, which "
                         "needs GPUs; use rl.args.vllm_mode=colocate")
    if sleep_mode:
        raise ValueError("rl.args.vllm_enable_sleep_mode=true: vLLM's CPU build has no sleep mode")


def use_cpu_weight_sync(trainer) -> None:
    """Make ``trainer`` (TRL GRPOTrainer, ``use_vllm=True, vllm_mode="colocate"``, no CUDA) sync through
    ``reload_weights``. One process (CPU training here is single-process with vLLM)."""
    vg = trainer.vllm_generation
    check_cpu_args(vg.mode)

    @torch.no_grad()
    def sync_weights():
        model = trainer.accelerator.unwrap_model(trainer.model)
        weights = [(name, t.detach()) for name, t in model.state_dict().items()]
        vg.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        vg.llm.reset_prefix_cache()

    vg.sync_weights = sync_weights
