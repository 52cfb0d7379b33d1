"""The read API under ``/api/``: versions, fingerprints, comparison, ad-hoc SQL.

Every endpoint is scoped to the caller's project (``caller_project``), every
query is parameterised, and a bad parameter is a 400 (or 422 from
validation) with the reason, never a 500.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field

from faultprint_collector.analysis import DEFAULT_ALPHA
from faultprint_collector.analysis._adhoc import (
    MAX_ROWS,
    AdhocLimitExceeded,
    AdhocRefused,
    SqlLimits,
    run_readonly_sql,
)
from faultprint_collector.api._auth import caller_project
from faultprint_collector.api._counters import COUNTERS
from faultprint_collector.api._reads import run_read
from faultprint_collector.ingest._records import MAX_CALL_SITE_CHARS, MAX_VERSION_CHARS
from faultprint_collector.queries import (
    NotFound,
    QueryError,
    compare,
    fingerprint_detail,
    list_fingerprints,
    list_incidents,
    list_versions,
    no_calls_note,
    parse_fingerprint,
    parse_since,
)

router = APIRouter(prefix="/api")

_TIME = "a duration ago (30m, 24h, 7d) or an ISO timestamp"


def _time(value: str | None, name: str, now: datetime) -> datetime | None:
    try:
        return parse_since(value, now)
    except QueryError as exc:
        raise HTTPException(400, f"{name}: {exc}") from exc


def _times(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """SINCE and UNTIL against one "now" (``since=1d&until=1d`` is an empty window,
    a 400, not one of a few microseconds); a bad one is a 400 naming it."""
    now = datetime.now(UTC)
    return _time(since, "since", now), _time(until, "until", now)


async def _with_note(
    request: Request, key: str, rows: list[dict[str, Any]], project: str
) -> dict[str, Any]:
    """``{KEY: ROWS}``, with a ``note`` when ROWS are empty because PROJECT has no calls.

    An empty list alone reads as "no incidents"; the note says that nothing
    was stored for the caller's project at all (the CLI prints it, as it
    does for a store it reads directly). Added only then: an answer with
    rows is what it always was.
    """
    answer: dict[str, Any] = {key: rows}
    if not rows:
        note = await _run(request, no_calls_note, project)
        if note:
            answer["note"] = note
    return answer


async def _run(request: Request, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return await run_read(request, fn, *args, **kwargs)
    except QueryError as exc:
        raise HTTPException(400, str(exc)) from exc
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc


@router.get("/versions", summary="Model versions with their consistency metrics")
async def versions(
    request: Request,
    since: str | None = Query(None, max_length=64, description=_TIME),
    until: str | None = Query(None, max_length=64, description=_TIME),
    call_site: str | None = Query(None, max_length=MAX_CALL_SITE_CHARS),
    project: str = Depends(caller_project),
) -> dict[str, Any]:
    """Every model version: calls, failures, failure rate (Wilson 95% CI), distinct and
    effective modes, top-3 share, novelty, repeatability and drift; each call counted once.

    Calls and failures are weighted counts: integers when whole (always,
    without sampling), numbers with up to 3 decimals otherwise. An empty
    list has a ``note`` when the caller's project has no calls at all."""
    rows = await _run(request, list_versions, project, *_times(since, until), call_site)
    return await _with_note(request, "versions", rows, project)


@router.get("/incidents", summary="Top failure fingerprints in a window")
async def incidents(
    request: Request,
    since: str | None = Query("24h", max_length=64, description=f"window start: {_TIME}"),
    until: str | None = Query(
        None, max_length=64, description=f"window end (default: now): {_TIME}"
    ),
    limit: int = Query(20, ge=1, le=1000),
    project: str = Depends(caller_project),
) -> dict[str, Any]:
    """The most frequent failure fingerprints in [since, until) (whole hours), with
    first/last seen and an example. A since not earlier than until is a 400; an
    empty list has a ``note`` when the caller's project has no calls at all."""
    start, end = _times(since, until)
    rows = await _run(request, list_incidents, project, start, limit, end)
    return await _with_note(request, "incidents", rows, project)


@router.get("/fingerprints", summary="Failure fingerprints, most frequent first")
async def fingerprints(
    request: Request,
    version: str | None = Query(None, max_length=MAX_VERSION_CHARS, description="model version"),
    call_site: str | None = Query(None, max_length=MAX_CALL_SITE_CHARS),
    category: str | None = Query(None, max_length=64),
    since: str | None = Query(None, max_length=64, description=_TIME),
    until: str | None = Query(None, max_length=64, description=_TIME),
    limit: int = Query(50, ge=1, le=1000),
    project: str = Depends(caller_project),
) -> dict[str, Any]:
    """Fingerprints with their failures in the window, filtered by version, call
    site and category."""
    start, end = _times(since, until)
    rows = await _run(
        request,
        list_fingerprints,
        project,
        version=version,
        call_site=call_site,
        category=category,
        since=start,
        until=end,
        limit=limit,
    )
    return {"fingerprints": rows}


