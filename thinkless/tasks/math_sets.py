"""The math sets (MATH-500, GSM8K, AIME, Minerva algebra, DeepScaleR, ...): a file-backed task.

Its rows come from a local file or the Hub through ``thinkless.tasks.data`` (``conf/benchmark/*.yaml`` with
``type: file``, ``rl_data.source: math``; the fields a config names); its answers are graded with math-verify; it is
split by the rows' own level where they have one (MATH's "Level 3").
"""

from __future__ import annotations

from .base import Task, register


@register
class MathSets(Task):
    name = "math"
    exact = False
    generated = False
