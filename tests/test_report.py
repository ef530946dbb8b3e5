import pytest

from thinkless.report import format_report, oracle_choice, pipeline_table


def test_oracle_rule():
    # short pays iff p_short > p_think * (2 - gamma) / 2  (0.75 when think is always right, gamma = 0.5)
    assert oracle_choice(0.76, 1.0, 0.5)[0] == "short"
    assert oracle_choice(0.74, 1.0, 0.5)[0] == "think"
    mode, r = oracle_choice(1.0, 1.0, 0.5)
    assert mode == "short" and r == pytest.approx(1.0)
    mode, r = oracle_choice(0.2, 1.0, 0.5)
    assert mode == "think" and r == pytest.approx(0.5)
    assert oracle_choice(0.5, 0.6, 0.0)[0] == "think"  # gamma 0: short must beat think outright


def level(think_acc, short_acc, ratio, acc, reward):
    return {"n": 100, "think_acc": think_acc, "think_tokens": 30.0, "short_acc": short_acc, "short_tokens": 10.0,
            "free_think_ratio": ratio, "free_acc": acc, "free_reward": reward, "free_valid_mode": 1.0}


def test_pipeline_table_targets():
    before = {"per_level": {"1": level(1.0, 0.98, 0.5, 0.9, 0.6), "2": level(1.0, 0.2, 0.5, 0.6, 0.0)}}
    good = {"per_level": {"1": level(1.0, 0.98, 0.05, 0.98, 0.95), "2": level(1.0, 0.2, 0.97, 1.0, 0.49)}}
    text, s = pipeline_table(before, good, 0.5)
    assert s["all_levels_match_oracle"] and all(s["targets"].values())
    assert s["levels"]["1"]["oracle"] == "short" and s["levels"]["2"]["oracle"] == "think"
    assert "| 1 |" in text and "| all |" in text
    bad = {"per_level": {"1": level(1.0, 0.98, 0.5, 0.9, 0.7), "2": level(1.0, 0.2, 0.97, 0.9, 0.3)}}
    _, s = pipeline_table(before, bad, 0.5)
    t = s["targets"]
    assert not t["think_ratio_matches_oracle_every_level"] and not t["reward_within_0.05_of_oracle"]
    assert not t["accuracy_within_2_points_of_forced_think"]


def test_format_report():
    rep = {"per_level": {"1": level(1.0, 0.9, 0.5, 0.9, 0.6)}, "forced_temperature": 0.0, "free_samples": 4,
           "free_temperature": 1.0}
    assert "| 1 | 100 | 1.00 | 30.0 | 0.90 | 10.0 | 0.50 | 0.90 |" in format_report(rep)
