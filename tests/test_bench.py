"""The benchmark scripts run (tiny sizes; the numbers are not checked, only that every script completes and prints
its tables): a benchmark nobody runs between releases otherwise rots silently (two imported a helper the refactor
removed). bench/pipeline.py is the demo's own three commands, run whole by scripts/demo.sh users; not repeated here."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from thinkless.objectives import OBJECTIVES

from .conftest import ROOT
from .helpers import save_tiny


def bench(*args, timeout=600):
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_degrpo_overhead_prints_the_three_trainers():
    out = bench("bench/degrpo_overhead.py", "--steps", 2, "--repeats", 1, "--batch", 8, "--gens", 4, "--max-len", 8)
    for label in ("TRL GRPOTrainer (grpo)", "TRL GRPOTrainer (dapo)", "AdaptiveGRPOTrainer (DeGRPO)",
                  "DeGRPO overhead vs TRL grpo"):
        assert label in out
    assert "{'loss'" not in out  # TRL's raw log dicts stay out of the tables


def test_eval_throughput_compares_batched_and_sequential():
    out = bench("bench/eval_throughput.py", "--problems", 4, "--batch", 4, "--max-new", 6, "--repeats", 1)
    assert "| batched (batch 4) |" in out and "| one at a time (batch 1) |" in out


def test_gpu_step_runs_on_cpu_with_a_tiny_model(tmp_path):
    model = save_tiny(tmp_path / "tiny")
    out = bench("bench/gpu_step.py", "--config", model, "--device", "cpu", "--max-len", 6, "--prompts", 2,
                "--gens", 2, "--gen-batches", "2", "--gen-max-new", 4)
    assert "DeGRPO step (mean of 2)" in out and "HF generate, batch 2:" in out


def test_real_shapes_parses_its_arguments():
    """Its case is tests/test_real_shapes.py's (run there at 2 layers); here only that the script loads it."""
    out = bench("bench/real_shapes.py", "--help")
    assert "--layers" in out


def test_profile_demo_splits_both_stages(tmp_path):
    import json

    out = bench("bench/profile_demo.py", "--distill-steps", 3, "--rl-steps", 2, "report.benchmark.n_per_level=2",
                "--train", "rl_data.validation.n_per_level=2", "--against-trl", "--out", tmp_path)
    for stage in ("### distill: 3 steps", "### train: 2 steps"):
        assert out.count(stage) == 2  # as TRL runs it on a CPU, then as the trainers do
    assert "| distill | **step** |" in out and "| train | generation |" in out
    for phase in ("| backward |", "| forward + loss |", "| generation |", "| reports |", "extrapolated train stage"):
        assert phase in out
    res = json.loads((tmp_path / "profile_demo.json").read_text())  # the tables' numbers, with their provenance
    assert {"commit", "machine", "command"} <= set(res) and "--out" in res["command"]
    import yaml

    demo_steps = yaml.safe_load((ROOT / "conf" / "training" / "sft_cpu.yaml").read_text())["args"]["max_steps"]
    assert res["stages"]["train"]["per_step_s"]["generation"] > 0 and res["stages"]["distill"]["demo_steps"] == demo_steps
    rl_steps = yaml.safe_load((ROOT / "conf" / "rl" / "degrpo_cpu.yaml").read_text())["args"]["max_steps"]
    assert res["stages"]["train"]["demo_steps"] == rl_steps  # what the demo runs, not the profiled 2
    assert "### train: 2 steps" in (tmp_path / "profile_demo.md").read_text()
    assert {"distill/step", "train/step", "train/generation"} <= set(res["ratio"]) and min(res["ratio"].values()) > 0
    assert res["trl"]["distill"]["per_step_s"]["backward"] > 0


def test_mode_coupling_measures_a_level_blind_model(tmp_path):
    """An untrained model's mode decision: a probability and a gradient cosine per level, each in range."""
    model = save_tiny(tmp_path / "tiny")
    out = bench("bench/mode_coupling.py", model, "--per-level", 3)
    row = next(line for line in out.splitlines() if line.startswith(f"| {model} |"))
    cells = [c.strip() for c in row.strip("|").split("|")][1:]
    assert len(cells) == 11
    p_think, one_minus_cos = map(float, cells[:6]), map(float, cells[6:])
    assert all(0.0 < p < 1.0 for p in p_think)
    assert all(-1e-9 <= d <= 2.0 for d in one_minus_cos)  # float64: rounding stays far below the 1e-5 digits printed


LIBRARY = {"common"}  # bench/common.py: what the benches share (the gym's runs, results, the machine, timers)


def bench_imports(source: str) -> set[str]:
    """The ``bench`` modules ``source`` imports, by name, in any spelling (absolute or relative, module or names)."""
    import ast

    got = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            got |= {a.name.split(".")[1] for a in node.names if a.name.startswith("bench.")}
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if (node.level, mod) in ((0, "bench"), (1, "")):  # from bench import x / from . import x
                got |= {a.name for a in node.names}
            elif node.level == 0 and mod.startswith("bench."):
                got.add(mod.split(".")[1])
            elif node.level == 1:
                got.add(mod.split(".")[0])
    return got


def test_no_bench_imports_another_bench_only_the_library():
    """A bench script is a command, not a library: what two benches share lives in bench/common.py, so changing one
    bench's tables or flags cannot break another (bench/budget.py once imported nine of bench/gym.py's names)."""
    for line, name in [("from bench.budget import main", "budget"), ("import bench.pipeline as p", "pipeline"),
                       ("from bench import budget", "budget"), ("from .budget import fmt", "budget"),
                       ("from . import budget", "budget"), ("from bench.common import log", "common"),
                       ("import benchmarks", None)]:
        assert bench_imports(line) == ({name} if name else set()), line  # every spelling is read
    files = sorted((ROOT / "bench").glob("*.py"))
    assert {p.stem for p in files} >= {"gym", "budget", "stock_grpo", "degrpo_overhead", *LIBRARY}
    found = {p.name: bench_imports(p.read_text()) - LIBRARY for p in files}
    assert not any(found.values()), {k: v for k, v in found.items() if v}


def test_stock_grpo_times_trl_on_the_configs_prompts_and_args(tmp_path):
    """bench/stock_grpo.py (the gym's step-time denominator): stock TRL GRPOTrainer from a model on train.py's
    config, one logged step time per step in stock_grpo.json, nothing saved."""
    import ast
    import json

    model = save_tiny(tmp_path / "tiny")
    out = bench("bench/stock_grpo.py", tmp_path, model, 2, 0, "rl_data=graded", "rl_data.num_problems=32",
                "rl.args.per_device_train_batch_size=4", "rl.args.num_generations=2", "rl.args.max_completion_length=6")
    times = json.loads((tmp_path / "stock_grpo.json").read_text())["step_times"]
    steps = [ast.literal_eval(ln) for ln in out.splitlines() if ln.startswith("{'loss'")]  # TRL's printed logs
    assert times == pytest.approx([float(s["step_time"]) for s in steps], rel=1e-3)  # printed to 4 digits
    assert len(times) == 2 and all(t > 0 for t in times)
    # the overrides reached the trainer: 2 of the 32 prompts per step (4 completions, G = 2), at most 6 tokens each
    assert [s["epoch"] for s in steps] == ["0.0625", "0.125"] and steps[-1]["completions/max_length"] == "6"
    assert not list((tmp_path / "stock_grpo").glob("checkpoint-*"))  # save_strategy=no: timing only


