"""The registry (thinkless/objectives/base.py OBJECTIVES, filled by @register from every module of the package) is the
one list of objectives: each registered objective is three files (module, config, test file) and every other list
reads it — the gym's and the budget bench's choices, the error texts, the shared tests below, docs/objectives.md's
table. Also the loader (``make_objective``: every key of a config is a knob) and what every objective with TRL's loss
shares."""

import ast
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest
import yaml

from thinkless.objectives import OBJECTIVES, Objective, make_objective, register

from ..conftest import ROOT
from ..test_configs import compose_cfg, options
from .helpers import fixed_batch, from_train_config, trainer_for


@pytest.fixture
def scratch():
    """An objective registered for one test, unregistered after it."""

    @dataclass
    class Scratch(Objective):
        name = "scratch_objective"
        bonus: float = 0.5

    register(Scratch)
    yield Scratch
    OBJECTIVES.pop(Scratch.name)


def yaml_name(stem: str) -> str:
    return yaml.safe_load((ROOT / "conf" / "objective" / f"{stem}.yaml").read_text())["name"]


# ---------------------------------------------------------------- the registry and its three files per objective

def test_every_registered_objective_is_its_three_files_and_nothing_else_registers():
    assert list(OBJECTIVES) == sorted(OBJECTIVES)  # by name, whatever the import order
    assert set(OBJECTIVES) == {yaml_name(s) for s in options("objective")}  # no config without its objective
    for name, cls in OBJECTIVES.items():
        assert cls.__module__ == f"thinkless.objectives.{name}", (name, cls.__module__)
        assert (ROOT / "thinkless" / "objectives" / f"{name}.py").is_file()
        assert (ROOT / "conf" / "objective" / f"{name}.yaml").is_file() and yaml_name(name) == name
        assert (ROOT / "tests" / "objectives" / f"test_{name}.py").is_file()


def test_registry_and_loader_errors(scratch):
    with pytest.raises(ValueError, match="valid choices are .*scratch_objective"):
        make_objective({"name": "scratch_objectiv"})
    with pytest.raises(ValueError, match=r"unknown keys \['objective.bonsu'\]; its keys are \['objective.bonus'\]"):
        make_objective({"name": "scratch_objective", "bonsu": 1.0})
    # where a run writes is train.yaml's, not the objective's: a key the loader would have to strip is refused
    with pytest.raises(ValueError, match=r"unknown keys \['objective.run_dir'\]"):
        make_objective({"name": "scratch_objective", "run_dir": "train_scratch"})
    with pytest.raises(ValueError, match="objective.bonus='abc': a finite number"):
        make_objective({"name": "scratch_objective", "bonus": "abc"})
    assert make_objective({"name": "scratch_objective", "bonus": 2}).knobs() == {"bonus": 2.0}
    with pytest.raises(ValueError, match="'scratch_objective' is empty or taken"):
        register(scratch)

    @dataclass
    class BadLoss(Objective):
        name = "bad_loss"
        loss = "tokenwise"

    with pytest.raises(ValueError, match=r"BadLoss.loss='tokenwise': valid choices are \['decoupled', 'sequence', "
                                         r"'trl'\]"):  # the loss shapes' registry (thinkless.training.losses)
        register(BadLoss)
    assert "bad_loss" not in OBJECTIVES


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_every_objectives_loss_knobs_fit_its_shape(name):
    """The trainer calls ``loss_shape(objective.loss)(inputs, **objective.loss_kwargs())``: every objective's knobs
    are exactly the keyword arguments its shape takes (none missing, none unknown)."""
    import inspect

    from thinkless.training.losses import loss_shape

    objective = from_train_config(name)
    inspect.signature(loss_shape(objective.loss)).bind(None, **objective.loss_kwargs())


@pytest.mark.parametrize("option", options("objective"))
def test_every_config_in_conf_objective_builds_and_every_key_is_a_knob(option):
    """As train.py composes it (interpolations resolved): every key but ``name`` is one of the objective's fields
    (the loader strips nothing), and the output folder comes from ``objective.name``."""
    cfg = compose_cfg("train", [f"objective={option}"])
    obj = make_objective(cfg.objective)
    keys = set(yaml.safe_load((ROOT / "conf" / "objective" / f"{option}.yaml").read_text())) - {"name"}
    assert obj.name == cfg.objective.name and keys <= set(obj.knobs()), keys - set(obj.knobs())
    assert cfg.output_dir == f"runs/demo/{cfg.run_dirs.get(obj.name, 'train_' + obj.name)}"


# ---------------------------------------------------------------- what objectives with TRL's loss share

