"""Stage 2 (thinkless/training/rl.py): train.py end to end on the tiny distilled model: monitoring, validation, plots, the
pipeline report, the model card, the Hub dry run; the RL prompts."""

import json

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from thinkless.tasks.data import DropStats
from thinkless.training.rl import rl_prompts

from ..conftest import DATA
from ..helpers import run_train_cli
from ..test_metrics_page import logged_keys, undocumented

FAST = ["rl.args.max_steps=3", "rl.args.per_device_train_batch_size=16", "rl.args.num_generations=4",
        "rl.args.max_completion_length=40", "rl.args.save_steps=100", "rl_data.validation=null"]


def train_lines(path):
    return [r for r in (json.loads(ln) for ln in path.read_text().splitlines()) if "modes/think_ratio" in r]


def test_train_cli_outputs(distilled, tmp_path):
    out = tmp_path / "train"
    res = run_train_cli(out, distilled / "model", *FAST, "report.benchmark.n_per_level=10", "report.free_samples=2",
                        "hub.dry_run=true", "hub.repo_id=someone/thinkless-test")
    assert "[step 3]" in res.stdout and "think_ratio=" in res.stdout
    # quiet console: our lines only; library warnings and the raw log dicts are in the run folder
    console = res.stdout + res.stderr
    assert "WARNING" not in console and "{'loss'" not in console and "Writing model shards" not in console
    recs = train_lines(out / "metrics.jsonl")
    assert [r["step"] for r in recs] == [1, 2, 3]
    for key in ("modes/think_ratio", "modes/accuracy", "modes/reward", "loss/control", "loss/response",
                "modes/groups_all_wrong", "clip_ratio/region_mean"):
        assert key in recs[-1], key
    assert any(k.startswith("modes/think_ratio_L") for k in recs[-1])  # per level (levels present in the batch)
    assert not undocumented(logged_keys(out / "metrics.jsonl"))  # every logged key has its line in docs/metrics.md
    assert (out / "mode_usage.png").stat().st_size > 1000 and (out / "accuracy.png").stat().st_size > 1000
    card = (out / "model" / "README.md").read_text()
    assert "DeGRPO" in card and "| objective | `thinkless` |" in card and "| objective.gamma | 0.9 |" in card  # the fold task's
    assert "| objective.alpha | 1.0 |" in card and "| steps | 3 |" in card
    # the card documents the switch and the threshold, with this model's measured curve (one row per bias)
    assert "thinking='off'" in card and "thinkless.vllm_think_bias:ThinkBias" in card
    assert "### Measured threshold curve" in card and card.count("\n| +") + card.count("\n| -") >= 6
    rep = json.loads((out / "pipeline_report.json").read_text())
    assert set(rep["levels"]) == {str(lv) for lv in range(1, 7)} and "targets" in rep
    assert "oracle mode" in (out / "pipeline_report.md").read_text()
    # the distilled model's columns are the distill report's own generations (the same stream and settings), copied
    gens = sorted((distilled / "report" / "generations" / "report").glob("*.jsonl"))
    assert len(gens) == 3 and all((out / "report" / "before_rl" / "generations" / "report" / g.name).read_bytes()
                                  == g.read_bytes() for g in gens)
    def unrewarded(path):  # each report prices the samples at its own reward values
        return {lv: {k: v for k, v in r.items() if k != "free_reward"}
                for lv, r in json.loads(path.read_text())["per_level"].items()}

    assert unrewarded(out / "report_before_rl.json") == unrewarded(distilled / "distill_report.json")
    plan = json.loads((out / "model.upload_plan.json").read_text())
    assert plan["repo_id"] == "someone/thinkless-test" and "model.safetensors" in plan["files"]
    tok = AutoTokenizer.from_pretrained(out / "model")
    AutoModelForCausalLM.from_pretrained(out / "model")
    assert tok.encode("<short>", add_special_tokens=False) != tok.encode("<think>", add_special_tokens=False)


