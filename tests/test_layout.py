"""Tests mirror modules: ``thinkless/FOLDER/NAME.py`` has ``tests/FOLDER/test_NAME.py`` (a folder's ``__init__`` and
``__main__``: its ``test_base.py`` where it has one); the package's top-level modules have ``tests/test_NAME.py``."""

from .conftest import ROOT

COVERED_ELSEWHERE = {"thinkless/_verify_worker.py": "tests/test_grading.py",
                     "thinkless/__init__.py": "tests/test_grading.py",
                     "thinkless/vllm_think_bias.py": "tests/serving/test_requests.py"}  # the public path's alias


def test_every_module_has_a_test_file():
    missing = []
    for p in sorted((ROOT / "thinkless").rglob("*.py")):
        rel = p.relative_to(ROOT).as_posix()
        if rel in COVERED_ELSEWHERE:
            assert (ROOT / COVERED_ELSEWHERE[rel]).is_file(), rel
            continue
        folder = p.parent.relative_to(ROOT / "thinkless")
        tests = ROOT / "tests" / folder
        if p.stem in ("__init__", "__main__"):
            if folder.parts and not (tests / "test_base.py").is_file() and p.stem == "__main__":
                missing.append(rel)
            continue
        if not (tests / f"test_{p.stem}.py").is_file():
            missing.append(rel)
    assert not missing, f"modules without a test file of their name: {missing}"


def test_every_test_folder_mirrors_a_package_folder():
    for d in (ROOT / "tests").iterdir():
        if d.is_dir() and any(d.glob("test_*.py")):
            assert (ROOT / "thinkless" / d.name).is_dir(), f"tests/{d.name}/ mirrors no thinkless/{d.name}/"
