"""Tests mirror modules: every module of thinkless/ has a test file of its name (evaluation/x: test_eval_x; the
objectives: tests/objectives/test_NAME.py, the registry's own modules tests/objectives/test_base.py)."""

from .conftest import ROOT

COVERED_ELSEWHERE = {"_verify_worker": "test_grading", "__init__": "test_grading"}


def test_every_module_has_a_test_file():
    tests = {p.stem for p in (ROOT / "tests").glob("test_*.py")}
    objective_tests = {p.stem for p in (ROOT / "tests" / "objectives").glob("test_*.py")}
    missing = []
    for p in sorted((ROOT / "thinkless").rglob("*.py")):
        prefix = "eval_" if p.parent.name == "evaluation" else ""
        if p.stem in COVERED_ELSEWHERE and p.parent.name == "thinkless":
            assert COVERED_ELSEWHERE[p.stem] in tests
            continue
        if p.parent.name == "objectives":  # one test file per objective; the registry's modules: test_base
            stem = "base" if p.stem in ("__init__", "__main__") else p.stem
            if f"test_{stem}" not in objective_tests:
                missing.append(str(p.relative_to(ROOT)))
            continue
        if p.stem == "__init__":
            continue
        if f"test_{prefix}{p.stem}" not in tests:
            missing.append(str(p.relative_to(ROOT)))
    assert not missing, f"modules without a test file of their name: {missing}"
