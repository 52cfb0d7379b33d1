"""The CLI's tables keep identifiers whole at any width; free text gives way."""

from __future__ import annotations

import io

import pytest
from faultprint_collector.commands._tables import (
    TEXT_MIN_WIDTH,
    Column,
    Kind,
    column_widths,
    print_table,
)
from rich.console import Console

FINGERPRINTS = ["fe7daf276481a6be", "0181c0b982b4c0f5"]
VERSIONS = ["acme-chat-2025-06", "acme-chat-2025-09"]
CALL_SITE = "faultprint_collector.demo.shop.extract_invoice"
MESSAGE = "Expecting value: line 1 column 149 (char 148) while parsing the model's invoice"

COLUMNS = [
    Column("fingerprint"),
    Column("failures", justify="right"),
    Column("call site"),
    Column("versions", Kind.IDS),
    Column("first seen", Kind.IDS),
    Column("example", Kind.TEXT),
]
ROWS = [
    [FINGERPRINTS[0], "61", CALL_SITE, ", ".join(VERSIONS), "2026-11-29 05:12:44", MESSAGE],
    [FINGERPRINTS[1], "6", "shop.route", VERSIONS[1], "2026-11-29 05:12:46", "short"],
]


def render(columns: list[Column], rows: list[list[str]], width: int) -> list[str]:
    out = io.StringIO()
    print_table(Console(file=out, width=width), columns, rows, title="t")
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width", [40, 80, 100, 120, 200])
def test_identifiers_are_whole_on_one_line_at_any_width(width: int) -> None:
    lines = render(COLUMNS, ROWS, width)
    for fp, site in zip(FINGERPRINTS, [CALL_SITE, "shop.route"], strict=True):
        (row,) = [line for line in lines if fp in line]  # one line, not wrapped
        assert site in row
    for version in VERSIONS:
        assert any(version in line for line in lines)
    assert not any("acme…" in line or "acme-ch…" in line for line in lines)


def test_free_text_gives_way_first_and_the_table_fits_when_it_can() -> None:
    lines = render(COLUMNS, ROWS, 160)
    assert max(map(len, lines)) <= 160
    assert MESSAGE not in "\n".join(lines)  # shortened …
    assert any("Expecting value" in line and "…" in line for line in lines)
    wide = render(COLUMNS, ROWS, 250)
    assert any(MESSAGE in line for line in wide)  # … only when space is short


def test_a_table_wider_than_the_console_is_printed_whole_not_cropped() -> None:
    lines = render(COLUMNS, ROWS, 80)
    assert max(map(len, lines)) > 80
    assert all(line.rstrip().endswith(("┓", "┃", "┩", "│", "┘")) for line in lines[1:])


def test_lists_and_times_wrap_between_their_parts_only() -> None:
    lines = render(COLUMNS, ROWS, 80)
    first_row = lines[lines.index(next(x for x in lines if FINGERPRINTS[0] in x)) :][:2]
    assert "acme-chat-2025-06," in first_row[0] and "acme-chat-2025-09" in first_row[1]
    assert "2026-11-29" in first_row[0] and "05:12:44" in first_row[1]


def test_a_value_is_printed_as_it_is_never_read_as_markup() -> None:
    lines = render([Column("message", Kind.WRAPPED)], [["[/] [bold]x[/bold] [red]"]], 80)
    assert any("[/] [bold]x[/bold] [red]" in line for line in lines)


def test_wrapped_text_is_shown_whole() -> None:
    text = "one two three four five six seven eight nine ten eleven twelve thirteen"
    lines = render([Column("id"), Column("text", Kind.WRAPPED)], [[CALL_SITE, text]], 60)
    shown = " ".join(line.strip("│ ").split("│")[-1].strip() for line in lines[4:-1])
    assert shown.split() == text.split()
    assert CALL_SITE in lines[4]


def test_widths_shrink_text_then_lists_then_headers_never_below_the_least() -> None:
    columns = [
        Column("a header of words"),
        Column("ids", Kind.IDS),
        Column("text", Kind.TEXT),
    ]
    rows = [["short", "alpha beta", "x" * 50]]
    natural = column_widths(columns, rows, 1000)
    assert natural == [17, 10, 50]
    assert column_widths(columns, rows, 17 + 10 + 20) == [17, 10, 20]  # text only
    assert column_widths(columns, rows, 17 + 5 + TEXT_MIN_WIDTH) == [17, 5, TEXT_MIN_WIDTH]
    # the header wraps between its words, down to its longest word
    assert column_widths(columns, rows, 0) == [len("header"), 5, TEXT_MIN_WIDTH]