def test_length_buckets_bench_times_each_setting_and_compares_the_runs(tmp_path):
    """bench/length_buckets.py: train.py (from a model) and distill.py (from scratch) at each length_bucket_rows (and
    train.py with rl.args.share_prompts), alternating; step times, their ratio to the first setting's, and the runs' agreement (the same data and rollouts:
    logged values equal to float rounding)."""
    import json

    model = save_tiny(tmp_path / "tiny")
    out = bench("bench/length_buckets.py", tmp_path / "lb", "--model", model, "--rows", 0, 2, "--share-prompts",
                "--steps", 2, "--repeats", 1, "rl_data.num_problems=32", "rl.args.per_device_train_batch_size=8",
                "rl.args.num_generations=4", "rl.args.max_completion_length=8", "report.benchmark.n_per_level=2",
                "rl.args.eval_strategy=no", "rl_data.validation=null")
    res = json.loads((tmp_path / "lb" / "length_buckets_train.json").read_text())
    assert res["commit"] and res["machine"] and "bench/length_buckets.py" in res["command"]
    assert [(r["rows"], len(r["trajectory"]["loss/control"])) for r in res["runs"]] == [(0, 2), (2, 2), ("shared", 2)]
    assert all(v is not None for r in res["runs"] for vs in r["trajectory"].values() for v in vs)
    cfgs = [json.loads((tmp_path / "lb" / f"train-{n}-r0" / "run_config.json").read_text())["config"]
            for n in ("rows0", "rows2", "shared")]
    # the setting reached each run
    assert [(c["rl"]["args"]["length_bucket_rows"], c["rl"]["args"]["share_prompts"]) for c in cfgs] == \
        [(0, False), (2, False), (0, True)]
    s = res["summary"]
    assert s["0"]["largest_difference"] == 0.0 and s["2"]["largest_difference"] < 1e-4 and s["2"]["step_s"] > 0
    assert s["shared"]["largest_difference"] < 1e-4 and s["shared"]["step_s"] > 0 and "| shared |" in out
    assert "| 2 |" in out and (tmp_path / "lb" / "length_buckets_train.md").read_text() in out + "\n"

    out = bench("bench/length_buckets.py", tmp_path / "lb", "--stage", "distill", "--rows", 0, 16, "--share-prompts",
                "--steps", 3, "--repeats", 1, "data.num_problems=60", "report.benchmark.n_per_level=2")
    res = json.loads((tmp_path / "lb" / "length_buckets_distill.json").read_text())
    cfgs = [json.loads((tmp_path / "lb" / f"distill-{n}-r0" / "run_config.json").read_text())["config"]
            for n in ("rows0", "rows16", "shared")]
    assert [(c["training"]["args"]["length_bucket_rows"], c["training"]["args"]["share_prompts"]) for c in cfgs] == \
        [(0, False), (16, False), (0, True)]
    assert [c["data"]["variant"] for c in cfgs] == ["graded"] * 3  # the gym's task unless --task demo
    assert [len(r["trajectory"]["loss"]) for r in res["runs"]] == [3, 3, 3]  # logged every step
    assert all(v is not None for r in res["runs"] for vs in r["trajectory"].values() for v in vs)
    assert res["summary"]["16"]["largest_difference"] < 1e-3 and "| 16 |" in out


def test_gym_quick_runs_every_objective_and_a_rerun_skips_them(tmp_path):
    """bench/gym.py --quick: one distillation, each objective on it (the shared arm; the recipe arm of the quick
    plan's two), the results and the picture; a rerun reads the finished runs back instead of training again."""
    import json

    sys.path.insert(0, str(ROOT))
    from bench.common import Plan
    from bench.gym import run_label

    out = tmp_path / "gym"
    text = bench("bench/gym.py", "--quick", "--out", out)
    res = json.loads((out / "gym_results.json").read_text())
    quick = Plan.quick()
    assert quick.recipes and set(quick.recipes) < set(OBJECTIVES)
    # every registered objective, by name, its recipe run (NAME+recipe) beside it where the quick plan has one
    assert [r["label"] for r in res["runs"]] == [run_label(n, a) for n in OBJECTIVES for a in quick.arms_of(n)
                                                 if a != "matched"]
    assert {r["label"] for r in res["runs"] if r["arm"] == "recipe"} == {n + "+recipe" for n in quick.recipes}
    for r in res["runs"]:
        assert set(r["classes"]) == {str(g) for g in range(1, 7)} and r["rollout_tokens"] > 0 and r["step_times"]
        assert r["commit"] == res["commit"]  # each run row: the commit that trained it
        run = out / r["dir"]
        card = (run / "model" / "README.md").read_text()  # every objective runs train.py end to end on HF rollouts
        assert f"| objective | `{r['objective']}` |" in card, r["label"]
        recs = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
        args = json.loads((run / "run_config.json").read_text())["config"]["rl"]["args"]
        recs = [x for x in recs if "modes/think_ratio" in x]  # one per rollout batch: steps_per_generation steps
        assert [x["step"] for x in recs] == list(range(1, 4, args.get("steps_per_generation") or 1))
        assert "modes/accuracy" in recs[-1] and len(r["step_times"]) == 3  # every optimizer step's time
        assert r["rollout_tokens"] == pytest.approx(sum(x["completions/mean_length"] for x in recs) * 16 * (
            args.get("steps_per_generation") or 1), abs=1)  # 16 completions per step (the quick plan's batch)
        assert any(k.startswith("modes/think_ratio_C") for k in recs[-1])  # per class: the grade's index
        assert (args["num_generations"], args["per_device_train_batch_size"]) == (4, 16)  # the quick shrink wins
        if r["arm"] == "recipe":  # +recipe=NAME reached the run: the authors' KL, entropy, steps per rollout
            recipe = yaml.safe_load((ROOT / "conf" / "recipe" / f"{r['objective']}.yaml").read_text())["rl"]["args"]
            assert {k: args[k] for k in ("beta", "entropy_coef", "temperature", "steps_per_generation")} == {
                k: recipe[k] for k in ("beta", "entropy_coef", "temperature", "steps_per_generation")}
            assert recipe["beta"] > 0 and all("kl" in x for x in recs)  # TRL logs the KL only where beta > 0
        else:
            assert args["beta"] == 0 and not any("kl" in x for x in recs)
        if r["label"] == "adaptthink":  # half of each group forced to <short>, the reference sampled first
            assert "| objective.delta | 0.05 |" in card and (out / "runs" / "adaptthink_ref.json").is_file()
            assert all(x["modes/think_ratio"] == 0.5 for x in recs)
    # every run starts from the shared distillation but L1's, from its own warm-up (prompts that state a length)
    starts = {r["label"]: json.loads((out / r["dir"] / "run_config.json").read_text())["config"]["model"]["path"]
              for r in res["runs"]}
    assert starts.pop("l1") == str(out / "distill-l1" / "model") and set(starts.values()) == {str(out / "distill" / "model")}
    assert json.loads((out / "distill-l1" / "run_config.json").read_text())["config"]["data"]["budget_prompts"] == 0.5
    assert set(res["oracle"]["classes"]) == {str(g) for g in range(1, 7)} and res["stock_grpo_step_times"]
    md = (out / "gym_results.md").read_text()
    assert "| A (100%) |" in md and "| *oracle router* |" in md and (out / "gym.png").stat().st_size > 0
    # ranked by the gap to the frontier: one seed has no interval, so every row shares rank 1
    assert res["oracle"]["frontier"][0]["switched"] is None and all("frontier_gap" in r for r in res["runs"])
    assert all(s["rank_group"] == 1 and s["frontier_gap"]["n"] == 1 and s["frontier_gap"]["ci95"] is None
               for s in res["summary"].values())
    assert "| rank group | gap to frontier |" in md and "(1 seed: no interval)" in md and "| vertex |" in md
    assert "| thinkless | shared | 1 | 1 |" in md and "| thinkless | recipe | 1 | 1 |" in md  # the arm in its own column
    assert "## Leaderboard" in text
    # what the invocation took: all its runs and the distillation trained in it (a rerun below trains none)
    assert res["distilled"] and res["runs_trained"] == len(res["runs"]) + len(res["matched"]) and res["wall_s"] > 0
    assert f"it trained {res['runs_trained']} of the {res['runs_trained']} runs and the distillations (distill, " \
        "distill-l1)" in md and res["distilled"] == ["distill", "distill-l1"]
    # the matched arm: the mode-forcing objective trained to the oracle's think ratio, priced on the probe
    target = res["matched_target"]
    assert target == round(res["oracle"]["think_ratio"], 2) and quick.matched == ["adaptthink"]
    (m,) = res["matched"]
    assert m["label"] == f"adaptthink-budget{target:g}" and m["arm"] == "matched" and "frontier_gap" in m
    assert (m["budget"]["target"], m["budget"]["probe"], m["budget"]["cost"]) == (target, 512, "think_ratio")
    assert m["budget"]["derivative"] == pytest.approx(m["budget"]["proportional"] * 10)  # LOOP: auto, Adam's β1 0.9
    args = json.loads((out / m["dir"] / "run_config.json").read_text())["config"]["rl"]["args"]
    assert args["scale_rewards"] == "none" and "| objective.delta | 0.05 |" in (out / m["dir"] / "model" /
                                                                                "README.md").read_text()
    assert "## Accuracy at the oracle's think ratio" in md and "| adaptthink | 1 | 1 |" in md
    assert len(m["budget_series"]["cost"]) == 3 and "| objective | step 3: think / λ |" in md  # its loop, every step
    assert res["matched_summary"]["adaptthink"]["rank_group"] == 1
    again = bench("bench/gym.py", "--quick", "--out", out, "--objectives", "thinkless", "--arms", "shared", "recipe")
    assert "training thinkless" not in again and "distilling" not in again
    res = json.loads((out / "gym_results.json").read_text())
    assert (res["runs_trained"], res["distilled"]) == (0, []) and "it trained 0 of the 2 runs (the rest" in again
    # the γ sweep reuses the gym's γ = 0.5 run: with only that γ it trains nothing and tabulates it
    text = bench("bench/gym.py", "--quick", "--out", out, "--sweep", "--gammas", "0.5")
    assert "training" not in text and "| A (100%) | 0." in (out / "sweep_results.md").read_text()
    assert (out / "sweep.png").stat().st_size > 0

    # training to a budget on the same distillation: a budget run and the unconstrained run moved by a think bias
    text = bench("bench/budget.py", "--quick", "--out", out, "--objectives", "thinkless")
    assert "distilling" not in text and "| thinkless | 0.4 |" in (out / "budget_results.md").read_text()
    res = json.loads((out / "budget_results.json").read_text())
    run = next(r for r in res["runs"] if r["target"] == 0.4)
    assert run["budget"]["target"] == 0.4 and run["budget"]["step_size"] == pytest.approx(5 * 2 / 3)
    assert run["budget"]["proportional"] == 2.0
    assert len(run["series"]["multiplier"]) == 3 and run["series"]["multiplier"][0] == 0.0
    card = (out / run["dir"] / "model" / "README.md").read_text()
    assert "| budget | think_ratio = 0.4" in card and (out / run["dir"] / "budget.png").stat().st_size > 0
    free = next(r for r in res["runs"] if r["target"] is None)  # the serving-time twin: a bias found per target
    assert [c["target_think_ratio"] for c in free["threshold"] if "target_think_ratio" in c] == [0.4]
    assert set(res["summary"]["thinkless@0.4"]) >= {"achieved", "bias", "bias_acc", "overlap", "rank_corr", "integral"}
    assert (out / "budget.png").stat().st_size > 0