@pytest.mark.parametrize("name", [n for n, c in OBJECTIVES.items() if c.loss == "trl"])
def test_trl_loss_objectives_use_trls_own_loss(tiny_trainer_parts, tmp_path, name):
    from trl import GRPOTrainer

    objective = from_train_config(name)
    # room for every objective's demo-config length cap (ThinkPrune's first round: 28 tokens)
    tr = trainer_for(tiny_trainer_parts, tmp_path, objective, max_completion_length=64)
    assert tr.loss_type == objective.loss_type
    inputs, _ = fixed_batch(T=5)
    ours = tr._compute_loss(tr.model, inputs)
    theirs = GRPOTrainer._compute_loss(tr, tr.model, inputs)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)


# ---------------------------------------------------------------- one objective more: three files, nothing else

THROWAWAY = '''
"""A throwaway objective written by tests/objectives/test_base.py."""
from dataclasses import dataclass

from .base import Objective, register


@register
@dataclass
class Throwaway(Objective):
    name = "throwaway"
    bonus: float = 0.25

    def rewards_for(self, batch):
        return batch.correct + self.bonus

    def reward_range(self):
        return 1.0


@register
@dataclass
class ThrowawayForcing(Throwaway):
    name = "throwaway_forcing"

    def first_tokens(self, G):
        return ["think"] * G, [0.0] * G
'''

PROBE = '''
import json, sys
from hydra import compose, initialize_config_dir
from thinkless.training.budget import make_budget, priceable
from thinkless.objectives import make_objective

with initialize_config_dir(config_dir=sys.argv[1], version_base="1.3"):
    cfg = compose("train", overrides=[f"hydra.searchpath=[file://{sys.argv[2]}]", "objective=throwaway",
                                      "objective.bonus=0.5"])
obj = make_objective(cfg.objective)
try:
    make_budget({"think_ratio": 0.3, "probe": 0}, objective=make_objective({"name": "throwaway_forcing"}),
                max_steps=100)
    error = ""
except ValueError as e:
    error = str(e)
print(json.dumps({"class": type(obj).__name__, "bonus": obj.bonus, "output_dir": cfg.output_dir,
                  "priceable": priceable(), "error": error}))
'''


def test_a_throwaway_objective_in_a_temp_folder_reaches_every_list(tmp_path):
    """A module in a folder named by ``THINKLESS_OBJECTIVES`` and its yaml in ``<tmp>/conf/objective/`` (Hydra's
    search path), nothing else: ``objective=throwaway`` composes, builds and writes to ``train_throwaway``; the gym's
    and the budget bench's ``--objectives`` offer it and its mode-forcing twin, and rl.budget's refusal of a forcing
    objective's batch-read price names it among those that sample the mode."""
    pkg = tmp_path / "objectives"
    pkg.mkdir()
    (pkg / "throwaway.py").write_text(textwrap.dedent(THROWAWAY))
    conf = tmp_path / "conf"
    (conf / "objective").mkdir(parents=True)
    (conf / "objective" / "throwaway.yaml").write_text("# objective=throwaway: a test's\n"
                                                       "name: throwaway   # a throwaway objective\n"
                                                       "bonus: 0.25       # added to every reward\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "THINKLESS_OBJECTIVES": str(pkg), "HF_HUB_OFFLINE": "1"}

    def run(*args):
        proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout

    gym = run(str(ROOT / "bench" / "gym.py"), "--help")
    budget = run(str(ROOT / "bench" / "budget.py"), "--help")
    choices = lambda text: text.split("--objectives {", 1)[1].split("}", 1)[0].split(",")  # noqa: E731
    assert choices(gym) == sorted([*OBJECTIVES, "throwaway", "throwaway_forcing"])
    assert choices(budget) == choices(gym)  # a forcing objective is priced on the probe (rl.budget.probe > 0)
    got = json.loads(run("-c", PROBE, str(ROOT / "conf"), str(conf)).strip().splitlines()[-1])
    assert got["class"] == "Throwaway" and got["bonus"] == 0.5 and got["output_dir"] == "runs/demo/train_throwaway"
    assert "throwaway" in got["priceable"] and "throwaway_forcing" not in got["priceable"]
    assert "objective=throwaway_forcing (rl.budget.probe=0): it forces the mode" in got["error"]
    assert ", ".join(got["priceable"]) in got["error"]
    assert "throwaway" not in OBJECTIVES  # this process's registry is untouched: the run was the subprocesses'


# ---------------------------------------------------------------- no other list

# Literals that name objectives on purpose, each a published experiment's selection, not a list of objectives:
# removing an objective that is in none of them leaves no line to edit.
SELECTIONS = {
    "bench/budget.py": "the budget bench's default, the runs docs/budget.md publishes",
    "bench/common.py": "the gym --quick run's recipe arm: one objective on TRL's advantages, one with its own estimator",
    "tests/reporting/test_hub.py": "the trained policies whose cards issue 39 names (AdaptThink's and the length penalty's)",
}
SKIP_DIRS = {"runs", "results", "node_modules", "wandb", "outputs", "__pycache__"}


def enumerations(root=ROOT, names=None):
    """``(file, line)`` of every literal list, tuple, set or dict keys in a .py file, and every sequence in a .yaml
    file, of two or more strings that are all registered objective names: a hand-written list of objectives."""
    names = set(OBJECTIVES if names is None else names)
    found = []

    def is_list(values):
        return len(values) >= 2 and all(isinstance(v, str) and v in names for v in values)

    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS and "site-packages" not in d]
        for f in files:
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, root)
            if f.endswith(".py"):
                for node in ast.walk(ast.parse(open(path).read())):
                    items = (node.elts if isinstance(node, (ast.List, ast.Tuple, ast.Set))
                             else node.keys if isinstance(node, ast.Dict) else None)
                    if items and is_list([getattr(i, "value", None) for i in items]):
                        found.append((rel, node.lineno))
            elif f.endswith((".yaml", ".yml")):
                root_node = yaml.compose(open(path).read(), Loader=yaml.SafeLoader)
                stack = [root_node] if root_node is not None else []
                while stack:
                    n = stack.pop()
                    if isinstance(n, yaml.SequenceNode):
                        if is_list([getattr(i, "value", None) for i in n.value]):
                            found.append((rel, n.start_mark.line + 1))
                        stack += n.value
                    elif isinstance(n, yaml.MappingNode):
                        stack += [v for _, v in n.value]
    return sorted(found)


