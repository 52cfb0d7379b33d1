"""``faultprint versions | show | sql`` as an on-call engineer runs them: tables
that keep identifiers whole at 80 columns, and saved queries that run as
written (a file, standard input, or an argument opening with a comment)."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.collector.analysis.otlp_calls import send, version_spans, wait_for_calls
from tests.collector.conftest import CALL_SITE, CALLS_PER_VERSION, FAILURES, VERSION_A, VERSION_B
from tests.conftest import CollectorProcess, free_port

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


def test_sql_values_keep_identifiers_whole_and_shorten_text(failure_store: Path) -> None:
    query = (
        "SELECT fingerprint_hex, call_site, any(message) AS message, "
        "[any(model_version), 'acme-chat-2025-06-canary'] AS versions FROM failures_v "
        "GROUP BY fingerprint_hex, call_site ORDER BY fingerprint_hex"
    )
    out = _ok(faultprint("sql", query, "--store", str(failure_store)))
    body = [line for line in out.splitlines() if line.startswith("│")]
    for fp, (*_, whole) in FAILURES.items():
        # each row's first line holds its identifiers whole
        (row,) = [line for line in body if f"{fp:016x}" in line]
        assert CALL_SITE in row
        # free text is one line, shortened with "…" as the README says
        message = row.split("│")[3].strip()
        assert message.endswith("…") and whole.startswith(message[:-1])
    longest = max((m for *_, m in FAILURES.values()), key=len)
    assert longest not in out
    # a list is identifiers: wrapped between them, none cut
    assert "acme-chat-2025-06-canary" in out and "acme-chat-2025-06-c…" not in out
    assert "'acme-chat-2025-06'," in out
    # and the whole message is there in the machine formats
    assert longest in _ok(
        faultprint("sql", query, "--store", str(failure_store), "--format", "tsv")
    )


def test_sql_prints_whole_weighted_counts_as_integers(failure_store: Path) -> None:
    query = "SELECT sum(failures) AS failures, 2.5 AS half FROM fingerprints_v"
    store = ["--store", str(failure_store)]
    table = _ok(faultprint("sql", query, *store))
    assert "│ 8        │ 2.5  │" in table and "8.0" not in table
    assert _ok(faultprint("sql", query, *store, "--format", "tsv")) == "failures\thalf\n8\t2.5\n"
    # json keeps the engine's type, which it names
    as_json = json.loads(_ok(faultprint("sql", query, *store, "--format", "json")))
    assert as_json["rows"] == [[8.0, 2.5]] and as_json["types"][0] == "Float64"


EMPTY_QUERY = "SELECT model_version, count() AS n FROM calls WHERE 0 GROUP BY model_version"


def test_sql_without_rows_prints_its_header(failure_store: Path) -> None:
    store = ["--store", str(failure_store)]
    assert _ok(faultprint("sql", EMPTY_QUERY, *store, "--format", "tsv")) == "model_version\tn\n"
    table = faultprint("sql", EMPTY_QUERY, *store)
    assert "┃ model_version ┃ n ┃" in _ok(table) and "(no rows)" in table.stderr
    as_json = json.loads(_ok(faultprint("sql", EMPTY_QUERY, *store, "--format", "json")))
    assert as_json["columns"] == ["model_version", "n"] and as_json["rows"] == []


def test_sql_jsonl_is_one_object_per_row(failure_store: Path) -> None:
    query = (
        "SELECT fingerprint_hex, model_version FROM fingerprints_v "
        "ARRAY JOIN model_versions AS model_version ORDER BY 1"
    )
    out = _ok(faultprint("sql", query, "--store", str(failure_store), "--format", "jsonl"))
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows == [
        {"fingerprint_hex": f"{fp:016x}", "model_version": version}
        for fp, (version, *_) in sorted(FAILURES.items())
    ]


def test_sql_of_aggregation_states_points_to_the_view(failure_store: Path) -> None:
    done = faultprint(
        "sql", "SELECT * FROM fingerprint_catalog LIMIT 2", "--store", str(failure_store)
    )
    _refused(done, "exemplar_trace_ids", "fingerprint_catalog_v")
    assert "deserialization" not in done.stderr
    _ok(faultprint("sql", "SELECT * FROM fingerprint_catalog_v", "--store", str(failure_store)))


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


#: an application whose JSON check fails, as the README's decorator example does
_SDK_APP = """
import sys, faultprint
faultprint.configure(endpoint=sys.argv[1], service="shop")
@faultprint.observe(model="m", version="json-v1", json=True)
def answer(text):
    return text
