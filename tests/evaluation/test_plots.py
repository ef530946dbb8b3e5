"""Plots of an evaluation (thinkless/evaluation/plots.py)."""

from thinkless.evaluation.plots import calibration_plot, pareto_front, pareto_plot


def test_pareto_front():
    pts = [(10, 0.5), (20, 0.9), (15, 0.4), (30, 0.9), (5, 0.1)]
    assert pareto_front(pts) == [4, 0, 1]


def test_threshold_sweep_is_one_curve_and_calibration_plot(tmp_path):
    methods = {"adaptive": {"cost_tokens": 20.0, "acc": 0.8},
               **{f"think_threshold@{b:+g}": {"cost_tokens": 15.0 + b, "acc": 0.7 + 0.02 * b} for b in (-4, 0, 4)}}
    p = pareto_plot("b", methods, tmp_path / "p.png")
    assert p.read_bytes()[:4] == b"\x89PNG"
    cal = {"per_level": {"1": {"p_think": 0.1, "acc_gain": 0.0}, "2": {"p_think": 0.9, "acc_gain": 0.7}},
           "oracle_threshold": {"exists": True, "bias": 0.5, "think_ratio_per_level": {"1": 0.1, "2": 0.95}}}
    assert calibration_plot("b", cal, tmp_path / "c.png").stat().st_size > 1000
    assert calibration_plot("b", {"per_level": {"1": {"p_think": 0.3}}}, tmp_path / "d.png") is None