def test_the_registry_is_the_only_list():
    """No source or config file spells a list of objectives (beyond the published selections above): the gym, the
    budget bench, the error texts, the tests and the docs table read the registry, so an objective's three files are
    all that adding or removing it touches."""
    found = enumerations()
    lists = [(f, line) for f, line in found if f not in SELECTIONS]
    assert not lists, f"hand-written lists of objectives (read thinkless.objectives.OBJECTIVES instead): {lists}"
    assert sorted(f for f, _ in found) == sorted(SELECTIONS), f"each selection is one literal: {found}"


def test_the_list_finder_finds_lists_in_code_and_configs(tmp_path):
    (tmp_path / "a.py").write_text('X = ("ob_a", "ob_b")\nY = ["ob_a", "dapo"]\nZ = {"ob_a": 1, "ob_b": 2}\n'
                                   'def f(n):\n    return n in {"ob_b", "ob_a"}\n')
    (tmp_path / "b.yaml").write_text("x: [ob_a, ob_b]\ny:\n  - ob_a\n  - other\nz:\n  - ob_b\n  - ob_a\n")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "c.py").write_text('X = ("ob_a", "ob_b")\n')
    assert enumerations(tmp_path, {"ob_a", "ob_b"}) == [("a.py", 1), ("a.py", 3), ("a.py", 5), ("b.yaml", 1),
                                                         ("b.yaml", 6)]


def test_the_objectives_table_is_what_the_generator_writes():
    from thinkless.objectives import __main__ as gen

    current = gen.PAGE.read_text()
    assert gen.BEGIN in current and gen.END in current
    assert gen.page(current) == current, "docs/objectives.md is stale: run python -m thinkless.objectives"


def objective_hooks() -> set[str]:
    """Every public name the base class defines (methods, properties and class attributes) plus ``__name__``."""
    return {n for n in vars(Objective) if not n.startswith("_")} | {"__name__"}


def test_every_hook_is_listed_in_the_module_doc_and_the_guide():
    """The objectives' interface is documented in full, by purpose: every hook of ``Objective`` has its line in
    base.py's module docstring and its row in docs/objectives.md's "What an objective owns" table, and neither lists
    a hook the class does not have (a hook added, renamed or removed updates both)."""
    import re

    from thinkless.objectives import base

    hooks = objective_hooks()
    assert {"rewards_for", "advantages", "loss", "first_tokens", "resets", "label", "__name__"} <= hooks
    doc = set(re.findall(r"``(\w+)", base.__doc__))
    page = (ROOT / "docs" / "objectives.md").read_text()
    section = page.split("## What an objective owns", 1)[1].split("**Adding an objective**", 1)[0]
    rows = {m for line in section.splitlines() if line.startswith("| `")
            for m in re.findall(r"`(\w+)", line.split(" | ", 1)[0])}
    assert hooks - doc == set(), f"hooks missing from base.py's module docstring: {sorted(hooks - doc)}"
    assert hooks - rows == set(), f"hooks missing from docs/objectives.md's table: {sorted(hooks - rows)}"
    assert rows - hooks == set(), f"docs/objectives.md's table lists what Objective lacks: {sorted(rows - hooks)}"
