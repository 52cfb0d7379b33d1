"""Opening a store applies what is missing, and only that: a second open changes
nothing, and the retention follows the collector's setting."""

from __future__ import annotations

from pathlib import Path

from faultprint_collector.api.app import close_state, open_state
from faultprint_collector.settings import Settings
from faultprint_collector.store import Store, apply_migrations, apply_retention, open_store
from faultprint_collector.store._migrations import (
    MIGRATIONS_TABLE,
    load_migrations,
)


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
    assert {"calls", "calls_hourly", "input_outcomes"} <= set(first)
    assert set(first.values()) == {"90"}
    # restarted with FAULTPRINT_RETENTION_DAYS=30, then back to 90
    assert start_collector(30) == dict.fromkeys(first, "30")
    assert start_collector(90) == first
