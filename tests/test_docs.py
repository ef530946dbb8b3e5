"""The documentation: README.md is a manual (at most 400 lines), every relative link and #anchor in README.md and
docs/ resolves, and what a page shows a command printing is what the code prints (the demo's tables are the
generated reports in docs/results; the serving example's output has the example's own format and token counts)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from .conftest import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
RESULTS = DOCS / "results"
MAX_README_LINES = 400


# ------------------------------------------------------------------ Markdown: headings, slugs, links


def blank_fences(text: str) -> str:
    """The text with fenced code blocks blanked, line numbers kept (a `# comment` in a bash block is no heading)."""
    out, fence = [], None
    for line in text.split("\n"):
        m = re.match(r"^\s*(`{3,}|~{3,})", line)
        if fence is None and m:
            fence = m.group(1)
            out.append("")
        elif fence is not None:
            if line.strip().startswith(fence):
                fence = None
            out.append("")
        else:
            out.append(line)
    return "\n".join(out)


def strip_code(text: str) -> str:
    """The text without code: fenced blocks blanked and inline code spans removed."""
    return re.sub(r"(`+).*?\1", "", blank_fences(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text: links reduced to their text, markup and punctuation dropped
    (letters, digits, underscores, hyphens and spaces stay), lowercase, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file; a repeated slug gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    out = set()
    for line in blank_fences(path.read_text()).split("\n"):
        m = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        s = slug(m.group(1))
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.add(s if n == 0 else f"{s}-{n}")
    return out


LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")


def links(path: Path) -> list[tuple[int, str]]:
    """(line, target) of every inline link and image outside code."""
    text = strip_code(path.read_text())
    return [(text[: m.start()].count("\n") + 1, m.group(1)) for m in LINK.finditer(text)]


def broken_links(files) -> list[str]:
    """'file:line: target (why)' for every relative link whose file or #anchor does not exist."""
    bad = []
    for f in files:
        for line, target in links(f):
            where = f"{f}:{line}: {target}"
            if not target:
                bad.append(f"{where} (empty target)")
                continue
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http(s), mailto, ...: not fetched (no network)
                continue
            file_part, _, anchor = target.partition("#")
            dest = (f.parent / file_part).resolve() if file_part else f
            if not dest.exists():
                bad.append(f"{where} (no such file)")
                continue
            if anchor:
                if dest.suffix.lower() != ".md":
                    bad.append(f"{where} (anchor into a non-Markdown file)")
                elif anchor not in anchors(dest):
                    bad.append(f"{where} (no heading with this anchor in {dest.name})")
    return bad


def doc_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


# ------------------------------------------------------------------ the README is a manual; links resolve


