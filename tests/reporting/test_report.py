import pytest

from thinkless.reporting.report import format_report, pipeline_table
from thinkless.tasks.base import get_task
from thinkless.reward import RewardValues

G05 = RewardValues(correct_think=0.5)


def level(think_acc, short_acc, ratio, acc, reward):
    return {"n": 100, "think_acc": think_acc, "think_tokens": 30.0, "short_acc": short_acc, "short_tokens": 10.0,
            "free_think_ratio": ratio, "free_acc": acc, "free_reward": reward, "free_valid_mode": 1.0}


def test_pipeline_table_targets():
    before = {"per_level": {"1": level(1.0, 0.98, 0.5, 0.9, 0.6), "2": level(1.0, 0.2, 0.5, 0.6, 0.0)}}
    good = {"per_level": {"1": level(1.0, 0.98, 0.05, 0.98, 0.95), "2": level(1.0, 0.2, 0.97, 1.0, 0.49)}}
    text, s = pipeline_table(before, good, G05)
    assert s["all_levels_match_oracle"] and all(s["targets"].values())
    assert s["levels"]["1"]["oracle"] == "short" and s["levels"]["2"]["oracle"] == "think"
    assert "| 1 |" in text and "| all |" in text
    bad = {"per_level": {"1": level(1.0, 0.98, 0.5, 0.9, 0.7), "2": level(1.0, 0.2, 0.97, 0.9, 0.3)}}
    _, s = pipeline_table(before, bad, G05)
    t = s["targets"]
    assert not t["think_ratio_matches_oracle_every_level"] and not t["reward_within_0.05_of_oracle"]
    assert not t["accuracy_within_2_points_of_forced_think"]


def test_pipeline_table_weights_levels_by_their_problems():
    """The "all" row and the overall numbers are expectations over the benchmark's problems
    (thinkless.oracle.mean_over_problems): 100 problems of level 1 (short pays: 1.0) and 300 of level 2 (think: 0.5)
    make the oracle's E[r] (100·1.0 + 300·0.5)/400 = 0.625, not the levels' plain mean 0.75."""
    def lv(short_acc, n, ratio, acc, reward):
        return {**level(1.0, short_acc, ratio, acc, reward), "n": n}

    before = {"per_level": {"1": lv(1.0, 100, 0.5, 0.9, 0.6), "2": lv(0.2, 300, 0.5, 0.6, 0.0)}}
    after = {"per_level": {"1": lv(1.0, 100, 0.02, 0.96, 0.9), "2": lv(0.2, 300, 0.97, 1.0, 0.5)}}
    text, s = pipeline_table(before, after, G05)
    assert s["reward_oracle"] == pytest.approx(0.625)
    assert s["reward_rl"] == pytest.approx((100 * 0.9 + 300 * 0.5) / 400)  # 0.6
    assert s["overall_acc_rl"] == pytest.approx((100 * 0.96 + 300 * 1.0) / 400)  # 0.99
    assert s["overall_acc_forced_think"] == 1.0
    assert text.split("\n")[-1] == "| all | 1.00 | | | 0.625 | | | | 0.99 | 0.600 | yes |"
    assert s["targets"]["reward_within_0.05_of_oracle"]  # |0.6 − 0.625| ≤ 0.05; unweighted it was |0.7 − 0.75|


def test_format_report():
    rep = {"per_level": {"1": level(1.0, 0.9, 0.5, 0.9, 0.6)}, "forced_temperature": 0.0, "free_samples": 4,
           "free_temperature": 1.0}
    assert "| 1 | 100 | 1.00 | 30.0 | 0.90 | 10.0 | 0.50 | 0.90 |" in format_report(rep)


def test_mode_report_is_an_evaluation_with_the_three_report_methods(tiny_tokenizer, tmp_path):
    """The report generates, grades and tabulates through thinkless.evaluation: a scripted policy that thinks
    right, answers short right only on level 1 and picks <think> on its first sample, <short> on its second."""
    from thinkless.evaluation.benchmarks import synthetic_benchmark
    from thinkless.reporting.report import mode_report
    from thinkless.tasks.synthetic import parse_prompt

    from ..helpers import ScriptedGenerator

    def script(prompt, i):
        p = parse_prompt(prompt.split("user\n")[1].split("<|im_end|>")[0])
        if prompt.endswith("<think>"):
            return f"x</think>\\boxed{{{p.answer}}}"
        if prompt.endswith("<short>"):
            return f"\\boxed{{{p.answer if p.level == 1 else 'no'}}}"
        return ["<think>", "<short>"][i % 2]  # the mode token, sampled

    bench = synthetic_benchmark("report", [1, 6], 5, seed=3)
    rep = mode_report(ScriptedGenerator(tiny_tokenizer, script), tiny_tokenizer, bench, tmp_path, max_new_tokens=40,
                      free_samples=2, rewards=G05)
    l1, l6 = rep["per_level"]["1"], rep["per_level"]["6"]
    assert (l1["n"], l1["think_acc"], l1["short_acc"], l6["short_acc"]) == (5, 1.0, 1.0, 0.0)
    assert l1["free_think_ratio"] == l6["free_think_ratio"] == 0.5 and l6["free_acc"] == 0.5
    assert l6["free_reward"] == pytest.approx((0.5 - 1.0) / 2) and l1["free_reward"] == pytest.approx(0.75)
    assert l1["think_tokens"] > l1["short_tokens"] and l1["free_valid_mode"] == 1.0
    assert (tmp_path / "generations" / "report").is_dir()  # the samples, like any evaluation's


