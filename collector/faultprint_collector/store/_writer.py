"""The write path: spool first, then batched inserts into ``calls``.

A request's records are encoded once, in ClickHouse's Native format (what
clickhouse-connect itself sends), behind a line naming the columns, and
appended to the durable spool; the request is acknowledged when the append
returns. The spool's replayer inserts the very same bytes, many requests
per insert (ClickHouse wants few, large parts), each insert with a
deterministic deduplication token. Native blocks concatenate into one
insert and cost the engine far less than text formats; the column line
keeps a spool written by an older version insertable after an upgrade.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Sequence
from typing import Any

from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.insert import InsertContext
from clickhouse_connect.driver.transform import NativeTransform

from faultprint_collector.ingest import CALL_COLUMNS, CallRecord
from faultprint_collector.spool import Replayer, Spool
from faultprint_collector.store._client import Store

INSERT_FORMAT = "Native"
#: settings of every spool insert; dependent materialized views (catalogue,
#: rollups) deduplicate a replayed block exactly like ``calls`` does
INSERT_SETTINGS: dict[str, Any] = {"deduplicate_blocks_in_dependent_materialized_views": 1}
#: unsigned columns a hostile span could overflow
_UINT_LIMITS = {"http_status": 0xFFFF, "input_tokens": 0xFFFFFFFF, "output_tokens": 0xFFFFFFFF}


class EncodeError(ValueError):
    """A record cannot be encoded for its column types."""


class RowEncoder:
    """Encodes call records as Native blocks for the columns ``calls`` has.

    Only columns present both in CallRecord and in the table are written
    (the others take their defaults), so the record and the schema may
    gain fields in either order during an upgrade.
    """

    def __init__(self, column_types: dict[str, str], table: str = "calls") -> None:
        self.table = table
        self.columns = [c for c in CALL_COLUMNS if c in column_types]
        #: ClickHouse type name of each written column
        self.type_names = {c: column_types[c] for c in self.columns}
        self._types = [get_from_name(column_types[c]) for c in self.columns]
        self._row = operator.attrgetter(*self.columns)
        self._clamps = [
            (self.columns.index(name), top)
            for name, top in _UINT_LIMITS.items()
            if name in self.columns
        ]
        self.header = json.dumps(self.columns).encode() + b"\n"

    @classmethod
    def for_store(cls, store: Store) -> RowEncoder:
        """An encoder for the ``calls`` table of STORE (asks it for the types)."""
        described = store.query(f"DESCRIBE TABLE {store.table('calls')}").result_rows
        return cls({row[0]: row[1] for row in described}, store.table("calls"))

    def encode(self, records: Sequence[CallRecord]) -> bytes:
        """The column line plus one Native block holding RECORDS."""
        rows = []
        for record in records:
            row = list(self._row(record))
            for index, top in self._clamps:
                value = row[index]
                if not isinstance(value, int) or not 0 <= value <= top:
                    row[index] = min(top, max(0, value)) if isinstance(value, int) else 0
            rows.append(row)
        context = InsertContext(self.table, self.columns, self._types, data=rows)
        context.compression = None
        data = b"".join(NativeTransform.build_insert(context))
        if context.insert_exception is not None:
            raise EncodeError(str(context.insert_exception)) from context.insert_exception
        if data.startswith(b"INSERT"):  # the HTTP statement prefix, not part of the block
            data = data[data.index(b"\n") + 1 :]
        return self.header + data

    def encode_valid(self, records: Sequence[CallRecord]) -> tuple[bytes, list[int]]:
        """Encode RECORDS, leaving out any that cannot be; returns (payload, left-out indexes)."""
        try:
            return (self.encode(records) if records else b""), []
        except EncodeError:
            pass
        good, bad = [], []
        for index, record in enumerate(records):
            try:
                self.encode([record])
                good.append(record)
            except EncodeError:
                bad.append(index)
        return (self.encode(good) if good else b""), bad


def split_columns(payload: bytes) -> tuple[bytes, bytes]:
    """(column line, Native data) of one spooled payload."""
    head, _, data = payload.partition(b"\n")
    return head, data


class CallWriter:
    """Spools records durably and keeps a replayer moving them into ``calls``."""

    def __init__(self, store: Store, spool: Spool, **replay_options: Any) -> None:
        self._store = store
        self.spool = spool
        self.encoder = RowEncoder.for_store(store)
        self.replayer = Replayer(
            spool, self._insert, store_available=self._store_available, **replay_options
        )

    @property
    def rows_written(self) -> int:
        """Rows inserted into ClickHouse by this process."""
        return self.replayer.rows_written

    @property
    def inserts(self) -> int:
        """Inserts made by this process."""
        return self.replayer.inserts

    def write(self, records: Sequence[CallRecord], timeout: float = 30.0) -> int:
        """Spool RECORDS durably; returns their spool sequence number (0: none).

        Raises SpoolFull when the spool is at capacity (answer 503).
        """
        if not records:
            return 0
        return self.write_encoded(self.encoder.encode(records), len(records), timeout)

    def write_encoded(self, payload: bytes, rows: int, timeout: float = 30.0) -> int:
        """Spool an already encoded payload (see ``RowEncoder``)."""
        return self.spool.append(payload, rows, timeout)

    def _insert(self, payloads: list[bytes], token: str) -> None:
        insert_payloads(self._store, payloads, token)

    def _store_available(self) -> bool:
        self._store.query("SELECT 1")
        return True

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything spooled is stored; True if it was in time."""
        return self.replayer.drain(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Store what is spooled (up to TIMEOUT), then stop; the rest stays spooled."""
        self.replayer.close(timeout)
        self.spool.close()


def insert_payloads(store: Store, payloads: Sequence[bytes], token: str = "") -> None:
    """Insert spooled payloads into ``calls`` in one insert with TOKEN.

    Payloads written with different column sets (across an upgrade) are
    inserted one column set at a time, in order, each with a token derived
    from TOKEN, so a replay stays idempotent.
    """
    groups: list[tuple[bytes, list[bytes]]] = []
    for payload in payloads:
        head, block = split_columns(payload)
        if groups and groups[-1][0] == head:
            groups[-1][1].append(block)
        else:
            groups.append((head, [block]))
    for index, (head, blocks) in enumerate(groups):
        columns = json.loads(head)
        settings = dict(INSERT_SETTINGS)
        if token:
            settings["insert_deduplication_token"] = token if index == 0 else f"{token}.{index}"
        store.insert_raw(store.table("calls"), b"".join(blocks), columns, INSERT_FORMAT, settings)


def insert_rows(store: Store, rows: Sequence[Sequence[object]], token: str = "") -> None:
    """Insert call rows (in CALL_COLUMNS order) directly, with an idempotency token."""
    settings = {"insert_deduplication_token": token} if token else {}
    store.insert(store.table("calls"), rows, CALL_COLUMNS, settings=settings)
