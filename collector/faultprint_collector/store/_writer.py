"""The write path: spool first, then batched inserts into ``calls``.

A request's records are encoded once, as ClickHouse ``JSONCompactEachRow``
lines preceded by a line naming the columns, and appended to the durable
spool; the request is acknowledged when the append returns. The spool's
replayer inserts the very same bytes, many requests per insert (ClickHouse
wants few, large parts), each insert with a deterministic deduplication
token. The column line keeps a spool written by an older version insertable
after an upgrade that added columns.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from faultprint_collector.ingest import CALL_COLUMNS, CallRecord
from faultprint_collector.spool import Replayer, Spool
from faultprint_collector.store._client import Store

INSERT_FORMAT = "JSONCompactEachRow"
#: settings of every spool insert; dependent materialized views (catalogue,
#: rollups) deduplicate a replayed block exactly like ``calls`` does
INSERT_SETTINGS: dict[str, Any] = {"deduplicate_blocks_in_dependent_materialized_views": 1}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_encode_json = json.JSONEncoder(
    ensure_ascii=False, check_circular=False, separators=(",", ":"), default=str
).encode
#: unsigned columns a hostile span could overflow (ClickHouse would wrap them)
_UINT_LIMITS = {"http_status": 0xFFFF, "input_tokens": 0xFFFFFFFF, "output_tokens": 0xFFFFFFFF}


def encode_records(records: Sequence[CallRecord]) -> bytes:
    """RECORDS as a column line plus one JSONCompactEachRow line per record.

    UTF-8 JSON; a lone surrogate (possible only through JSON escapes in
    nested text) becomes U+FFFD, as ClickHouse refuses it; times as exact
    ``seconds.micros`` text; unsigned counters clamped to their column.
    """
    columns = CALL_COLUMNS
    row_of = operator.attrgetter(*columns)
    time_index = columns.index("time")
    clamps = [(columns.index(name), top) for name, top in _UINT_LIMITS.items() if name in columns]
    lines = [_encode_json(list(columns))]
    for record in records:
        row = list(row_of(record))
        for index, top in clamps:
            value = row[index]
            if not isinstance(value, int) or not 0 <= value <= top:
                row[index] = min(top, max(0, value)) if isinstance(value, int) else 0
        moment = row[time_index]
        if isinstance(moment, datetime):
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            micros = (moment - _EPOCH) // _MICROSECOND
            row[time_index] = f"{micros // 1_000_000}.{micros % 1_000_000:06d}"
        lines.append(_encode_json(row))
    lines.append("")
    return "\n".join(lines).encode("utf-8", "replace")


def split_columns(payload: bytes) -> tuple[bytes, bytes]:
    """(column line, rows) of one spooled payload."""
    head, _, rows = payload.partition(b"\n")
    return head, rows


class CallWriter:
    """Spools records durably and keeps a replayer moving them into ``calls``."""

    def __init__(self, store: Store, spool: Spool, **replay_options: Any) -> None:
        self._store = store
        self.spool = spool
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
        return self.write_encoded(encode_records(records), len(records), timeout)

    def write_encoded(self, payload: bytes, rows: int, timeout: float = 30.0) -> int:
        """Spool an already encoded payload (see ``encode_records``)."""
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
        head, rows = split_columns(payload)
        if groups and groups[-1][0] == head:
            groups[-1][1].append(rows)
        else:
            groups.append((head, [rows]))
    for index, (head, rows) in enumerate(groups):
        columns = json.loads(head)
        settings = dict(INSERT_SETTINGS)
        if token:
            settings["insert_deduplication_token"] = token if index == 0 else f"{token}.{index}"
        store.insert_raw(store.table("calls"), b"".join(rows), columns, INSERT_FORMAT, settings)


def insert_rows(store: Store, rows: Sequence[Sequence[object]], token: str = "") -> None:
    """Insert call rows (in CALL_COLUMNS order) directly, with an idempotency token."""
    settings = {"insert_deduplication_token": token} if token else {}
    store.insert(store.table("calls"), rows, CALL_COLUMNS, settings=settings)