def test_a_report_reuses_another_reports_generations_only_for_the_same_settings_and_problems(tiny_tokenizer,
                                                                                            tmp_path):
    """The pipeline report's before-RL columns are the distill report's generations (same model, stream and
    settings): copied, not generated, and the report is the same. Other problems under the same file name (another
    stream's seed, which the fingerprint does not name) or other settings are generated anew."""
    from thinkless.evaluation.benchmarks import synthetic_benchmark
    from thinkless.reporting.report import mode_report
    from thinkless.tasks.synthetic import parse_prompt

    from ..helpers import ScriptedGenerator

    def script(prompt, i):
        p = parse_prompt(prompt.split("user\n")[1].split("<|im_end|>")[0])
        return f"x</think>\\boxed{{{p.answer}}}" if prompt.endswith("<think>") else (
            "\\boxed{0}" if prompt.endswith("<short>") else "<think>")

    class Counting(ScriptedGenerator):
        prompts = 0

        def generate(self, prompts, cfg):
            Counting.prompts += len(prompts)
            return super().generate(prompts, cfg)

    def report(bench, out, **kw):
        Counting.prompts = 0
        rep = mode_report(Counting(tiny_tokenizer, script), tiny_tokenizer, bench, out, max_new_tokens=40,
                          free_samples=2, rewards=G05, **kw)
        return rep["per_level"], Counting.prompts

    bench = synthetic_benchmark("report", [1, 6], 5, seed=3)
    first, made = report(bench, tmp_path / "distill" / "report")
    assert made > 0
    again, made = report(bench, tmp_path / "train" / "before_rl", reuse=[tmp_path / "distill" / "report"])
    assert again == first and made == 0
    assert sorted(p.name for p in (tmp_path / "train" / "before_rl" / "generations" / "report").iterdir()) == \
        sorted(p.name for p in (tmp_path / "distill" / "report" / "generations" / "report").iterdir())
    other = synthetic_benchmark("report", [1, 6], 5, seed=4)  # the same file names, other problems
    _, made = report(other, tmp_path / "other", reuse=[tmp_path / "distill" / "report"])
    files = list((tmp_path / "other" / "generations" / "report").glob("*.jsonl"))
    assert made > 0 and files and all(len(f.read_text().splitlines()) == 10 for f in files)  # its own problems only
    Counting.prompts = 0
    mode_report(Counting(tiny_tokenizer, script), tiny_tokenizer, bench, tmp_path / "t", max_new_tokens=30,
                free_samples=2, rewards=G05, reuse=[tmp_path / "distill" / "report"])  # other settings
    assert Counting.prompts > 0


def test_pipeline_table_per_class_on_a_task_with_classes():
    """The graded task's report rows are its classes, named by grade; the oracle and targets per class."""
    before = {"per_group": {"1": level(1.0, 1.0, 0.5, 1.0, 0.5), "3": level(1.0, 0.8, 0.5, 0.9, 0.4)}}
    after = {"per_group": {"1": level(1.0, 1.0, 0.02, 1.0, 1.0), "3": level(1.0, 0.8, 0.95, 1.0, 0.5)}}
    text, s = pipeline_table(before, after, RewardValues(correct_think=0.5), get_task("graded"))
    assert s["unit"] == "class" and s["levels"]["1"]["oracle"] == "short"
    assert s["levels"]["3"]["oracle"] == "short"  # 0.8 > 0.75: short pays at γ = 0.5
    assert not s["levels"]["3"]["matches_oracle"]
    assert text.startswith("| class |") and "| A (100%) |" in text and "| C (80%) |" in text
    # a report read back from its file, no task at hand: still its classes (its keys say so), by their keys
    bare = pipeline_table(before, after, RewardValues(correct_think=0.5))[0]
    assert bare.startswith("| class |") and "| 3 | 1.00 | 0.80 |" in bare
    _, s = pipeline_table(before, after, RewardValues(correct_think=0.9))  # γ = 0.1: 0.8 < 0.95, think pays
    assert s["levels"]["3"]["oracle"] == "think" and s["levels"]["3"]["matches_oracle"]
