"""Markdown tables: the one renderer of every table the package and the benches write (reports, evaluation results,
model cards, the generated docs pages).

A row is ``| a | b |``: each cell as given (callers format their numbers), ``None`` a blank cell (``| |``); the
rule under the header is ``|---|---|``. Rows can be rendered one at a time (``markdown_row``), for tables printed as
their rows are measured.
"""

from __future__ import annotations


def markdown_row(cells) -> str:
    """One table line, ``| a | b |``: each cell ``str()``-ed between single spaces (an empty string leaves two);
    ``None`` is a blank cell, ``| |`` (a header without titles, the unfilled cells of a totals row)."""
    return "|" + "|".join(" " if c is None else f" {c} " for c in cells) + "|"


def markdown_cell(text) -> str:
    """``text`` as one cell: a ``|`` in it escaped (``\\|``), or the row would split there (a message, a comment)."""
    return str(text).replace("|", "\\|")


def markdown_rule(columns: int) -> str:
    """The line under a header of ``columns`` cells: ``|---|---|``."""
    return "|" + "---|" * columns


def markdown_table(header, rows=()) -> str:
    """A whole table: the header line, the rule, one line per row (lines joined by newlines, no trailing one)."""
    header = list(header)
    return "\n".join([markdown_row(header), markdown_rule(len(header)), *(markdown_row(r) for r in rows)])
