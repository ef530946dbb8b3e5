"""Release metadata agrees: one version in pyproject.toml, thinkless.__version__, CITATION.cff and the changelog's
newest entry; LICENSE is the licence pyproject.toml declares."""

import re

import yaml

import thinkless

from .conftest import ROOT

PYPROJECT = (ROOT / "pyproject.toml").read_text()  # read by pattern: tomllib needs Python 3.11, the project 3.10


def project_field(name: str) -> str:
    return re.search(rf'^{name} = (.+)$', PYPROJECT, re.M).group(1)


def test_one_version_everywhere():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    newest = re.search(r"^## (?!Unreleased)(\S+)", (ROOT / "CHANGELOG.md").read_text(), re.M).group(1)  # released
    assert project_field("version") == f'"{thinkless.__version__}"'
    assert thinkless.__version__ == str(citation["version"]) == newest


def test_license_file_is_the_declared_license():
    assert project_field("license") == '{ text = "Apache-2.0" }'
    assert yaml.safe_load((ROOT / "CITATION.cff").read_text())["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"] and "END OF TERMS AND CONDITIONS" in text


def test_the_citation_file_cites_every_objectives_paper():
    """CITATION.cff's references hold the paper of every registered objective (its Objective.citation, which the
    model card prints): a new objective's paper is not forgotten there."""
    import re

    from thinkless.objectives import OBJECTIVES

    refs = {r["url"].rsplit("/", 1)[-1] for r in yaml.safe_load((ROOT / "CITATION.cff").read_text())["references"]}
    for name, cls in OBJECTIVES.items():
        ids = re.findall(r"arXiv:(\d{4}\.\d{4,5})", cls.citation)
        assert ids or name == "thinkless", f"objective {name} cites no arXiv paper"
        assert set(ids) <= refs, f"CITATION.cff lacks {name}'s paper {ids}"