def test_l1_budget_bench_warms_up_trains_and_asks_for_budgets(tmp_path):
    """bench/l1_budget.py --quick: the warm-up distillation states lengths in a share of its prompts, L1 trains from
    it, eval.py asks the policy for each budget through its chat template; the table has a row per budget."""
    import json

    out = tmp_path / "l1"
    text = bench("bench/l1_budget.py", "--quick", "--out", out, "--budgets", 6, 24)
    res = json.loads((out / "l1_budget_results.json").read_text())
    assert [r["requested"] for r in res["budgets"]] == [6, 24] and all(r["n"] > 0 for r in res["budgets"])
    assert res["share"] == 0.5 and res["commit"] and "| 6 |" in text and "| 24 |" in text
    cfg = json.loads((out / "distill" / "run_config.json").read_text())["config"]
    assert cfg["data"]["budget_prompts"] == 0.5 and cfg["data"]["max_trace"] == 36  # traces at several lengths
    # per level: each budget's mean, and the lengths the level's responses come in (the tiny tokenizer's, by hand:
    # the short answer 7, a level-k trace 10 + 4k up to 36 symbols + 10 = 46)
    levels = sorted({int(lv) for r in res["budgets"] for lv in r["per_level"]})
    assert levels and {int(k): (v["short"], v["think"][0], v["think"][-1]) for k, v in res["reachable"].items()} == {
        lv: (7, 10 + 4 * lv, 46) for lv in levels}
    assert f"| *the level's lengths* | 7; {10 + 4 * levels[0]}-46 |" in text
    card = (out / "train" / "model" / "README.md").read_text()
    assert "| objective | `l1` |" in card
    gens = list((out / "eval" / "generations" / "synthetic").glob("token_budgets@24*.jsonl"))
    assert gens and "Think for 24 tokens." in gens[0].read_text()  # the budget reached every prompt


def write_report_before_rl(run_dir, classes, *, short_tokens, think_tokens=25.0):
    """A run's ``report_before_rl.json`` on the graded task: per class ``(n, short_acc, think_acc)``, every class's
    forced short and think responses ``short_tokens`` and ``think_tokens`` long."""
    import json

    rows = {k: {"n": n, "short_acc": sa, "think_acc": ta, "short_tokens": short_tokens, "think_tokens": think_tokens}
            for k, (n, sa, ta) in classes.items()}
    (run_dir / "report_before_rl.json").write_text(json.dumps({"per_group": rows}))


def test_gym_oracle_point_weights_classes_by_their_problems(tmp_path):
    """The gym's oracle router over the report's classes (thinkless.oracle.mean_over_problems): class 1 (100
    problems, short pays at γ = 0.5: reward 1.0, accuracy 1.0, 6 tokens) and class 6 (300 problems, think: reward
    0.9·0.5 − 0.1 = 0.35, accuracy 0.9, 25 tokens) give E[r] (100 + 105)/400, accuracy (100 + 270)/400, tokens
    (600 + 7500)/400, think ratio 300/400."""

    sys.path.insert(0, str(ROOT))
    from bench.gym import oracle_point

    write_report_before_rl(tmp_path, {"1": (100, 1.0, 1.0), "6": (300, 0.2, 0.9)}, short_tokens=6.0)
    o = oracle_point(tmp_path, 0.5)
    assert [o["classes"][k]["mode"] for k in ("1", "6")] == ["short", "think"]
    assert o["classes"]["6"]["reward"] == pytest.approx(0.9 * 0.5 - 0.1)
    assert o["reward"] == pytest.approx((100 * 1.0 + 300 * 0.35) / 400)
    assert o["acc"] == pytest.approx((100 * 1.0 + 300 * 0.9) / 400)
    assert o["tokens"] == pytest.approx((100 * 6.0 + 300 * 25.0) / 400) and o["think_ratio"] == 0.75


