"""The one Markdown table renderer (thinkless/reporting/markdown.py): its exact bytes, which the published results and
the generated docs pages are compared against."""

from thinkless.reporting.markdown import markdown_row, markdown_rule, markdown_table


def test_row_cells_and_blanks():
    assert markdown_row(["a", 1, 0.5]) == "| a | 1 | 0.5 |"
    assert markdown_row(["all", None, "x", None]) == "| all | | x | |"  # None: a blank cell
    assert markdown_row([None, None]) == "| | |"  # a header without titles (the model card's)
    assert markdown_row(["key", "", "what"]) == "| key |  | what |"  # an empty string is a cell like any other
    assert markdown_row([]) == "||"


def test_rule_and_whole_table():
    assert markdown_rule(3) == "|---|---|---|"
    assert markdown_table(["level", "acc"], [["1", "1.00"], ["all", None]]) == (
        "| level | acc |\n"
        "|---|---|\n"
        "| 1 | 1.00 |\n"
        "| all | |")
    assert markdown_table(("a", "b")) == "| a | b |\n|---|---|"  # rows printed one at a time follow
    assert markdown_table(["x"], iter([["1"], ["2"]])).split("\n")[2:] == ["| 1 |", "| 2 |"]
