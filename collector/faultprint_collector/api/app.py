"""The collector's FastAPI application."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI

from faultprint_collector.api import _ingest, _read
from faultprint_collector.settings import Settings
from faultprint_collector.store import CallWriter, Store, apply_migrations, open_store


@dataclass
class CollectorState:
    """What request handlers share: settings, the store, the writer, counters."""

    settings: Settings
    store: Store
    writer: CallWriter
    stats: Counter[str] = field(default_factory=Counter)


def open_state(settings: Settings) -> CollectorState:
    """Open the store, migrate its schema and start the writer."""
    store = open_store(settings.store, cluster=settings.cluster)
    apply_migrations(store, retention_days=settings.retention_days)
    return CollectorState(settings=settings, store=store, writer=CallWriter(store))


def close_state(state: CollectorState) -> None:
    """Drain the writer and release the store."""
    state.writer.close()
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

    @app.get("/healthz", summary="Liveness and store reachability")
    def healthz() -> dict[str, str]:
        """``ok`` when the collector runs and its store answers."""
        app.state.faultprint.store.query("SELECT 1")
        return {"status": "ok"}

    return app