def test_benches_refuse_a_plan_they_cannot_run_before_any_work(tmp_path):
    """The gym's matched arm alone needs a finished run to read the oracle's think ratio from; the budget bench's
    batch reading (--probe 0) cannot price AdaptThink, whose batches are forced. Both fail before distilling."""
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT)}
    for args, message in ((["bench/gym.py", "--arms", "matched"], "--arms matched alone: its target"),
                          (["bench/budget.py", "--probe", "0", "--objectives", "adaptthink", "thinkless"],
                           "--probe 0 prices the batch's sampled think ratio, which adaptthink never shows")):
        proc = subprocess.run([sys.executable, *args, "--out", str(tmp_path)], cwd=ROOT, capture_output=True,
                              text=True, timeout=120, env=env)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-2000:]
    assert not any(tmp_path.iterdir())  # nothing distilled, nothing written


def test_a_finished_run_is_reused_only_when_trained_with_the_same_arguments(tmp_path):
    """bench.common.train_run: a label's finished run (``gym_run.json``) is reused for the same overrides, plan
    overrides and steps — in any order — and refused for others (another bench, or other steps, left it there).
    A row recorded before the gym named its RL config (``rl=gym_cpu``), or before the ``argv`` key (judged by its
    overrides and step count), is reused only when its recorded ``rl.args`` hold what conf/rl/gym_cpu.yaml composes
    for this invocation."""
    import json

    sys.path.insert(0, str(ROOT))
    from bench.common import GYM_RL, GYM_SCALE, Plan, run_all, train_run

    plan = Plan(steps=100, train=["rl.args.scale_rewards=none"])
    run = tmp_path / "runs" / "x-budget0.5-s0"
    run.mkdir(parents=True)
    mine = ["objective=thinkless", "rl.budget.think_ratio=0.5"]
    argv = sorted([*mine, "rl.args.scale_rewards=none", "rl.args.max_steps=100", *GYM_SCALE["train"]])
    (run / "gym_run.json").write_text(json.dumps({"label": "x-budget0.5", "overrides": [], "argv": argv}))
    (run / "train_result.json").write_text(json.dumps({"budget": {"final_multiplier": 0.25}}))
    (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "budget/cost": 0.4, "budget/multiplier": 0.1}) + "\n")
    # the budget bench passes the normalisation in the plan, the gym's matched arm in the overrides: the same run;
    # a row written before it kept the budget's card gets it from the run's train_result.json
    row = train_run(tmp_path, tmp_path, "x-budget0.5", mine, 0, plan)
    assert row["argv"] == argv and row["budget"] == {"final_multiplier": 0.25}
    assert row["budget_series"] == {"step": [1], "cost": [0.4], "multiplier": [0.1]}
    assert train_run(tmp_path, tmp_path, "x-budget0.5", [mine[1], mine[0], "rl.args.scale_rewards=none"], 0,
                     Plan(steps=100))
    with pytest.raises(SystemExit, match="a finished run trained with"):
        train_run(tmp_path, tmp_path, "x-budget0.5", mine, 0, Plan(steps=50, train=["rl.args.scale_rewards=none"]))
    # recorded before rl=gym_cpu: the same run when its rl.args are gym_cpu's (its own scale_rewards=none winning)
    gym_args = {"max_steps": 100, "learning_rate": 2e-4, "warmup_steps": 0, "scale_rewards": "none"}
    (run / "gym_run.json").write_text(json.dumps({"label": "x-budget0.5", "overrides": [],
                                                  "argv": [a for a in argv if a != GYM_RL]}))
    (run / "run_config.json").write_text(json.dumps({"config": {"rl": {"args": gym_args}}}))
    assert train_run(tmp_path, tmp_path, "x-budget0.5", mine, 0, plan)
    (run / "run_config.json").write_text(json.dumps({"config": {"rl": {"args": {**gym_args, "warmup_steps": 20}}}}))
    with pytest.raises(SystemExit, match="a finished run trained with"):  # it warmed up: the demo's, not the gym's
        train_run(tmp_path, tmp_path, "x-budget0.5", mine, 0, plan)
    # a row from before the argv key: its overrides, its steps and the gym's RL settings
    (run / "gym_run.json").write_text(json.dumps({"label": "x-budget0.5", "overrides": ["objective=thinkless"]}))
    shared = {**gym_args, "scale_rewards": "group"}
    (run / "run_config.json").write_text(json.dumps({"config": {"rl": {"args": shared}}}))
    assert train_run(tmp_path, tmp_path, "x-budget0.5", ["objective=thinkless"], 0, Plan(steps=100))
    with pytest.raises(SystemExit, match="a finished run trained with"):
        train_run(tmp_path, tmp_path, "x-budget0.5", ["objective=thinkless"], 0, Plan(steps=60))
    (run / "run_config.json").write_text(json.dumps({"config": {"rl": {"args": {**shared, "scale_rewards": "none"}}}}))
    with pytest.raises(SystemExit, match="a finished run trained with"):  # the gym's shared arm divides by the std
        train_run(tmp_path, tmp_path, "x-budget0.5", ["objective=thinkless"], 0, Plan(steps=100))
    # several such runs checked at once (--jobs 2: the checks' Hydra composes take turns)
    calls = []
    for seed in range(4):
        d = tmp_path / "runs" / f"y-s{seed}"
        d.mkdir()
        (d / "gym_run.json").write_text(json.dumps({"label": "y", "overrides": ["objective=grpo"], "wall_s": 1}))
        (d / "run_config.json").write_text(json.dumps({"config": {"rl": {"args": shared}}}))
        (d / "train_result.json").write_text("{}")
        (d / "metrics.jsonl").write_text("")
        calls.append((tmp_path, tmp_path, "y", ["objective=grpo"], seed, Plan(steps=100, jobs=2)))
    ran = run_all(Plan(jobs=2), calls)
    assert [r["wall_s"] for r in ran.rows] == [1, 1, 1, 1] and (ran.later, ran.trained) == ([], 0)  # all reused


