"""Mode-usage statistics (pure) and the metrics log callback."""

import json
import math
from types import SimpleNamespace

import pytest
import torch

from thinkless.reporting.monitor import RL_KEYS, MetricsLogCallback, mode_metrics, plot_curves, read_metrics


def test_mode_metrics_groups_levels_and_modes():
    t = lambda xs: torch.tensor(xs, dtype=torch.float32)  # noqa: E731
    mode = t([0, 0, 1, 1, 0, 1])
    correct = t([1, 1, 1, 1, 0, 0])
    reward = t([1, 1, .5, .5, -1, -1])
    tokens = t([2, 2, 6, 6, 2, 9])
    level = t([1, 1, 6, 6, 3, 3])
    m = mode_metrics(mode, correct, reward, tokens, level, 2)
    assert m["modes/think_ratio"] == pytest.approx(0.5)
    assert m["modes/groups_all_correct_short"] == pytest.approx(1 / 3)
    assert m["modes/groups_all_correct_think"] == pytest.approx(1 / 3)
    assert m["modes/groups_all_wrong"] == pytest.approx(1 / 3)
    assert m["modes/think_ratio_L1"] == 0 and m["modes/think_ratio_L6"] == 1 and m["modes/think_ratio_L3"] == 0.5
    assert m["modes/acc_short"] == pytest.approx(2 / 3) and m["modes/len_think"] == pytest.approx(7.0)
    assert m["modes/tokens"] == pytest.approx(27 / 6) and m["modes/invalid_format"] == 0


def test_groups_all_correct_count_each_mode_apart():
    """Six groups of 2: all correct in short (×2), all correct in think (×1), all correct in mixed modes and all
    correct with no control token (neither), all wrong (×1): the two all-correct shares differ (2/6 against 1/6)."""
    t = lambda xs: torch.tensor(xs, dtype=torch.float32)  # noqa: E731
    mode = t([0, 0, 0, 0, 1, 1, 0, 1, -1, -1, 1, 1])
    correct = t([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0])
    m = mode_metrics(mode, correct, correct, t([5] * 12), t([-1] * 12), 2)
    assert m["modes/groups_all_correct_short"] == pytest.approx(2 / 6)
    assert m["modes/groups_all_correct_think"] == pytest.approx(1 / 6)
    assert m["modes/groups_all_wrong"] == pytest.approx(1 / 6)


def test_ungradable_rows_are_left_out_and_unknown_correctness_drops_accuracy():
    t = lambda xs: torch.tensor(xs, dtype=torch.float32)  # noqa: E731
    m = mode_metrics(t([0, -1]), t([1, math.nan]), t([1, math.nan]), t([3, 5]), t([-1, -1]), 2)
    assert m["modes/accuracy"] == 1.0 and m["modes/invalid_format"] == 0.0 and "modes/groups_all_wrong" not in m
    m = mode_metrics(t([0, 1]), t([math.nan, math.nan]), t([0.3, 0.7]), t([3, 5]), t([-1, -1]), 2)
    assert "modes/accuracy" not in m and m["modes/reward"] == pytest.approx(0.5)


def test_callback_logs_every_line_prints_compact_lines_and_truncates_on_resume(tmp_path, capsys):
    cb = MetricsLogCallback(tmp_path, RL_KEYS, plot=True, title="DeGRPO")
    state = SimpleNamespace(is_world_process_zero=True, global_step=1)
    for step in (1, 2, 3):
        state.global_step = step
        cb.on_log(None, state, None, logs={"modes/think_ratio": 0.1 * step, "modes/accuracy": 0.5, "loss": 0.2})
    state.global_step = 3
    cb.on_log(None, state, None, logs={"eval_modes/think_ratio": 0.4, "eval_modes/accuracy": 0.9})
    out = capsys.readouterr().out
    assert "[step 2] think_ratio=0.2 accuracy=0.5" in out and "[eval @ step 3] think_ratio=0.4" in out
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3, 3]
    cb.on_train_end(None, state, None)
    assert (tmp_path / "mode_usage.png").stat().st_size > 1000
    state.global_step = 2  # resumed from checkpoint-2: lines past it are dropped, those steps will be redone
    cb.on_train_begin(None, state, None)
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2]
    assert plot_curves(tmp_path / "metrics.jsonl", tmp_path)  # draws from whatever the log holds
    json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])


