"""``faultprint versions | show | sql`` as an on-call engineer runs them: tables
that keep identifiers whole at 80 columns, and saved queries that run as
written (a file, standard input, or an argument opening with a comment)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.collector.conftest import CALL_SITE, CALLS_PER_VERSION, FAILURES, VERSION_A, VERSION_B

README = Path(__file__).resolve().parents[3] / "README.md"
COMMENTED = "-- how many calls per version\nSELECT model_version, count() AS calls\n"
COMMENTED += "FROM calls FINAL GROUP BY model_version ORDER BY model_version"


def faultprint(
    *args: str, stdin: str | None = None, columns: int = 80
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faultprint_collector.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
        env={**os.environ, "COLUMNS": str(columns)},
    )


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _refused(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    for word in words:
        assert word in done.stderr


def test_versions_tell_versions_apart_at_80_columns(failure_store: Path) -> None:
    lines = _ok(faultprint("versions", "--store", str(failure_store))).splitlines()
    for version in (VERSION_A, VERSION_B):
        (row,) = [line for line in lines if version in line]
        assert f" {CALLS_PER_VERSION} " in row  # its calls, on the same line
    assert not [line for line in lines if "…" in line]  # no number or name cut


def test_show_keeps_trace_ids_and_versions_whole(failure_store: Path) -> None:
    fp = next(iter(FAILURES))
    out = _ok(faultprint("show", f"{fp:016x}", "--store", str(failure_store)))
    assert CALL_SITE in out
    trace_ids = re.findall(r"│ ([0-9a-f]{32}) │ " + VERSION_A + " │", out)
    assert len(trace_ids) == 5  # the exemplars, each id on one line


def test_sql_values_keep_identifiers_whole_and_wrap_text(failure_store: Path) -> None:
    query = (
        "SELECT fingerprint_hex, call_site, any(message) AS message FROM failures_v "
        "GROUP BY fingerprint_hex, call_site ORDER BY fingerprint_hex"
    )
    out = _ok(faultprint("sql", query, "--store", str(failure_store)))
    for fp in FAILURES:
        (row,) = [line for line in out.splitlines() if f"{fp:016x}" in line]
        assert CALL_SITE in row
    # the message is wrapped over lines, whole: its words all there, in order
    body = [line for line in out.splitlines() if line.startswith("│")]
    words = [word for line in body for word in line.split("│")[-2].split()]
    longest = max((m for *_, m in FAILURES.values()), key=len)
    assert longest in " ".join(words)
    assert len(body) > len(FAILURES)  # over lines, rather than widening the table
    assert "content_filter" in words  # between words, not inside one


@pytest.mark.parametrize(
    "how",
    ["argument first", "argument last", "file", "file from stdin", "dash from stdin"],
)
def test_a_query_opening_with_a_comment_runs(failure_store: Path, how: str, tmp_path: Path) -> None:
    store = ["--store", str(failure_store), "--format", "json"]
    saved = tmp_path / "calls.sql"
    saved.write_text(COMMENTED, encoding="utf-8")
    done = {
        "argument first": lambda: faultprint("sql", COMMENTED, *store),
        "argument last": lambda: faultprint("sql", *store, COMMENTED),
        "file": lambda: faultprint("sql", "--file", str(saved), *store),
        "file from stdin": lambda: faultprint("sql", "-f", "-", *store, stdin=COMMENTED),
        "dash from stdin": lambda: faultprint("sql", "-", *store, stdin=COMMENTED),
    }[how]()
    rows = json.loads(_ok(done))["rows"]
    assert rows == [[VERSION_A, CALLS_PER_VERSION], [VERSION_B, CALLS_PER_VERSION]]


def test_an_option_value_that_looks_like_a_comment_stays_the_value(failure_store: Path) -> None:
    done = faultprint("sql", "SELECT 1", "--store", str(failure_store), "--project", "-- x")
    _refused(done, "--project")


def test_sql_statement_sources_are_usage_errors_when_wrong(
    failure_store: Path, tmp_path: Path
) -> None:
    store = ["--store", str(failure_store)]
    _refused(faultprint("sql", *store), "give the statement", "--file")
    saved = tmp_path / "q.sql"
    saved.write_text("SELECT 1")
    _refused(faultprint("sql", "SELECT 1", "--file", str(saved), *store), "not both")
    _refused(faultprint("sql", "--file", str(tmp_path / "nope.sql"), *store), "cannot read")
    _refused(faultprint("sql", "--file", str(tmp_path), *store), "cannot read")
    typo = faultprint("sql", "SELECT 1", *store, "--max-row", "5", columns=300)
    _refused(typo, "No such option: --max-row")


def cookbook() -> dict[str, str]:
    """The README's "Incident review in SQL" queries, keyed by their comment line."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Incident review in SQL", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sql\n(.*?)```", section, re.S)
    return {block.splitlines()[0].removeprefix("-- ").strip(): block for block in blocks}


@pytest.mark.parametrize("name", sorted(cookbook()))
def test_the_readme_queries_run_as_saved_files(
    failure_store: Path, tmp_path: Path, name: str
) -> None:
    saved = tmp_path / "query.sql"
    saved.write_text(cookbook()[name], encoding="utf-8")
    done = faultprint("sql", "--file", str(saved), "--store", str(failure_store))
    _ok(done)
    as_argument = faultprint("sql", cookbook()[name], "--store", str(failure_store))
    assert as_argument.stdout == done.stdout


def test_the_readme_shows_how_to_run_a_saved_query() -> None:
    section = README.read_text(encoding="utf-8").split("## Incident review in SQL", 1)[1]
    assert "faultprint sql --file" in section.split("\n## ", 1)[0]
