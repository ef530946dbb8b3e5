"""docs/metrics.md has a line for every key the project logs: the keys written by our code (read from its source and
from its metric functions), the keys of real runs (the warm-up fixture here; tests/training/test_rl.py checks its training
runs' metrics.jsonl with ``undocumented``), and eval.py's W&B summary fields."""

from __future__ import annotations

import io
import json
import re
import tokenize
from pathlib import Path

import torch

from .conftest import ROOT

PAGE = ROOT / "docs" / "metrics.md"
# the families our code logs under (TRL's own keys are checked on real runs)
PREFIXES = ("modes/", "loss/", "budget/", "clip_ratio/", "sampling/", "rewards/")


def documented() -> list[re.Pattern]:
    """The keys in the first cell of the page's table rows, `<placeholder>`s matching one name part."""
    pats = []
    for line in PAGE.read_text().splitlines():
        m = re.match(r"\|((?:[^|\\]|\\.)*)\|", line)
        if not m:
            continue
        for span in re.findall(r"`([^`]+)`", m.group(1)):
            parts = re.split(r"<[^>]*>", span.replace("\\|", "|"))
            pats.append(re.compile(r"[\w.@-]+?".join(re.escape(p) for p in parts)))
    return pats


def undocumented(keys) -> list[str]:
    """The keys without a line on docs/metrics.md (validation's ``eval_<key>`` is documented by ``<key>``)."""
    pats = documented()
    ok = lambda k: any(p.fullmatch(k) for p in pats)  # noqa: E731
    return sorted({k for k in keys if k != "step" and not ok(k) and not (k.startswith("eval_") and ok(k[5:]))})


def logged_keys(metrics_jsonl: Path) -> set[str]:
    return {k for ln in Path(metrics_jsonl).read_text().splitlines() if ln.strip() for k in json.loads(ln)}


def code_keys() -> tuple[set[str], set[str]]:
    """String literals of ``thinkless/`` that name a metric (``PREFIXES``): whole keys, and f-string templates' fixed
    heads (the text before the first ``{``). Literals passed to ``startswith`` are prefixes, not keys."""
    keys, heads = set(), set()
    for path in (ROOT / "thinkless").rglob("*.py"):
        toks = list(tokenize.generate_tokens(io.StringIO(path.read_text()).readline))
        for i, t in enumerate(toks):
            if t.type != tokenize.STRING or (i >= 2 and toks[i - 2].string == "startswith"):
                continue
            m = re.match(r"^([rbfRBF]*)(['\"])(.*)\2$", t.string, re.S)
            if not m or not m.group(3).startswith(PREFIXES):
                continue
            body = m.group(3)
            if "f" in m.group(1).lower() and "{" in body:
                heads.add(body.split("{", 1)[0])
            elif re.fullmatch(r"[\w/@.-]+", body) and not body.endswith("/"):
                keys.add(body)
    return keys, heads


def test_every_metric_our_code_names_has_a_line():
    keys, heads = code_keys()
    assert {"budget/multiplier", "budget/probe_seconds", "loss/control", "rewards/ungradable_gold_frac"} <= keys
    assert not undocumented(keys), undocumented(keys)
    # an f-string key: the page documents a placeholder key with the same fixed head
    placeholders = [p.pattern for p in documented() if "[\\w.@-]+?" in p.pattern]
    missing = [h for h in heads if not any(p.startswith(re.escape(h)) for p in placeholders)
               and not any(p.fullmatch(h + "x") for p in documented())]
    assert {"modes/think_ratio_", "sampling/is_"} <= heads and not missing, missing


def test_every_mode_metric_has_a_line():
    """The real ``mode_metrics`` on a batch with both modes, an invalid first token, levels and classes."""
    from thinkless.reporting.monitor import mode_metrics

    G = 4
    mode = torch.tensor([1, 0, 1, -1, 0, 0, 1, 1.0])
    out = mode_metrics(mode, correct=torch.tensor([1, 1, 0, 0, 1, 1, 1, 1.0]), reward=torch.rand(8),
                       tokens=torch.tensor([20, 5, 30, 4, 40, 6, 22, 25.0]), level=torch.tensor([1.0] * 4 + [2.0] * 4),
                       G=G, problem_class=torch.tensor([3.0] * 4 + [5.0] * 4))
    assert {"modes/think_ratio_L2", "modes/acc_C5", "modes/len_short_p90", "modes/groups_all_wrong"} <= set(out)
    assert not undocumented(out), undocumented(out)


def test_every_objective_step_metric_has_a_line():
    """``Objective.step_metrics`` of every conf/objective option (logged each batch by the trainer)."""
    from thinkless.objectives.base import make_objective

    from .test_configs import compose_cfg, options

    keys = set()
    for name in options("objective"):  # each as train.py composes it
        keys |= set(make_objective(compose_cfg("train", [f"objective={name}"]).objective).step_metrics(0))
    assert "rewards/correct_think" in keys and not undocumented(keys), undocumented(keys)


def test_every_eval_summary_field_has_a_line():
    """eval.py's W&B summary: ``eval/<benchmark>/<method>/<field>`` for each numeric field of ``summarize``."""
    from thinkless.evaluation.metrics import Graded, summarize
    from thinkless.grading import Grader
    from thinkless.reward import reward_values

    def g(correct, mode, tokens):
        return Graded(correct, "1" if correct else "2", mode, tokens, tokens, tokens < 30, 0.5)

    probs = [{"level": 1, "samples": [g(True, "short", 5), g(False, "think", 40)], "seconds": 1.0},
             {"level": 2, "problem_class": 3, "samples": [g(True, "think", 20), g(True, "short", 6)], "seconds": 2.0}]
    keys = set()
    for parallel in (False, True):
        s = summarize(probs, parallel=parallel, selection="majority" if parallel else None,
                      grader=Grader(exact=True), rewards=reward_values(None))
        # as the runner's summary (non-collections) and tracking.log_summary (numbers) keep them
        keys |= {f"eval/synthetic/adaptive/{k}" for k, v in s.items()
                 if not isinstance(v, (dict, list)) and isinstance(v, (int, float))}
    assert "eval/synthetic/adaptive/think_ratio" in keys and "eval/synthetic/adaptive/reward" in keys
    assert not undocumented(keys), undocumented(keys)


def test_every_warm_up_metric_has_a_line(distilled):
    keys = logged_keys(distilled / "metrics.jsonl")
    assert {"loss", "mean_token_accuracy", "train_runtime"} <= keys
    assert not undocumented(keys), undocumented(keys)


def test_the_checker_finds_an_undocumented_key():
    assert undocumented(["modes/think_ratio", "eval_modes/think_ratio_L3", "step"]) == []
    assert undocumented(["modes/no_such_key", "eval_no_such_key", "sampling/is_truncated_tokens_think"]) == \
        ["eval_no_such_key", "modes/no_such_key"]
