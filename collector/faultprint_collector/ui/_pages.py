"""The UI's pages: overview, compare, fingerprint (server-rendered HTML).

The pages read through the same functions as the read API (``queries``,
backed by the rollups), so they show exactly what ``/api/…`` and the CLI
show, as fast. Every read is scoped to the caller's project.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from faultprint_collector.analysis import (
    Selection,
    concerns,
    fingerprint_info,
    mode_counts,
    p_number,
    p_text,
)
from faultprint_collector.api._auth import KeyRing, caller_project
from faultprint_collector.api._reads import run_read
from faultprint_collector.ingest._records import MAX_VERSION_CHARS
from faultprint_collector.queries import (
    NotFound,
    QueryError,
    compare,
    error_type_label,
    fingerprint_detail,
    grouping_note,
    list_incidents,
    list_versions,
    parse_fingerprint,
    parse_since,
)
from faultprint_collector.store import Store
from faultprint_collector.ui import _svg

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals.update(p_number=p_number, p_text=p_text)
router = APIRouter(include_in_schema=False)

#: the UI's cookie holding an API key, when the collector requires keys
KEY_COOKIE = "faultprint_key"
#: the windows the pages offer (``?window=``), by the value their drop-down sends
WINDOWS = {"24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days", "all": "all time"}
#: other spellings of a window: the empty ``window=`` is all time too (what
#: the drop-down sent before ``all``, so links and bookmarks keep working)
_WINDOW_ALIASES = {"": "all"}
#: the window of a page opened without ``?window=``: the same on every page, so
#: moving between them without a window in the link shows the same calls
DEFAULT_WINDOW = "7d"
#: what the key page may say, by its ``?code=``: never text from the link
#: itself, which anyone could write (content spoofing)
KEY_MESSAGES = {
    "needed": "This collector requires an API key.",
    "invalid": "That API key is not valid here.",
    "bad-text": "That is not a valid API key: keys are printable ASCII characters.",
}


def novelty_help(window: str) -> str:
    """What the novelty column means for WINDOW, as ``_mode_stats`` computes it.

    A mode counts as new when its fingerprint was first seen (on any
    version) no earlier than the window's start, to the second; with no
    window ("all time"), no earlier than the version's own first call, so
    the all-time figure is the share of the modes a version brought, not of
    modes first seen "in the window".
    """
    if window != "all":
        return (
            "share of this version's failures in fingerprints first seen (on any version) "
            "since the start of this window"
        )
    return (
        "share of this version's failures in fingerprints first seen (on any version) "
        "no earlier than this version's first call: the failure modes it brought"
    )


class NeedsKey(Exception):
    """The collector requires an API key and the browser has not given one.

    CODE names the key page's message (a key of ``KEY_MESSAGES``).
    """

    def __init__(self, code: str) -> None:
        super().__init__(KEY_MESSAGES[code])
        self.code = code


def ui_project(request: Request) -> str:
    """The caller's project: from a header (as the API), else the UI's key cookie.

    A browser cannot send headers on navigation, so when keys are configured
    the UI accepts the key once (``?key=`` or the form on the key page) and
    keeps it in an HttpOnly cookie; every page is then scoped to that key's
    project exactly as an API request with that key would be.
    """
    state = getattr(request.app.state, "faultprint", None)
    ring = getattr(state, "keys", None) or KeyRing()
    if ring.open or request.headers.get("authorization") or request.headers.get("x-api-key"):
        return caller_project(request)
    key = request.cookies.get(KEY_COOKIE)
    if not key:
        raise NeedsKey("needed")
    project = ring.project_of(key)
    if project is None:
        raise NeedsKey("invalid")
    return project


def _window(value: str) -> tuple[str, datetime | None]:
    """The window VALUE names (as ``WINDOWS`` spells it) and its start (None: all time).

    A value that is no window is a 400 listing those there are.
    """
    window = _WINDOW_ALIASES.get(value, value)
    if window not in WINDOWS:
        accepted = ", ".join(WINDOWS)
        raise HTTPException(
            400, f"window must be one of {accepted} (an empty window is all time too)"
        )
    if window == "all":
        return window, None
    try:
        return window, parse_since(window)
    except QueryError as exc:
        raise HTTPException(400, f"window: {exc}") from exc


def _render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    context = {
        "windows": WINDOWS,
        "window_label": WINDOWS.get(context.get("window", "")),
        "path": request.url.path,
        **context,
    }
    return templates.TemplateResponse(request, name, context, status_code=status)


def _hourly_rates(
    store: Store, project: str, since: datetime | None
) -> dict[str, list[tuple[datetime, float, float]]]:
    """Calls and failures per version and hour (from the hourly rollup), for sparklines.

    The hours are those the versions table counts (``Selection``: every hour
    overlapping the window), so the first point covers the hour SINCE falls in.
    """
    sel = Selection(project, since=since)
    rows = store.query(
        f"""
        SELECT model_version, hour, sum(calls) AS n, sumIf(calls, is_failure = 1) AS f
        FROM {store.table("calls_hourly")}
        WHERE {sel.where()}
        GROUP BY model_version, hour
        ORDER BY model_version, hour
        """,
        sel.params(),
    ).result_rows
    out: dict[str, list[tuple[datetime, float, float]]] = {}
    for version, hour, n, f in rows:
        out.setdefault(version, []).append((hour, float(n), float(f)))
    return out


#: how many of the window's most frequent failure modes the overview lists
TOP_MODES = 15


def _recent_new_modes(store: Store, project: str, limit: int = 10) -> list[dict[str, Any]]:
    """The fingerprints first seen most recently (over every version)."""
    return store.query_dicts(
        f"""
        SELECT fingerprint_hex AS fingerprint, first_seen, last_seen, failures,
               model_versions, category, call_site, template, example_message AS example
        FROM {store.table("fingerprints_v")}
        WHERE project = {{project:String}}
        ORDER BY first_seen DESC, fingerprint
        LIMIT {{limit:UInt32}}
        """,
        {"project": project, "limit": limit},
    )


def _sparkline_series(
    points: list[tuple[datetime, float, float]], since: datetime | None
) -> list[float | None]:
    """Failure rate per hour from the first hour shown to the last, gaps as None.

    Beyond two weeks, one point per day (UTC), a day without calls a gap too,
    so the points stay evenly spaced in time.
    """
    if not points:
        return []
    by_hour = {h.replace(tzinfo=UTC) if h.tzinfo is None else h: (n, f) for h, n, f in points}
    start = min(by_hour)
    if since is not None:
        start = max(start, since.replace(minute=0, second=0, microsecond=0))
    end = max(by_hour)
    hours = int((end - start).total_seconds() // 3600) + 1
    if hours > 24 * 14:  # beyond two weeks one point per day reads better
        days: dict[datetime, list[float]] = {}
        for h, (n, f) in by_hour.items():
            if h < start:
                continue
            acc = days.setdefault(h.replace(hour=0), [0.0, 0.0])
            acc[0] += n
            acc[1] += f
        first_day = start.replace(hour=0)
        count = (end.replace(hour=0) - first_day).days + 1
        daily = (days.get(first_day + timedelta(days=i), (0.0, 0.0)) for i in range(count))
        return [f / n if n else None for n, f in daily]
    series: list[float | None] = []
    for i in range(hours):
        n, f = by_hour.get(start + timedelta(hours=i), (0.0, 0.0))
        series.append(f / n if n else None)
    return series


@router.get("/", response_class=HTMLResponse)
async def overview(
    request: Request,
    window: str = Query(DEFAULT_WINDOW, max_length=16),
    project: str = Depends(ui_project),
) -> Response:
    """Versions with their consistency metrics and sparklines; the window's top
    failure modes (as ``/api/incidents`` and ``faultprint incidents``); the newest modes."""
    window, since = _window(window)

    def load(
        store: Store,
    ) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        versions = list_versions(store, project, since)
        return (
            versions,
            _hourly_rates(store, project, since),
            list_incidents(store, project, since, limit=TOP_MODES),
            _recent_new_modes(store, project),
        )

    versions, hourly, top, recent = await run_read(request, load)
    for v in versions:
        series = _sparkline_series(hourly.get(v["model_version"], []), since)
        v["sparkline"] = _svg.sparkline(
            series, title=f"hourly failure rate of {v['model_version']}"
        )
    bars = [
        _svg.RateBar(
            v["model_version"],
            v["failure_rate"],
            v["failure_rate_ci"][0],
            v["failure_rate_ci"][1],
            color=_svg.PALETTE[i % len(_svg.PALETTE)],
        )
        for i, v in enumerate(versions)
    ]
    chart = _svg.rate_bars(bars, title="Failure rate per version (95% interval)") if bars else ""
    return _render(
        request,
        "overview.html",
        {
            "project": project,
            "window": window,
            "versions": versions,
            "grouping_note": grouping_note(versions),
            "top": top,
            "recent": recent,
            "chart": chart,
            "novelty_help": novelty_help(window),
        },
    )


def _default_pair(versions: list[dict[str, Any]]) -> tuple[str, str]:
    """Oldest version as baseline, newest as candidate."""
    ordered = sorted(versions, key=lambda v: (v["first_seen"], v["model_version"]))
    if len(ordered) < 2:
        return ("", "")
    return ordered[0]["model_version"], ordered[-1]["model_version"]


def _mode_rows(
    store: Store,
    project: str,
    baseline: str,
    candidate: str,
    since: datetime | None,
    limit: int = 12,
) -> list[tuple[str, float, float]]:
    """Share of each version's failures per mode, for the modes that matter most."""
    counts = mode_counts(store, Selection(project, versions=[baseline, candidate], since=since))
    base, cand = counts.get(baseline, {}), counts.get(candidate, {})
    base_total, cand_total = sum(base.values()) or 1.0, sum(cand.values()) or 1.0
    shares = {
        fp: (base.get(fp, 0.0) / base_total, cand.get(fp, 0.0) / cand_total)
        for fp in set(base) | set(cand)
    }
    top = sorted(shares, key=lambda fp: (-max(shares[fp]), fp))[:limit]
    info = fingerprint_info(store, project, top, prefer_version=candidate)
    return [(_mode_label(fp, info.get(fp, {})), *shares[fp]) for fp in top]


