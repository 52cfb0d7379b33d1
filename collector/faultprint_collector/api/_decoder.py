"""Decoding request bodies off the event loop: worker processes or threads.

Decoding, classification, fingerprinting and Native encoding are pure
Python and hold the GIL; in worker processes they use every core while
the main process only moves bytes (body in, spool payload out) and stays
responsive. A body that makes a worker die costs that request a 400, never
the collector, nor the requests decoding beside it: a dying worker breaks
the whole pool and fails every body in it, so each of those is decoded
again, one at a time in a process of its own, where a second death can
only be its own, if the body caused it: a process that crashed (a fatal
signal it raises itself, such as SIGSEGV or SIGABRT, or an exit of its own
with a failing status) convicts its body, while one killed from outside
(SIGKILL from the OOM killer or an operator, SIGTERM) does not, and its
body is decoded alone once more, then answered 503 so that the client
retries. A process that ends with status 0 never decoded the body (its
start failed): 503 too. With ``decode_workers = 0`` everything runs in
threads of the main process (one core).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

from fastapi.concurrency import run_in_threadpool

from faultprint_collector.ingest import (
    DEFAULT_RETENTION_DAYS,
    OTLPDecodeError,
    Scrubber,
    decode_body,
)
from faultprint_collector.store._writer import RowEncoder

log = logging.getLogger("faultprint.ingest")

#: signals a process gets from its own code when it crashes (a fault, an
#: abort): the body it was decoding is to blame; any other signal came from
#: outside (SIGKILL, SIGTERM, ...) and says nothing about the body
CRASH_SIGNALS = frozenset(
    {signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGFPE, signal.SIGILL, signal.SIGSYS}
)
#: decodings alone of one body whose process was killed from outside
ALONE_ATTEMPTS = 2
#: how long ``Decoder.close`` lets workers finish before killing them
CLOSE_TIMEOUT_S = 10.0


@dataclass
class DecodeResult:
    """What one body became: a spool payload, or the reason it was refused."""

    payload: bytes = b""
    rows: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    #: model-call spans that recorded again a call another span recorded
    #: (``ingest.repeated_calls``), stored once
    repeated: int = 0
    #: non-zero: the request is refused with this HTTP status and reason
    status: int = 0
    reason: str = ""


def decode_request(
    body: bytes,
    content_type: str,
    encoding: str,
    project: str,
    scrubber: Scrubber,
    encoder: RowEncoder,
    max_decompressed: int,
    retention_days: int = DEFAULT_RETENTION_DAYS,
) -> DecodeResult:
    """Decode, classify, fingerprint and encode one body (pure; any process).

    Spans that start before the store's retention (``retention_days``) are
    rejected: the store would drop them.
    """
    try:
        batch = decode_body(
            body,
            content_type,
            encoding,
            project,
            scrubber,
            max_decompressed,
            retention_days=retention_days,
        )
    except OTLPDecodeError as exc:
        return DecodeResult(status=exc.status, reason=exc.reason)
    payload, bad = encoder.encode_valid(batch.records)
    errors = batch.errors
    for index in bad:
        if len(errors) < 5:
            errors.append(f"span {batch.records[index].span_id} has values its columns cannot hold")
    return DecodeResult(
        payload,
        len(batch.records) - len(bad),
        batch.rejected + len(bad),
        errors,
        repeated=batch.repeated,
    )


#: what ``_decode_in_worker`` takes: body, content type, content encoding, project
_Request = tuple[bytes, str, str, str]

_worker: tuple[Scrubber, RowEncoder, int, int] | None = None


def _init_worker(
    column_types: dict[str, str],
    table: str,
    scrub_patterns: list[str],
    scrub: bool,
    max_decompressed: int,
    retention_days: int,
    parent: int,
) -> None:
    global _worker
    # The parent decides when to stop; Ctrl-C in a terminal must not kill
    # workers under a request.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A collector killed outright (SIGKILL) cannot stop its workers; they
    # notice being orphaned and leave instead of holding memory forever.
    # (the collector's pid comes as an argument: a worker that starts after
    # its collector died must notice too)
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    _worker = (
        Scrubber(scrub_patterns, enabled=scrub),
        RowEncoder(column_types, table),
        max_decompressed,
        retention_days,
    )
    # clickhouse-connect looks for pandas / numpy on first use; do it now,
    # not under the first request
    from clickhouse_connect.driver import options

    _ = options.pd, options.np


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _decode_in_worker(body: bytes, content_type: str, encoding: str, project: str) -> DecodeResult:
    assert _worker is not None
    scrubber, encoder, limit, retention_days = _worker
    return decode_request(
        body, content_type, encoding, project, scrubber, encoder, limit, retention_days
    )


def _ping(_: int) -> int:
    return os.getpid()


def killed_from_outside(exitcode: int) -> bool:
    """Whether a dead process's EXITCODE says it was killed, not crashed by its work.

    (A pool whose dead processes left no exit code counts as killed too,
    where it is asked: a 503 can be retried, a 400 loses the calls.)
    """
    return exitcode < 0 and -exitcode not in CRASH_SIGNALS


class _Processes(SpawnContext):
    """The spawn context, remembering the processes a pool starts through it.

    ``ProcessPoolExecutor`` starts its workers with ``mp_context.Process``
    and does not say how one died; the processes do (``exitcode``), and can
    be stopped when the pool's own shutdown would wait forever.
    """

    def __init__(self) -> None:
        super().__init__()
        self.started: list[SpawnProcess] = []

    def Process(self, *args: Any, **kwargs: Any) -> SpawnProcess:  # type: ignore[override]
        process = SpawnProcess(*args, **kwargs)
        self.started.append(process)
        return process


class _Pool(ProcessPoolExecutor):
    """A spawn process pool that knows its processes."""

    def __init__(self, workers: int, initargs: tuple[Any, ...]) -> None:
        self.processes = _Processes()
        # spawn, never fork: the parent runs the embedded engine's threads
        super().__init__(
            workers, mp_context=self.processes, initializer=_init_worker, initargs=initargs
        )

    def _join(self, timeout: float) -> None:
        """Wait up to TIMEOUT seconds in all for the pool's processes to end.

        The pool's own manager thread joins a broken pool's processes too.
        When it reaps a process first, this thread's join returns before
        the manager has stored the exit code: wait for the code, not only
        for the end.
        """
        deadline = time.monotonic() + timeout
        for process in self.processes.started:
            if process.pid is None:  # never started
                continue
            while process.exitcode is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                process.join(min(left, 0.05))
                if process.exitcode is None:  # alive, or reaped by the manager
                    time.sleep(0.005)  # (which then stores the code)

    def exit_codes(self, timeout: float = 5.0) -> list[int]:
        """The exit codes of the pool's dead processes (after a collapse)."""
        self._join(timeout)
        return [p.exitcode for p in self.processes.started if p.exitcode is not None]

    def stop(self, timeout: float) -> None:
        """Shut down without waiting more than about TIMEOUT seconds.

        A worker killed while writing its result can leave the pool's
        manager thread reading forever; ending the workers ends that read.
        """
        with contextlib.suppress(Exception):
            self.shutdown(wait=False, cancel_futures=True)
        self._join(timeout)
        for process in self.processes.started:
            if process.exitcode is None:
                with contextlib.suppress(Exception):
                    process.kill()
                    process.join(2)


