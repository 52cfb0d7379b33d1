"""Ad-hoc SQL: whatever text arrives, the answer is rows or a refusal with a
reason, never another error; and nothing outside the project leaks."""

from __future__ import annotations

from pathlib import Path

import pytest
from faultprint_collector.analysis._adhoc import (
    AdhocLimitExceeded,
    AdhocRefused,
    SqlLimits,
    run_readonly_sql,
)
from faultprint_collector.store import Store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import store_calls, synth_calls

FRAGMENTS = [
    "SELECT",
    "WITH",
    "x AS (SELECT 1)",
    "*",
    "count()",
    "FROM",
    "calls",
    "FINAL",
    "system.tables",
    "failures_v",
    "merge('default', 'calls')",
    "numbers(3)",
    "file('/etc/passwd')",
    "WHERE",
    "project = 'other'",
    ";",
    "DROP TABLE calls",
    "INTO OUTFILE '/tmp/x'",
    "'",
    '"',
    "/*",
    "*/",
    "--",
    "\n",
    "(",
    ")",
    "SETTINGS readonly = 0",
    "FORMAT JSON",
    "UNION ALL",
    "JOIN",
    "schema_migrations",
    "\x00",
    "é",
    "`calls`",
    "default.calls",
    "other_db.calls",
]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    text=st.one_of(
        st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=12).map(" ".join),
        st.text(max_size=200),
    )
)
def test_any_text_is_rows_or_a_refusal(store: Store, text: str) -> None:
    try:
        result = run_readonly_sql(store, "nobody", text, max_rows=50)
    except AdhocRefused as exc:
        assert str(exc)
        return
    assert len(result["rows"]) <= 50
    # the project "nobody" has no calls: anything read from faultprint's
    # tables comes back empty or zero
    assert "other" not in str(result["rows"])


def test_other_projects_stay_invisible(store: Store) -> None:
    store_calls(store, synth_calls("v", 200, {5: 0.1}, seed=1, inputs=20), project="other")
    for sql in (
        "SELECT count() FROM calls",
        "SELECT count() FROM calls FINAL WHERE project = 'other'",
        "SELECT count() FROM failures_v",
        "SELECT count() FROM (SELECT * FROM calls_hourly) WHERE project = 'other'",
        "SELECT count() FROM input_outcomes_hourly",
        "SELECT count() FROM fingerprint_catalog_v",
        "WITH x AS (SELECT * FROM calls) SELECT count() FROM x",
        "SELECT count() FROM numbers(3) WHERE number IN (SELECT input_hash FROM calls)",
    ):
        assert run_readonly_sql(store, "mine", sql)["rows"][0][0] == 0, sql
        assert run_readonly_sql(store, "other", sql)["rows"][0][0] > 0 or "numbers" in sql


@pytest.mark.parametrize("max_rows", [0, 10_001])
def test_row_limit_bounds(store: Store, max_rows: int) -> None:
    with pytest.raises(AdhocRefused):
        run_readonly_sql(store, "p", "SELECT 1", max_rows=max_rows)


def test_results_are_truncated_at_the_row_limit(store: Store) -> None:
    result = run_readonly_sql(store, "p", "SELECT number FROM numbers(100)", max_rows=10)
    assert result["truncated"] and len(result["rows"]) == 10


def test_one_huge_block_returns_only_the_rows_asked_for(store: Store) -> None:
    # arrayJoin makes one block of 10⁸ rows: only the rows asked for are decoded
    result = run_readonly_sql(store, "p", "SELECT arrayJoin(range(100000000))", max_rows=3)
    assert result["rows"] == [[0], [1], [2]] and result["truncated"]


def test_wide_results_come_back_truncated(store: Store) -> None:
    columns = ", ".join(f"number AS c{i}" for i in range(500))
    result = run_readonly_sql(store, "p", f"SELECT {columns} FROM numbers(5000)", max_rows=5000)
    assert result["truncated"] and len(result["rows"]) * 500 <= 1_000_000


def test_a_query_over_its_time_limit_is_stopped(store: Store) -> None:
    sql = "SELECT count() FROM numbers(100000) AS a CROSS JOIN numbers(1000000) AS b"
    with pytest.raises(AdhocLimitExceeded, match="time limit"):
        run_readonly_sql(store, "p", sql, limits=SqlLimits(seconds=1))