def _mode_label(fp: int, mode: dict[str, Any]) -> str:
    """A short name for a mode: fingerprint prefix, call site, error kind."""
    # the whole call site: its last part alone makes a.summarise and b.summarise alike
    site = mode.get("call_site") or ""
    types = mode.get("error_types") or [mode.get("error_type") or ""]
    kind = error_type_label([t for t in types if t], short=True)
    return f"{fp:016x}"[:6] + f" {site} · {kind or mode.get('category', '?')}"


@router.get("/compare", response_class=HTMLResponse)
async def compare_page(
    request: Request,
    baseline: str = Query("", max_length=MAX_VERSION_CHARS),
    candidate: str = Query("", max_length=MAX_VERSION_CHARS),
    window: str = Query(DEFAULT_WINDOW, max_length=16),
    project: str = Depends(ui_project),
) -> Response:
    """Pick a baseline and a candidate; see the comparison as charts and tables."""
    window, since = _window(window)
    versions = await run_read(request, list_versions, project, since)
    names = [v["model_version"] for v in versions]
    if not baseline and not candidate:
        baseline, candidate = _default_pair(versions)
    # a version asked for stays selected even without calls in the window, so
    # that widening the window and pressing Compare compares what was asked
    absent = [n for n in dict.fromkeys((baseline, candidate)) if n and n not in names]
    context: dict[str, Any] = {
        "project": project,
        "names": names,
        "absent": absent,
        "baseline": baseline,
        "candidate": candidate,
        "window": window,
        "result": None,
        "error": None,
        "novelty_help": novelty_help(window),
    }
    status = 200
    if baseline and candidate:
        # the same checks as the API and the CLI: the same version twice is a
        # 400, a version without calls a 404, each with the reason shown
        try:
            result = await run_read(request, compare, project, baseline, candidate, since=since)
        except QueryError as exc:
            context["error"] = str(exc)
            status = 400
        except NotFound as exc:
            context["error"] = str(exc)
            status = 404
        else:
            context["result"] = result
            context["concerns"] = concerns(result)
            context["rates_chart"] = _svg.rate_bars(
                [
                    _svg.RateBar(
                        f"baseline {baseline}",
                        result["baseline"]["failure_rate"],
                        result["baseline"]["failure_rate_ci"][0],
                        result["baseline"]["failure_rate_ci"][1],
                        color=_svg.PALETTE[0],
                    ),
                    _svg.RateBar(
                        f"candidate {candidate}",
                        result["candidate"]["failure_rate"],
                        result["candidate"]["failure_rate_ci"][0],
                        result["candidate"]["failure_rate_ci"][1],
                        color=_svg.PALETTE[1],
                    ),
                ],
                title="Failure rate (95% interval)",
            )
            rows = await run_read(request, _mode_rows, project, baseline, candidate, since)
            context["modes_chart"] = _svg.paired_bars(
                rows,
                names=(f"baseline {baseline}", f"candidate {candidate}"),
                title="Share of failures per mode",
            )
    elif baseline or candidate:
        context["error"] = "Pick both a baseline and a candidate version."
        status = 400
    return _render(request, "compare.html", context, status)


