"""``POST /v1/traces``: the OTLP/HTTP trace receiver.

A request is acknowledged (200) only once its calls are in the durable
spool; ClickHouse gets them from the spool's replayer. Backpressure follows
the OTLP contract: 503 with Retry-After when the spool is full or too many
requests are in flight, 429 with Retry-After when the project exceeds its
rate limit; every undecodable body gets a 4xx naming the reason, and a
request too large for the whole spool a 413 (no retry can help it).
Identical bodies are spooled once, even when they arrive together.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import xxhash
from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from google.rpc import status_pb2

from faultprint_collector.api._auth import caller_project
from faultprint_collector.ingest import (
    JSON,
    PROTOBUF,
    OTLPDecodeError,
    encode_response,
)
from faultprint_collector.spool import RecordTooLarge, SpoolError, SpoolFull

if TYPE_CHECKING:
    from faultprint_collector.api.app import CollectorState

router = APIRouter()
_log = logging.getLogger("faultprint.ingest")

#: google.rpc.Code values for the Status body
_CODES = {400: 3, 401: 16, 413: 3, 415: 3, 429: 8, 503: 14}


def otlp_error(status: int, reason: str, content_type: str, **headers: str) -> Response:
    """An OTLP error response: a google.rpc.Status in the request's encoding."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    code = _CODES.get(status, 3)
    if media == JSON:
        body, media_type = json.dumps({"code": code, "message": reason}).encode(), JSON
    else:
        body = status_pb2.Status(code=code, message=reason).SerializeToString()
        media_type = PROTOBUF
    return Response(body, status_code=status, media_type=media_type, headers=headers or None)


