"""The write path: group-committed, batched inserts into ``calls``.

Request handlers hand records to the writer and wait until the batch that
holds them is stored; one background thread gathers whatever is pending
into a single insert, so many small OTLP requests become few large inserts
(ClickHouse wants few, large parts) while each request is acknowledged only
once its rows are durable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import xxhash

from faultprint_collector.ingest import CALL_COLUMNS, CallRecord
from faultprint_collector.store._client import Store

#: the largest single insert
MAX_BATCH_ROWS = 50_000


@dataclass
class _Pending:
    records: Sequence[CallRecord]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class CallWriter:
    """Batches records from many callers into few inserts (group commit)."""

    def __init__(self, store: Store, linger_s: float = 0.005) -> None:
        self._store = store
        self._linger_s = linger_s
        self._queue: list[_Pending] = []
        self._cond = threading.Condition()
        self._closed = False
        self.rows_written = 0
        self.inserts = 0
        self._thread = threading.Thread(target=self._run, name="faultprint-writer", daemon=True)
        self._thread.start()

    def write(self, records: Sequence[CallRecord], timeout: float = 30.0) -> None:
        """Store RECORDS; returns once they are inserted, raises if they were not."""
        if not records:
            return
        pending = _Pending(records)
        with self._cond:
            if self._closed:
                raise RuntimeError("writer is closed")
            self._queue.append(pending)
            self._cond.notify()
        if not pending.done.wait(timeout):
            raise TimeoutError("storage did not confirm the insert in time")
        if pending.error is not None:
            raise pending.error

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue and self._closed:
                    return
            time.sleep(self._linger_s)  # let concurrent requests join the batch
            with self._cond:
                batch, rows = [], 0
                while self._queue and rows < MAX_BATCH_ROWS:
                    item = self._queue.pop(0)
                    batch.append(item)
                    rows += len(item.records)
            self._insert(batch)

    def _insert(self, batch: list[_Pending]) -> None:
        error: BaseException | None = None
        try:
            rows = [record.row() for item in batch for record in item.records]
            token = xxhash.xxh3_128_hexdigest(
                "".join(f"{r.trace_id}{r.span_id}" for item in batch for r in item.records).encode()
            )
            insert_rows(self._store, rows, token)
            self.rows_written += len(rows)
            self.inserts += 1
        except BaseException as exc:  # handed to every waiting request
            error = exc
        for item in batch:
            item.error = error
            item.done.set()

    def close(self) -> None:
        """Write what is pending, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=60)


def insert_rows(store: Store, rows: Sequence[Sequence[object]], token: str = "") -> None:
    """Insert call rows (in CALL_COLUMNS order) with an idempotency token."""
    settings = {"insert_deduplication_token": token} if token else {}
    store.insert(store.table("calls"), rows, CALL_COLUMNS, settings=settings)