def test_an_objectives_warmup_is_a_distillation_of_its_own_that_its_runs_start_from(tmp_path, monkeypatch):
    """``Objective.warmup`` read from the registry (L1's ``data.budget_prompts``): ``start_model`` distils its own
    start with those overrides beside the shared distillation, a run from it records that start in its arguments (a
    finished run from the shared distillation is not that run), and ``--arms matched`` alone reads the oracle off a run
    from the shared distillation only."""
    import json

    sys.path.insert(0, str(ROOT))
    from bench import common
    from bench.gym import finished_run
    L1 = OBJECTIVES["l1"]

    distilled = []

    def fake(script, overrides, logfile):
        d = Path(next(o for o in overrides if o.startswith("output_dir=")).split("=", 1)[1])
        d.mkdir(parents=True)
        (d / "distill_result.json").write_text("{}")
        distilled.append((d.name, [o for o in overrides if o.startswith("data.budget_prompts")], logfile.name))
        return 1.0

    monkeypatch.setattr(common, "run_script", fake)
    plan = common.Plan(steps=100)
    assert L1.warmup == ("data.budget_prompts=0.5",) and OBJECTIVES["thinkless"].warmup == ()
    own, shared = common.start_model(tmp_path, plan, "l1"), common.start_model(tmp_path, plan, "thinkless")
    assert (own, shared) == (tmp_path / "distill-l1" / "model", tmp_path / "distill" / "model")
    assert distilled == [("distill-l1", ["data.budget_prompts=0.5"], "distill-l1.log"), ("distill", [], "distill.log")]
    assert common.start_model(tmp_path, plan, "l1") == own and len(distilled) == 2  # distilled once
    # side by side, each distinct start once, the shared one too where the yardsticks need it (the gym; not the
    # budget bench, whose objectives name their starts)
    running, most = [], []

    def slow(script, overrides, logfile):
        running.append(1)
        most.append(len(running))
        time.sleep(0.2)
        out = fake(script, overrides, logfile)
        running.pop()
        return out

    monkeypatch.setattr(common, "run_script", slow)
    distilled.clear()
    plain = [n for n, c in OBJECTIVES.items() if not c.warmup][:2]  # two that start from the shared distillation
    shared2, starts, made = common.start_models(tmp_path / "two", common.Plan(steps=100, jobs=2), ["l1", *plain],
                                                shared=True)
    assert starts == {"l1": tmp_path / "two" / "distill-l1" / "model", **{n: shared2 for n in plain}}
    assert sorted(d[0] for d in distilled) == ["distill", "distill-l1"] and max(most) == 2  # at once
    assert sorted(made) == ["distill", "distill-l1"]  # what this call distilled (the gym's results name them)
    assert common.start_models(tmp_path / "two", common.Plan(steps=100, jobs=2), ["l1", *plain],
                               shared=True).distilled == []  # found finished: none made again
    assert common.start_models(tmp_path / "three", plan, ["l1"]) == (None, {"l1": tmp_path / "three" / "distill-l1" / "model"},
                                                                     ["distill-l1"])
    assert common.own_warmup(own) and not common.own_warmup(shared)
    run = tmp_path / "runs" / "l1-s0"
    run.mkdir(parents=True)
    argv = sorted(["objective=l1", "rl.args.max_steps=100", *common.GYM_SCALE["train"]])
    (run / "gym_run.json").write_text(json.dumps({"label": "l1", "overrides": ["objective=l1"], "argv": argv}))
    with pytest.raises(SystemExit, match="a finished run trained with"):  # trained from the shared distillation
        common.train_run(tmp_path, own, "l1", ["objective=l1"], 0, plan)
    with pytest.raises(SystemExit, match="and .*/runs has none"):  # the only finished run started elsewhere
        (run / "gym_run.json").write_text(json.dumps({"label": "l1", "argv": sorted([*argv, "model.path=distill-l1/model"]),
                                                      "budget": None, "budget_series": None}))
        finished_run(tmp_path)
    assert common.train_run(tmp_path, own, "l1", ["objective=l1"], 0, plan)["label"] == "l1"  # the same run: reused


def test_results_name_the_commits_their_reused_runs_trained_at(monkeypatch):
    """A rerun reuses finished runs: a table whose runs trained at other commits than the invocation's says which
    (a run row records its commit; rows from before that record are counted as such)."""
    sys.path.insert(0, str(ROOT))
    import bench.common as common

    monkeypatch.setattr(common, "git_commit", lambda: "bbb")
    assert common.trained_at([{"commit": "bbb"}, {"commit": "bbb"}]) == ""
    assert common.trained_at([{"commit": "bbb"}, {"commit": "aaa"}, {"commit": "aaa"}, {}]) == (
        " Runs trained at: 2 at aaa; 1 at bbb; 1 before the runs recorded their commit.")
    assert common.trained_at([{}]) == " Runs trained at: 1 before the runs recorded their commit."


def test_budget_bench_refuses_a_cached_run_trained_otherwise(tmp_path):
    # runs are reused by label: one trained with other gains or another cost reading must not enter the table
    import json

    sys.path.insert(0, str(ROOT))
    from bench.budget import stale_run

    run = tmp_path / "runs" / "thinkless-budget0.4-s0"
    run.mkdir(parents=True)
    card = {"proportional": 2.0, "step_size": 0.1, "probe": 512, "smoothing": 0.0}
    (run / "train_result.json").write_text(json.dumps({"budget": card}))
    stale_run(tmp_path, "thinkless-budget0.4", 0, 2.0, 0.1, 512)  # the same: reused
    stale_run(tmp_path, "thinkless-budget0.4", 1, 2.0, 0.1, 0)  # no such run yet: trained
    with pytest.raises(SystemExit, match="probe=512, smoothing=0, derivative=0, not this invocation's 2, 0.1, 0, 0.75, 0"):
        stale_run(tmp_path, "thinkless-budget0.4", 0, 2.0, 0.1, 0)
    # on the probe but averaged (before a probe's reading went unaveraged): stale
    (run / "train_result.json").write_text(json.dumps({"budget": {**card, "smoothing": 0.75}}))
    with pytest.raises(SystemExit, match="probe=512, smoothing=0.75, derivative=0, not this invocation's 2, 0.1, 512, 0"):
        stale_run(tmp_path, "thinkless-budget0.4", 0, 2.0, 0.1, 512)
    # the gym's matched arm (a derivative term) under a label the budget bench would use: stale unless asked for
    (run / "train_result.json").write_text(json.dumps({"budget": {**card, "derivative": 20.0}}))
    with pytest.raises(SystemExit, match="derivative=20, not this invocation's 2, 0.1, 512, 0, 0"):
        stale_run(tmp_path, "thinkless-budget0.4", 0, 2.0, 0.1, 512)
    stale_run(tmp_path, "thinkless-budget0.4", 0, 2.0, 0.1, 512, 20.0)
    (run / "train_result.json").write_text(json.dumps({"budget": {"step_size": 0.1}}))  # before the keys existed
    with pytest.raises(SystemExit, match="trained with proportional=0, step_size=0.1, probe=0, smoothing=0.75"):
        stale_run(tmp_path, "thinkless-budget0.4", 0, 2.0, 0.1, 512)


def test_budget_bench_replays_the_loop_with_every_term():
    """bench.budget.final_integral: λ_I replayed from a run's logged costs and its card, the derivative term included
    (a replay that left a term out would not match the logged prices and stops)."""
    sys.path.insert(0, str(ROOT))
    from bench.budget import final_integral
    from thinkless.training.budget import Budget

    b = Budget(cost="think_ratio", target=0.5, step_size=0.1, bound=2.0, proportional=2.0, derivative=20.0,
               smoothing=0.0)
    series = {"step": [], "cost": [], "multiplier": []}
    for step, cost in enumerate((0.6, 0.58, 0.52, 0.47, 0.49), 1):
        series["step"].append(step), series["multiplier"].append(b.multiplier), series["cost"].append(cost)
        b.update(cost)
    card = {**b.card(), "smoothing": 0.0}
    assert final_integral(card, series) == pytest.approx(b.integral)
    with pytest.raises(RuntimeError, match="is not the logged"):
        final_integral({**card, "derivative": 0.0}, series)


def test_interval_is_a_student_t_interval_over_seeds():
    """bench.common.interval: mean, sd, n and the 95% half-width t_0.975,n−1 · sd / √n; t from tables (4.303 for
    n = 3); one seed has no interval, and its cell says so."""
    sys.path.insert(0, str(ROOT))
    from bench.common import fmt, interval, t_quantile

    for dof, t in ((1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (9, 2.262), (30, 2.042)):
        assert t_quantile(0.975, dof) == pytest.approx(t, abs=5e-4), dof
    assert t_quantile(0.95, 2) == pytest.approx(2.920, abs=5e-4)
    s = interval([0.50, 0.53, 0.56, None])  # sd 0.03: half-width 4.303 · 0.03 / √3 = 0.0745
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.53) and s["sd"] == pytest.approx(0.03)
    assert s["ci95"] == pytest.approx(4.3027 * 0.03 / 3 ** 0.5, abs=1e-5)
    assert fmt([0.50, 0.53, 0.56], ci=True) == "0.530 ± 0.075" and fmt([0.50, 0.53, 0.56]) == "0.530 ± 0.030"
    assert fmt([-0.01, -0.03], "{:+.3f}", ci=True) == f"-0.020 ± {12.7062 * 0.01:.3f}"  # n = 2: sd/√2 = 0.01
    assert interval([0.4]) == {"mean": 0.4, "sd": 0.0, "n": 1, "ci95": None}
    assert fmt([0.4], ci=True) == "0.400 (1 seed: no interval)" and fmt([None], ci=True) == "-"
    with pytest.raises(ValueError):
        t_quantile(0.975, 0)


