"""The vLLM think-bias processor's public path: ``--logits-processors thinkless.vllm_think_bias:ThinkBias`` (the
serve command in every model card we wrote); the code lives in ``thinkless.serving.vllm_think_bias``."""

from .serving.vllm_think_bias import ThinkBias

__all__ = ["ThinkBias"]