def test_grpo_ablation_runs(distilled, tmp_path):
    out = tmp_path / "grpo"
    # sequence-level importance sampling with TRL's dapo loss: TRL warns (a library warning to route)
    res = run_train_cli(out, distilled / "model", *FAST, "+experiment=grpo", "report.enabled=false",
                        "+rl.args.importance_sampling_level=sequence")
    recs = train_lines(out / "metrics.jsonl")
    assert len(recs) == 3 and "loss/control" not in recs[-1]  # TRL's own coupled loss ran
    assert not undocumented(logged_keys(out / "metrics.jsonl"))  # TRL's loss logs its own keys: docs/metrics.md
    assert "coupled GRPO" in (out / "model" / "README.md").read_text()
    # quiet console: library warnings are in the run's log file, not on the console
    assert "WARNING" not in res.stdout + res.stderr and "][WARNING] - " in (out / "train.log").read_text()


def test_math_prompts_with_unparseable_gold_are_skipped_and_counted(tmp_path):
    from omegaconf import OmegaConf

    rows = json.loads((DATA / "math_train.json").read_text())[:20]
    rows[2]["answer"] = ""            # no answer
    rows[5]["answer"] = "\\boxed{}"    # present, but no answer inside: cannot be graded
    rows[0]["difficulty"] = "Level 3"  # levels are read by data.parse_level, as everywhere
    f = tmp_path / "rl.json"
    f.write_text(json.dumps(rows))
    cfg = OmegaConf.create({"source": "math", "name": str(f), "fields": {"problem": "problem", "answer": "answer",
                                                                          "level": "difficulty"},
                            "instruction": "{problem}"})
    stats = DropStats()
    out = rl_prompts(cfg, stats)
    assert len(out) == 18 and stats["no_answer"] == 1 and stats["unparseable_gold"] == 1 and stats["kept"] == 18
    assert out[0]["prompt"][0]["role"] == "user" and out[0]["task"] == "math"
    # the bad-row limit (issue 38: every stage's drop rule is the same): 3 of 19 golds unreadable (> 10%) stop the
    # stage with the counts and an example, before any work
    rows[7]["answer"] = rows[9]["answer"] = "\\boxed{}"
    f.write_text(json.dumps(rows))
    with pytest.raises(ValueError, match=r"rl_data: 3 of 19 rows cannot be used \(unparseable_gold 3\), more than "
                                         r"the 10%.*E.g. answer '\\\\boxed\{\}'.*rl_data.fields.answer"):
        rl_prompts(cfg, DropStats())
    assert [r["level"] for r in out[:3]] == [3, int(rows[1]["difficulty"]), int(rows[3]["difficulty"])]


def test_validation_before_training_and_every_n_steps(distilled, tmp_path):
    """rl_data.validation: accuracy, think ratio and response tokens on held-out problems, n samples each, logged
    beside the training curves (metrics.jsonl here; wandb through the same trainer log)."""
    out = tmp_path / "val"
    fast = [a for a in FAST if not a.startswith(("rl_data.validation", "rl.args.max_steps"))]
    res = run_train_cli(out, distilled / "model", *fast, "rl.args.max_steps=4", "rl.args.eval_steps=2",
                        "rl_data.validation.n_per_level=2", "rl.args.num_generations_eval=2",
                        "rl.args.per_device_eval_batch_size=24", "report.enabled=false")
    evals = [r for r in (json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines())
             if "eval_modes/think_ratio" in r]
    assert [r["step"] for r in evals] == [0, 2, 4]  # before training, then every 2 steps
    for key in ("eval_modes/accuracy", "eval_modes/tokens", "eval_modes/think_ratio_L1", "eval_modes/reward"):
        assert key in evals[0], key
    assert "[eval @ step 0]" in res.stdout
    assert not undocumented(logged_keys(out / "metrics.jsonl"))  # validation's eval_* keys too: docs/metrics.md


def test_synthetic_prompts_follow_level_weights():
    """``rl_data.level_weights`` oversamples levels exactly as distillation's data does (a fixed round robin)."""
    from collections import Counter

    from omegaconf import OmegaConf

    base = {"source": "synthetic", "num_problems": 600, "levels": [1, 2, 3], "seed": 1}
    plain = Counter(r["level"] for r in rl_prompts(OmegaConf.create(base), DropStats()))
    weighted = Counter(r["level"] for r in rl_prompts(OmegaConf.create({**base, "level_weights": [4, 1, 1]}),
                                                      DropStats()))
    assert plain == {1: 200, 2: 200, 3: 200}
    assert weighted == {1: 400, 2: 100, 3: 100}


