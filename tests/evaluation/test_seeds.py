"""The seed aggregation of the paper protocol (thinkless/evaluation/seeds.py): one table of mean ± sd over seeds
per benchmark x method, from eval.py's results.json files (here generated small, with eval.py's layout)."""

import json
import statistics
import subprocess
import sys

import pytest

from thinkless.evaluation.seeds import aggregate, load_seeds, seed_folders, write_seed_table

from ..conftest import ROOT

BENCHES = ("aime24", "gsm8k")
METHODS = ("adaptive", "forced_think")


def acc_of(seed, bench, method):
    return round(0.2 + 0.1 * seed + (0.3 if bench == "gsm8k" else 0) + (0.05 if method == "forced_think" else 0), 4)


def write_results(folder, seed, *, model="org/policy", max_new=32768, methods=METHODS, n_problems=30):
    """A results.json as eval.py writes it (the keys the aggregation reads, and a few it must ignore)."""
    folder.mkdir(parents=True, exist_ok=True)
    res = {"model": model, "config": {"seed": seed, "output_dir": str(folder)},
           "benchmarks": {b: {"source": "hub", "n_problems": n_problems, "dropped": {},
                              "settings": {"max_new_tokens": max_new, "max_new_tokens_requested": max_new,
                                           "temperature": 0.6, "top_p": 0.95, "n": 1},
                              "methods": {m: {"acc": acc_of(seed, b, m), "think_ratio": 1.0 if m == "forced_think"
                                              else 0.25 * seed, "tokens": 1000.0 + 10 * seed,
                                              "truncated_ratio": 0.0, "pass_at": {"1": acc_of(seed, b, m)}}
                                          for m in methods}}
                          for b in BENCHES}}
    (folder / "results.json").write_text(json.dumps(res))


def test_mean_and_spread_per_benchmark_and_method(tmp_path):
    for s in range(5):
        write_results(tmp_path / "eval" / f"s{s}", s)
    md, agg = write_seed_table([tmp_path / "eval"])
    assert md == tmp_path / "eval" / "seeds_results.md"
    assert agg["seeds"] == [0, 1, 2, 3, 4] and agg["model"] == "org/policy"
    for b in BENCHES:
        assert agg["benchmarks"][b]["max_new_tokens"] == 32768
        for m in METHODS:
            accs = [acc_of(s, b, m) for s in range(5)]
            st = agg["benchmarks"][b]["methods"][m]["acc"]
            assert st["n"] == 5 and st["mean"] == pytest.approx(statistics.fmean(accs))
            assert st["sd"] == pytest.approx(statistics.stdev(accs))
    ratio = agg["benchmarks"]["aime24"]["methods"]["adaptive"]["think_ratio"]
    assert ratio["mean"] == pytest.approx(0.5) and ratio["sd"] == pytest.approx(statistics.stdev([0, .25, .5, .75, 1]))
    text = md.read_text()
    # one row per benchmark x method: acc 0.2 + 0.1 s (+0.05 forced think), sd of 0.1 x (0..4) = 0.158
    assert "| aime24 | adaptive | 5 | 0.400 ± 0.158 | 0.500 ± 0.395 | 1020 ± 16 | 0.000 ± 0.000 |" in text
    assert "| gsm8k | forced_think | 5 | 0.750 ± 0.158 | 1.000 ± 0.000 |" in text
    assert text.count("\n| aime24 |") == 2 and text.count("\n| gsm8k |") == 2
    assert json.loads((tmp_path / "eval" / "seeds_results.json").read_text()) == agg


def test_refuses_seeds_that_cannot_be_compared(tmp_path):
    write_results(tmp_path / "a" / "s0", 0)
    write_results(tmp_path / "a" / "s1", 1, model="org/other")
    with pytest.raises(ValueError, match="different models"):
        aggregate(load_seeds(seed_folders([tmp_path / "a"])))
    write_results(tmp_path / "b" / "s0", 0)
    write_results(tmp_path / "b" / "s1", 1, max_new=4096)
    with pytest.raises(ValueError, match="max_new_tokens_requested = 4096 vs 32768"):
        aggregate(load_seeds(seed_folders([tmp_path / "b"])))
    write_results(tmp_path / "c" / "s0", 0)
    write_results(tmp_path / "c" / "s1", 1, methods=("adaptive",))
    with pytest.raises(ValueError, match="methods"):
        aggregate(load_seeds(seed_folders([tmp_path / "c"])))
    write_results(tmp_path / "d" / "s0", 0)
    write_results(tmp_path / "d" / "again", 0)
    with pytest.raises(ValueError, match="both seed 0"):
        load_seeds(seed_folders([tmp_path / "d" / "s0", tmp_path / "d" / "again"]))
    (tmp_path / "e" / "s1").mkdir(parents=True)  # a seed still running: no results.json yet
    write_results(tmp_path / "e" / "s0", 0)
    with pytest.raises(FileNotFoundError, match="has not finished"):
        load_seeds(seed_folders([tmp_path / "e"]))


def test_cli_writes_the_table_and_fails_clearly(tmp_path):
    for s in (0, 1):
        write_results(tmp_path / "eval" / f"s{s}", s)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}

    def run(*a):
        return subprocess.run([sys.executable, "-m", "thinkless.evaluation.seeds", *a], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    proc = run(str(tmp_path / "eval" / "s0"), str(tmp_path / "eval" / "s1"), "--out", str(tmp_path / "table"))
    assert proc.returncode == 0, proc.stderr
    assert "| aime24 | adaptive | 2 | 0.250 ± 0.071 |" in (tmp_path / "table" / "seeds_results.md").read_text()
    proc = run(str(tmp_path / "nothing"))
    assert proc.returncode == 1 and "no results.json and no s<seed>/ folders" in proc.stderr