def _timeline_buckets(
    series: dict[str, list[tuple[datetime, float]]],
) -> tuple[dict[str, list[tuple[datetime, float]]], timedelta]:
    """SERIES per hour, or per day (UTC) when it spans more than two weeks: an
    hour's slot in the chart would be narrower than a pixel."""
    hours = [t for points in series.values() for t, _ in points]
    if not hours or max(hours) - min(hours) <= timedelta(days=14):
        return series, timedelta(hours=1)
    daily: dict[str, list[tuple[datetime, float]]] = {}
    for name, points in series.items():
        days: dict[datetime, float] = {}
        for t, v in points:
            day = t.replace(hour=0, minute=0, second=0, microsecond=0)
            days[day] = days.get(day, 0.0) + v
        daily[name] = sorted(days.items())
    return daily, timedelta(days=1)


@router.get("/fingerprint/{fp}", response_class=HTMLResponse)
async def fingerprint_page(
    request: Request,
    fp: str,
    window: str = Query(DEFAULT_WINDOW, max_length=16),
    project: str = Depends(ui_project),
) -> Response:
    """Why these failures are one mode, when each version had it, example calls.

    The window limits the failure counts, the timeline and the exemplars, as
    ``faultprint show --since`` does; first and last seen stay overall.
    """
    window, since = _window(window)
    try:
        value = parse_fingerprint(fp)
    except QueryError as exc:
        raise HTTPException(400, str(exc)) from exc
    try:
        detail = await run_read(request, fingerprint_detail, project, value, since=since)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    series: dict[str, list[tuple[datetime, float]]] = {}
    for point in detail.get("timeline", []):
        hour = datetime.fromisoformat(point["hour"])
        series.setdefault(point["model_version"], []).append((hour, float(point["failures"])))
    series, step = _timeline_buckets(series)
    per = "hour" if step == timedelta(hours=1) else "day (UTC)"
    chart = _svg.timeline(series, title=f"Failures per {per}, per model version", step=step)
    kinds = [k["error_type"] for k in detail.get("error_types", [])]
    return _render(
        request,
        "fingerprint.html",
        {
            "project": project,
            "window": window,
            "fp": detail,
            "chart": chart,
            "error_type": error_type_label(kinds) or detail["error_type"],
            "error_types_title": ", ".join(
                f"{k['error_type']}: {k['failures']:,}" for k in detail.get("error_types", [])
            ),
        },
    )