def test_rank_groups_call_a_row_ahead_only_where_intervals_separate():
    sys.path.insert(0, str(ROOT))
    from bench.common import rank_groups

    def s(mean, half):
        return {"mean": mean, "ci95": half}

    stats = {"a": s(-0.010, 0.020),   # [-0.030, 0.010]: the best
             "b": s(-0.025, 0.010),   # [-0.035, -0.015]: overlaps a -> 1
             "e": s(-0.040, 0.006),   # [-0.046, -0.034]: overlaps b, not a -> leads 2 (overlap is not transitive)
             "c": s(-0.050, 0.010),   # [-0.060, -0.040]: overlaps e -> 2
             "d": s(-0.080, 0.005),   # separate from all -> 3
             "x": s(None, None)}      # no runs with a number: last, alone
    assert rank_groups(stats) == {"a": 1, "b": 1, "e": 2, "c": 2, "d": 3, "x": 4}
    one = rank_groups({**stats, "one": s(-0.2, None)})  # one seed: no interval, nothing separates it from the best
    assert one["one"] == 1 and one["d"] == 3
    assert rank_groups({"p": s(0.0, 0.01), "q": s(-0.02, 0.01)}) == {"p": 1, "q": 1}  # touching: not separate


def test_gym_leaderboard_ranks_runs_by_their_gap_to_the_frontier(tmp_path):
    """bench/gym.py's leaderboard over hand-made runs: the gap is accuracy minus the frontier's at the run's own
    tokens; rows sorted by it, with rank groups, every cell mean ± 95% interval; the summary keeps mean, sd, n, ci95;
    the oracle router's row and the frontier's vertices; the picture draws."""

    sys.path.insert(0, str(ROOT))
    from bench.gym import frontier_gaps, leaderboard, oracle_point, picture, routing_table, run_table

    # frontier: (5, 0.65) -> class 2 thinks (15, 0.85) -> class 1 thinks (25, 0.90); the oracle at γ = 0.5 thinks on
    # class 2 only (short pays iff p_short > 0.75): on the frontier, gap 0
    write_report_before_rl(tmp_path, {"1": (100, 0.9, 1.0), "2": (100, 0.4, 0.8)}, short_tokens=5.0)
    oracle = oracle_point(tmp_path, 0.5)
    assert [(v["tokens"], v["acc"]) for v in oracle["frontier"]] == [
        (5.0, pytest.approx(0.65)), (15.0, pytest.approx(0.85)), (25.0, pytest.approx(0.9))]
    assert oracle["frontier_gap"] == pytest.approx(0.0)

    def run(label, seed, acc, tokens):
        return {"label": label, "objective": label, "arm": "shared", "seed": seed, "acc": acc, "tokens": tokens,
                "reward": acc - 0.1, "think_ratio": 0.5,
                "rollout_tokens": 100_000 + 10_000 * seed, "wall_s": 10.0, "step_times": [1.0, 1.2],
                "oracle_reward": oracle["reward"],
                "classes": {"1": {"think_ratio": 0.1}, "2": {"think_ratio": 0.9}}, "targets": {}, "threshold": []}

    # frontier at 10 tokens: 0.75; at 20: 0.875. cheap: gaps -0.02, -0.03, -0.01; costly: -0.10, -0.11, -0.09;
    # mid: -0.015, -0.025, -0.035 (overlaps cheap's interval)
    runs = [run("costly", s, 0.875 + g, 20.0) for s, g in enumerate((-0.10, -0.11, -0.09))]
    runs += [run("cheap", s, 0.75 + g, 10.0) for s, g in enumerate((-0.02, -0.03, -0.01))]
    runs += [run("mid", s, 0.75 + g, 10.0) for s, g in enumerate((-0.015, -0.025, -0.035))]
    runs = frontier_gaps(runs, oracle["frontier"])
    assert [r["frontier_gap"] for r in runs[:3]] == [pytest.approx(g) for g in (-0.10, -0.11, -0.09)]
    board, summary = leaderboard(runs, oracle, [1.0, 1.0])
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in board.splitlines()[2:]]
    assert [r[0] for r in rows] == ["cheap", "mid", "costly", "*oracle router*"]
    assert [r[1] for r in rows[:3]] == ["shared"] * 3 and [r[3] for r in rows[:3]] == ["1", "1", "2"]
    half = 4.3027 * 0.01 / 3 ** 0.5
    assert rows[0][4] == f"-0.020 ± {half:.3f}" and rows[3][4] == "+0.000"
    # columns derived from another's interval: E[r] less the oracle's (shifted), rollout tokens in millions (scaled)
    assert rows[0][9] == f"{0.63 - oracle['reward']:+.3f} ± {half:.3f}" and rows[0][10] == f"0.11 ± {half:.2f} M"
    gap = summary["cheap"]["frontier_gap"]
    assert set(gap) == {"mean", "sd", "n", "ci95"} and gap["n"] == 3 and gap["ci95"] == pytest.approx(half, abs=1e-5)
    assert summary["costly"]["rank_group"] == 2 and summary["cheap"]["step_ratio"]["mean"] == pytest.approx(1.1)
    assert "| cheap | shared | 0 | -0.020 |" in run_table(runs) and "0.10 ± 0.00" in routing_table(runs, oracle)
    picture(runs, oracle, tmp_path / "gym.png", "test")
    assert (tmp_path / "gym.png").stat().st_size > 0


def test_gym_matched_table_ranks_by_the_gap_and_counts_the_seeds_within_the_target(tmp_path):
    """The matched arm's table over hand-made runs: ranked by the gap to the frontier as the leaderboard is (the same
    rank groups), each seed's think ratio within ±0.05 of the target or not, the final λ over seeds."""
    sys.path.insert(0, str(ROOT))
    from bench.gym import frontier_gaps, loop_table, matched_table, oracle_point

    write_report_before_rl(tmp_path, {"1": (100, 0.9, 1.0), "2": (100, 0.4, 0.8)}, short_tokens=5.0)
    oracle = oracle_point(tmp_path, 0.5)  # frontier (5, 0.65) (15, 0.85) (25, 0.9); think ratio 0.5

    def run(name, seed, acc, think, lam):
        return {"label": f"{name}-budget0.5", "objective": name, "arm": "matched", "seed": seed, "acc": acc,
                "tokens": 15.0, "reward": acc - 0.1, "think_ratio": think, "budget": {"final_multiplier": lam}}

    runs = [run("near", s, 0.85 + g, t, lam) for s, (g, t, lam) in
            enumerate(((-0.01, 0.50, 0.1), (-0.02, 0.54, 0.2), (-0.015, 0.46, 0.3)))]
    runs += [run("far", s, 0.85 + g, t, -0.5) for s, (g, t) in enumerate(((-0.2, 0.56), (-0.25, 0.40), (-0.22, 0.5)))]
    board, summary = matched_table(frontier_gaps(runs, oracle["frontier"]), oracle, 0.5)
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in board.splitlines()[2:]]
    assert [r[0] for r in rows] == ["near", "far", "*oracle router*"] and [r[2] for r in rows[:2]] == ["1", "2"]
    assert [r[6] for r in rows[:2]] == ["3/3", "1/3"]  # 0.56 and 0.40 miss; 0.54 and 0.46 land
    assert rows[0][3] == f"-0.015 ± {4.3027 * 0.005 / 3 ** 0.5:.3f}"
    assert rows[0][9] == f"+0.200 ± {4.3027 * 0.1 / 3 ** 0.5:.3f}" and rows[1][9] == "-0.500 ± 0.000"
    assert summary["far"]["within_0.05"] == [False, False, True] and summary["near"]["rank_group"] == 1
    assert summary["near"]["final_multiplier"]["mean"] == pytest.approx(0.2)
    # the loops: think ratio / λ at the marked steps (the last update at or before each), mean over seeds; the
    # largest miss in the second half
    series = [{"step": [1, 2, 3, 4], "cost": [0.7, 0.6, 0.5, 0.45], "multiplier": [0.1, 0.2, 0.0, -0.1]},
              {"step": [2, 4], "cost": [0.3, 0.61], "multiplier": [-0.2, 0.3]}]
    table = loop_table([{"objective": "o", "target": 0.5, "budget_series": x} for x in series], steps=4)
    assert table.splitlines()[0] == "| objective | step 4: think / λ | largest miss after step 2 (mean, max over seeds) |"
    assert table.splitlines()[2] == "| o | 0.53 / +0.10 | 0.08, 0.11 |"  # (0.45+0.61)/2, (-0.1+0.3)/2; 0.05, 0.11


