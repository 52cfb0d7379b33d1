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
- a segment is deleted only when every record in it is committed (stored);
- an append is acknowledged only while the directory it was written to is
  still the spool's: when the directory (or a segment) is deleted under a
  running collector, the writer notices before and after each group commit,
  refuses the group it wrote to the deleted file, recreates the directory
  (taking its lock again) and goes on in it; the records that were only in
  the deleted files are counted in ``lost_records`` and skipped, never
  waited for.

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
#: the file of a spool directory its one owner holds locked (flock)
LOCK_FILE = "lock"
SEGMENT_SUFFIX = ".seg"
#: how often an idle writer checks that its directory was not deleted
CHECK_INTERVAL_S = 2.0


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
        #: records acknowledged, then lost with files deleted under the spool
        self.lost_records = 0
        #: the latest failure of the spool's directory, and when (time.time())
        self.last_error = ""
        self.last_error_at = 0.0
        self._lock_handle = self._lock_directory()
        self._directory_id = _identity(self.directory)
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
        self._reader: tuple[_Segment, BinaryIO, int] | None = None  # segment, handle, next seq
        #: seq ranges lost with deleted segments, not yet passed by ``committed``
        self._lost: list[tuple[int, int]] = []
        #: why the writer cannot write now / the cursor cannot be saved ("": it can)
        self._write_fault = self._cursor_fault = ""
        self._check_requested = False
        #: one cursor write at a time (the replayer's and the writer's repairs)
        self._cursor_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="faultprint-spool", daemon=True)
        self._thread.start()

    # -- opening ---------------------------------------------------------

    def _lock_directory(self) -> BinaryIO:
        """Create the directory if needed and lock it for this process alone."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle = (self.directory / LOCK_FILE).open("a+b")
        except OSError as exc:
            raise SpoolError(f"cannot open spool directory {self.directory}: {exc}") from exc
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            raise SpoolError(_in_use(self.directory)) from exc
        return handle

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
            if self._cursor_fault:
                # Replay cannot progress: what is appended now might never
                # leave the spool, so it is refused (the caller retries).
                raise SpoolError(self._cursor_fault)
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
        last_sync = last_check = time.monotonic()
        while True:
            with self._cond:
                while not self._queue and not self._closed and not self._check_requested:
                    wait = CHECK_INTERVAL_S - (time.monotonic() - last_check)
                    if self.fsync == "interval" and self._dirty:
                        wait = min(wait, self.fsync_interval_s - (time.monotonic() - last_sync))
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                batch, self._queue = self._queue, []
                closing = self._closed
                check, self._check_requested = self._check_requested, False
            if batch:
                self._write(batch)  # checks the directory itself
            elif check or time.monotonic() - last_check >= CHECK_INTERVAL_S:
                with contextlib.suppress(SpoolError, OSError):  # recorded as the write fault
                    self._ensure_directory(scan=check)
                last_check = time.monotonic()
            if self._dirty and (closing or time.monotonic() - last_sync >= self.fsync_interval_s):
                with contextlib.suppress(OSError):  # the next group commit meets it again
                    self._sync()
                last_sync = time.monotonic()
            if closing and not batch:
                return

    def _write(self, batch: list[_Append]) -> None:
        error: BaseException | None = None
        try:
            self._ensure_directory()
            self._ensure_segment()
            segment = self._segments[-1]
            before = (self._next_seq, segment.size, segment.last_seq, self._appended)
            try:
                for item in batch:
                    assert self._fd is not None
                    seq = self._next_seq
                    data = encode(seq, item.rows, item.payload)
                    _write_all(self._fd, data)
                    self._next_seq += 1
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
                if not self._intact():
                    raise SpoolError(f"the spool directory {self.directory} was deleted")
            except BaseException:
                self._withdraw(segment, *before)
                raise
            self._set_write_fault("")
        except BaseException as exc:  # every waiting caller learns of it
            error = exc
            self._set_write_fault(f"spool write failed: {exc}")
        with self._cond:
            self._queued_bytes -= sum(HEADER.size + len(i.payload) for i in batch)
            if error is None:
                self.durable_seq = batch[-1].seq
            self._cond.notify_all()
        for item in batch:
            item.error = error
            item.done.set()

    def _withdraw(
        self, segment: _Segment, seq: int, size: int, last_seq: int, appended: int
    ) -> None:
        """Undo a group commit that failed: its callers are told it was not written."""
        with self._cond:
            while self._ends and self._ends[-1][0] >= seq:
                self._ends.pop()
            self._appended = appended
        segment.last_seq = last_seq
        try:
            assert self._fd is not None
            os.ftruncate(self._fd, size)
            segment.size = size
            self._next_seq = seq
        except (OSError, AssertionError):
            # The bytes may stay in the file: their seqs are never reused,
            # and readers stop at the segment's size, before them.
            segment.size = size
            self._close_segment()

    def _close_segment(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _set_write_fault(self, fault: str) -> None:
        """Record (and log once) that appends fail, or that they work again."""
        if fault and not self._write_fault:
            log.error("the spool refuses appends: %s", fault)
        elif self._write_fault and not fault:
            log.warning("the spool %s takes appends again", self.directory)
        self._write_fault = fault
        if fault:
            self._note_error(fault)

    def _note_error(self, message: str) -> None:
        self.last_error, self.last_error_at = message, time.time()

    @property
    def fault(self) -> str:
        """Why appends are refused now (the directory or the cursor), or ""."""
        return self._write_fault or self._cursor_fault

    def request_check(self) -> None:
        """Ask the writer to check the directory and its segments (files deleted?)."""
        with self._cond:
            self._check_requested = True
            self._cond.notify_all()

    def _intact(self) -> bool:
        """Whether the directory and open segment are still the spool's (cheap)."""
        try:
            if os.fstat(self._lock_handle.fileno()).st_nlink == 0:
                return False
            if _identity(self.directory) != self._directory_id:
                return False
            return self._fd is None or os.fstat(self._fd).st_nlink > 0
        except OSError:
            return False

    def _ensure_directory(self, *, scan: bool = False) -> None:
        """Writer thread: recreate the directory if it was deleted, forget lost segments.

        SCAN also looks for segments deleted from an intact directory. Raises
        SpoolError when the directory cannot be recreated (the write fault).
        """
        if self._intact() and not scan:
            return
        try:
            if not self._intact():
                self._close_segment()
                lock_lost = os.fstat(self._lock_handle.fileno()).st_nlink == 0
                if lock_lost or _identity(self.directory) != self._directory_id:
                    self._recreate_directory()
            lost = [s for s in self._segments if not s.path.exists()]
            if lost and lost[-1] is self._segments[-1]:
                self._close_segment()  # the next group commit opens a new one
            if lost:
                self._forget(lost)
        except (OSError, SpoolError) as exc:
            self._set_write_fault(str(exc))
            raise SpoolError(str(exc)) from exc
        self._set_write_fault("")

    def _recreate_directory(self) -> None:
        try:
            handle = self._lock_directory()
        except SpoolError as exc:
            raise SpoolError(f"the spool directory was deleted and {exc}") from exc
        try:
            directory_id = _identity(self.directory)
            if not (self.directory / "spool.id").exists():
                # the same id: replays of pending ranges keep their tokens
                _atomic_write(self.directory / "spool.id", self.spool_id.encode())
        except BaseException:
            handle.close()
            raise
        old, self._lock_handle, self._directory_id = self._lock_handle, handle, directory_id
        old.close()
        message = f"the spool directory {self.directory} was deleted while in use; recreated it"
        log.error("%s", message)
        self._note_error(message)

    def _forget(self, lost: list[_Segment]) -> None:
        """Drop segments whose files are gone; their unstored records are lost."""
        ranges = []
        with self._cursor_lock:
            with self._cond:
                self._segments = [s for s in self._segments if s not in lost]
                for segment in lost:
                    first = max(segment.first_seq, self.committed + 1)
                    if segment.last_seq >= first:
                        ranges.append((first, segment.last_seq))
                self._lost = sorted(self._lost + ranges)
                self._pass_lost()
                committed, pending = self.committed, self.pending
                self._cond.notify_all()
            with contextlib.suppress(OSError):  # the replayer saves it again
                self._save_cursor(committed, pending)
        count = sum(last - first + 1 for first, last in ranges)
        self.lost_records += count
        names = ", ".join(s.path.name for s in lost)
        message = (
            f"spool segment(s) {names} deleted while in use: {count} acknowledged record(s) "
            f"not yet stored are lost"
            + (f" (seq {ranges[0][0]}..{ranges[-1][1]})" if ranges else "")
        )
        (log.error if count else log.warning)("%s", message)
        self._note_error(message)

    def _pass_lost(self) -> None:
        """Under the lock: move ``committed`` past lost records it reached."""
        while self._lost and self._lost[0][0] <= self.committed + 1:
            self.committed = max(self.committed, self._lost.pop(0)[1])
        while self._ends and self._ends[0][0] <= self.committed:
            self._committed_bytes = self._ends.popleft()[1]

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
                # past the size: withdrawn bytes of a failed group commit
                record = read_record(handle) if position < segment.size else None
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
                    self._reader = (segment, handle, seq)
                    if record is None:
                        break
                    return out
                if record.seq < seq:
                    continue
                out.append(record)
                rows += record.rows
                size += len(record.payload)
                seq = record.seq + 1
                self._reader = (segment, handle, seq)
        return out

    def _reader_at(self, segment: _Segment, seq: int) -> BinaryIO:
        """A handle on SEGMENT positioned at record SEQ (or the nearest after)."""
        if self._reader is not None:
            current, handle, next_seq = self._reader
            if current is segment and next_seq == seq:
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
        self._reader = (segment, handle, seq)
        return handle

    def begin(self, first: int, last: int) -> None:
        """Record (durably) that records FIRST..LAST are being inserted.

        Raises OSError when the cursor cannot be saved; nothing changed then.
        """
        with self._cursor_lock:
            self._save_cursor(self.committed, (first, last))
            self.pending = (first, last)

    def commit(self, last: int) -> None:
        """Mark every record up to LAST stored; delete fully stored segments.

        Raises OSError when the cursor cannot be saved; nothing changed then.
        """
        with self._cursor_lock:
            self._save_cursor(max(self.committed, last), None)
            with self._cond:
                self.committed = max(self.committed, last)
                self.pending = None
        with self._cond:
            self._pass_lost()
            last = self.committed
            done = [s for s in self._segments[:-1] if s.last_seq <= last]
            tail = self._segments[-1] if self._segments else None
            # The newest segment is still appended to unless the writer closed it.
            if tail is not None and self._fd is None and 0 < tail.last_seq <= last:
                done.append(tail)
            self._segments = [s for s in self._segments if s not in done]
            self._cond.notify_all()
        for segment in done:
            if self._reader is not None and self._reader[0] is segment:
                self._reader[1].close()
                self._reader = None
            try:
                segment.path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:  # stored already: the next start deletes it
                log.warning("could not delete replayed spool segment %s: %s", segment.path, exc)

    def _save_cursor(self, committed: int, pending: tuple[int, int] | None) -> None:
        """Write the cursor (under ``_cursor_lock``); a failure refuses appends until one works."""
        path = self.directory / "cursor.json"
        data = {"committed": committed, "pending": list(pending or ()) or None}
        try:
            _atomic_write(path, json.dumps(data).encode())
        except OSError as exc:
            self._cursor_fault = f"the spool cannot save its replay cursor {path}: {exc}"
            self._note_error(self._cursor_fault)
            raise
        if self._cursor_fault:
            log.warning("the spool %s saves its replay cursor again", self.directory)
            self._cursor_fault = ""

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


def _in_use(directory: Path) -> str:
    return f"the spool {directory} is in use by another collector process"


def refusal(directory: str | os.PathLike[str]) -> str | None:
    """Why a spool could not be opened at DIRECTORY, found without creating or
    locking anything (None: no reason found).

    ``serve`` asks before it opens the store, so that a start the spool
    refuses makes no store; opening the spool itself says the rest.
    """
    from faultprint_collector.store._client import lock_held

    path = Path(directory)
    if path.exists() and not path.is_dir():
        return f"cannot open spool directory {path}: it is not a directory"
    if lock_held(path / LOCK_FILE):
        return _in_use(path)
    return None


def _identity(path: Path) -> tuple[int, int]:
    """What tells a directory from another created at the same path."""
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


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
