"""``faultprint schema``: single-server DDL that runs, cluster DDL that is sound.

No ClickHouse server or Keeper runs in the test environment, so the cluster
DDL is checked three ways: the real ClickHouse parser (the embedded engine's
``formatQuery``) accepts every statement; its structure holds (ON CLUSTER
everywhere, Replicated engines, Distributed tables with the stated sharding
key, views wired to the right tables); and its shard-local half, with the
replication and distribution stripped, runs on the embedded engine and fills
the rollups from rows inserted into the local tables.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from faultprint_collector.commands.schema import SchemaOptionError, schema_text
from faultprint_collector.store._migrations import (
    LOCAL_SUFFIX,
    SHARD_KEYS,
    engine_tables,
    load_migrations,
    render_ddl,
)

CLUSTER = "fp_cluster"
DB = "fpc"


def statements(text: str) -> list[str]:
    body = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*$", body, flags=re.M) if s.strip()]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faultprint_collector.cli", "schema", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def cluster_ddl() -> list[str]:
    done = run_cli("--cluster", CLUSTER, "--database", DB)
    assert done.returncode == 0, done.stderr
    assert "cityHash64(trace_id, span_id)" in done.stdout.split("\n\n")[0]  # stated up front
    return statements(done.stdout)


def parses(stmt: str) -> None:
    import chdb

    quoted = stmt.replace("\\", "\\\\").replace("'", "\\'")
    chdb.query(f"SELECT formatQuery('{quoted}')", "TSV")  # raises on a syntax error


def created(stmt: str) -> str:
    m = re.match(r"CREATE (?:MATERIALIZED )?(?:TABLE|VIEW) IF NOT EXISTS (\S+)", stmt)
    return m[1] if m else ""


# --- single server ----------------------------------------------------------------


def test_single_server_schema_runs_on_the_engine(store: Any) -> None:
    done = run_cli("--database", "fresh")
    assert done.returncode == 0, done.stderr
    ddl = statements(done.stdout)
    assert not any("ON CLUSTER" in s or "Replicated" in s or "Distributed" in s for s in ddl)
    store.command("CREATE DATABASE IF NOT EXISTS fresh")
    for stmt in ddl:
        store.command(stmt)
    tables = {r[0] for r in store.query("SHOW TABLES FROM fresh").result_rows}
    assert {"calls", "fingerprint_catalog", "fingerprint_catalog_mv"} <= tables


# --- cluster: parser and structure ------------------------------------------------


def test_every_cluster_statement_parses_and_runs_on_every_node(cluster_ddl: list[str]) -> None:
    assert len(cluster_ddl) > 10
    for stmt in cluster_ddl:
        parses(stmt)
        assert f"ON CLUSTER {CLUSTER}" in stmt, stmt[:120]
        assert "{db}" not in stmt and "{on_cluster}" not in stmt and "{engine" not in stmt


def test_tables_are_replicated_on_each_shard_behind_distributed_tables(
    cluster_ddl: list[str],
) -> None:
    data_tables = engine_tables()
    assert {"calls", "fingerprint_catalog"} <= data_tables
    by_name = {created(s): s for s in cluster_ddl if created(s)}
    paths = []
    for name in data_tables:
        local = by_name[f"{DB}.{name}{LOCAL_SUFFIX}"]
        engine = re.search(r"ENGINE = (\w+)\('([^']*)', '\{replica\}'", local)
        assert engine is not None, local[:300]
        assert engine[1].startswith("Replicated") and engine[1].endswith("MergeTree")
        assert "{shard}" in engine[2]
        paths.append(engine[2])
        dist = by_name[f"{DB}.{name}"]
        assert f"AS {DB}.{name}{LOCAL_SUFFIX}" in dist
        assert f"Distributed('{CLUSTER}', '{DB}', '{name}{LOCAL_SUFFIX}'" in dist
    assert len(set(paths)) == len(paths)  # one Keeper path per table
    calls = by_name[f"{DB}.calls"]
    assert calls.endswith(f"'calls{LOCAL_SUFFIX}', {SHARD_KEYS['calls']})")
    # the ReplacingMergeTree version column survives replication
    assert "'{replica}', inserted_at)" in by_name[f"{DB}.calls{LOCAL_SUFFIX}"]
    # rollups are filled on each shard by the views: their Distributed tables
    # are read-only (no sharding key, so an insert through them fails)
    catalog = by_name[f"{DB}.fingerprint_catalog"]
    assert catalog.endswith(f"'fingerprint_catalog{LOCAL_SUFFIX}')")


def test_materialized_views_aggregate_each_shard_locally(cluster_ddl: list[str]) -> None:
    views = [s for s in cluster_ddl if s.startswith("CREATE MATERIALIZED VIEW")]
    assert views
    data_tables = engine_tables()
    for view in views:
        refs = set(re.findall(rf"\b{DB}\.(\w+)", view))
        name = created(view).split(".", 1)[1]
        for ref in refs - {name}:
            assert ref.endswith(LOCAL_SUFFIX), f"{name} reads or writes {ref}"
            assert ref[: -len(LOCAL_SUFFIX)] in data_tables


def test_plain_views_read_the_distributed_tables(cluster_ddl: list[str]) -> None:
    views = [s for s in cluster_ddl if s.startswith("CREATE VIEW")]
    assert views
    for view in views:
        assert LOCAL_SUFFIX not in view, created(view)


def test_column_changes_reach_the_distributed_table_indexes_only_the_shards(
    cluster_ddl: list[str],
) -> None:
    alters = [s for s in cluster_ddl if s.startswith("ALTER TABLE")]
    add_column = [s for s in alters if "ADD COLUMN" in s]
    add_index = [s for s in alters if "ADD INDEX" in s]
    if not add_column or not add_index:
        pytest.skip("the shipped migrations no longer alter calls")
    assert {s.split()[2] for s in add_column} >= {f"{DB}.calls", f"{DB}.calls{LOCAL_SUFFIX}"}
    assert {s.split()[2] for s in add_index} == {f"{DB}.calls{LOCAL_SUFFIX}"}


# --- cluster: the shard-local half runs ---------------------------------------------


def _one_node(stmt: str) -> str:
    """The statement as one shard of a one-node cluster would run it."""
    stmt = stmt.replace(f" ON CLUSTER {CLUSTER}", "")
    stmt = re.sub(
        r"Replicated(\w*MergeTree)\('[^']*', '\{replica\}'(?:, )?([^)]*)\)",
        lambda m: f"{m[1]}({m[2]})" if m[2] else m[1],
        stmt,
    )
    # A one-shard Distributed table reads its local table: Merge does the same
    # on a node without a cluster definition.
    return re.sub(
        r"Distributed\('[^']*', '(\w+)', '(\w+)'(?:, .*)?\)$",
        lambda m: f"Merge('{m[1]}', '^{m[2]}$')",
        stmt,
    )


def test_the_shard_local_schema_runs_and_fills_the_rollups(
    cluster_ddl: list[str], store: Any
) -> None:
    store.command(f"CREATE DATABASE IF NOT EXISTS {DB}")
    for stmt in cluster_ddl:
        store.command(_one_node(stmt))
    now = datetime.now(UTC)
    rows = []
    for i in range(6):
        failing = i % 2 == 0
        rows.append(
            {
                "project": "p",
                "time": now,
                "trace_id": f"{i:032x}",
                "span_id": f"{i + 1:016x}",
                "model_version": "v1",
                "call_site": "openai.chat",
                "status": "error" if failing else "ok",
                "is_failure": int(failing),
                "category": "truncation" if failing else "",
                "fingerprint": 42 if failing else 0,
            }
        )
    names = list(rows[0])
    # FAULTPRINT_CLUSTER_WRITES=local: the collector's inserts into calls go to
    # this node's calls_local (the stand-in Distributed table refuses inserts)
    store.local_writes = engine_tables()
    try:
        store.insert(f"{DB}.calls", [list(r.values()) for r in rows], names)
    finally:
        store.local_writes = frozenset()
    catalog = store.query(
        f"SELECT fingerprint, sum(failures), sum(occurrences) FROM {DB}.fingerprint_catalog "
        "GROUP BY fingerprint"
    ).result_rows
    assert [tuple(r) for r in catalog] == [(42, 3.0, 3)]
    # the sharding key is computable from calls' columns and spreads the rows
    shards = store.query(
        f"SELECT DISTINCT {SHARD_KEYS['calls']} % 2 FROM {DB}.calls{LOCAL_SUFFIX}"
    ).result_rows
    assert {r[0] for r in shards} == {0, 1}


# --- any migration, generically ----------------------------------------------------


def test_other_migration_shapes_are_rendered_for_a_cluster() -> None:
    sql = """
    CREATE TABLE IF NOT EXISTS {db}events {on_cluster} (project String, id UInt64, n UInt64)
    ENGINE = ReplacingMergeTree ORDER BY (project, id);
    CREATE MATERIALIZED VIEW IF NOT EXISTS {db}events_by_project {on_cluster}
    ENGINE = {engine:SummingMergeTree} ORDER BY project AS
    SELECT project, sum(n) AS n FROM {db}events GROUP BY project;
    ALTER TABLE {db}events {on_cluster} MODIFY TTL toDateTime(id) + INTERVAL 1 DAY;
    OPTIMIZE TABLE {db}events {on_cluster} FINAL;
    DROP TABLE IF EXISTS {db}events;
    """
    local = frozenset({"events", "events_by_project"})
    out = render_ddl(sql, database="d", cluster="c", local_tables=local, mv_targets=frozenset())
    for stmt in out:
        parses(stmt)
        assert "ON CLUSTER c" in stmt
    assert "d.events_local ON CLUSTER c" in out[0]
    assert (
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/d/events_local'"
        in (out[0])
    )
    # written directly: sharded by its rows' identity (the ORDER BY key)
    assert out[1].endswith("'events_local', cityHash64(project, id))")
    assert "d.events_by_project_local" in out[2] and "FROM d.events_local" in out[2]
    assert "ReplicatedSummingMergeTree" in out[2]
    assert out[4].startswith("ALTER TABLE d.events_local") and len(out) == 8
    assert out[5].startswith("OPTIMIZE TABLE d.events_local")
    assert out[6].startswith("DROP TABLE IF EXISTS d.events ON CLUSTER c")
    assert out[7].startswith("DROP TABLE IF EXISTS d.events_local ON CLUSTER c")


def test_single_server_rendering_is_the_migration_as_written() -> None:
    for migration in load_migrations():
        for stmt in render_ddl(migration.sql):
            assert "Replicated" not in stmt and "Distributed" not in stmt
            assert "_local" not in stmt


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cluster", "x; DROP TABLE calls"], "--cluster must be a plain identifier"),
        (["--database", "a.b"], "--database must be a plain identifier"),
        (["--retention-days", "0"], "--retention-days must be between"),
    ],
)
def test_bad_options_exit_2_with_a_reason(args: list[str], message: str) -> None:
    done = run_cli(*args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_schema_text_rejects_bad_names_in_process() -> None:
    with pytest.raises(SchemaOptionError):
        schema_text(cluster="bad-name")