def test_demo_bench_reads_the_demo_scripts_times_and_the_step_level_1_leaves_think(tmp_path):
    """bench/demo.py (the demo's published results across seeds): the wall-time line it parses is the one
    scripts/demo.sh prints, "level 1 leaves <think>" is the first step whose 10-step mean is below 0.5 (steps that
    sampled no level-1 prompt and validation lines skipped), and a seed's row and table cells come from its reports."""
    import json
    import re

    from bench import common, demo

    echo = next(ln for ln in (ROOT / "scripts" / "demo.sh").read_text().splitlines() if "demo wall time" in ln)
    printed = re.sub(r"\$\(\([^)]*\)\)", "17", echo.split('"')[1])  # the shell's arithmetic, evaluated
    assert demo.WALL.search(printed).groups() == ("17", "17", "17")

    ratios = [0.9] * 5 + [0.3] * 9 + [0.1]
    metrics = [{"step": i + 1, "modes/think_ratio_L1": v} for i, v in enumerate(ratios)]
    metrics.insert(3, {"step": 3.5})  # a step without a level-1 prompt
    metrics.insert(6, {"step": 6, "eval_modes/think_ratio": 0.0, "modes/think_ratio_L1": 0.0})  # validation
    # means of the last 10: step 10 -> (5*0.9 + 5*0.3)/10 = 0.60, step 11 -> 0.54, step 12 -> 0.48
    assert common.leaves_think_at(metrics) == 12  # bench.common's: the demo's and distill_table's column
    assert common.leaves_think_at([{"step": s, "modes/think_ratio_L1": 0.9} for s in range(50)]) is None

    run = tmp_path / "s3"
    levels = {f"L{i}": {"oracle": "short" if i == 1 else "think", "think_ratio": 0.02 if i == 1 else 0.99,
                        "acc": 0.99, "reward": 0.5, "oracle_reward": 0.5, "matches_oracle": True} for i in (1, 2)}
    for sub, ratio in (("train", None), ("train_grpo", 0.98)):
        (run / sub).mkdir(parents=True)
        lv = {k: {**v, "think_ratio": ratio or v["think_ratio"]} for k, v in levels.items()}
        (run / sub / "pipeline_report.json").write_text(json.dumps({
            "levels": lv, "reward_rl": 0.5678, "reward_oracle": 0.75, "overall_acc_rl": 0.991,
            "overall_acc_forced_think": 1.0, "all_levels_match_oracle": ratio is None,
            "targets": {"a": True, "b": True, "c": ratio is not None}}))
    (run / "train" / "metrics.jsonl").write_text("\n".join(json.dumps(m) for m in metrics) + "\n")
    save_tiny(run / "distill" / "model")  # an untrained student: its level-1 table is chance at best
    row = demo.summary(tmp_path, 3, {"distill_s": 80, "rl_s": 90, "total_s": 170})
    assert row["l1_leaves_think_at"] == 12 and row["coupled"]["routes"] is False
    assert 0 <= row["l1_short_sampled"] < 0.5
    cells = demo.table([row]).splitlines()[2].split(" | ")
    assert cells[1] == f"{row['l1_short_sampled']:.2f}" and cells[2:5] == ["0.02 0.99", "12", "0.568 (0.750)"]
    assert cells[6:] == ["✓ ✓ ✗", "0.98 0.98", "0.568 (off the oracle)", "80 + 90 = 170 |"]
    with pytest.raises(SystemExit, match="under"):
        demo.main(["--out", str(tmp_path)])


