"""Thinkless: teach a language model when to think (arXiv 2505.13379)."""

from .grading import grade
from .training.losses import degrpo_loss
from .reward import thinkless_reward
from .tokens import CONTROL_TOKENS, END_THINK, SHORT, THINK, add_control_tokens, control_token_ids

__all__ = ["add_control_tokens", "control_token_ids", "degrpo_loss", "grade", "thinkless_reward",
           "CONTROL_TOKENS", "THINK", "END_THINK", "SHORT"]
__version__ = "0.2.0"
