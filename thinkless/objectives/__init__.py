"""Adaptive-thinking objectives, one module each, selected by ``objective=NAME`` (``conf/objective/NAME.yaml``).

Adding one: a module here with a registered ``Objective`` subclass (``base.py`` says what it may define), its
config in ``conf/objective/``, its tests in ``tests/test_objectives.py``, and a row in ``docs/objectives.md``.
"""

from . import ada_grpo, adaptthink, grpo, l1, length_penalty, thinkless  # noqa: F401 (registers them)
from .base import COLUMNS, OBJECTIVES, Objective, Rollouts, make_objective, register

__all__ = ["COLUMNS", "OBJECTIVES", "Objective", "Rollouts", "make_objective", "register"]
