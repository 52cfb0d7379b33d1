"""The on-disk record format of spool segments.

A segment is a file of framed records, appended in sequence order::

    magic   4 bytes  b"FPS1"
    length  u32      payload bytes
    rows    u32      call rows in the payload
    seq     u64      sequence number, strictly increasing across segments
    crc     u32      CRC-32 of length, rows, seq and the payload
    payload length bytes

A record is valid only when its header is complete, the magic matches and
the CRC agrees; a crash can leave a torn record only at the tail of the
newest segment, where recovery truncates it (it was never acknowledged,
because acknowledgement waits for the append to complete).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

MAGIC = b"FPS1"
HEADER = struct.Struct("<4sIIQI")
#: a record larger than this is treated as corruption, not an allocation
MAX_RECORD_BYTES = 1 << 30


@dataclass(frozen=True, slots=True)
class Record:
    """One spooled batch: its sequence number, row count and payload."""

    seq: int
    rows: int
    payload: bytes


def encode(seq: int, rows: int, payload: bytes) -> bytes:
    """Frame one record (header + payload)."""
    body = struct.pack("<IIQ", len(payload), rows, seq)
    crc = zlib.crc32(payload, zlib.crc32(body))
    return HEADER.pack(MAGIC, len(payload), rows, seq, crc) + payload


def read_record(handle: BinaryIO) -> Record | None:
    """Read the record at HANDLE's position; None when absent, torn or corrupt.

    On None the position is undefined; callers seek back to where they were.
    """
    header = handle.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    magic, length, rows, seq, crc = HEADER.unpack(header)
    if magic != MAGIC or length > MAX_RECORD_BYTES:
        return None
    payload = handle.read(length)
    if len(payload) < length:
        return None
    if zlib.crc32(payload, zlib.crc32(header[4:20])) != crc:
        return None
    return Record(seq, rows, payload)


def scan(handle: BinaryIO) -> Iterator[tuple[int, Record]]:
    """Yield (offset, record) for every valid record from the start of HANDLE.

    Stops at the first invalid record; ``handle.tell()`` is then undefined,
    and the offset after the last yielded record is where valid data ends.
    """
    handle.seek(0)
    offset = 0
    while True:
        record = read_record(handle)
        if record is None:
            return
        yield offset, record
        offset += HEADER.size + len(record.payload)
