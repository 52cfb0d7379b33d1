"""SIGKILL a real collector mid-load, restart it: every acknowledged call once.

Load comes from several client threads; a span counts as acknowledged when
its request got a 200. The collector is killed twice: once while accepting
load, once right after a restart while it replays its spool under new load.
After a final restart and drain, the store must hold every acknowledged
span, no span twice (not even before merges, so without FINAL), and the
fingerprint catalogue (a materialized view) must count each failure once.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from faultprint_collector.store import open_store

from tests.collector.api._otlp import PROTOBUF, request
from tests.conftest import CollectorProcess

pytestmark = pytest.mark.slow


class Load:
    """Client threads posting batches until stopped; records acknowledged ids."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.acked: set[str] = set()
        self.failures_acked = 0
        self.errors = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)
        ]
        for t in self._threads:
            t.start()

    def _run(self, n: int) -> None:
        rng = random.Random(n)
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                spans = rng.randrange(20, 300)
                req, ids = request(spans, failures_every=7)
                try:
                    response = client.post(
                        f"{self.url}/v1/traces", content=req.SerializeToString(), headers=PROTOBUF
                    )
                except httpx.HTTPError:
                    with self._lock:
                        self.errors += 1
                    time.sleep(0.05)
                    continue
                if response.status_code == 200:
                    with self._lock:
                        self.acked.update(ids)
                        self.failures_acked += len(range(0, spans, 7))

    def wait_for(self, spans: int, timeout: float = 120) -> None:
        """Wait until SPANS spans were acknowledged."""
        deadline = time.monotonic() + timeout
        while len(self.acked) < spans:
            assert time.monotonic() < deadline, "the load did not get going"
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)


def wait_drained(collector: CollectorProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = httpx.get(f"{collector.url}/healthz", timeout=10).json()
        if health["spool"]["backlog_records"] == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"spool did not drain: {health}")


def test_sigkill_mid_load_loses_and_duplicates_nothing(
    start_collector: Callable[..., CollectorProcess], tmp_path: Path
) -> None:
    store_dir = str(tmp_path / "store")
    collector = start_collector(store_dir)
    load = Load(collector.url)
    load.wait_for(500)
    time.sleep(random.uniform(0.5, 1.5))
    collector.kill()
    load.stop()
    first_acked = set(load.acked)

    # Restart: the spool replays; kill again while it does, under new load.
    collector = start_collector(store_dir)
    load2 = Load(collector.url, threads=2)
    load2.wait_for(1)
    time.sleep(random.uniform(0.1, 0.6))
    collector.kill()
    load2.stop()

    collector = start_collector(store_dir)
    wait_drained(collector)
    # SIGTERM: drains and releases the store (uvicorn re-raises the signal
    # after its graceful shutdown, hence -SIGTERM)
    assert collector.stop() in (0, -signal.SIGTERM), collector.log()

    acked = first_acked | load2.acked
    failures = load.failures_acked + load2.failures_acked
    store = open_store(store_dir)
    try:
        rows, distinct = store.query(
            "SELECT count(), uniqExact(trace_id, span_id) FROM calls"
        ).result_rows[0]
        stored = {
            row[0]
            for row in store.query(
                "SELECT span_id FROM calls FINAL WHERE span_id IN {ids:Array(String)}",
                {"ids": sorted(acked)},
            ).result_rows
        }
        stored_failures = store.query(
            "SELECT countIf(is_failure = 1) FROM calls FINAL"
        ).result_rows[0][0]
        catalogue = store.query("SELECT sum(occurrences) FROM fingerprint_catalog").result_rows[0][
            0
        ]
    finally:
        store.close()
    missing = acked - stored
    assert not missing, f"{len(missing)} acknowledged spans lost"
    assert rows == distinct, f"{rows - distinct} duplicate rows"
    assert stored_failures >= failures
    assert catalogue == stored_failures, "the catalogue counted a replayed batch twice"


def test_sigterm_drains_the_spool_into_the_store(
    start_collector: Callable[..., CollectorProcess], tmp_path: Path
) -> None:
    store_dir = str(tmp_path / "store")
    collector = start_collector(store_dir)
    acked: list[str] = []
    with httpx.Client(timeout=10) as client:
        for _ in range(20):
            req, ids = request(200)
            response = client.post(
                f"{collector.url}/v1/traces", content=req.SerializeToString(), headers=PROTOBUF
            )
            assert response.status_code == 200
            acked += ids
    assert collector.stop() in (0, -signal.SIGTERM), collector.log()
    # No restart: what was acknowledged is in the store already.
    store = open_store(store_dir)
    try:
        count = store.query(
            "SELECT count() FROM calls WHERE span_id IN {ids:Array(String)}", {"ids": acked}
        ).result_rows[0][0]
    finally:
        store.close()
    assert count == len(acked)
