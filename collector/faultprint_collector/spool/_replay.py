"""Replaying the spool into ClickHouse, in order, exactly once.

Before inserting records FIRST..LAST the replayer writes that range to the
spool cursor (fsynced); the insert carries the token
``faultprint-<spool id>-<first>-<last>``. After a crash the same range is
re-sent with the same token, so ClickHouse's insert deduplication (in
``calls`` and, with ``deduplicate_blocks_in_dependent_materialized_views``,
in every materialized view's target) drops it if it had landed. The spool
id keeps tokens of different collectors sharing one server apart.

The replay thread never dies of a failure: one the store causes is retried
(and quarantined if the store answers yet refuses the batch); one the spool
causes (its cursor cannot be saved, a segment vanished) is logged once, shown
in ``stalled`` and ``last_error``, and retried with a bounded backoff after
asking the spool to check its directory, until it clears.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from faultprint_collector.spool._segment import Record
from faultprint_collector.spool._spool import Spool

log = logging.getLogger("faultprint.spool")

#: failed attempts at one batch before asking whether the store is up at all
POISON_ATTEMPTS = 5

InsertFn = Callable[[list[bytes], str], None]


class Replayer:
    """A background thread moving spooled records into the store.

    ``insert(payloads, token)`` stores one batch, the payloads of
    consecutive records, in one insert (raising on failure);
    ``store_available()`` says whether the store answers at all, which
    tells a batch the store rejects (quarantined after a few attempts, so
    one bad batch cannot block the spool) from a store that is down
    (retried with backoff while the spool keeps accepting).
    """

    def __init__(
        self,
        spool: Spool,
        insert: InsertFn,
        *,
        store_available: Callable[[], bool] = lambda: True,
        max_rows: int = 100_000,
        max_bytes: int = 64 << 20,
        linger_s: float = 0.5,
        max_backoff_s: float = 5.0,
    ) -> None:
        self.spool = spool
        self._insert = insert
        self._store_available = store_available
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.linger_s = linger_s
        self.max_backoff_s = max_backoff_s
        self.rows_written = 0
        self.inserts = 0
        self.insert_errors = 0
        self.quarantined_rows = 0
        self.last_error = ""
        self.last_error_at = 0.0
        #: why replay cannot progress now, apart from the store being down ("": it can)
        self.stalled = ""
        self._stop = threading.Event()
        self._stopping_deadline = 0.0
        self._thread = threading.Thread(target=self._run, name="faultprint-replay", daemon=True)
        self._thread.start()

    @property
    def backlog(self) -> int:
        """Spooled records not yet stored."""
        return max(0, self.spool.durable_seq - self.spool.committed)

    def token(self, first: int, last: int) -> str:
        """The deduplication token of the batch FIRST..LAST (deterministic)."""
        return f"faultprint-{self.spool.spool_id}-{first}-{last}"

    @property
    def running(self) -> bool:
        """Whether the replay thread runs (it stops only when closed)."""
        return self._thread.is_alive()

    def _note_error(self, exc: BaseException) -> str:
        self.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
        self.last_error_at = time.time()
        return self.last_error

    def _run(self) -> None:
        failures = 0
        while True:
            try:
                go_on = self._replay_once()
            except Exception as exc:
                failures += 1
                self.stalled = self._note_error(exc)
                if failures == 1:
                    log.error(
                        "replaying the spool failed, retrying: %s", self.stalled, exc_info=True
                    )
                self.spool.request_check()  # a deleted directory is recreated
                if self._stop.is_set() and time.monotonic() > self._stopping_deadline:
                    return  # stays spooled; the next start replays it
                self._stop.wait(min(self.max_backoff_s, 0.1 * 2 ** min(failures, 10)))
                continue
            if failures:
                log.warning("replaying the spool works again after %d failed attempts", failures)
                failures, self.stalled = 0, ""
            if not go_on:
                return

    def _replay_once(self) -> bool:
        """Store the next batch (or wait a little for one); False to stop."""
        if self.spool.pending:
            first, last = self.spool.pending
            records = self.spool.read(first - 1, max_rows=0, max_bytes=0, through=last)
        else:
            if not self.spool.wait_for_records(self.spool.committed, 0.2):
                return not self._stop.is_set()
            if not self._stop.is_set():
                # Let more appends join the insert: few large parts cost
                # the engine far less (inserts, merges, views) than many
                # small ones, for at most LINGER_S of extra staleness.
                self._stop.wait(self.linger_s)
            records = self.spool.read(
                self.spool.committed, max_rows=self.max_rows, max_bytes=self.max_bytes
            )
            if not records:
                return True
            first, last = records[0].seq, records[-1].seq
            self.spool.begin(first, last)
        return self._store_batch(first, last, records)

    def _store_batch(self, first: int, last: int, records: list[Record]) -> bool:
        """Insert one batch until it is stored or quarantined; False to stop."""
        payloads = [r.payload for r in records]
        rows = sum(r.rows for r in records)
        token = self.token(first, last)
        attempt = 0
        while True:
            try:
                if payloads:
                    self._insert(payloads, token)
                break
            except Exception as exc:
                attempt += 1
                self.insert_errors += 1
                self._note_error(exc)
                log.warning("insert of spooled batch %s failed: %s", token, self.last_error)
                if attempt >= POISON_ATTEMPTS and self._available():
                    rows -= self._store_one_by_one(token, records)
                    break
                if self._stop.is_set() and time.monotonic() > self._stopping_deadline:
                    return False  # stays spooled; the next start replays it
                self._stop.wait(min(self.max_backoff_s, 0.1 * 2**attempt))
        self.spool.commit(last)
        self.rows_written += rows
        self.inserts += 1
        return True

    def _store_one_by_one(self, token: str, records: list[Record]) -> int:
        """Insert each record alone; quarantine those the store refuses.

        The store answers, yet refuses the batch: one record holds what it
        cannot take. Tokens derive from the batch token and the record's
        seq, so a crash during this fallback replays it idempotently too.
        Returns the rows quarantined.
        """
        refused = 0
        for record in records:
            one = f"{token}.{record.seq}"
            try:
                self._insert([record.payload], one)
            except Exception as exc:
                log.error("spooled record %s refused by the store: %s", one, exc)
                self._quarantine(one, record.payload)
                self.quarantined_rows += record.rows
                refused += record.rows
        return refused

    def _available(self) -> bool:
        try:
            return self._store_available()
        except Exception:
            return False

    def _quarantine(self, token: str, payload: bytes) -> None:
        """Keep a batch the store refuses aside, so it does not block the rest."""
        directory = self.spool.directory / "quarantine"
        directory.mkdir(exist_ok=True)
        (directory / f"{token}.jsonl").write_bytes(payload)
        log.error("spooled batch %s refused by the store; kept in %s", token, directory)

    def drain(self, timeout: float) -> bool:
        """Wait until everything durable is stored; True if it was in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.spool.committed >= self.spool.durable_seq and not self.spool.pending:
                return True
            if not self.running:
                return False
            time.sleep(0.02)
        return False

    def close(self, timeout: float = 30.0) -> None:
        """Store what is spooled (up to TIMEOUT), then stop; the rest stays spooled."""
        self._stopping_deadline = time.monotonic() + timeout
        self.drain(timeout)
        self._stop.set()
        self._thread.join(timeout=max(1.0, self._stopping_deadline - time.monotonic()) + 5)