@router.get(
    "/fingerprints/{fp}",
    summary="One fingerprint: grouping components, per-version timeline, exemplars",
    responses={404: {"description": "no such fingerprint in this project"}},
)
async def fingerprint(
    request: Request,
    fp: str = Path(..., max_length=16, description="16 hex digits"),
    since: str | None = Query(None, max_length=64, description=_TIME),
    until: str | None = Query(None, max_length=64, description=_TIME),
    exemplars: int = Query(10, ge=1, le=100),
    project: str = Depends(caller_project),
) -> dict[str, Any]:
    """Why calls share this fingerprint (its components), when it happened on each
    model version, and example calls with trace ids and messages.

    The window (whole hours) applies to the failure counts, the timeline
    (every hour of the window, 0 when it had no failure), the exemplars and
    each version's trace ids; ``first_seen`` / ``last_seen`` are the
    fingerprint's overall first and last failure. ``error_type`` is its most
    frequent error type, ``error_types`` all of them with their failures."""
    try:
        value = parse_fingerprint(fp)
    except QueryError as exc:
        raise HTTPException(400, str(exc)) from exc
    now = datetime.now(UTC)
    return await _run(
        request,
        fingerprint_detail,
        project,
        value,
        since=_time(since, "since", now),
        until=_time(until, "until", now),
        exemplars=exemplars,
        now=now,
    )


@router.get("/compare", summary="Compare a candidate model version with a baseline")
async def compare_endpoint(
    request: Request,
    baseline: str = Query(..., min_length=1, max_length=MAX_VERSION_CHARS),
    candidate: str = Query(..., min_length=1, max_length=MAX_VERSION_CHARS),
    call_site: str | None = Query(None, max_length=MAX_CALL_SITE_CHARS),
    since: str | None = Query(None, max_length=64, description=_TIME),
    until: str | None = Query(None, max_length=64, description=_TIME),
    alpha: float = Query(DEFAULT_ALPHA, gt=0, lt=0.5, description="significance level"),
    project: str = Depends(caller_project),
) -> dict[str, Any]:
    """Failure-rate change, failure-mix divergence, new / vanished / changed modes
    (Benjamini–Hochberg corrected), a verdict and notes."""
    start, end = _times(since, until)
    return await _run(
        request,
        compare,
        project,
        baseline,
        candidate,
        call_site=call_site,
        since=start,
        until=end,
        alpha=alpha,
    )


class SqlRequest(BaseModel):
    """A read-only query for ``POST /api/sql``."""

    sql: str = Field(..., min_length=1, max_length=20_000)
    max_rows: int = Field(1000, ge=1, le=MAX_ROWS)


def _sql_json(store: Any, project: str, statement: str, max_rows: int, limits: SqlLimits) -> bytes:
    # encoded here, in the read thread, rather than on the event loop
    result = run_readonly_sql(store, project, statement, max_rows, limits)
    return json.dumps(result, ensure_ascii=False, allow_nan=False).encode()


@router.post(
    "/sql",
    summary="Run read-only SQL against this project's calls, rollups and views",
    response_class=Response,
    responses={
        200: {
            "content": {"application/json": {}},
            "description": "columns, types, rows, truncated",
        },
        400: {"description": "refused or invalid SQL"},
        422: {"description": "stopped at its time or memory limit"},
    },
)
async def sql(
    request: Request,
    body: SqlRequest = Body(...),
    project: str = Depends(caller_project),
) -> Response:
    """One SELECT over faultprint's tables and views, read-only, restricted to the
    caller's project, stopped by the engine at its time and memory limits."""
    settings = request.app.state.faultprint.settings
    limits = SqlLimits(seconds=settings.sql_timeout_s, memory_bytes=settings.sql_max_memory_bytes)
    try:
        content = await run_read(request, _sql_json, project, body.sql, body.max_rows, limits)
    except AdhocLimitExceeded as exc:
        raise HTTPException(422, str(exc)) from exc
    except AdhocRefused as exc:
        raise HTTPException(400, str(exc)) from exc
    return Response(content, media_type="application/json")


@router.get("/stats", summary="Collector self-metrics")
async def stats(request: Request) -> dict[str, Any]:
    """Counters of what this collector accepted, rejected and wrote, and the read
    queries running now; every counter is present, 0 until it first counts."""
    state = request.app.state.faultprint
    return {
        **dict.fromkeys(COUNTERS, 0),
        **state.stats,
        "rows_written": state.writer.rows_written,
        "inserts": state.writer.inserts,
        "reads_in_flight": int(state.read_limiter.borrowed_tokens),
    }
