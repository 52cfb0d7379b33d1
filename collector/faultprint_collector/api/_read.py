"""The read API under ``/api/``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from faultprint_collector.api._auth import caller_project
from faultprint_collector.queries import QueryError, list_incidents, list_versions, parse_since

router = APIRouter(prefix="/api")


def _since(value: str | None) -> Any:
    try:
        return parse_since(value)
    except QueryError as exc:
        raise HTTPException(400, str(exc)) from exc


@router.get("/versions", summary="Model versions with their call counts and failure rates")
async def versions(
    request: Request,
    since: str | None = Query(None, max_length=64, description="24h, 7d, or ISO time"),
    project: str = Depends(caller_project),
) -> dict[str, Any]:
    """Every model version seen, each call counted once."""
    store = request.app.state.faultprint.store
    return {"versions": await run_in_threadpool(list_versions, store, project, _since(since))}


@router.get("/incidents", summary="Top failure fingerprints since a time")
async def incidents(
    request: Request,
    since: str | None = Query("24h", max_length=64, description="24h, 7d, or ISO time"),
    limit: int = Query(20, ge=1, le=1000),
    project: str = Depends(caller_project),
) -> dict[str, Any]:
    """The most frequent failure fingerprints, with first/last seen and an example."""
    store = request.app.state.faultprint.store
    rows = await run_in_threadpool(list_incidents, store, project, _since(since), limit)
    return {"incidents": rows}


@router.get("/stats", summary="Collector self-metrics")
async def stats(request: Request) -> dict[str, Any]:
    """Counters of what this collector accepted, rejected and wrote."""
    state = request.app.state.faultprint
    return {
        **state.stats,
        "rows_written": state.writer.rows_written,
        "inserts": state.writer.inserts,
    }
