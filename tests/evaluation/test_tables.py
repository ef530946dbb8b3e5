"""Markdown tables of an evaluation (thinkless/evaluation/tables.py)."""

from thinkless.evaluation.tables import calibration_table, format_tables


def test_tables_name_the_grading_policy_and_the_calibration():
    m = {"n_samples": 1, "acc": 0.5, "grading": "lenient", "tokens": 10.0, "think_ratio": 0.25}
    res = {"model": "m", "grading": {"policy": "strict", "timeout": 2},
           "benchmarks": {"b": {"n_problems": 4, "source": "s", "settings": {"max_new_tokens": 8},
                                "methods": {"adaptive": {**m, "grading": "strict"}, "baseline": m},
                                "calibration": {"per_level": {"1": {"n": 4, "p_think": 0.2, "acc_think": 1.0,
                                                                    "acc_short": 0.5, "acc_gain": 0.5,
                                                                    "best_mode": "think"}},
                                                "oracle_threshold": {"exists": True, "bias": 1.5, "reward": 0.6,
                                                                     "reward_at_0": 0.4, "reward_always_think": 0.5,
                                                                     "reward_always_short": 0.1}}}}}
    md = format_tables(res)
    assert "| adaptive | strict | 1 | 0.500 |" in md and "| baseline | lenient |" in md
    assert "calibration of the mode decision" in md and "| 1 | 4 | 0.20 | 1.00 | 0.50 | +0.50 | think |" in md
    assert "oracle threshold: think bias +1.5 -> expected reward 0.600" in md
    assert "{'timeout': 2}" in md  # this run's grading incidents
    none = calibration_table({"per_level": {}, "oracle_threshold": {"exists": False, "reward": 0.5, "reward_at_0": 0.4,
                                                                    "reward_always_think": 0.5,
                                                                    "reward_always_short": 0.1}})
    assert "none inside the bias range (best: always think" in "\n".join(none)
