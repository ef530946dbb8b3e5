"""Adaptive-thinking objectives, one module each, selected by ``objective=NAME`` (``conf/objective/NAME.yaml``).

An objective is three files: its module here (a registered ``Objective`` subclass; ``base.py`` says what it may
define), its config ``conf/objective/NAME.yaml`` (its knobs) and its tests ``tests/objectives/test_NAME.py``. Every
module of this package is imported here, so the registry (``OBJECTIVES``) is the one list of objectives; everything
else (the gym, the budget bench, error texts, tests, docs/objectives.md's table) reads it. Modules whose name starts
with ``_`` are not objectives. Out of the tree: the folders in ``THINKLESS_OBJECTIVES`` (``os.pathsep``-separated)
join the package, so their modules are imported too (as ``thinkless.objectives.NAME``); their yaml joins
``objective=`` through Hydra's search path (docs/objectives.md).
"""

import importlib
import os
import pkgutil

for _d in filter(None, os.environ.get("THINKLESS_OBJECTIVES", "").split(os.pathsep)):
    if not os.path.isdir(_d):
        raise ValueError(f"THINKLESS_OBJECTIVES: {_d!r} is not a folder (folders of objective modules, separated by "
                         f"{os.pathsep!r})")
    __path__.append(os.path.abspath(_d))  # noqa: F821

from .base import COLUMNS, OBJECTIVES, Objective, PrepareContext, Rollouts, make_objective, register  # noqa: E402

for _m in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if not _m.startswith("_") and _m != "base":
        importlib.import_module(f"{__name__}.{_m}")  # registers its objectives (@register)

__all__ = ["COLUMNS", "OBJECTIVES", "Objective", "PrepareContext", "Rollouts", "make_objective", "register"]
