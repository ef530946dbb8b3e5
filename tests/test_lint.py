"""The tree is ruff-clean under pyproject.toml's [tool.ruff] rules, with the ruff the dev extra pins (a newer ruff
can find more, so the suite checks the version too). scripts/test.sh runs the same check before pytest."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT


def ruff_bin() -> str:
    for cand in (Path(sys.executable).parent / "ruff", shutil.which("ruff")):
        if cand and Path(cand).exists():
            return str(cand)
    pytest.fail("ruff not found: pip install -e '.[dev]' (the project's dev extra pins it)")


def test_ruff_is_the_pinned_version():
    pin = re.search(r'"ruff==([\d.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    out = subprocess.run([ruff_bin(), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["ruff", pin]


def test_the_tree_is_ruff_clean():
    proc = subprocess.run([ruff_bin(), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
