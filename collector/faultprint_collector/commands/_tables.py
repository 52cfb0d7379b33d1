"""The tables the CLI prints: identifiers whole, free text squeezed.

Piped output and CI logs render at 80 columns. Left to itself, rich fits a
table into the width by shrinking every column alike, which cuts versions
to ``acme…`` (two rows no longer tell apart) and wraps fingerprints across
lines (they no longer copy into ``faultprint show``). Here each column says
what it holds, and only free text gives way:

- ``ID``: one identifier or number a cell (fingerprint, version, call site,
  category, count): never wrapped, never cut;
- ``IDS``: identifiers separated by spaces (a list of versions, a time, a
  rate with its interval): wrapped between them, never inside one;
- ``TEXT``: free text (a template, a message): one line, shortened with
  "…" when space is short, and past ``TEXT_MAX_WIDTH`` (``faultprint show``
  and ``--format json`` have it whole);
- ``WRAPPED``: free text shown whole (the values of ``faultprint sql``),
  wrapped over lines between words (a word past ``WORD_MAX_WIDTH`` folds).

Free text shrinks first, then lists wrap, then long headers wrap between
their words. When the identifiers still do not fit, the table is printed
wider than the console rather than cutting one: a log keeps the line whole,
a terminal wraps it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

#: the narrowest a squeezed free-text column gets (beyond it, the table widens)
TEXT_MIN_WIDTH = 12
#: the widest a one-line free-text column gets, however wide the console
TEXT_MAX_WIDTH = 80
#: longer words of wrapped free text (a URL, a blob) are folded over lines
WORD_MAX_WIDTH = 40


class Kind(Enum):
    """What a column holds, and so how it may give way to a narrow console."""

    ID = "id"
    IDS = "ids"
    TEXT = "text"
    WRAPPED = "wrapped"


#: which columns give way first when the table is too wide
_SHRINK_ORDER = (Kind.TEXT, Kind.WRAPPED, Kind.IDS, Kind.ID)


@dataclass(frozen=True)
class Column:
    """A column: its header, what it holds, and how its cells align."""

    header: str
    kind: Kind = Kind.ID
    justify: Literal["left", "right"] = "left"


def _longest_word(text: str) -> int:
    return max((cell_len(word) for word in text.split()), default=0)


def _longest_line(text: str) -> int:
    return max((cell_len(line) for line in text.splitlines()), default=0)


def _bounds(column: Column, cells: Sequence[str]) -> tuple[int, int]:
    """The width COLUMN takes when there is room, and the least it can take."""
    natural = max([_longest_line(column.header), *map(_longest_line, cells)])
    if column.kind is Kind.TEXT:
        natural = min(natural, max(TEXT_MAX_WIDTH, cell_len(column.header)))
    header = _longest_word(column.header)
    if column.kind is Kind.ID:  # only a header of several words may wrap
        least = max([header, *map(_longest_line, cells)])
    elif column.kind is Kind.IDS:
        least = max([header, *map(_longest_word, cells)])
    else:
        least = max(header, min(natural, TEXT_MIN_WIDTH))
        if column.kind is Kind.WRAPPED:  # a word is folded only past WORD_MAX_WIDTH
            least = max(least, min(max(map(_longest_word, cells), default=0), WORD_MAX_WIDTH))
    return max(natural, 1), max(least, 1)


def column_widths(columns: Sequence[Column], rows: Sequence[Sequence[str]], room: int) -> list[int]:
    """Content widths of COLUMNS that fit ROOM cells if they can, never below their least.

    Columns give way in ``_SHRINK_ORDER``; within one kind the widest gives
    first, so two free-text columns end up alike.
    """
    bounds = [_bounds(c, [row[i] for row in rows]) for i, c in enumerate(columns)]
    widths = [natural for natural, _ in bounds]
    excess = sum(widths) - room
    for kind in _SHRINK_ORDER:
        shrinkable = [i for i, c in enumerate(columns) if c.kind is kind]
        while excess > 0:
            candidates = [i for i in shrinkable if widths[i] > bounds[i][1]]
            if not candidates:
                break
            widest = max(candidates, key=lambda i: widths[i])
            widths[widest] -= 1
            excess -= 1
    return widths


def _cell(value: str, kind: Kind, justify: Literal["left", "right"]) -> Text:
    # Text, not str: a value is never read as rich markup ("[/]" in a message)
    if kind is Kind.TEXT:
        return Text(value, justify=justify, no_wrap=True, overflow="ellipsis")
    # a word longer than the column only happens in wrapped free text
    return Text(value, justify=justify, no_wrap=kind is Kind.ID, overflow="fold")


def print_table(
    console: Console,
    columns: Sequence[Column],
    rows: Iterable[Sequence[str]],
    title: str | None = None,
) -> None:
    """Print ROWS under COLUMNS on CONSOLE, laid out as the module describes."""
    # free text shown on one line: its line breaks and runs of spaces are one space
    one_line = [c.kind is Kind.TEXT for c in columns]
    cells = [
        [" ".join(v.split()) if flat else v for v, flat in zip(row, one_line, strict=True)]
        for row in rows
    ]
    table = Table(title=title)
    # the default box draws a rule on each side of every column, and rich
    # pads every cell by one on the left and the right
    frame = len(columns) + 1 + 2 * len(columns)
    widths = column_widths(columns, cells, console.width - frame)
    for column, width in zip(columns, widths, strict=True):
        table.add_column(
            Text(column.header, no_wrap=False, overflow="fold"),
            width=width,
            justify=column.justify,
            no_wrap=column.kind is Kind.ID,
        )
    for row in cells:
        table.add_row(*(_cell(v, c.kind, c.justify) for v, c in zip(row, columns, strict=True)))
    # the table's own width, so that rich does not shrink it back to the
    # console's; no cropping at the console's edge, so nothing is cut
    table.width = sum(widths) + frame
    console.print(table, crop=False)


def time_cell(iso: str, digits: int = 19) -> str:
    """An ISO time for an ``IDS`` column: cut to DIGITS characters (19: to the
    second), date and time apart so that a narrow column wraps between them."""
    return iso[:digits].replace("T", " ", 1)
