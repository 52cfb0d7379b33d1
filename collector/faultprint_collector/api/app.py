"""The collector's FastAPI application."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi import FastAPI, Response

from faultprint_collector import ui
from faultprint_collector.api import _guard, _ingest, _read
from faultprint_collector.api._auth import KeyRing
from faultprint_collector.api._decoder import Decoder, default_workers
from faultprint_collector.ingest import Scrubber
from faultprint_collector.settings import Settings
from faultprint_collector.spool import Spool
from faultprint_collector.store import (
    CallWriter,
    Store,
    StoreError,
    apply_migrations,
    apply_retention,
    open_store,
)

#: the digests of recently acknowledged requests, kept across restarts
RECENT_REQUESTS_FILE = "recent-requests"


@dataclass
class CollectorState:
    """What request handlers share: settings, the store, the writer, counters."""

    settings: Settings
    store: Store
    writer: CallWriter
    stats: Counter[str] = field(default_factory=Counter)
    keys: KeyRing = field(default_factory=KeyRing)
    scrubber: Scrubber | None = None
    limiter: _ingest.RateLimiter = field(default_factory=lambda: _ingest.RateLimiter(0))
    recent: _ingest.RecentRequests = field(default_factory=_ingest.RecentRequests)
    decoder: Decoder | None = None
    #: threads for read queries, apart from the pool ingest uses (see ``_reads``)
    read_limiter: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(4))


def open_state(settings: Settings) -> CollectorState:
    """Open the store and the spool, migrate the schema, start the writer.

    Whatever a previous run spooled but did not store is replayed first.
    """
    keys = KeyRing.from_settings(settings)
    scrubber = Scrubber(settings.scrub_patterns, enabled=settings.scrub)
    spool = Spool(
        settings.spool_path(),
        max_bytes=settings.spool_max_bytes,
        fsync=settings.spool_fsync,
        fsync_interval_s=settings.spool_fsync_interval_s,
    )
    try:
        if settings.cluster_writes not in ("distributed", "local"):
            raise StoreError(
                f"FAULTPRINT_CLUSTER_WRITES must be distributed or local, "
                f"got {settings.cluster_writes!r}"
            )
        store = open_store(
            settings.store,
            cluster=settings.cluster,
            local_writes=settings.cluster_writes == "local",
        )
        store.read_connections = settings.read_connections
        apply_migrations(store, retention_days=settings.retention_days)
        apply_retention(store, retention_days=settings.retention_days)
    except BaseException:
        spool.close()
        raise
    writer = CallWriter(store, spool)
    workers = settings.decode_workers if settings.decode_workers >= 0 else default_workers()
    decoder = Decoder(
        writer.encoder,
        scrubber,
        workers=workers,
        max_decompressed=settings.max_decompressed_bytes,
        scrub_patterns=settings.scrub_patterns,
        scrub=settings.scrub,
        retention_days=settings.retention_days,
    )
    return CollectorState(
        settings=settings,
        store=store,
        writer=writer,
        keys=keys,
        scrubber=scrubber,
        limiter=_ingest.RateLimiter(settings.rate_limit_spans_per_s),
        # beside the spool, whose lock makes this collector its only user
        recent=_ingest.RecentRequests(journal=spool.directory / RECENT_REQUESTS_FILE),
        decoder=decoder,
        read_limiter=anyio.CapacityLimiter(settings.read_connections),
    )


def close_state(state: CollectorState) -> None:
    """Store what is spooled (bounded wait), then release spool and store."""
    if state.decoder is not None:
        state.decoder.close()
    state.writer.close(timeout=30.0)
    state.recent.close()
    state.store.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the collector app; the store opens when the app starts."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = open_state(settings)
        app.state.faultprint = state
        try:
            yield
        finally:
            close_state(state)

    app = FastAPI(
        title="faultprint collector",
        version="0.1.0",
        summary="OTLP receiver, failure fingerprints and failure-consistency analytics",
        lifespan=lifespan,
    )
    app.include_router(_ingest.router)
    app.include_router(_read.router)
    _guard.install(app)
    # after the guard's handlers: the UI's answer a page's bad parameters with
    # a page and hand the API's back to the guard's
    ui.register(app)

    @app.get(
        "/healthz",
        summary="Liveness, store reachability and spool backlog",
        responses={503: {"description": "the spool refuses appends or replay cannot progress"}},
    )
    def healthz(response: Response) -> dict[str, Any]:
        """``ok`` when the collector runs and its store answers, with the spool's state.

        ``degraded`` (still 200: the collector accepts into its spool) when
        the store does not answer; ``failing`` (503) when the spool refuses
        appends or cannot replay (its directory deleted or unwritable, the
        disk full), with the reason in ``last_error``.
        """
        state = app.state.faultprint
        try:
            state.store.query("SELECT 1")
            store_ok = True
        except Exception:
            store_ok = False
        spool = state.writer.spool
        replayer = state.writer.replayer
        failing = spool.fault or replayer.stalled
        if not replayer.running:
            failing = failing or "the replay thread stopped: spooled calls are not stored"
        status = "failing" if failing else "ok" if store_ok else "degraded"
        if failing:
            response.status_code = 503
        last_error = max(
            (replayer.last_error_at, replayer.last_error), (spool.last_error_at, spool.last_error)
        )[1]
        return {
            "status": status,
            "store": "ok" if store_ok else "unreachable",
            "open": state.keys.open,
            "spool": {
                "backlog_records": replayer.backlog,
                "bytes": spool.size_bytes,
                "max_bytes": spool.max_bytes,
                "committed_seq": spool.committed,
                "durable_seq": spool.durable_seq,
                "rows_written": replayer.rows_written,
                "inserts": replayer.inserts,
                "insert_errors": replayer.insert_errors,
                "quarantined_rows": replayer.quarantined_rows,
                "lost_records": spool.lost_records,
                "failing": failing,
                "last_error": last_error,
            },
        }

    return app
