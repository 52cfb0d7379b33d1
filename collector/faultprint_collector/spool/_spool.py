"""A durable, ordered spool of accepted batches on local disk.

Invariants:

- every appended record gets the next sequence number; sequence numbers
  are never reused, even after every segment was replayed and deleted (the
  cursor remembers the highest one);
- ``append`` returns only once the record is written and, unless the
  policy is ``interval``, fsynced: a caller may acknowledge its batch then;
  when it raises, the record is not written, then or later (a caller that
  refuses its batch must not find it stored behind its back);
- records are handed to the reader in sequence order, only once durable;
- a segment is deleted only when every record in it is committed (stored).

Appends from many threads are group-committed by one writer thread: one
write and one fsync for everything that queued up meanwhile, so durability
costs one fsync per group, not per request.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from faultprint_collector.spool._segment import HEADER, Record, encode, read_record, scan

log = logging.getLogger("faultprint.spool")

FSYNC_POLICIES = ("always", "batch", "interval")
SEGMENT_SUFFIX = ".seg"


class SpoolError(RuntimeError):
    """The spool cannot be opened or written; the message says why."""


class SpoolFull(SpoolError):
    """The spool holds its maximum number of bytes; retry later."""


class RecordTooLarge(SpoolError):
    """One record is larger than the whole spool: it can never be appended."""


@dataclass(eq=False)  # an append is itself, not its payload: compared by identity
class _Append:
    payload: bytes
    rows: int
    done: threading.Event = field(default_factory=threading.Event)
    seq: int = 0
    error: BaseException | None = None


@dataclass
class _Segment:
    first_seq: int
    path: Path
    size: int
    last_seq: int = 0


class Spool:
    """Append-only segments of framed records plus a replay cursor.

    ``fsync`` is one of ``always`` (fsync every record), ``batch`` (one fsync
    per group commit, before any of its appends return; the default) or
    ``interval`` (fsync every ``fsync_interval_s``; an acknowledged batch
    survives a process crash but not a power loss within the interval).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = 1 << 30,
        segment_bytes: int = 64 << 20,
        fsync: str = "batch",
        fsync_interval_s: float = 0.2,
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise SpoolError(f"fsync policy must be one of {', '.join(FSYNC_POLICIES)}")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.fsync_interval_s = fsync_interval_s
        self.corrupt_bytes = 0
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_handle = (self.directory / "lock").open("a+b")
        except OSError as exc:
            raise SpoolError(f"cannot open spool directory {self.directory}: {exc}") from exc
        try:
            fcntl.flock(self._lock_handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._lock_handle.close()
            raise SpoolError(
                f"the spool {self.directory} is in use by another collector process"
            ) from exc
        self.spool_id = self._load_id()
        self.committed, self.pending = self._load_cursor()
        self._segments: list[_Segment] = []
        # (seq, cumulative bytes appended through it) of records not yet
        # committed: what the capacity limit counts
        self._ends: deque[tuple[int, int]] = deque()
        self._appended = self._committed_bytes = 0
        self._recover()
        last = max([s.last_seq for s in self._segments] + [self.committed])
        if self.pending:
            last = max(last, self.pending[1])
        self._next_seq = last + 1
        self.durable_seq = max((s.last_seq for s in self._segments), default=self.committed)
        self._fd: int | None = None
        self._queue: list[_Append] = []
        self._queued_bytes = 0
        self._cond = threading.Condition()
        self._closed = False
        self._dirty = False
        self._reader: tuple[Path, BinaryIO, int] | None = None  # path, handle, next seq
        self._thread = threading.Thread(target=self._run, name="faultprint-spool", daemon=True)
        self._thread.start()

    # -- opening ---------------------------------------------------------

    def _load_id(self) -> str:
        path = self.directory / "spool.id"
        if path.exists():
            text = path.read_text().strip()
            if text:
                return text
        spool_id = secrets.token_hex(8)
        _atomic_write(path, spool_id.encode())
        return spool_id

    def _load_cursor(self) -> tuple[int, tuple[int, int] | None]:
        path = self.directory / "cursor.json"
        if not path.exists():
            return 0, None
        try:
            data = json.loads(path.read_text())
            pending = data.get("pending")
            return int(data["committed"]), (int(pending[0]), int(pending[1])) if pending else None
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise SpoolError(f"spool cursor {path} is unreadable: {exc}") from exc

    def _recover(self) -> None:
        """Index segments, truncate a torn tail, drop fully replayed segments."""
        paths = sorted(self.directory.glob(f"*{SEGMENT_SUFFIX}"))
        for path in paths:
            with path.open("r+b") as handle:
                end, last_seq = 0, 0
                for offset, record in scan(handle):
                    end, last_seq = offset + HEADER.size + len(record.payload), record.seq
                    if record.seq > self.committed:
                        self._appended += HEADER.size + len(record.payload)
                        self._ends.append((record.seq, self._appended))
                size = handle.seek(0, os.SEEK_END)
                if end < size:
                    # A torn tail is an append that never returned (so was
                    # never acknowledged); anything else is damage to report.
                    if path != paths[-1]:
                        log.error("spool segment %s is damaged after byte %d", path, end)
                    self.corrupt_bytes += size - end
                    handle.truncate(end)
                    os.fsync(handle.fileno())
            first = int(path.name.removesuffix(SEGMENT_SUFFIX))
            if end == 0 or last_seq <= self.committed:
                path.unlink()
                continue
            self._segments.append(_Segment(first, path, end, last_seq))
        _fsync_dir(self.directory)

    # -- appending -------------------------------------------------------

    @property
    def size_bytes(self) -> int:
        """Bytes of records not yet committed (what ``max_bytes`` limits)."""
        return self._appended - self._committed_bytes

    @property
    def disk_bytes(self) -> int:
        """Bytes held on disk by segments (committed records included)."""
        return sum(s.size for s in self._segments)

    @property
    def pending_rows_hint(self) -> int:
        """Sequence numbers durable but not yet committed (a backlog measure)."""
        return max(0, self.durable_seq - self.committed)

    def append(self, payload: bytes, rows: int, timeout: float = 30.0) -> int:
        """Append one record; return its sequence number once it is durable.

        Raises RecordTooLarge when the record alone exceeds ``max_bytes``,
        SpoolFull when the spool holds too much to take it now, and
        SpoolError when the writer did not take it within TIMEOUT seconds
        (then the record is withdrawn: it is never written).
        """
        item = _Append(payload, rows)
        incoming = HEADER.size + len(payload)
        if incoming > self.max_bytes:
            raise RecordTooLarge(
                f"a record of {incoming} bytes can never fit in a spool of {self.max_bytes}"
            )
        with self._cond:
            if self._closed:
                raise SpoolError("the spool is closed")
            if self.size_bytes + self._queued_bytes + incoming > self.max_bytes:
                raise SpoolFull(
                    f"spool holds {self.size_bytes} bytes, the limit is {self.max_bytes}"
                )
            self._queue.append(item)
            self._queued_bytes += incoming
            self._cond.notify_all()
        if not item.done.wait(timeout):
            with self._cond:
                queued = any(waiting is item for waiting in self._queue)
                if queued:
                    self._queue = [waiting for waiting in self._queue if waiting is not item]
                    self._queued_bytes -= incoming
            if queued:
                raise SpoolError(
                    f"the spool did not take the append within {timeout:g}s; it was not written"
                )
            # The writer holds it already: the bytes are on their way to disk.
            # Refusing now would leave a record stored that its caller
            # answered as failed (and whose retry then counts twice), so the
            # caller learns the real outcome, as late as the disk makes it.
            item.done.wait()
        if item.error is not None:
            raise SpoolError(f"spool append failed: {item.error}") from item.error
        return item.seq

    def _run(self) -> None:
        last_sync = time.monotonic()
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    wait = None
                    if self.fsync == "interval" and self._dirty:
                        wait = max(0.0, self.fsync_interval_s - (time.monotonic() - last_sync))
                        if wait == 0.0:
                            break
                    self._cond.wait(wait)
                batch, self._queue = self._queue, []
                closing = self._closed
            if batch:
                self._write(batch)
            if self._dirty and (closing or time.monotonic() - last_sync >= self.fsync_interval_s):
                self._sync()
                last_sync = time.monotonic()
            if closing and not batch:
                return

    def _write(self, batch: list[_Append]) -> None:
        error: BaseException | None = None
        try:
            for item in batch:
                self._ensure_segment()
                assert self._fd is not None
                seq = self._next_seq
                data = encode(seq, item.rows, item.payload)
                _write_all(self._fd, data)
                self._next_seq += 1
                segment = self._segments[-1]
                segment.size += len(data)
                segment.last_seq = seq
                with self._cond:
                    self._appended += len(data)
                    self._ends.append((seq, self._appended))
                item.seq = seq
                self._dirty = True
                if self.fsync == "always":
                    self._sync()
            if self.fsync == "batch":
                self._sync()
        except BaseException as exc:  # every waiting caller learns of it
            error = exc
            log.exception("spool write failed")
        with self._cond:
            self._queued_bytes -= sum(HEADER.size + len(i.payload) for i in batch)
            if error is None:
                self.durable_seq = batch[-1].seq
            self._cond.notify_all()
        for item in batch:
            item.error = error
            item.done.set()

    def _ensure_segment(self) -> None:
        if self._fd is not None and self._segments[-1].size < self.segment_bytes:
            return
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
        path = self.directory / f"{self._next_seq:020d}{SEGMENT_SUFFIX}"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        _fsync_dir(self.directory)
        with self._cond:
            self._segments.append(_Segment(self._next_seq, path, 0, 0))

    def _sync(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
        self._dirty = False

    # -- reading and committing -----------------------------------------

    def wait_for_records(self, after: int, timeout: float) -> bool:
        """Wait until a record after seq AFTER is durable; True if there is one."""
        with self._cond:
            if self.durable_seq <= after and not self._closed:
                self._cond.wait(timeout)
            return self.durable_seq > after

    def read(
        self, after: int, *, max_rows: int, max_bytes: int, through: int | None = None
    ) -> list[Record]:
        """Durable records with seq > AFTER, in order, within the limits.

        With THROUGH, exactly the records up to that seq (a replay of an
        interrupted insert must resend the very same batch). At least one
        record is returned when one is available.
        """
        limit = self.durable_seq if through is None else min(through, self.durable_seq)
        out: list[Record] = []
        rows = size = 0
        seq = after + 1
        with self._cond:
            segments = [s for s in self._segments if s.last_seq >= seq]
        for segment in segments:
            handle = self._reader_at(segment, seq)
            while True:
                position = handle.tell()
                record = read_record(handle)
                full = (
                    bool(out)
                    and through is None
                    and (
                        rows + (record.rows if record else 0) > max_rows
                        or size + (len(record.payload) if record else 0) > max_bytes
                    )
                )
                if record is None or record.seq > limit or full:
                    # Not consumed: the next read starts at this record again.
                    handle.seek(position)
                    self._reader = (segment.path, handle, seq)
                    if record is None:
                        break
                    return out
                if record.seq < seq:
                    continue
                out.append(record)
                rows += record.rows
                size += len(record.payload)
                seq = record.seq + 1
                self._reader = (segment.path, handle, seq)
        return out

    def _reader_at(self, segment: _Segment, seq: int) -> BinaryIO:
        """A handle on SEGMENT positioned at record SEQ (or the nearest after)."""
        if self._reader is not None:
            path, handle, next_seq = self._reader
            if path == segment.path and next_seq == seq:
                return handle
            handle.close()
            self._reader = None
        handle = segment.path.open("rb")
        position = 0
        while True:
            record = read_record(handle)
            if record is None or record.seq >= seq:
                break
            position = handle.tell()
        handle.seek(position)
        self._reader = (segment.path, handle, seq)
        return handle

    def begin(self, first: int, last: int) -> None:
        """Record (durably) that records FIRST..LAST are being inserted."""
        self.pending = (first, last)
        self._save_cursor()

    def commit(self, last: int) -> None:
        """Mark every record up to LAST stored; delete fully stored segments."""
        self.committed = last
        self.pending = None
        self._save_cursor()
        with self._cond:
            while self._ends and self._ends[0][0] <= last:
                self._committed_bytes = self._ends.popleft()[1]
            done = [s for s in self._segments[:-1] if s.last_seq <= last]
            tail = self._segments[-1] if self._segments else None
            # The newest segment is still appended to unless the writer closed it.
            if tail is not None and self._fd is None and 0 < tail.last_seq <= last:
                done.append(tail)
            self._segments = [s for s in self._segments if s not in done]
            self._cond.notify_all()
        for segment in done:
            if self._reader is not None and self._reader[0] == segment.path:
                self._reader[1].close()
                self._reader = None
            with contextlib.suppress(FileNotFoundError):
                segment.path.unlink()

    def _save_cursor(self) -> None:
        data = {"committed": self.committed, "pending": list(self.pending or ()) or None}
        _atomic_write(self.directory / "cursor.json", json.dumps(data).encode())

    def close(self) -> None:
        """Finish queued appends, fsync, and release the directory."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=60)
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
        if self._reader is not None:
            self._reader[1].close()
            self._reader = None
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_handle.fileno(), fcntl.LOCK_UN)
        self._lock_handle.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)
