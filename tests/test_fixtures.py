"""tests/fixtures: every file its README lists is there with the rows it states, nothing else, and R1-Distill's
tokenizer.json is assembled byte for byte."""

import hashlib
import json
import re

import pytest

from .conftest import DATA, ROOT, TOKENIZERS
from .fixtures import build

README = (ROOT / "tests" / "fixtures" / "README.md").read_text()


def table(heading: str) -> list[list[str]]:
    """The body rows of the first table under a README heading, cells stripped of backticks."""
    section = README.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [[c.strip().strip("`") for c in r.strip("|").split("|")] for r in rows]


def rows_in(path) -> int:
    text = path.read_text()
    return len(json.loads(text)) if path.suffix == ".json" else sum(1 for x in text.splitlines() if x.strip())


def test_math_sets_match_the_readme():
    listed = {r[0]: (int(r[1]), int(r[2])) for r in table("Math sets")}
    assert sorted(listed) == sorted(p.name for p in DATA.iterdir()) == sorted(build.DATA_FILES)
    for name, (kept, full) in listed.items():
        assert rows_in(DATA / name) == kept, name
        assert kept <= full and (kept == full or kept >= build.FIRST_ROWS), name


def test_tokenizer_folders_match_the_readme():
    listed = {r[0]: {f.strip().strip("`") for f in r[1].split(",")} for r in table("Tokenizers")}
    assert sorted(listed) == sorted(p.name for p in TOKENIZERS.iterdir() if p.is_dir())
    for folder, files in listed.items():
        # (dot files: another pytest worker's assembly in flight)
        assert {p.name for p in (TOKENIZERS / folder).iterdir() if not p.name.startswith(".")} == files, folder
    assert {p.name for p in TOKENIZERS.iterdir() if p.is_file()} == {build.R1_SKELETON.name}


def test_r1_tokenizer_is_assembled_byte_for_byte(tmp_path, monkeypatch):
    assert re.search(rf"`tokenizer.json` sha256 `{build.R1_TOKENIZER_SHA256}`", README)
    assembled = build.assemble_r1_tokenizer()
    assert hashlib.sha256(assembled.read_bytes()).hexdigest() == build.R1_TOKENIZER_SHA256
    # a changed BPE table is refused, not written
    qwen = tmp_path / "qwen"
    qwen.mkdir()
    (qwen / "vocab.json").write_text((build.QWEN / "vocab.json").read_text())
    merges = (build.QWEN / "merges.txt").read_text().split("\n")
    (qwen / "merges.txt").write_text("\n".join(merges[:1] + merges[2:]))  # one merge fewer
    monkeypatch.setattr(build, "QWEN", qwen)
    monkeypatch.setattr(build, "R1", tmp_path / "r1")
    (tmp_path / "r1").mkdir()
    with pytest.raises(RuntimeError, match="is not the real file"):
        build.assemble_r1_tokenizer()
    assert not (tmp_path / "r1" / "tokenizer.json").exists()
