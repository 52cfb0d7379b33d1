"""The durable spool: accepted batches on local disk until ClickHouse has them.

A batch is acknowledged once the spool holds it (``Spool.append``); the
``Replayer`` inserts spooled batches into ClickHouse in order, each insert
carrying a deterministic deduplication token, so a replay after a crash
stores every acknowledged call exactly once.
"""

from faultprint_collector.spool._replay import Replayer
from faultprint_collector.spool._segment import Record
from faultprint_collector.spool._spool import (
    FSYNC_POLICIES,
    RecordTooLarge,
    Spool,
    SpoolError,
    SpoolFull,
    refusal,
)

__all__ = [
    "FSYNC_POLICIES",
    "Record",
    "RecordTooLarge",
    "Replayer",
    "Spool",
    "SpoolError",
    "SpoolFull",
    "refusal",
]