def safe_next(value: str | None) -> str:
    """VALUE when it is a path on this site (``/compare?…``), else ``/``.

    Only a relative path may come back from the key form: anything with a
    scheme or a host (``https://evil``, ``//evil``, ``/\\evil``) would make
    the form an open redirect.
    """
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(c in value for c in "\\\r\n\t") or not value.isprintable():
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def _keys_open(request: Request) -> bool:
    state = getattr(request.app.state, "faultprint", None)
    ring = getattr(state, "keys", None) or KeyRing()
    return ring.open


@router.get("/ui/key", response_class=HTMLResponse)
async def key_page(
    request: Request,
    code: str = Query("", max_length=16),
    next_path: str = Query("/", alias="next", max_length=2048),
) -> Response:
    """The form that asks for an API key when the collector requires one; it
    leads back to NEXT (a path on this site) once a key is given."""
    target = safe_next(next_path)
    if _keys_open(request):
        context = {"open": True, "next": target, "message": None, "project": None}
        return _render(request, "key.html", context)
    context = {"open": False, "next": target, "message": KEY_MESSAGES.get(code), "project": None}
    return _render(request, "key.html", context, 401)


def _is_key_text(key: str) -> bool:
    """True when KEY can travel in a cookie and come back unchanged: printable
    ASCII without a quote, comma, semicolon or backslash."""
    return key.isascii() and key.isprintable() and not any(c in key for c in '",;\\')


@router.post("/ui/key")
async def set_key(request: Request) -> Response:
    """Keep the given API key in an HttpOnly cookie (checked on every page)."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = (form.get("key") or [""])[0].strip()
    target = safe_next((form.get("next") or ["/"])[0])
    if not _is_key_text(key):
        # a cookie (like the header an API client sends) carries only
        # printable ASCII; no configured key can be anything else
        context = {
            "open": False,
            "next": target,
            "message": KEY_MESSAGES["bad-text"],
            "project": None,
        }
        return _render(request, "key.html", context, 400)
    response = RedirectResponse(target, status_code=303)
    if key:
        response.set_cookie(KEY_COOKIE, key, httponly=True, samesite="strict")
    return response


@router.get("/favicon.ico")
async def favicon() -> Response:
    """No icon, and no 404 for it: browsers ask on every page (the pages link the
    UI's own icon; this answers those that ask anyway)."""
    return Response(status_code=204)
