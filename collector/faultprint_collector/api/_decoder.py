"""Decoding request bodies off the event loop: worker processes or threads.

Decoding, classification, fingerprinting and Native encoding are pure
Python and hold the GIL; in worker processes they use every core while
the main process only moves bytes (body in, spool payload out) and stays
responsive. A body that makes a worker die costs that request a 400, never
the collector. With ``decode_workers = 0`` everything runs in threads of
the main process (one core).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from fastapi.concurrency import run_in_threadpool

from faultprint_collector.ingest import OTLPDecodeError, Scrubber, decode_body
from faultprint_collector.store._writer import RowEncoder

log = logging.getLogger("faultprint.ingest")


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
) -> DecodeResult:
    """Decode, classify, fingerprint and encode one body (pure; any process)."""
    try:
        batch = decode_body(body, content_type, encoding, project, scrubber, max_decompressed)
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


_worker: tuple[Scrubber, RowEncoder, int] | None = None


def _init_worker(
    column_types: dict[str, str],
    table: str,
    scrub_patterns: list[str],
    scrub: bool,
    max_decompressed: int,
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
    scrubber, encoder, limit = _worker
    return decode_request(body, content_type, encoding, project, scrubber, encoder, limit)


def _ping(_: int) -> int:
    return os.getpid()


def default_workers() -> int:
    """Worker processes when not configured: one per core, none on one core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return 0 if (cores or 1) < 2 else min(cores or 1, 8)


class Decoder:
    """Runs ``decode_request`` in WORKERS processes (0: in threads, bounded)."""

    def __init__(
        self,
        encoder: RowEncoder,
        scrubber: Scrubber,
        *,
        workers: int,
        max_decompressed: int,
        scrub_patterns: list[str],
        scrub: bool,
    ) -> None:
        self.encoder = encoder
        self.scrubber = scrubber
        self.workers = workers
        self.max_decompressed = max_decompressed
        self._init_args = (
            encoder.type_names,
            encoder.table,
            scrub_patterns,
            scrub,
            max_decompressed,
            os.getpid(),
        )
        #: in-process decoding holds the GIL: more threads only add memory
        self._slots = threading.Semaphore(2)
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        if workers > 0:
            self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # spawn, never fork: the parent runs the embedded engine's threads
        pool = ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=self._init_args,
        )
        # start every worker now (they import in the background), not under
        # the first requests; start-up does not wait for them
        for n in range(self.workers):
            pool.submit(_ping, n)
        return pool

    async def decode(
        self, body: bytes, content_type: str, encoding: str, project: str
    ) -> DecodeResult:
        """Decode one body; never raises for anything the body holds."""
        pool = self._pool
        if pool is None:
            return await run_in_threadpool(self._decode_here, body, content_type, encoding, project)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                pool, _decode_in_worker, body, content_type, encoding, project
            )
        except BrokenProcessPool:
            log.error("a decoder process died; restarting the decoder pool")
            with self._lock:
                if self._pool is pool:
                    pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = self._start()
            return DecodeResult(status=400, reason="the body could not be decoded")

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
            )

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            with contextlib.suppress(Exception):
                self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