async def read_body(request: Request, limit: int) -> bytes:
    """Read the request body, refusing (413) anything larger than LIMIT."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError as exc:
            raise OTLPDecodeError("invalid Content-Length header") from exc
        if size > limit:
            raise OTLPDecodeError(f"body of {size} bytes exceeds the limit of {limit}", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise OTLPDecodeError(f"body exceeds the limit of {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


class RateLimiter:
    """Token buckets of spans per project (burst: two seconds' worth).

    Only accepted spans count: a request ``take``s its spans before it is
    spooled, so that concurrent requests cannot all pass the same tokens,
    and one that the spool then refuses ``refund``s them.
    """

    def __init__(self, spans_per_s: float) -> None:
        self.rate = spans_per_s
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _tokens(self, project: str, burst: float, now: float) -> float:
        """PROJECT's tokens at NOW (under the lock): what it had, refilled since, at most BURST."""
        tokens, last = self._buckets.get(project, (burst, now))
        return min(burst, tokens + (now - last) * self.rate)

    def take(self, project: str, spans: int) -> float:
        """0 when SPANS may pass now, else the seconds to wait before retrying."""
        if self.rate <= 0 or spans <= 0:
            return 0.0
        burst = max(self.rate * 2, float(spans))
        now = time.monotonic()
        with self._lock:
            tokens = self._tokens(project, burst, now)
            if tokens >= spans:
                self._buckets[project] = (tokens - spans, now)
                return 0.0
            self._buckets[project] = (tokens, now)
            return (spans - tokens) / self.rate

    def refund(self, project: str, spans: int) -> None:
        """Give back SPANS that ``take`` let pass and that were then not accepted."""
        if self.rate <= 0 or spans <= 0:
            return
        burst = max(self.rate * 2, float(spans))
        now = time.monotonic()
        with self._lock:
            tokens = min(burst, self._tokens(project, burst, now) + spans)
            self._buckets[project] = (tokens, now)


class RecentRequests:
    """Digests of bodies acknowledged recently or being handled now.

    OTLP exporters retry with the very same body when an acknowledgement was
    lost, or when their own timeout expired while the first attempt still
    waits in the collector; spooling it again would count its calls twice
    in the catalogue and rollups. A request ``claim``s its digest before
    decoding, so an identical one arriving meanwhile waits for the first's
    outcome instead of decoding and spooling it a second time.

    Bounded to the SIZE latest digests. With a JOURNAL (a file beside the
    spool) they outlive a restart: a retry that reaches the collector after
    it restarted (the acknowledgement lost in the crash or the shutdown) is
    recognised too. A digest is journaled only once its body is acknowledged,
    so durable: a crash between the two can count a retry twice, never lose
    one (the digest is journaled on the spool's writing thread as soon as
    the append returns, which leaves that gap as narrow as it can be short
    of one write for both). An identical body is the same spans (their ids and times), however
    late it comes, so digests need no age.
    """

    #: bytes per journaled digest (xxh3-128)
    DIGEST_BYTES = 16

    def __init__(self, size: int = 8192, journal: Path | None = None) -> None:
        self.size = size
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        #: digests claimed by a request still being handled, set when it ends
        self._running: dict[bytes, asyncio.Event] = {}
        self._lock = threading.Lock()
        self._journal = journal
        self._journal_fd: int | None = None
        self._journaled = 0
        if journal is not None:
            self._open_journal(journal)

    def _open_journal(self, path: Path) -> None:
        """Remember the digests PATH holds, then append to it (compacted)."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            _log.warning("recent requests journal %s unreadable, starting empty: %s", path, exc)
            data = b""
        n = self.DIGEST_BYTES
        whole = len(data) - len(data) % n  # a torn last write is dropped
        for start in range(max(0, whole - self.size * n), whole, n):
            self._seen[data[start : start + n]] = None
        try:
            self._rewrite()
        except OSError as exc:
            _log.warning("recent requests journal %s not writable: %s", path, exc)
            self._journal = None

    def _rewrite(self) -> None:
        """Replace the journal by the digests in memory (atomically)."""
        assert self._journal is not None
        tmp = self._journal.with_name(self._journal.name + ".tmp")
        tmp.write_bytes(b"".join(self._seen))
        os.replace(tmp, self._journal)
        if self._journal_fd is not None:
            os.close(self._journal_fd)
        self._journal_fd = os.open(self._journal, os.O_WRONLY | os.O_APPEND)
        self._journaled = len(self._seen)

    def close(self) -> None:
        """Stop journaling (the journal keeps what it holds)."""
        with self._lock:
            if self._journal_fd is not None:
                os.close(self._journal_fd)
                self._journal_fd = None
            self._journal = None

    @staticmethod
    def digest(project: str, content_type: str, body: bytes) -> bytes:
        """Identity of one request's content."""
        h = xxhash.xxh3_128(project.encode())
        h.update(b"\0" + content_type.encode() + b"\0")
        h.update(body)
        return h.digest()

    def seen(self, digest: bytes) -> bool:
        """True when DIGEST was acknowledged recently."""
        with self._lock:
            return digest in self._seen

    def add(self, digest: bytes) -> None:
        """Remember DIGEST as acknowledged (journaled once)."""
        with self._lock:
            if digest in self._seen:
                self._seen.move_to_end(digest)
                return
            self._seen[digest] = None
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)
            if self._journal_fd is None:
                return
            try:
                # One write of 16 bytes to an O_APPEND file: whole, or torn
                # at the end only, where reading drops it.
                os.write(self._journal_fd, digest)
                self._journaled += 1
                if self._journaled >= 2 * self.size:
                    self._rewrite()
            except OSError as exc:
                _log.warning("recent requests journal %s not written: %s", self._journal, exc)

    async def claim(self, digest: bytes) -> bool:
        """Make the caller the one request handling DIGEST (False: acknowledged already).

        While an identical request is being handled, wait for its end: if it
        was acknowledged, so is this one (False); if not (refused, backed
        off, abandoned), this one is handled afresh (True) and gets the
        answer its own attempt earns. A True claim must be ended by
        ``release``.
        """
        while True:
            with self._lock:
                if digest in self._seen:
                    return False
                running = self._running.get(digest)
                if running is None:
                    self._running[digest] = asyncio.Event()
                    return True
            await running.wait()

    def release(self, digest: bytes, *, acknowledged: bool) -> None:
        """End the claim on DIGEST; identical requests waiting for it go on."""
        if acknowledged:
            self.add(digest)
        with self._lock:
            running = self._running.pop(digest, None)
        if running is not None:
            running.set()


