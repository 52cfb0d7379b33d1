"""Opening a store applies what is missing, and only that: a second open changes
nothing, an older store is brought up to date with its calls counted in the
rollups, and the retention follows the collector's setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from faultprint_collector.api.app import close_state, open_state
from faultprint_collector.ingest import CallRecord
from faultprint_collector.settings import Settings
from faultprint_collector.store import Store, apply_migrations, apply_retention, open_store
from faultprint_collector.store._migrations import (
    MIGRATIONS_TABLE,
    load_migrations,
    migrations_table_ddl,
    render_ddl,
)
from faultprint_collector.store._writer import RowEncoder, insert_payloads


def _schema(store: Store) -> dict[str, str]:
    rows = store.query(
        "SELECT name, create_table_query FROM system.tables WHERE database = currentDatabase()"
    ).result_rows
    return dict(rows)


def _ttl_days(store: Store) -> dict[str, str]:
    rows = store.query(
        "SELECT name, extract(engine_full, 'toIntervalDay\\\\((\\\\d+)\\\\)') FROM system.tables "
        "WHERE database = currentDatabase() AND engine_full LIKE '%TTL%'"
    ).result_rows
    return dict(rows)


def _calls(n: int) -> list[CallRecord]:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    return [
        CallRecord(
            project="default",
            time=start + timedelta(minutes=7 * i),
            trace_id=f"{i + 1:032x}",
            span_id=f"{i + 1:016x}",
            model_version="v1",
            call_site="shop.summarise",
            status="error" if i % 4 == 0 else "ok",
            is_failure=1 if i % 4 == 0 else 0,
            fingerprint=0x0ABC if i % 4 == 0 else 0,
            input_hash=i % 3 + 1,
        )
        for i in range(n)
    ]


def _insert(store: Store, calls: list[CallRecord], token: str) -> None:
    # through the write path's encoder: it writes the columns the store has
    insert_payloads(store, [RowEncoder.for_store(store).encode(calls)], token)


def test_a_second_open_applies_nothing_and_changes_nothing(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "store"))
    try:
        assert apply_migrations(store) == [m.version for m in load_migrations()]
        schema = _schema(store)
        assert apply_migrations(store) == []
        apply_retention(store)
        assert _schema(store) == schema
        recorded = store.query(f"SELECT count() FROM {MIGRATIONS_TABLE} FINAL").result_rows
        assert recorded[0][0] == len(load_migrations())
    finally:
        store.close()


def test_an_older_store_is_upgraded_with_its_calls_in_the_rollups(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "store"))
    try:
        # a store made by the first release: only the first migration applied
        first = load_migrations()[0]
        store.command(migrations_table_ddl())
        for stmt in render_ddl(first.sql):
            store.command(stmt)
        store.insert(MIGRATIONS_TABLE, [[first.version, first.name]], ["version", "name"])
        _insert(store, _calls(40), "old")

        applied = apply_migrations(store)
        assert applied == [m.version for m in load_migrations()[1:]]
        rollup = store.query(
            "SELECT sum(calls), sum(failures) FROM version_hourly_v WHERE model_version = 'v1'"
        ).result_rows[0]
        assert rollup == (40.0, 10.0)
        # the all-time input_outcomes is dropped: input_outcomes_hourly replaces it
        dropped = store.query(
            "SELECT count() FROM system.tables WHERE database = currentDatabase() "
            "AND name IN ('input_outcomes', 'input_outcomes_mv')"
        ).result_rows[0][0]
        assert dropped == 0
        hourly = store.query(
            "SELECT sum(occurrences), uniqExact(hour) FROM input_outcomes_hourly"
        ).result_rows[0]
        assert hourly == (40, 5)  # a call every 7 minutes from 3 hours ago
        # new calls count once on top, and a second open backfills nothing more
        _insert(store, _calls(44)[40:], "new")
        assert apply_migrations(store) == []
        rollup = store.query("SELECT sum(calls), sum(failures) FROM version_hourly_v").result_rows
        assert rollup[0] == (44.0, 11.0)
    finally:
        store.close()


def test_the_retention_follows_the_setting_on_an_existing_store(tmp_path: Path) -> None:
    def start_collector(retention_days: int) -> dict[str, str]:
        settings = Settings(
            store=str(tmp_path / "store"),
            spool_dir=str(tmp_path / "spool"),
            retention_days=retention_days,
            decode_workers=0,
        )
        state = open_state(settings)
        try:
            return _ttl_days(state.store)
        finally:
            close_state(state)

    first = start_collector(90)
    assert {"calls", "calls_hourly", "input_outcomes_hourly"} <= set(first)
    assert set(first.values()) == {"90"}
    # restarted with FAULTPRINT_RETENTION_DAYS=30, then back to 90
    assert start_collector(30) == dict.fromkeys(first, "30")
    assert start_collector(90) == first


def test_a_store_of_the_previous_release_answers_windowed_repeatability_at_once(
    tmp_path: Path,
) -> None:
    """Upgraded to input_outcomes_hourly, a store's past calls are in it (each
    once), so repeatability over a window is right before any new call."""
    from faultprint_collector.analysis import Selection, version_metrics

    store = open_store(str(tmp_path / "store"))
    try:
        previous = [m for m in load_migrations() if m.name != "input_outcomes_hourly"]
        store.command(migrations_table_ddl())
        for migration in previous:
            for stmt in render_ddl(migration.sql):
                store.command(stmt)
            store.insert(
                MIGRATIONS_TABLE, [[migration.version, migration.name]], ["version", "name"]
            )
        calls = _calls(40)  # inputs 1, 2, 3 in turn, a call every 7 minutes
        _insert(store, calls, "old")

        applied = apply_migrations(store)
        assert [m.name for m in load_migrations() if m.version in applied] == [
            "input_outcomes_hourly"
        ]
        hourly = store.query("SELECT sum(occurrences) FROM input_outcomes_hourly").result_rows[0][0]
        assert hourly == 40
        # the fifth hour holds calls 35-39: input 1 (36 failing, 39) and input
        # 3 (35, 38, both succeeding) repeated, input 2 called once
        since = calls[0].time + timedelta(hours=4)
        got = version_metrics(store, Selection("default", since=since))["v1"]
        assert (got["calls"], got["repeatability"], got["repeated_inputs"]) == (5, 0.5, 2)
        # all time, every input disagrees somewhere
        everything = version_metrics(store, Selection("default"))["v1"]
        assert (everything["repeatability"], everything["repeated_inputs"]) == (0.0, 3)
    finally:
        store.close()


def test_the_hourly_input_rollup_is_sharded_and_filled_per_shard_on_a_cluster() -> None:
    (migration,) = [m for m in load_migrations() if m.name == "input_outcomes_hourly"]
    ddl = render_ddl(migration.sql, database="fp", cluster="c")
    local, distributed, view, *drops = ddl
    # the all-time input_outcomes it replaces goes, with its shards' tables
    assert drops == [
        "DROP VIEW IF EXISTS fp.input_outcomes_mv ON CLUSTER c",
        "DROP TABLE IF EXISTS fp.input_outcomes ON CLUSTER c",
        "DROP TABLE IF EXISTS fp.input_outcomes_local ON CLUSTER c",
    ]
    assert local.startswith(
        "CREATE TABLE IF NOT EXISTS fp.input_outcomes_hourly_local ON CLUSTER c"
    )
    assert (
        "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/fp/input_outcomes_hourly_local'"
        in local
    )
    assert "TTL hour + INTERVAL 90 DAY" in local
    # read-only over the shards: no sharding key, the views write each shard
    assert distributed.endswith("Distributed('c', 'fp', 'input_outcomes_hourly_local')")
    assert "TO fp.input_outcomes_hourly_local" in view and "FROM fp.calls_local" in view
    assert "ON CLUSTER c" in view
