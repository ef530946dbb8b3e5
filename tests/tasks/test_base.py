"""The Task base class and the registry (thinkless/tasks/base.py): splits, names, levels, discovery; and a task
defined here, out of the tree, run through distill.py, train.py and their reports by its name alone."""

import json
import random
import subprocess
import sys
from dataclasses import dataclass

import pytest

from thinkless.tasks.base import SPLITS, TASKS, Task, get_task, register, split_metrics, split_of, task_names

from ..helpers import ROOT, run_distill_cli, run_train_cli

# A task that is no part of the package: digits summed mod 10, split by the parity of the answer. It reaches the
# runs the way a user's task would: a module in a folder named by THINKLESS_TASKS.
PROBE = '''
from dataclasses import dataclass

from thinkless.tasks.base import Task, register
from thinkless.tokens import END_THINK, SHORT, THINK


@dataclass(frozen=True)
class SumProblem:
    digits: tuple

    @property
    def level(self):
        return len(self.digits) - 1

    @property
    def prompt(self):
        return " + ".join(map(str, self.digits))

    @property
    def answer(self):
        return str(sum(self.digits) % 10)

    @property
    def problem_class(self):
        return 1 + int(self.answer) % 2


@register
class ParityProbe(Task):
    name = "parity_probe"
    unit = "class"
    lowest_level, highest_level = 1, 3

    def draw(self, level, rng):
        return SumProblem(tuple(rng.randrange(10) for _ in range(level + 1)))

    def long_response(self, p):
        return f"{THINK}{p.prompt}\\n{END_THINK}\\\\boxed{{{p.answer}}}"

    def short_response(self, p):
        return f"{SHORT}\\\\boxed{{{p.answer}}}"

    def class_name(self, key):
        return ("even sum", "odd sum")[key - 1]
'''


@dataclass(frozen=True)
class Pair:
    a: int
    b: int

    @property
    def level(self):
        return 1

    @property
    def prompt(self):
        return f"{self.a} {self.b}"

    @property
    def answer(self):
        return str(self.a * self.b)


@pytest.fixture
def pairs_task():
    @register
    class Pairs(Task):
        name = "pairs_in_test"

        def draw(self, level, rng):
            return Pair(rng.randrange(10), rng.randrange(10))

    try:
        yield TASKS["pairs_in_test"]
    finally:
        del TASKS["pairs_in_test"]


def test_the_shipped_tasks_and_what_each_says_about_itself():
    assert task_names(generated=True) == ["fold", "graded"] and "math" in task_names(generated=False)
    fold, graded, math = get_task("fold"), get_task("graded"), get_task("math")
    assert (fold.split, graded.split, math.split) == (SPLITS["level"], SPLITS["class"], SPLITS["level"])
    assert fold.levels() == [1, 2, 3, 4, 5, 6] and graded.levels() == [2, 3, 4, 5, 6]
    assert (fold.grading(), math.grading(), math.grading(exact=True)) == ("synthetic", "math", "synthetic")
    assert graded.split_name("2") == "B (90%)" and graded.split_name("all") == "all" and fold.split_name("3") == "3"
    p = graded.make_problems(1, [3], seed=0)[0]
    assert (graded.level(p), graded.problem_class(p), fold.problem_class(p)) == (3, 1, None)  # fold has no classes
    with pytest.raises(ValueError, match=r"data.variant='folded': valid choices are \('fold', 'graded'\)"):
        get_task("folded", key="data.variant", generated=True)
    with pytest.raises(ValueError, match=r"out of range 2..6 \(a memo needs two folds or more\)"):
        graded.make_problems(2, [1], seed=0)


def test_a_registered_task_makes_problems_in_its_level_cycle(pairs_task):
    assert get_task("pairs_in_test") is pairs_task and "pairs_in_test" in task_names(generated=True)
    probs = pairs_task.make_problems(5, [1], seed=3, weights=[2])
    rng = random.Random(3)
    assert probs == [Pair(rng.randrange(10), rng.randrange(10)) for _ in range(5)]  # one stream, in order
    assert pairs_task.split.unit == "level" and pairs_task.problem_class(probs[0]) is None
    with pytest.raises(ValueError, match="already taken"):
        register(type("Again", (Task,), {"name": "pairs_in_test"}))
    with pytest.raises(ValueError, match="unit 'grade'"):
        register(type("Odd", (Task,), {"name": "odd_unit", "unit": "grade"}))
    with pytest.raises(NotImplementedError, match="no built-in long teacher"):
        pairs_task.long_response(probs[0])