for text in ("not json", '{"a": 1'):
    answer(text)
faultprint.shutdown()
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    """A collector that received a stable version, a canary with new modes, and
    failures of the SDK's JSON check."""
    tmp = tmp_path_factory.mktemp("analysis_cli")
    collector = CollectorProcess(
        store=str(tmp / "store"), port=free_port(), log_path=tmp / "collector.log"
    ).start()
    try:
        spans = version_spans("stable", 500, {"parse": 25}, seed=21)
        spans += version_spans("canary", 500, {"parse": 25, "keyerror": 15, "schema": 30}, seed=22)
        send(collector.url, spans)
        subprocess.run([sys.executable, "-c", _SDK_APP, collector.url], check=True, timeout=120)
        wait_for_calls(collector.url, 1002)
        yield collector
    finally:
        collector.stop()


def test_show_names_each_part_of_a_failure_once(live: CollectorProcess) -> None:
    incidents = json.loads(_ok(faultprint("incidents", "--url", live.url, "--format", "json")))
    (fp, *_) = [
        i["fingerprint"] for i in incidents["incidents"] if i["error_type"] == "invalid_output"
    ]
    lines = _ok(faultprint("show", fp, "--url", live.url)).splitlines()
    # the error type that repeats the category is not shown twice
    assert lines[1] == "invalid_output · __main__.answer"
    start = next(i for i, x in enumerate(lines) if x.startswith("grouping components")) + 1
    components = list(itertools.takewhile(lambda x: re.match(r"^  \S", x), lines[start:]))
    assert "  category: invalid_output" in components
    assert all(x.split(":", 1)[1].strip() for x in components)  # none without a value


def test_the_gate_line_is_one_line_at_80_columns(live: CollectorProcess) -> None:
    rules = "new-modes,rate-increase,failure-rate>0.01,jsd>0.05"
    done = faultprint("compare", "stable", "canary", "--url", live.url, "--fail-on", rules)
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.splitlines()  # grep-able: one line, every rule on it
    assert line.startswith("gate failed: ") and len(line) > 80
    for rule in (
        "rule new-modes>0",
        "rule rate-increase>0",
        "rule failure-rate>0.01",
        "rule jsd>0.05",
    ):
        assert rule in line


def test_sql_of_aggregation_states_through_a_collector_points_to_the_view(
    live: CollectorProcess,
) -> None:
    done = faultprint("sql", "SELECT * FROM fingerprint_catalog", "--url", live.url)
    _refused(done, "collector answered 400", "exemplar_trace_ids", "fingerprint_catalog_v")
    assert "deserialization" not in done.stderr


def test_sql_counts_through_a_collector_print_as_integers(live: CollectorProcess) -> None:
    query = (
        "SELECT model_version, sum(failures) AS failures FROM version_hourly_v "
        "GROUP BY 1 ORDER BY 1"
    )
    out = _ok(faultprint("sql", query, "--url", live.url, "--format", "tsv"))
    assert out.splitlines()[1:] == ["canary\t70", "json-v1\t2", "stable\t25"]


def test_sql_without_rows_through_a_collector_prints_its_header(live: CollectorProcess) -> None:
    out = _ok(faultprint("sql", EMPTY_QUERY, "--url", live.url, "--format", "tsv"))
    assert out == "model_version\tn\n"
    as_json = json.loads(_ok(faultprint("sql", EMPTY_QUERY, "--url", live.url, "--format", "json")))
    assert as_json["types"] == ["LowCardinality(String)", "UInt64"]


def test_show_counts_and_exemplars_only_the_window(failure_store: Path) -> None:
    """``show --since/--until`` limits the failures and the exemplars, not only the
    timeline: an incident review asks for the calls of the incident's hours."""
    fp = f"{next(iter(FAILURES)):016x}"
    store = str(failure_store)
    # the store's calls are minutes old: a window that ended hours ago has none
    before = json.loads(
        _ok(faultprint("show", fp, "--store", store, "--until", "3h", "--format", "json"))
    )
    assert before["failures"] == 0 and before["exemplars"] == [] and before["timeline"] == []
    assert [v["failures"] for v in before["versions"]] == [0]
    assert before["first_seen"]  # the fingerprint's own first failure, whatever the window
    recent = json.loads(
        _ok(faultprint("show", fp, "--store", store, "--since", "1d", "--format", "json"))
    )
    assert recent["failures"] == 5 and len(recent["exemplars"]) == 5
