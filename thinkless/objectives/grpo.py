"""``objective=grpo``: the coupled ablation of Thinkless — the same reward, TRL's own loss.

TRL averages the one control token with the response tokens of its sequence (``loss_type``: any of TRL's; the
demo and the official mapping use ``dapo``, token-level like verl), so the mode decision learns at a rate that
depends on the response length: the collapse DeGRPO exists to remove (README, Results).
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import register
from .thinkless import ThinklessRewards


@register
@dataclass
class CoupledGRPO(ThinklessRewards):
    name = "grpo"
    citation = """@article{shao2024deepseekmath,
  title   = {DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models},
  author  = {Shao, Zhihong and Wang, Peiyi and Zhu, Qihao and Xu, Runxin and Song, Junxiao and Bi, Xiao and
             Zhang, Haowei and Zhang, Mingchuan and Li, Y. K. and Wu, Y. and Guo, Daya},
  journal = {arXiv preprint arXiv:2402.03300},
  year    = {2024}
}"""
    loss = "trl"

    loss_type: str = "dapo"

    def trl_overrides(self) -> dict:
        return {"loss_type": self.loss_type}

    def label(self) -> str:
        return f"coupled GRPO ({self.loss_type})"

    def knobs(self) -> dict:
        return {"loss_type": self.loss_type, **super().knobs()}