def test_split_of_reads_classes_where_a_result_has_them():
    assert split_of({"per_level": {}, "per_group": {}}) == SPLITS["class"]
    assert split_of({"per_level": {}}) == SPLITS["level"]
    keys = ["modes/think_ratio", "modes/think_ratio_L2", "modes/think_ratio_L10", "modes/think_ratio_C3",
            "modes/acc_C3", "eval_modes/think_ratio_C4"]
    assert split_of(keys) == SPLITS["class"] and split_of(keys[:3]) == SPLITS["level"]
    assert split_metrics(keys) == {3: "modes/think_ratio_C3"}
    assert split_metrics(keys, unit="level") == {2: "modes/think_ratio_L2", 10: "modes/think_ratio_L10"}
    assert split_metrics(keys, unit="class", prefix="eval_") == {4: "eval_modes/think_ratio_C4"}


def test_thinkless_tasks_adds_a_folder_and_refuses_a_missing_one(tmp_path):
    (tmp_path / "parity_probe.py").write_text(PROBE)
    code = ("from thinkless.tasks.base import get_task; t = get_task('parity_probe'); "
            "print(t.split.unit, [t.split_name(str(k)) for k in (1, 2)], t.make_problems(1, [2], 0)[0].prompt)")
    env = {"PYTHONPATH": str(ROOT), "THINKLESS_TASKS": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("class ['even sum', 'odd sum'] ")
    env["THINKLESS_TASKS"] = str(tmp_path / "nowhere")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    assert out.returncode != 0 and "THINKLESS_TASKS" in out.stderr and "is not a folder" in out.stderr


@pytest.mark.slow
def test_a_task_from_outside_runs_through_distill_rl_and_the_reports(tmp_path):
    """A task is its module and its name in the configs: distill.py, train.py, their reports and the monitor
    split it by its classes and name them as it does."""
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "parity_probe.py").write_text(PROBE)
    env = {"THINKLESS_TASKS": str(tmp_path / "tasks")}
    task = ["report.benchmark.variant=parity_probe", "report.benchmark.levels=[1,2,3]",
            "report.benchmark.n_per_level=4", "report.free_samples=1"]
    res = run_distill_cli(tmp_path / "distill", "data.variant=parity_probe", "data.levels=[1,2,3]",
                          "data.level_weights=null", "data.num_problems=64", "training.args.max_steps=4", *task,
                          env=env)
    assert "| even sum |" in res.stdout
    distill = (tmp_path / "distill" / "distill_report.md").read_text()
    assert "| class |" in distill and "| even sum |" in distill and "| odd sum |" in distill
    rep = json.loads((tmp_path / "distill" / "distill_report.json").read_text())
    assert set(rep["per_group"]) == {"1", "2"}
    assert "synthetic parity_probe task" in (tmp_path / "distill" / "model" / "README.md").read_text()

    out = tmp_path / "train"
    run_train_cli(out, tmp_path / "distill" / "model", "rl_data.variant=parity_probe", "rl_data.levels=[1,2,3]",
                  "rl_data.level_weights=null", "rl_data.num_problems=64", "rl_data.validation=null",
                  "rl.args.max_steps=2", "rl.args.per_device_train_batch_size=16", "rl.args.num_generations=4",
                  "rl.args.max_completion_length=24", "report.threshold_biases=[0]", *task, env=env)
    pipeline = json.loads((out / "pipeline_report.json").read_text())
    assert pipeline["unit"] == "class" and set(pipeline["levels"]) == {"1", "2"}
    md = (out / "pipeline_report.md").read_text()
    assert "| class |" in md and "| even sum |" in md and "| odd sum |" in md
    assert "| even sum |" in (out / "report_after_rl.md").read_text()
    logged = {k for ln in (out / "metrics.jsonl").read_text().splitlines() for k in json.loads(ln)}
    assert set(split_metrics(logged, unit="class")) <= {1, 2} and split_of(logged) == SPLITS["class"]  # per class