def test_readme_is_at_most_400_lines():
    n = len(README.read_text().splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines (at most {MAX_README_LINES}): move depth to docs/"


def test_every_relative_link_and_anchor_in_readme_and_docs_resolves():
    files = doc_files()
    assert len(files) > 5 and sum(len(links(f)) for f in files) > 50  # the pages and their links were found
    assert broken_links(files) == []


def test_readme_links_every_docs_page():
    """A newcomer reaches every page from the README in one click (quickstart -> results -> their question)."""
    linked = {(README.parent / t.partition("#")[0]).resolve() for _, t in links(README) if t.partition("#")[0]}
    pages = {p.resolve() for p in DOCS.glob("*.md")}
    assert pages, "no docs pages"
    assert sorted(p.name for p in pages - linked) == []


@pytest.mark.parametrize("heading, expected", [
    ("Results: the embedded reproduction", "results-the-embedded-reproduction"),
    ("The demo's response normalisation", "the-demos-response-normalisation"),
    ("Stage 2: DeGRPO (`train.py`)", "stage-2-degrpo-trainpy"),
    ("3. The whole experiment: distill → train → eval", "3-the-whole-experiment-distill--train--eval"),
    ("The synthetic task (*fold*)", "the-synthetic-task-fold"),
    ("See [the docs](docs/x.md) now", "see-the-docs-now"),
    ("snake_case and UPPER", "snake_case-and-upper"),
])
def test_slugs_are_githubs(heading, expected):
    assert slug(heading) == expected


def test_the_checker_reports_missing_files_anchors_and_duplicates(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text(
        "# Title\n\n## Part\n\n## Part\n\n```bash\n# not a heading\n[in code](nowhere.md)\n```\n\n"
        "[ok](#part) [ok2](#part-1) [ok3](sub/b.md#b-heading) [web](https://example.com/x#y) `[code](gone.md)`\n"
        "[dup](#part-2) [nofile](sub/c.md) [noanchor](sub/b.md#nope) [code-comment](#not-a-heading)\n"
        "![img](sub/pic.png)\n")
    (tmp_path / "sub" / "b.md").write_text("# B heading\n\n[back](../a.md#title)\n")
    bad = broken_links([tmp_path / "a.md", tmp_path / "sub" / "b.md"])
    assert [b.split(": ", 1)[1] for b in bad] == [
        "#part-2 (no heading with this anchor in a.md)", "sub/c.md (no such file)",
        "sub/b.md#nope (no heading with this anchor in b.md)", "#not-a-heading (no heading with this anchor in a.md)",
        "sub/pic.png (no such file)"]
    (tmp_path / "sub" / "pic.png").write_bytes(b"")
    assert len(broken_links([tmp_path / "a.md"])) == 4


# ------------------------------------------------------------------ the demo's tables are the generated reports


def table_rows(text: str, header_start: str) -> list[list[str]]:
    """The rows (cells stripped) of the first Markdown table whose header row starts with header_start."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith(header_start) and i + 1 < len(lines) and set(lines[i + 1]) <= set("|-: "):
            rows = [line]
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append(row)
            return [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows]
    raise AssertionError(f"no table starting {header_start!r}")


PIPELINE_HEADER = "| level | forced think acc |"


def test_the_demo_tables_are_the_generated_reports():
    """README.md and docs/demo.md show docs/results' reports (the files the demo writes), cell for cell."""
    pipeline = table_rows((RESULTS / "pipeline_report.md").read_text(), PIPELINE_HEADER)
    grpo = table_rows((RESULTS / "grpo_pipeline_report.md").read_text(), PIPELINE_HEADER)
    distill = table_rows((RESULTS / "distill_report.md").read_text(), "| level | n |")
    assert table_rows(README.read_text(), PIPELINE_HEADER) == pipeline
    demo = (DOCS / "demo.md").read_text()
    assert table_rows(demo, "| level | n |") == distill
    after_rl = demo.split("**After DeGRPO**", 1)[1]
    assert table_rows(after_rl, PIPELINE_HEADER) == pipeline
    coupled = demo.split("**The coupled-loss ablation**", 1)[1]
    assert table_rows(coupled, PIPELINE_HEADER) == grpo
    assert pipeline != grpo  # the two runs differ
    # across seeds: bench/demo.py's table (every seed's demo, timed, and its ablation), cell for cell
    results = (RESULTS / "demo_results.md").read_text()
    assert table_rows(demo, "| seed | distilled: L1 short right, sampled |") == table_rows(
        results, "| seed | distilled: L1 short right, sampled |")
    # the demo's time: the first seed's stages and every seed's range, as bench/demo.py wrote them
    stages = table_rows(results, "| stage | what | wall time |")
    assert len(stages) == 4 and table_rows(demo, "| stage | what | wall time |") == stages
    assert table_rows(README.read_text(), "| stage | what | wall time |") == stages
    # the demo before the authors' normalisation (scale_rewards: group): its section shows its own results file
    group = demo.split("## With the group's std division (the demo until a300b01)", 1)[1]
    assert table_rows(group, "| seed | DeGRPO think ratio L1-L6 |") == table_rows(
        (RESULTS / "demo_group_results.md").read_text(), "| seed | DeGRPO think ratio L1-L6 |")


def test_the_evaluation_summary_is_the_generated_table():
    """docs/demo.md's evaluation table is docs/results/eval_results.md's synthetic table, column for column."""
    full = table_rows((RESULTS / "eval_results.md").read_text(), "| method | grading |")
    col = {name: i for i, name in enumerate(full[0])}
    shown = table_rows((DOCS / "demo.md").read_text(), "| method | n | accuracy |")
    mapping = {"method": "method", "n": "n", "accuracy": "acc", "think": "think", "tokens / sample": "tokens",
               "tokens / answer": "cost tok", "truncated": "trunc"}
    assert shown[0] == list(mapping)
    expected = {r[col["method"]]: [r[col[mapping[h]]] for h in shown[0]] for r in full[1:]}
    assert len(shown) > 5
    for row in shown[1:]:
        assert row == expected[row[0]], row[0]


# ------------------------------------------------------------------ the serving example's output


OUTPUT_LINE = re.compile(r"^(?P<case>auto|forced think|forced short|think bias [+-]\d+(?:\.\d+)?)\s+"
                         r"mode=(?P<mode>think|short|none)\s*tokens=\s*(?P<tokens>\d+)  (?P<reply>'.*')$")


def shown_runs(page: Path) -> list[tuple[list[str], list[str]]]:
    """(argv, printed lines) of every `$ python examples/openai_client.py ...` shown in a page's code blocks."""
    runs, cur = [], None
    fence = False
    for line in page.read_text().split("\n"):
        if line.startswith("```"):
            fence = not fence
            cur = None
            continue
        if not fence:
            continue
        if line.startswith("$ python examples/openai_client.py"):
            cur = (shlex.split(line[len("$ python examples/openai_client.py"):]), [])
            runs.append(cur)
        elif cur is not None and line.strip():
            cur[1].append(line)
    return runs


def test_the_serving_pages_example_output_is_what_the_example_prints(tiny_tokenizer, monkeypatch, capsys):
    """docs/serving.md shows examples/openai_client.py's output on the demo policy. Replayed through the example
    (its server answers stubbed with the shown replies), the example prints exactly the shown lines; and every
    token count is the demo tokenizer's count of the reply plus the EOS, so an output from another tokenizer or
    model (the drift of issue #27: 11 tokens shown for a 7-token reply) fails here."""
    import ast
    import importlib.util
    import types

    page = DOCS / "serving.md"
    runs = shown_runs(page)
    assert len(runs) >= 2
    spec = importlib.util.spec_from_file_location("openai_client_example", ROOT / "examples" / "openai_client.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    for argv, printed in runs:
        parsed = [OUTPUT_LINE.match(line) for line in printed]
        assert all(parsed), [line for line, m in zip(printed, parsed) if not m]
        replies = [ast.literal_eval(m["reply"]) for m in parsed]
        answers = iter([(reply, int(m["tokens"])) for reply, m in zip(replies, parsed)])

        class Completions:
            def create(self, **kw):
                reply, tokens = next(answers)
                return types.SimpleNamespace(choices=[types.SimpleNamespace(message=types.SimpleNamespace(
                    content=reply))], usage=types.SimpleNamespace(completion_tokens=tokens))

        class Client:
            def __init__(self, **kw):
                self.chat = types.SimpleNamespace(completions=Completions())
                self.models = types.SimpleNamespace(list=lambda: types.SimpleNamespace(
                    data=[types.SimpleNamespace(id="thinkless")]))

        monkeypatch.setattr(example, "OpenAI", Client)
        capsys.readouterr()
        example.main(argv)
        assert capsys.readouterr().out.rstrip("\n").split("\n") == printed
        for m, reply in zip(parsed, replies):
            forced = m["case"].startswith("forced")
            ids = tiny_tokenizer(reply, add_special_tokens=False)["input_ids"]
            assert int(m["tokens"]) == len(ids) + 1, (m["case"], reply, len(ids))  # + the EOS the server counts
            starts = reply.startswith(("<think>", "<short>"))
            assert starts != forced, m["case"]  # a forced mode's control token is in the prompt, not the reply
            if not forced:
                assert reply.startswith(f"<{m['mode']}>"), m["case"]



def test_the_gym_tables_are_the_generated_results():
    """README.md's leaderboard and docs/gym.md's tables are docs/results' gym and sweep results (what
    `python bench/gym.py` and `--sweep` write), cell for cell; the graded distillation table is the gym's report."""
    gym = (RESULTS / "gym_results.md").read_text()
    board = table_rows(gym, "| objective | arm |")  # the leaderboard: every objective in both arms
    assert table_rows(README.read_text(), "| objective | arm |") == board
    page = (DOCS / "gym.md").read_text()
    assert table_rows(page, "| objective | arm |") == board
    matched = table_rows(gym, "| objective | seeds | rank group | gap to frontier |")  # at the oracle's think ratio
    assert table_rows(README.read_text(), "| objective | seeds | rank group | gap to frontier |") == matched
    assert table_rows(page, "| objective | seeds | rank group | gap to frontier |") == matched
    assert table_rows(page, "| mean response tokens |") == table_rows(gym, "| mean response tokens |")
    assert table_rows(page, "| class (memo right) |") == table_rows(gym, "| class (memo right) |")
    assert table_rows(page, "| class | n |") == table_rows((RESULTS / "gym_distill_report.md").read_text(),
                                                          "| class | n |")
    sweep = (RESULTS / "sweep_results.md").read_text()
    assert table_rows(page, "| class | γ = 0.1 |") == table_rows(sweep, "| class | γ = 0.1 |")
    dr = (RESULTS / "sweep_results_scale_rewards-none.md").read_text()  # the same sweep without the std division
    assert table_rows(page.split("follows the oracle:", 1)[1], "| class | γ = 0.1 |") == table_rows(
        dr, "| class | γ = 0.1 |")
    from thinkless.objectives import OBJECTIVES

    assert {(r[0], r[1]) for r in board[1:]} >= {(n, a) for n in OBJECTIVES for a in ("shared", "recipe")}
    assert {r[0] for r in matched[1:]} >= set(OBJECTIVES)


def test_the_budget_tables_are_the_generated_results():
    """README.md's and docs/budget.md's tables are docs/results/budget_results.md (what `python bench/budget.py`
    writes), cell for cell."""
    res = (RESULTS / "budget_results.md").read_text()
    table = table_rows(res, "| objective | target think ratio |")
    assert table_rows((DOCS / "budget.md").read_text(), "| objective | target think ratio |") == table
    assert table_rows(README.read_text(), "| objective | target think ratio |") == table
    assert table_rows((DOCS / "budget.md").read_text(), "| class (gain from thinking) |") == table_rows(
        res, "| class (gain from thinking) |")
    assert {r[1] for r in table[1:]} == {"0.2", "0.4", "0.6"}
    # the same bench measuring the cost on each batch instead of the probe (`--probe 0`)
    batch = table_rows((RESULTS / "budget_results-probe0.md").read_text(), "| objective | target think ratio |")
    page = (DOCS / "budget.md").read_text().split("## Measuring on the batch", 1)[1]
    assert table_rows(page, "| objective | target think ratio |") == batch and len(batch) == len(table)