def test_a_misspelt_objective_knob_fails_before_work(distilled, tmp_path):
    """Each objective's run end to end (HF rollouts, its card, its metrics) is bench/gym.py --quick's
    (tests/test_bench.py); here only that a misspelt knob names itself and the valid ones."""
    bad = run_train_cli(tmp_path / "bad", distilled / "model", *FAST, "objective=adaptthink", "+objective.detla=0.1",
                        check=False)
    assert bad.returncode != 0 and "objective.detla" in bad.stderr and "objective.delta" in bad.stderr


def test_prompt_length_filter_drops_and_counts_long_prompts(tmp_path, tiny_tokenizer):
    """rl_data.max_prompt_tokens (the official data.max_prompt_length=1024): a prompt longer than the limit,
    measured as the model meets it (rendered by the chat template), is dropped and counted; one at the limit stays."""
    import json

    from omegaconf import OmegaConf

    from thinkless.tasks.data import DropStats
    from thinkless.format import render_prompt
    from thinkless.training.rl import rl_prompts

    problems = ["1 ~ 2", "1 ~ 2 ~ 3 ~ 4", "1 ~ 2 ~ 3 ~ 4 ~ 5 ~ 6 ~ 7 ~ 8", "9 ~ 9 ~ 9 ~ 9 ~ 9 ~ 9 ~ 9 ~ 9 ~ 9 ~ 9 ~ 9"]
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps({"problem": p, "answer": "3"}) + "\n" for p in problems + ["1 ~ 2"] * 8)
                 + json.dumps({"problem": "1 ~ 1", "answer": {"value": 5}}) + "\n")  # a dict gold: bad_type
    n = [len(tiny_tokenizer(render_prompt(tiny_tokenizer, p, instruction="{problem}"), add_special_tokens=False)
             ["input_ids"]) for p in problems]
    assert n == sorted(n) and len(set(n)) == 4
    cfg = OmegaConf.create({"source": "math", "name": str(f), "fields": {"problem": "problem", "answer": "answer"},
                            "max_prompt_tokens": n[1]})
    stats = DropStats()
    rows = rl_prompts(cfg, stats, instruction="{problem}", tokenizer=tiny_tokenizer)
    assert [r["prompt"][-1]["content"] for r in rows] == problems[:2] + ["1 ~ 2"] * 8  # at the limit: kept
    assert stats["prompt_too_long"] == 2 and stats["kept"] == 10 and stats["bad_type"] == 1
    cfg.max_prompt_tokens = None
    assert len(rl_prompts(cfg, DropStats(), instruction="{problem}", tokenizer=tiny_tokenizer)) == 12
    cfg.max_prompt_tokens = n[1]
    with pytest.raises(ValueError, match="max_prompt_tokens needs the tokenizer"):
        rl_prompts(cfg, DropStats(), instruction="{problem}")


@pytest.mark.parametrize("overrides, in_advantages, bound", [
    (["objective=thinkless"], False, 2.0),  # the demo's scale_rewards: none; DeGRPO's reward range
    (["objective=thinkless", "rl.args.scale_rewards=group"], True, 8 ** 0.5),
    (["objective=thinkless", "rl.args.scale_rewards=true"], True, 8 ** 0.5),  # TRL's boolean: group
    (["objective=thinkless", "~rl.args.scale_rewards"], True, 8 ** 0.5),  # TRL's default: group
    (["objective=ada_grpo"], True, 8 ** 0.5),  # standardises whatever rl.args says
    (["objective=ada_grpo", "rl.args.num_generations=16", "rl.args.per_device_train_batch_size=16"], True, 4.0),
    (["objective=length_penalty", "rl.args.scale_rewards=group"], False, 1.0),  # its own estimator: no division
])
def test_the_run_prices_where_its_objective_divides(overrides, in_advantages, bound):
    """budget_from (train.py's, before any work): the price goes on the advantages exactly where the run's
    objective standardises its groups under its rl.args, in units of √G there (G = rl.args.num_generations)."""
    from thinkless.training.rl import budget_from, objective_from

    from ..test_configs import compose_cfg

    cfg = compose_cfg("train", [*overrides, "rl.budget.think_ratio=0.5", "rl.args.max_steps=100"])
    b = budget_from(cfg, objective_from(cfg))
    assert (b.in_advantages, b.bound) == (in_advantages, pytest.approx(bound))