def test_short_mode_lengths_and_hacking_share():
    """Short answers that keep reasoning in plain prose after <short> (the strict format check cannot see it):
    the short length tail and modes/long_short_share light up; an honest policy's share is zero."""
    t = lambda xs: torch.tensor(xs, dtype=torch.float32)  # noqa: E731
    G = 4
    mode = t([0, 0, 0, 1] * 2)
    correct, reward, level = t([1] * 8), t([1] * 8), t([-1] * 8)
    honest = mode_metrics(mode, correct, reward, t([20, 22, 25, 900, 18, 20, 30, 700]), level, G)
    assert honest["modes/long_short_share"] == 0.0
    assert honest["modes/len_short_max"] == 30 and honest["modes/len_think_max"] == 900
    # group 1: one short answer of 400 tokens (a trace written after <short>) beside 20 and 22
    hacked = mode_metrics(mode, correct, reward, t([20, 22, 400, 900, 18, 20, 30, 700]), level, G)
    assert hacked["modes/long_short_share"] == pytest.approx(1 / 6)
    assert hacked["modes/len_short_max"] == 400 and hacked["modes/len_short_p90"] > 100
    assert hacked["modes/len_short_p90"] == pytest.approx(torch.quantile(t([20, 22, 400, 18, 20, 30]), 0.9).item())
    # the multiple is the threshold: 400 > 20 x 3, not > 20 x 25
    assert mode_metrics(mode, correct, reward, t([20, 22, 400, 900, 18, 20, 30, 700]), level, G,
                        long_short_multiple=25.0)["modes/long_short_share"] == 0.0
    # no short answers: no share (not a misleading zero)
    assert "modes/long_short_share" not in mode_metrics(t([1] * 4), t([1] * 4), t([1] * 4), t([5] * 4), t([-1] * 4), 4)


def test_evaluation_reports_the_same_statistics():
    from thinkless.evaluation.metrics import Graded, summarize

    def sample(mode, tokens):
        return Graded(answer="1", correct=True, mode=mode, tokens=tokens, gen_tokens=tokens, finished=True,
                      self_certainty=None)

    probs = [{"level": 1, "samples": [sample("short", 20), sample("short", 21), sample("short", 300),
                                      sample("think", 800)]},
             {"level": 1, "samples": [sample("short", 10), sample("short", 12), sample("think", 500),
                                      sample("think", 900)]}]
    out = summarize(probs, parallel=False)
    assert out["long_short_share"] == pytest.approx(1 / 5)  # 300 > 3 x 21 in problem 1
    assert out["tokens_short_max"] == 300 and out["tokens_think_max"] == 900
    assert summarize(probs, parallel=False, long_short_multiple=20.0)["long_short_share"] == 0.0


def test_mode_metrics_per_class_beside_per_level():
    t = lambda xs: torch.tensor(xs, dtype=torch.float32)  # noqa: E731
    m = mode_metrics(t([0, 1, 1, 1]), t([1, 1, 0, 1]), t([1, .5, -1, .5]), t([2, 6, 6, 6]), t([2, 2, 5, 5]), 2,
                     problem_class=t([1, 1, 6, -1]))
    assert m["modes/think_ratio_C1"] == 0.5 and m["modes/think_ratio_C6"] == 1.0 and "modes/think_ratio_C-1" not in m
    assert m["modes/acc_C1"] == 1.0 and m["modes/acc_C6"] == 0.0
    assert m["modes/acc_short_C1"] == 1.0 and m["modes/acc_think_C1"] == 1.0 and m["modes/acc_think_L5"] == 0.5
    assert "modes/acc_short_L5" not in m and "modes/acc_short_C6" not in m  # no short sample there
    assert m["modes/think_ratio_L2"] == 0.5 and m["modes/think_ratio_L5"] == 1.0
    assert not any(k.startswith("modes/think_ratio_C") for k in mode_metrics(
        t([0, 1]), t([1, 1]), t([1, .5]), t([2, 6]), t([2, 2]), 2))  # no classes: none logged


def test_each_mode_has_its_own_accuracy_per_level():
    """Level 1: short answers wrong, think answers right (its short mode broken); level 2: short only, half right."""
    t = lambda xs: torch.tensor(xs, dtype=torch.float32)  # noqa: E731
    m = mode_metrics(t([0, 0, 1, 1, 0, 0]), t([0, 0, 1, 1, 1, 0]), t([-1, -1, .5, .5, 1, -1]), t([2] * 6),
                     t([1, 1, 1, 1, 2, 2]), 2)
    assert (m["modes/acc_L1"], m["modes/acc_short_L1"], m["modes/acc_think_L1"]) == (0.5, 0.0, 1.0)
    assert m["modes/acc_short_L2"] == 0.5 and "modes/acc_think_L2" not in m  # no think sample at level 2


def test_a_budget_run_logs_its_multiplier_and_draws_it(tmp_path, capsys):
    """rl.budget: the multiplier and the batch cost on the console line, in metrics.jsonl and in budget.png."""
    cb = MetricsLogCallback(tmp_path, RL_KEYS, plot=True, title="DeGRPO")
    state = SimpleNamespace(is_world_process_zero=True, global_step=1)
    for step, lam in ((1, 0.0), (2, 0.05), (3, 0.08)):
        state.global_step = step
        cb.on_log(None, state, None, logs={"modes/think_ratio": 0.5, "budget/multiplier": lam, "budget/cost": 0.5,
                                           "budget/target": 0.3})
    assert "[step 3] think_ratio=0.5 multiplier=0.08 cost=0.5" in capsys.readouterr().out
    cb.on_train_end(None, state, None)
    assert (tmp_path / "budget.png").stat().st_size > 1000
    assert [r["budget/multiplier"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [0.0, 0.05, 0.08]
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "metrics.jsonl").write_text(json.dumps({"step": 1, "modes/think_ratio": 0.5}) + "\n")
    assert not any(p.name == "budget.png" for p in plot_curves(plain / "metrics.jsonl", plain))  # no budget, none