@router.post(
    "/v1/traces",
    summary="Receive OTLP/HTTP traces (protobuf or JSON, optionally gzip)",
    responses={
        400: {"description": "undecodable body"},
        401: {"description": "missing or invalid API key"},
        413: {"description": "body or decompressed body too large"},
        415: {"description": "unsupported content type or encoding"},
        429: {"description": "project rate limit exceeded; see Retry-After"},
        503: {"description": "spool full or collector busy; see Retry-After"},
    },
)
async def receive_traces(request: Request, project: str = Depends(caller_project)) -> Response:
    """Decode, classify, fingerprint and durably spool one OTLP export request."""
    state = request.app.state.faultprint
    stats = state.stats
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    try:
        if media not in (PROTOBUF, JSON):
            raise OTLPDecodeError(
                f"unsupported Content-Type {content_type[:100]!r}; use {PROTOBUF} or {JSON}",
                415,
            )
        body = await read_body(request, state.settings.max_body_bytes)
    except OTLPDecodeError as exc:
        stats["rejected_requests"] += 1
        return otlp_error(exc.status, exc.reason, content_type)
    digest = RecentRequests.digest(project, media, body)
    if not await state.recent.claim(digest):
        stats["duplicate_requests"] += 1
        body_out, media_type = encode_response(0, "", content_type)
        return Response(body_out, media_type=media_type)
    acknowledged = False
    try:
        response, acknowledged = await _spool_request(request, project, body, content_type, digest)
    finally:
        state.recent.release(digest, acknowledged=acknowledged)
    return response


async def _spool_request(
    request: Request, project: str, body: bytes, content_type: str, digest: bytes
) -> tuple[Response, bool]:
    """The answer to one claimed body (DIGEST), and whether it acknowledges the body."""
    state = request.app.state.faultprint
    stats = state.stats
    result = await state.decoder.decode(
        body, content_type, request.headers.get("content-encoding", ""), project
    )
    if result.status:
        stats["rejected_requests"] += 1
        retry = _RETRY if result.status == 503 else {}
        return otlp_error(result.status, result.reason, content_type, **retry), False
    spans = result.rows
    wait = state.limiter.take(project, spans)
    if wait:
        stats["rate_limited_requests"] += 1
        return otlp_error(
            429,
            f"project {project!r} exceeds its limit of {state.limiter.rate:g} spans/s",
            content_type,
            **{"Retry-After": str(max(1, round(wait + 0.5)))},
        ), False
    if spans:
        refused = await _spool(state, result.payload, spans, content_type, digest)
        if refused is not None:
            # nothing of the request was accepted, so nothing of it counts
            # against the project's rate: the retry it needs is not held back
            state.limiter.refund(project, spans)
            return refused, False
    stats["accepted_spans"] += spans
    stats["rejected_spans"] += result.rejected
    stats["repeated_spans"] += result.repeated
    body_out, media_type = encode_response(result.rejected, "; ".join(result.errors), content_type)
    return Response(body_out, media_type=media_type), True


def _append(state: CollectorState, payload: bytes, spans: int, digest: bytes) -> None:
    """Append PAYLOAD to the spool, then journal the request's DIGEST at once.

    On the same thread, right after the append is durable: a collector
    killed before it answers then still knows the body when its client
    resends it. Journaled later, back on the event loop, the gap was wide
    enough under load for a resent body to be spooled and counted twice.
    """
    state.writer.write_encoded(payload, spans)
    state.recent.add(digest)


async def _spool(
    state: CollectorState, payload: bytes, spans: int, content_type: str, digest: bytes
) -> Response | None:
    """Append SPANS encoded as PAYLOAD to the spool; the refusal, or None once durable."""
    stats = state.stats
    try:
        await run_in_threadpool(_append, state, payload, spans, digest)
    except RecordTooLarge:
        # Not backpressure: retrying can never succeed, so no Retry-After.
        stats["rejected_requests"] += 1
        limit = state.settings.spool_max_bytes
        return otlp_error(
            413,
            f"the {spans} spans of this request take {len(payload)} bytes, "
            f"more than the whole spool holds ({limit} bytes, "
            "FAULTPRINT_SPOOL_MAX_BYTES); send smaller batches",
            content_type,
        )
    except SpoolFull:
        stats["spool_full_responses"] += 1
        return otlp_error(503, "spool full: storage is behind, retry later", content_type, **_RETRY)
    except SpoolError as exc:
        # The spool never writes an append it refused, so the retry this
        # asks for stores the calls once.
        stats["spool_errors"] += 1
        return otlp_error(503, f"spool unavailable: {exc}", content_type, **_RETRY)
    return None


_RETRY = {"Retry-After": "5"}