def default_workers() -> int:
    """Worker processes when not configured: one per core, none on one core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return 0 if (cores or 1) < 2 else min(cores or 1, 8)


class Decoder:
    """Runs ``decode_request`` in WORKERS processes (0: in threads, bounded)."""

    #: what a worker process runs for one body; a module-level function, as
    #: it reaches the process by name
    work: Callable[[bytes, str, str, str], DecodeResult] = staticmethod(_decode_in_worker)

    def __init__(
        self,
        encoder: RowEncoder,
        scrubber: Scrubber,
        *,
        workers: int,
        max_decompressed: int,
        scrub_patterns: list[str],
        scrub: bool,
        retention_days: int = DEFAULT_RETENTION_DAYS,
    ) -> None:
        self.encoder = encoder
        self.retention_days = retention_days
        self.scrubber = scrubber
        self.workers = workers
        self.max_decompressed = max_decompressed
        self._init_args = (
            encoder.type_names,
            encoder.table,
            scrub_patterns,
            scrub,
            max_decompressed,
            retention_days,
            os.getpid(),
        )
        #: in-process decoding holds the GIL: more threads only add memory
        self._slots = threading.Semaphore(2)
        self._pool: _Pool | None = None
        self._lock = threading.Lock()
        #: bodies caught in a pool's collapse, decoded again one at a time
        #: in a one-process pool of their own (started when needed)
        self._alone_pool: _Pool | None = None
        self._alone_turn = asyncio.Lock()
        self._suspects = 0
        self._closed = False
        if workers > 0:
            self._pool = self._start(workers)

    def _new_pool(self, workers: int) -> _Pool:
        return _Pool(workers, self._init_args)

    def _start(self, workers: int) -> _Pool:
        pool = self._new_pool(workers)
        # start every worker now (they import in the background), not under
        # the first requests; start-up does not wait for them
        for n in range(workers):
            pool.submit(_ping, n)
        return pool

    async def decode(
        self, body: bytes, content_type: str, encoding: str, project: str
    ) -> DecodeResult:
        """Decode one body; never raises for anything the body holds.

        Refused with 400 when the body crashed a decoder process twice
        (once among others, once alone); 503 when the process decoding it
        alone was killed from outside (``ALONE_ATTEMPTS`` times), or it
        could not be decoded again because the decoder is stopping or
        cannot start a process.
        """
        args: _Request = (body, content_type, encoding, project)
        if self.workers <= 0:
            return await run_in_threadpool(self._decode_here, *args)
        try:
            return await self._decode_in_pool(args)
        except BrokenProcessPool:
            pass
        for _ in range(ALONE_ATTEMPTS):
            try:
                return await self._decode_alone(args)
            except _KilledFromOutside as exc:
                log.warning("a decoder process was killed from outside (%s); decoding again", exc)
            except _CannotStart:
                log.error("decoder processes end as they start (exit code 0); see their log")
                return DecodeResult(
                    status=503, reason="the decoder cannot start its processes, retry later"
                )
            except BrokenProcessPool:
                return DecodeResult(
                    status=400, reason="the body could not be decoded: it made the decoder crash"
                )
            except (RuntimeError, OSError) as exc:
                log.error("could not decode a body again after a decoder crash: %s", exc)
                return DecodeResult(status=503, reason="the decoder is restarting, retry later")
        return DecodeResult(
            status=503,
            reason="the decoder process was killed from outside while decoding; retry later",
        )

    async def _decode_in_pool(self, args: _Request) -> DecodeResult:
        """Decode in the shared pool; BrokenProcessPool when a worker died under it."""
        # A pool read here may be shut down or broken by the time the body
        # is submitted (another request replaced it): then the body was not
        # under the collapse, and goes to the current pool.
        for _ in range(3):
            pool = self._pool
            if pool is None or self._closed:
                break
            try:
                future = pool.submit(self.work, *args)
            except BrokenProcessPool:
                self._replace(pool)
                continue
            except RuntimeError:  # shut down after it was replaced
                continue
            try:
                return await asyncio.wrap_future(future)
            except BrokenProcessPool:
                self._replace(pool)
                raise
        return DecodeResult(status=503, reason="the decoder is restarting, retry later")

    def _replace(self, pool: _Pool) -> None:
        """Put a new pool in place of POOL, which a dying worker broke."""
        with self._lock:
            if self._pool is not pool or self._closed:
                return
            log.error("a decoder process died; restarting the decoder pool")
            try:
                self._pool = self._start(self.workers)
            except OSError as exc:  # the broken pool stays; the next request tries again
                log.error("could not restart the decoder pool: %s", exc)
                return
        # No cancel_futures: the broken pool failed its futures already, and
        # a cancelled one would cancel the request awaiting it.
        pool.shutdown(wait=False)

    async def _decode_alone(self, args: _Request) -> DecodeResult:
        """Decode a body caught in a pool's collapse, alone in a process.

        One body at a time: if the process dies now, that body killed it.
        """
        self._suspects += 1
        try:
            async with self._alone_turn:
                if self._closed:
                    raise RuntimeError("the decoder is closed")
                if self._alone_pool is None:
                    self._alone_pool = self._new_pool(1)
                pool = self._alone_pool
                try:
                    return await asyncio.wrap_future(pool.submit(self.work, *args))
                except BrokenProcessPool:
                    self._alone_pool = None
                    pool.shutdown(wait=False)
                    codes = await asyncio.to_thread(pool.exit_codes)
                    if not codes or any(killed_from_outside(code) for code in codes):
                        raise _KilledFromOutside(_describe(codes)) from None
                    if all(code == 0 for code in codes):
                        # A worker exits 0 only before it decodes anything:
                        # its start failed (or its collector is gone).
                        raise _CannotStart() from None
                    raise
        finally:
            self._suspects -= 1
            if self._suspects == 0 and self._alone_pool is not None:
                # Collapses are rare: no process is kept waiting for the next.
                self._alone_pool.shutdown(wait=False)
                self._alone_pool = None

    def _decode_here(
        self, body: bytes, content_type: str, encoding: str, project: str
    ) -> DecodeResult:
        with self._slots:
            return decode_request(
                body,
                content_type,
                encoding,
                project,
                self.scrubber,
                self.encoder,
                self.max_decompressed,
                self.retention_days,
            )

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Stop the worker processes (killing those still running after TIMEOUT seconds)."""
        self._closed = True
        for pool in (self._pool, self._alone_pool):
            if pool is not None:
                pool.stop(timeout)
        self._pool = self._alone_pool = None


class _KilledFromOutside(BrokenProcessPool):
    """The process decoding a body alone was killed by a signal from outside."""


class _CannotStart(BrokenProcessPool):
    """The process to decode a body alone ended before decoding: its start failed."""


def _describe(codes: list[int]) -> str:
    names = []
    for code in codes:
        if code < 0:
            with contextlib.suppress(ValueError):
                names.append(signal.Signals(-code).name)
                continue
        names.append(f"exit code {code}")
    return ", ".join(names) or "exit code unknown"