def test_a_query_over_its_memory_limit_is_stopped(store: Store) -> None:
    sql = "SELECT number FROM numbers(100000000) ORDER BY number DESC LIMIT 1 BY number % 50000000"
    with pytest.raises(AdhocLimitExceeded, match="memory"):
        run_readonly_sql(store, "p", sql, limits=SqlLimits(memory_bytes=64 << 20))


def test_settings_of_the_caller_are_refused(store: Store) -> None:
    with pytest.raises(AdhocRefused, match="SETTINGS"):
        run_readonly_sql(store, "p", "SELECT 1 SETTINGS max_execution_time = 0")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT file({path})",
        "SELECT count() FROM calls WHERE message = file({path})",
        "SELECT x FROM (SELECT file({path}) AS x)",
        "WITH s AS (SELECT file({path}) AS x) SELECT x FROM s",
        "SELECT countSubstrings(file({path}), 'secret') FROM numbers(1)",
        "SELECT count() FROM numbers(2) WHERE toString(number) IN (SELECT file({path}))",
        "SELECT dictGet('default.d', 'x', 1)",
        "SELECT dictGetOrDefault('d', 'x', 1, 'y')",
        "SELECT joinGet('default.j', 'x', 1)",
        "SELECT getSetting('user_files_path')",
        "SELECT hostName()",
    ],
)
def test_functions_reading_outside_the_tables_are_refused(
    store: Store, tmp_path: Path, sql: str
) -> None:
    # The embedded engine's file() reads wherever the collector can: its
    # spool, which holds every project's spans, or its API keys.
    secret = tmp_path / "other-project.seg"
    secret.write_text("secret of another project")
    with pytest.raises(AdhocRefused, match=r"is not allowed: it reads outside"):
        run_readonly_sql(store, "p", sql.format(path=f"'{secret}'"))


def test_a_result_without_rows_keeps_its_columns_and_types(store: Store) -> None:
    # the engine sends no block for no rows: no names or types with it
    empty = run_readonly_sql(store, "p", "SELECT 1 AS a, 'x' AS b WHERE 0")
    assert (empty["columns"], empty["types"], empty["rows"]) == (
        ["a", "b"],
        ["UInt8", "String"],
        [],
    )
    grouped = run_readonly_sql(
        store, "p", "SELECT model_version, count() AS n FROM calls WHERE 0 GROUP BY model_version"
    )
    assert grouped["columns"] == ["model_version", "n"]
    assert grouped["types"] == ["LowCardinality(String)", "UInt64"]
    # the same names and types as a result with rows has
    with_rows = run_readonly_sql(store, "p", "SELECT 1 AS a, 'x' AS b")
    assert (with_rows["columns"], with_rows["types"]) == (empty["columns"], empty["types"])


def test_nan_and_infinity_come_back_as_json_text(store: Store) -> None:
    result = run_readonly_sql(
        store, "p", "SELECT avg(latency_ms), 1 / 0, -1 / 0, 0.5 FROM calls WHERE 0"
    )
    assert result["rows"] == [["nan", "inf", "-inf", 0.5]]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM fingerprint_catalog",
        "SELECT fingerprint, exemplar_trace_ids AS ids FROM fingerprint_catalog",
        "SELECT tuple(exemplar_trace_ids) FROM fingerprint_catalog",
    ],
)
def test_aggregation_states_are_refused_naming_the_view_to_read(store: Store, sql: str) -> None:
    store_calls(store, synth_calls("v", 50, {5: 0.2}, seed=3), project="p")
    with pytest.raises(AdhocRefused) as info:
        run_readonly_sql(store, "p", sql)
    message = str(info.value)
    assert "fingerprint_catalog_v" in message and "exemplar_trace_ids" in message
    assert "deserialization" not in message
    # what the message says to read instead answers
    view = run_readonly_sql(store, "p", "SELECT * FROM fingerprint_catalog_v")
    assert view["rows"] and "exemplar_trace_ids" in view["columns"]
    # plain columns of the table, and SimpleAggregateFunction ones, still read
    plain = "SELECT model_version, sum(failures) FROM fingerprint_catalog GROUP BY 1"
    assert run_readonly_sql(store, "p", plain)["rows"]
    merged = "SELECT finalizeAggregation(exemplar_trace_ids) FROM fingerprint_catalog"
    assert run_readonly_sql(store, "p", merged)["rows"]
