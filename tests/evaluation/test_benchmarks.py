"""Benchmark loading: real files through their configs, any JSON/JSONL/parquet/CSV file, bad input."""

from __future__ import annotations

import json

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from thinkless.evaluation.benchmarks import load_benchmark, synthetic_benchmark
from thinkless.evaluation.methods import resolve_methods
from thinkless.evaluation.runner import validate_benchmarks
from thinkless.grading import grade, normalize_gold
from thinkless.tasks.synthetic import parse_prompt

from ..conftest import DATA, ROOT


def lenient(response, gold):
    return grade(response, gold, policy="lenient")


def eval_cfg(*overrides):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="eval", overrides=list(overrides))
    OmegaConf.resolve(cfg)
    return cfg


REAL = {  # benchmark -> (rows in the local file: the fixtures' subsets, tests/fixtures/README.md, has levels)
    "gsm8k": (102, False),
    "math500": (141, True),
    "aime24": (30, False),
    "minerva_algebra": (148, True),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_benchmarks_load_from_data_dir(name):
    cfg = eval_cfg(f"data_dir={DATA}")
    b = load_benchmark(name, cfg.benchmark[name], data_dir=cfg.data_dir)
    n, has_levels = REAL[name]
    assert len(b.problems) == n and not b.dropped and b.source == str(DATA / cfg.benchmark[name].file)
    assert b.has_levels == has_levels
    if has_levels:
        assert {p.level for p in b.problems} == {1, 2, 3, 4, 5}  # "Level 3" and 3 both become 3
    for p in b.problems[:50]:
        assert isinstance(p.problem, str) and p.problem.strip()
        gold = normalize_gold(p.answer)[0]
        assert lenient(f"\\boxed{{{gold}}}", p.answer)
    assert len({p.uid for p in b.problems}) == n


def test_path_override_and_limit():
    cfg = eval_cfg(f"benchmark.gsm8k.path={DATA / 'gsm8k_test.jsonl'}", "benchmark.gsm8k.limit=7")
    b = load_benchmark("gsm8k", cfg.benchmark.gsm8k)  # no data_dir: the path alone
    assert len(b.problems) == 7 and b.problems[0].problem.startswith("Janet")
    assert normalize_gold(b.problems[0].answer) == ["18"]
    cfg = eval_cfg(f"data_dir={DATA}", "limit=5")
    assert len(load_benchmark("aime24", cfg.benchmark.aime24, data_dir=cfg.data_dir, limit=cfg.limit).problems) == 5


def test_minerva_gold_from_solution_when_no_answer_column(tmp_path):
    rows = [json.loads(x) for x in (DATA / "math_algebra_test.jsonl").read_text().splitlines()[:20]]
    f = tmp_path / "hendrycks_like.jsonl"  # the Hub copy has no `answer`: the last \boxed{} of `solution` is used
    f.write_text("\n".join(json.dumps({k: v for k, v in r.items() if k != "answer"}) for r in rows))
    cfg = eval_cfg(f"benchmark.minerva_algebra.path={f}")
    b = load_benchmark("minerva_algebra", cfg.benchmark.minerva_algebra)
    assert [p.answer for p in b.problems] == [r["answer"] for r in rows]


def write_rows(path, rows):
    if path.suffix == ".json":
        path.write_text(json.dumps(rows))
    elif path.suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    else:
        import datasets

        datasets.Dataset.from_list(rows).to_parquet(str(path))


ROWS = [  # answers: a string, a number, a GSM8K solution, a list of accepted answers; then three bad rows
    {"q": "What is 2+3?", "a": "5", "meta": {"difficulty": "Level 2"}},
    {"q": "Twelve minus two?", "a": 10, "meta": {"difficulty": 1}},
    {"q": "She had 1200 apples and sold 34.\n", "a": "She sold 34 of 1,200.\n#### 1,166", "meta": {"difficulty": 3}},
    {"q": "Roots of x^2=4?", "a": ["2,-2", "-2,2"], "meta": {"difficulty": 4}},
    {"q": "No gold here", "a": None, "meta": {"difficulty": 1}},
    {"q": "Empty gold", "a": "  ", "meta": {"difficulty": 1}},
    {"q": "", "a": "1", "meta": {"difficulty": 1}},
]


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_custom_file_with_configurable_fields(tmp_path, suffix):
    f = tmp_path / f"mine{suffix}"
    # 30 good rows more: the 3 bad ones stay under the bad-row limit (10%), dropped and counted
    write_rows(f, ROWS + [{"q": f"{i} + 1?", "a": str(i + 1), "meta": {"difficulty": 1}} for i in range(30)])
    cfg = eval_cfg(f"benchmark.custom.path={f}", "benchmark.custom.problem_field=q", "benchmark.custom.answer_field=a",
                   "benchmark.custom.level_field=meta.difficulty")
    b = load_benchmark("custom", cfg.benchmark.custom)
    assert [p.problem for p in b.problems][:2] == ["What is 2+3?", "Twelve minus two?"]
    assert len(b.problems) == 34 and dict(b.dropped) == {"no_answer": 2, "no_problem": 1}
    assert [p.level for p in b.problems][:4] == [2, 1, 3, 4]
    golds = [p.answer for p in b.problems]
    assert lenient("\\boxed{5}", golds[0]) and lenient("\\boxed{10}", golds[1]) and lenient("\\boxed{1166}", golds[2])
    assert lenient("\\boxed{-2,2}", golds[3]) and not lenient("\\boxed{2}", golds[3])


def test_parquet_files_with_number_and_list_answers(tmp_path):
    f = tmp_path / "numbers.parquet"
    write_rows(f, [{"problem": "1+1?", "answer": 2, "lv": 1.0}, {"problem": "2+2?", "answer": 4, "lv": 2.0}])
    cfg = eval_cfg(f"benchmark.custom.path={f}", "benchmark.custom.level_field=lv")
    b = load_benchmark("custom", cfg.benchmark.custom)
    assert [(p.answer, p.level) for p in b.problems] == [(2, 1), (4, 2)] and lenient("\\boxed{4}", b.problems[1].answer)
    f = tmp_path / "lists.parquet"
    write_rows(f, [{"problem": "x^2=1?", "answer": ["1,-1", "-1,1"]}, {"problem": "none", "answer": []}]
               + [{"problem": f"{i}+1?", "answer": [str(i + 1)]} for i in range(10)])  # 1 bad of 12: under 10%
    b = load_benchmark("custom", eval_cfg(f"benchmark.custom.path={f}").benchmark.custom)
    assert len(b.problems) == 11 and dict(b.dropped) == {"no_answer": 1}
    assert lenient("\\boxed{-1,1}", b.problems[0].answer) and not lenient("\\boxed{1}", b.problems[0].answer)


def test_csv_file(tmp_path):
    f = tmp_path / "mine.csv"
    f.write_text("problem,answer\nWhat is 1+1?,2\nAnd 3+4?,7\n")
    cfg = eval_cfg(f"benchmark.custom.path={f}")
    assert [(p.problem, str(p.answer)) for p in load_benchmark("custom", cfg.benchmark.custom).problems] == [
        ("What is 1+1?", "2"), ("And 3+4?", "7")]


def test_synthetic_benchmark_has_levels_and_exact_answers():
    cfg = eval_cfg()
    b = load_benchmark("synthetic", cfg.benchmark.synthetic)
    assert len(b.problems) == 600 and b.task == "synthetic"
    assert {lv: sum(p.level == lv for p in b.problems) for lv in range(1, 7)} == {lv: 100 for lv in range(1, 7)}
    for p in b.problems[:30]:
        assert parse_prompt(p.problem).answer == p.answer
    cfg = eval_cfg("benchmark.synthetic.levels=[1,6]", "benchmark.synthetic.n_per_level=3")
    b = load_benchmark("synthetic", cfg.benchmark.synthetic)
    assert sorted(p.level for p in b.problems) == [1, 1, 1, 6, 6, 6]


def test_bad_input_names_the_valid_choices(tmp_path):
    with pytest.raises(ValueError, match=r"unknown benchmark 'gsm9k': valid choices are \['aime24', 'custom', 'graded', 'gsm8k'"):
        validate_benchmarks(eval_cfg("benchmarks=[gsm9k]"))
    with pytest.raises(ValueError, match=r"unknown method 'beam': valid choices are \['adaptive', 'budget_forcing'"):
        resolve_methods(["adaptive", "beam"], eval_cfg().method)
    with pytest.raises(ValueError, match="base='nope' is not a method"):
        resolve_methods(["parallel_majority"], eval_cfg("method.parallel_majority.base=nope").method)
    with pytest.raises(ValueError, match="no data source"):
        load_benchmark("custom", eval_cfg().benchmark.custom)
    with pytest.raises(FileNotFoundError, match="has no 'gsm8k_test.jsonl'"):
        load_benchmark("gsm8k", eval_cfg().benchmark.gsm8k, data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_benchmark("gsm8k", eval_cfg(f"benchmark.gsm8k.path={tmp_path / 'nope.jsonl'}").benchmark.gsm8k)
    f = tmp_path / "rows.jsonl"
    f.write_text(json.dumps({"question": "x", "solution": "y"}) + "\n")
    with pytest.raises(ValueError, match=r"no usable rows.*'question', 'solution'"):
        load_benchmark("custom", eval_cfg(f"benchmark.custom.path={f}").benchmark.custom)
    with pytest.raises(ValueError, match="valid keys"):
        load_benchmark("custom",
                       eval_cfg(f"benchmark.custom.path={f}", "+benchmark.custom.answer_key=a").benchmark.custom)
    with pytest.raises(ValueError, match="valid choices are \\('file', 'synthetic'\\)"):
        load_benchmark("custom", eval_cfg(f"benchmark.custom.path={f}", "benchmark.custom.type=hub").benchmark.custom)


def test_hub_dataset_offline_error_names_the_dataset():
    cfg = eval_cfg()  # no path, no data_dir: the Hub name (HF_HUB_OFFLINE=1 in tests, nothing cached)
    with pytest.raises(RuntimeError, match="could not load dataset 'openai/gsm8k'"):
        load_benchmark("gsm8k", cfg.benchmark.gsm8k)


def test_paper_defaults():
    cfg = eval_cfg()
    # the official evaluation prompt (VainF/Thinkless eval_configs): instruction, newline, problem
    assert cfg.prompt.instruction == "Please reason step by step, and put your final answer within \\boxed{}.\n{problem}"
    assert cfg.prompt.system is None and cfg.grading.policy == "strict"
    assert (cfg.sampling.temperature, cfg.sampling.top_p) == (0.6, 0.95)
    assert cfg.benchmark.synthetic.instruction == "{problem}" and cfg.benchmark.synthetic.max_new_tokens == 48
    assert cfg.output_dir == "runs/demo/eval" and cfg.model_path == "runs/demo/train/model"
    assert cfg.wandb.group == "demo" and cfg.wandb.enabled is False
    # every method by default but token_budgets, which needs an L1 policy (a template that renders the budget)
    assert set(cfg.method) - set(cfg.methods) == {"token_budgets"} and set(cfg.methods) <= set(cfg.method)
    assert set(cfg.benchmark) >= {"gsm8k", "math500", "aime24", "minerva_algebra", "synthetic"}


def test_graded_benchmark_has_classes_within_every_level():
    from thinkless.tasks.synthetic import GRADES

    b = load_benchmark("graded", eval_cfg().benchmark.graded)
    assert len(b.problems) == 600 and b.task == "synthetic"
    assert {g: sum(p.problem_class == g for p in b.problems) for g in range(1, 7)} == {g: 100 for g in range(1, 7)}
    assert {(p.problem_class, p.level) for p in b.problems} == {(g, lv) for g in range(1, len(GRADES) + 1) for lv in range(2, 7)}
    assert all(parse_prompt(p.problem).answer == p.answer and parse_prompt(p.problem).problem_class == p.problem_class
               for p in b.problems[:60])
    with pytest.raises(ValueError, match="variant='fancy': valid choices"):
        load_benchmark("graded", eval_cfg("benchmark.graded.variant=fancy").benchmark.graded)


def test_a_benchmark_losing_more_than_a_tenth_of_its_rows_stops(tmp_path):
    """The bad-row limit of every source (issue 38): rows without an answer beyond 10% mean a wrong answer_field."""
    f = tmp_path / "b.jsonl"
    rows = [{"question": f"{i} + 1", "answer": str(i + 1)} for i in range(9)] + [{"question": "x", "answer": ""}] * 2
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = eval_cfg(f"benchmark.gsm8k.path={f}")
    with pytest.raises(ValueError, match=r"benchmark 'gsm8k' .*: 2 of 11 rows cannot be used \(no_answer 2\), more "
                                         r"than the 10%.*benchmark.gsm8k.problem_field / answer_field"):
        load_benchmark("gsm8k", cfg.benchmark.gsm8k)
    f.write_text("".join(json.dumps(r) + "\n" for r in rows[:10]))  # 1 of 10: counted, not a stop
    assert len(load_benchmark("gsm8k", cfg.benchmark.gsm8k).problems) == 9


def test_stated_asks_each_problem_with_the_objectives_extra_as_training_draws_it():
    """``stated``: L1's report problems carry a stated budget each, drawn by the objective's own ``prompt_extra`` from
    the report's stream (the same draws for the same seed), rendered after the instruction as training renders it,
    under a uid of their own; an objective without an extra leaves the benchmark as it is."""
    import random

    from thinkless.evaluation.benchmarks import stated
    from thinkless.objectives import make_objective

    bench = synthetic_benchmark("b", [1, 2, 3], n_per_level=4, seed=0)
    l1 = make_objective({"name": "l1", "min_target": 1, "max_target": 47})
    asked = stated(bench, l1, seed=3)
    rng = random.Random("3/report")
    want = [l1.prompt_extra(rng)[1] for _ in bench.problems]
    assert [p.suffix for p in asked.problems] == want and len(set(want)) > 3
    assert [p.problem for p in asked.problems] == [p.problem for p in bench.problems]
    assert not {p.uid for p in asked.problems} & {p.uid for p in bench.problems}
    assert [p.uid for p in stated(bench, l1, seed=3).problems] == [p.uid for p in asked.problems]
    assert [p.suffix for p in stated(bench, l1, seed=4).problems] != want
    assert stated(bench, make_objective({"name": "thinkless"}), seed=3) is bench
