"""Replaying the spool into a real embedded ClickHouse, exactly once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from faultprint_collector.ingest import decode_body
from faultprint_collector.spool import Replayer, Spool
from faultprint_collector.store import CallWriter
from faultprint_collector.store._writer import RowEncoder, insert_payloads

from tests.collector.api._otlp import request


def encoded_batch(store: Any, spans: int) -> tuple[bytes, int, int]:
    """(payload, rows, failures) for SPANS freshly generated spans."""
    req, _ = request(spans, failures_every=4)
    batch = decode_body(req.SerializeToString(), "application/x-protobuf", "", "p")
    failures = sum(r.is_failure for r in batch.records)
    return RowEncoder.for_store(store).encode(batch.records), len(batch.records), failures


def counts(store: Any) -> tuple[int, int, int, int]:
    """(rows, distinct spans, failures, catalogue occurrences), no FINAL."""
    rows, distinct, failures = store.query(
        "SELECT count(), uniqExact(trace_id, span_id), countIf(is_failure = 1) FROM calls"
    ).result_rows[0]
    occurrences = store.query("SELECT sum(occurrences) FROM fingerprint_catalog").result_rows[0][0]
    return rows, distinct, failures, occurrences


def test_replay_of_an_interrupted_insert_stores_each_call_once(store: Any, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    total = total_failures = 0
    for _ in range(3):
        payload, rows, failures = encoded_batch(store, 40)
        spool.append(payload, rows)
        total, total_failures = total + rows, total_failures + failures
    records = spool.read(0, max_rows=10**9, max_bytes=10**12)
    # The collector began inserting 1..3, the insert landed, then it was killed.
    spool.begin(1, 3)
    insert_payloads(store, [r.payload for r in records], f"faultprint-{spool.spool_id}-1-3")
    spool.close()

    writer = CallWriter(store, Spool(tmp_path / "spool"))
    assert writer.flush(30)
    assert writer.spool.committed == 3
    writer.close()
    assert counts(store) == (total, total, total_failures, total_failures)


def test_spool_keeps_accepting_while_the_store_fails_then_catches_up(
    store: Any, tmp_path: Path
) -> None:
    failures_left = [4]

    def flaky_insert(payloads: list[bytes], token: str) -> None:
        if failures_left[0] > 0:
            failures_left[0] -= 1
            raise ConnectionError("store unreachable")
        insert_payloads(store, payloads, token)

    spool = Spool(tmp_path / "spool")
    replayer = Replayer(spool, flaky_insert, store_available=lambda: False, max_backoff_s=0.05)
    total = 0
    for _ in range(5):
        payload, rows, _ = encoded_batch(store, 20)
        spool.append(payload, rows)  # accepted while inserts fail
        total += rows
    assert replayer.drain(30)
    replayer.close()
    spool.close()
    assert replayer.insert_errors == 4
    rows, distinct, _, _ = counts(store)
    assert rows == distinct == total


def test_a_batch_the_store_refuses_is_quarantined_without_losing_its_neighbours(
    store: Any, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool")
    good, rows, _ = encoded_batch(store, 10)
    head, _, _ = good.partition(b"\n")
    poison = head + b"\n" + b"\x02\x01garbage that is no Native block"
    spool.append(good, rows)
    spool.append(poison, 1)
    good2, rows2, _ = encoded_batch(store, 10)
    spool.append(good2, rows2)
    writer = CallWriter(store, spool, max_backoff_s=0.01)
    deadline = time.monotonic() + 30
    while writer.replayer.quarantined_rows == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert writer.flush(30)
    writer.close()
    assert counts(store)[0] == rows + rows2
    quarantined = list((tmp_path / "spool" / "quarantine").iterdir())
    assert len(quarantined) == 1
    assert quarantined[0].read_bytes() == poison


def test_a_replayed_batch_adds_nothing_to_any_table_or_view_target(store: Any) -> None:
    """Every MergeTree table fed by ``calls`` (catalogue, rollups, and any
    added later) must deduplicate a replayed block, or a replay after a
    crash would count it twice there."""
    tables = [
        name
        for name, engine in store.query(
            "SELECT name, engine FROM system.tables WHERE database = currentDatabase()"
        ).result_rows
        if engine.endswith("MergeTree") and name != "schema_migrations"
    ]
    assert "calls" in tables and len(tables) >= 2

    def rows_per_table() -> dict[str, int]:
        return {t: store.query(f"SELECT count() FROM {t}").result_rows[0][0] for t in tables}

    payload, _, _ = encoded_batch(store, 60)
    insert_payloads(store, [payload], "faultprint-test-1-1")
    first = rows_per_table()
    assert all(first.values()), first
    insert_payloads(store, [payload], "faultprint-test-1-1")  # the replay
    assert rows_per_table() == first