def test_demo_bench_times_the_demo_in_a_fresh_clone_of_head_with_the_demos_own_setup(tmp_path, monkeypatch):
    """--fresh-clone: scripts/demo.sh runs in a clone of HEAD, after that clone's `scripts/setup.sh --demo`, its
    outputs in this checkout's runs/ (the clone's runs/ is a link to it), the row marked; a checkout whose tracked
    files differ from HEAD is refused (the clone would time other code)."""
    import subprocess
    from pathlib import Path

    from bench import demo

    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    (repo / "scripts" / "setup.sh").write_text("echo set up > setup-ran\n")
    (repo / ".gitignore").write_text("runs/\n")  # as the project's
    (repo / "scripts" / "demo.sh").write_text(  # what the real one does with RUN_NAME, and its last line
        'mkdir -p "runs/$RUN_NAME/train" && pwd > "runs/$RUN_NAME/where" && echo "$PYTHONPATH" >> "runs/$RUN_NAME/where"\n'
        'echo "demo wall time: distill 80s, DeGRPO + report 90s, total 170s"\n')
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "-C", str(repo), "add", "."], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-qm", "x"], check=True)
    monkeypatch.setattr(demo, "ROOT", repo)
    monkeypatch.setattr(demo, "git_commit", lambda: "abc")
    clone = demo.fresh_clone(tmp_path / "clone", tmp_path / "setup.log")
    assert (clone / "setup-ran").is_file() and not (repo / "setup-ran").exists()
    wall = demo.demo_run(repo / "runs" / "bench", 2, [], clone)
    assert wall == {"distill_s": 80, "rl_s": 90, "total_s": 170, "commit": "abc", "fresh_clone": True}
    ran_in, path = (repo / "runs" / "bench" / "s2" / "where").read_text().split()
    assert Path(ran_in).resolve() == clone.resolve() and path == str(clone)  # the clone's code, not this checkout's
    (repo / "docs").mkdir()  # what --publish writes does not count: a rerun of one seed comes after it
    (repo / "docs" / "page.md").write_text("results\n")
    subprocess.run([*git, "-C", str(repo), "add", "."], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-qm", "docs"], check=True)
    (repo / "docs" / "page.md").write_text("published\n")
    demo.fresh_clone(tmp_path / "clone-docs", tmp_path / "setup.log")
    (repo / "scripts" / "demo.sh").write_text("echo other code\n")
    with pytest.raises(SystemExit, match="commit them first"):
        demo.fresh_clone(tmp_path / "clone2", tmp_path / "setup.log")
    assert not (tmp_path / "clone2").exists()


def test_demo_bench_publishes_a_recipe_of_its_own_apart_from_the_demo(tmp_path, monkeypatch):
    """With overrides, --publish writes the table under --name and leaves the pages' reports (the default demo's)
    alone; under the default name it refuses before any run. A finished seed is reused, not rerun."""
    import json
    import re

    from bench import demo

    monkeypatch.setattr(demo, "ROOT", tmp_path)
    seed_dir = tmp_path / "runs" / "x" / "s0"
    levels = {"L1": {"oracle": "short", "think_ratio": 0.01, "acc": 1.0, "reward": 1.0}}
    for sub in ("train", "train_grpo"):
        (seed_dir / sub).mkdir(parents=True)
        (seed_dir / sub / "pipeline_report.json").write_text(json.dumps({
            "levels": levels, "reward_rl": 0.24, "reward_oracle": 0.25, "overall_acc_rl": 0.99,
            "overall_acc_forced_think": 1.0, "all_levels_match_oracle": True, "targets": {"a": True}}))
        (seed_dir / sub / "pipeline_report.md").write_text("report\n")
    (seed_dir / "train" / "metrics.jsonl").write_text("")
    (seed_dir / "train" / "run_config.json").write_text(json.dumps({"config": {"rl": {"args": {"max_steps": 130}}}}))
    save_tiny(seed_dir / "distill" / "model")
    (seed_dir / "distill" / "run_config.json").write_text(json.dumps({"config": {"training": {"args": {
        "max_steps": 450}}}}))
    (seed_dir / "demo_wall.json").write_text(json.dumps({"distill_s": 90, "rl_s": 85, "total_s": 175, "commit": "c"}))
    dest = tmp_path / "docs" / "results"
    dest.mkdir(parents=True)
    args = ["--out", str(tmp_path / "runs" / "x"), "--seeds", "0", "--no-eval", "--publish", "rl.args.scale_rewards=group"]
    with pytest.raises(SystemExit, match="--name"):
        demo.main(args)
    assert not (tmp_path / "runs" / "x" / "demo_results.md").exists()
    demo.main([*args, "--name", "demo_group_results"])
    assert sorted(p.name for p in dest.iterdir()) == ["demo_group_results.json", "demo_group_results.md"]
    data = json.loads((dest / "demo_group_results.json").read_text())
    assert data["overrides"] == ["rl.args.scale_rewards=group"] and data["rows"][0]["total_s"] == 175
    text = (dest / "demo_group_results.md").read_text()
    assert re.search(r"\| 0 \| 0\.\d\d \| 0\.01 \| ", text) and "Runs trained at: 1 at c." in text  # the reused seed's own commit
    assert "run in this checkout" in text
    # the stage table: the first seed's steps (read from its runs) and wall times
    assert "| `distill.py` | 450 SFT steps + distill report | 90 s |" in text
    assert "| total | `bash scripts/demo.sh` after setup (seed 0) | **175 s** |" in text
    demo.main(["--out", str(tmp_path / "runs" / "x"), "--seeds", "0", "--no-eval", "--publish"])  # the demo itself
    assert {"demo_results.md", "pipeline_report.md", "grpo_pipeline_report.md"} <= {p.name for p in dest.iterdir()}


def test_distill_table_grades_each_seeds_level_1_table_and_reuses_a_finished_distillation(tmp_path):
    """bench/distill_table.py: each seed distilled (two at once), its level-1 table graded as RL samples it; a rerun
    reuses the finished seeds, a rerun with another recipe into the same folder stops before any run."""
    import json

    from bench import distill_table

    tiny = ["training.args.max_steps=2", "data.num_problems=30", "training.args.logging_steps=1"]
    args = ["--out", str(tmp_path), "--seeds", "0", "1", "--jobs", "2", *tiny]
    distill_table.main(args)
    res = json.loads((tmp_path / "distill_table.json").read_text())
    assert {"commit", "machine", "command"} <= set(res) and [r["seed"] for r in res["rows"]] == [0, 1]
    for r in res["rows"]:  # two steps learn no table: below the stall line, each counted
        assert 0 <= r["l1_short_sampled"] < distill_table.STALLED and r["stalled"] and r["last_loss"] > 0
    assert res["stalled"] == 2 and "Stalled (level-1 table right less than 0.9" in (tmp_path / "distill_table.md").read_text()
    before = (tmp_path / "s0" / "distill" / "distill_result.json").stat().st_mtime
    distill_table.main(args)  # reused, not distilled again
    assert (tmp_path / "s0" / "distill" / "distill_result.json").stat().st_mtime == before
    with pytest.raises(SystemExit, match="other settings"):
        distill_table.main([*args, "training.args.learning_rate=3e-3"])

    # --train: the demo's RL stage on each seed's own distillation, its targets per seed; reused alike
    rl = ["rl.args.max_steps=2", "rl.args.per_device_train_batch_size=16", "rl.args.num_generations=4",
          "rl.args.eval_strategy=no", "rl.args.eval_on_start=false", "report.benchmark.n_per_level=6",
          "report.free_samples=1"]
    distill_table.main([*args, "--name", "with_rl", "--train", *rl])
    res = json.loads((tmp_path / "with_rl.json").read_text())
    assert res["train_overrides"] == rl and (tmp_path / "s0" / "distill" / "distill_result.json").stat().st_mtime == before
    for r in res["rows"]:
        run = tmp_path / f"s{r['seed']}" / "train"
        cfg = json.loads((run / "run_config.json").read_text())["config"]
        assert cfg["model"]["path"] == str(tmp_path / f"s{r['seed']}" / "distill" / "model") and cfg["seed"] == r["seed"]
        rep = json.loads((run / "pipeline_report.json").read_text())
        assert r["rl"]["targets"] == rep["targets"] and r["rl"]["met"] == all(rep["targets"].values())
        assert r["rl"]["reward"] == rep["reward_rl"] and list(r["rl"]["think_ratio"]) == list(rep["levels"])
    met = sum(r["rl"]["met"] for r in res["rows"])
    md = (tmp_path / "with_rl.md").read_text()
    assert res["targets_met"] == met and f"all three targets met on {met} of 2 seeds" in md
    assert "| RL think ratio L1-L6 | L1 leaves `<think>` at step | E[r] (oracle) | targets |" in md
    trained = (tmp_path / "s0" / "train" / "pipeline_report.json").stat().st_mtime
    distill_table.main([*args, "--name", "with_rl", "--train", *rl])  # reused, not trained again
    assert (tmp_path / "s0" / "train" / "pipeline_report.json").stat().st_mtime == trained
    with pytest.raises(SystemExit, match="other settings"):
        distill_table.main([*args, "--train", *rl, "rl.args.learning_rate=1e-4"])
    # a run meets the demo's targets only when all three hold; level 1's leaving step read as the demo bench reads it
    t = tmp_path / "hand"
    t.mkdir()
    rep = {"targets": {"think_ratio_matches_oracle_every_level": True, "reward_within_0.05_of_oracle": True,
                       "accuracy_within_2_points_of_forced_think": False}, "reward_rl": 0.2, "reward_oracle": 0.25,
           "overall_acc_rl": 0.9, "overall_acc_forced_think": 1.0,
           "levels": {lv: {"think_ratio": tr, "oracle": m, "acc": 0.9, "reward": 0.2}
                      for lv, tr, m in (("1", 0.0, "short"), ("2", 1.0, "think"))}}
    (t / "pipeline_report.json").write_text(json.dumps(rep))
    (t / "metrics.jsonl").write_text("\n".join(json.dumps({"step": i + 1, "modes/think_ratio_L1": 0.0})
                                               for i in range(12)))
    q = distill_table.rl_row(t)
    assert q["met"] is False and q["l1_leaves_think_at"] == 10 and q["think_ratio"] == {"1": 0.0, "2": 1.0}
    rep["targets"]["accuracy_within_2_points_of_forced_think"] = True
    (t / "pipeline_report.json").write_text(json.dumps(rep))
    assert distill_table.rl_row(t)["met"] is True
