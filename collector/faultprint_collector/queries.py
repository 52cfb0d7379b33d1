"""Read queries shared by the HTTP API and the CLI (all parameterised).

Lists and metrics read the rollups (``calls_hourly``, the fingerprint
catalogue), so they stay fast as calls grow; only the detail of one
fingerprint (its components and exemplar calls, each call once) and the
error types of the fingerprints listed (``error_types``: the catalogue keeps
an arbitrary one) read ``calls`` itself, through the fingerprint skip index.
Windows over rollups are whole hours (an hour is in when it overlaps
[since, until)). Every query is scoped by the caller's project.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from faultprint_collector.analysis import (
    DEFAULT_ALPHA,
    Selection,
    compare_versions,
    error_types,
    fingerprint_hex,
    name_error_types,
    version_metrics,
)
from faultprint_collector.ingest import LATEST_START
from faultprint_collector.ingest._records import MAX_VERSION_CHARS
from faultprint_collector.store import Store

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_FINGERPRINT = re.compile(r"^[0-9a-fA-F]{1,16}$")
#: the times a query may name: those the store holds, from 1970 to the end
#: of 2105 (before ``LATEST_START``, the first start time ingest refuses),
#: which leaves a month below the 2106-02-07 end of ClickHouse's ``DateTime``
#: for the whole-hour rounding of windows
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = LATEST_START
#: how many known versions a "no such version" message lists
_KNOWN_SHOWN = 20
#: the longest stretch of hours a fingerprint's timeline fills with zeros, per
#: version (about three months, the default retention): a longer window fills
#: its latest hours and keeps only the hours with failures before them
MAX_FILLED_HOURS = 24 * 92


class QueryError(ValueError):
    """A query parameter is invalid; the message says which and why."""


class NotFound(LookupError):
    """The thing asked for does not exist (in the caller's project)."""


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """Parse ``24h`` / ``7d`` / ``30m`` (ago) or an ISO timestamp into a UTC datetime.

    A duration counts back from NOW (default: the current time); the two
    ends of one window are parsed against the same NOW (``parse_window``).
    The result must lie between 1970 and the end of 2105 (from ``EARLIEST``,
    before ``LATEST``: the times ingest stores): a duration reaching back before
    1970 is refused like an ISO time out of that range, rather than failing
    in the store.
    """
    if value is None or value == "":
        return None
    match = _DURATION.match(value)
    if match:
        # past 12 digits every unit reaches before 1970 (and int() of
        # thousands of digits is refused by Python itself)
        amount = int(match[1]) if len(match[1]) <= 12 else 10**12
        try:
            parsed = (now or datetime.now(UTC)) - timedelta(**{_UNITS[match[2]]: amount})
        except OverflowError:
            parsed = None
        if parsed is None or parsed < EARLIEST:
            raise QueryError(f"duration {value!r} is too large: it reaches back before 1970")
        return parsed
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise QueryError(
            f"invalid time {value!r}: use a duration like 24h, 7d, 30m or an ISO timestamp"
        ) from exc
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:  # an offset that pushes year 1 or 9999 out of range
        raise QueryError(_out_of_range(value)) from None
    if not EARLIEST <= parsed < LATEST:
        raise QueryError(_out_of_range(value))
    return parsed


def _out_of_range(value: str) -> str:
    return (
        f"time {value!r} is out of range: it must fall between "
        f"{EARLIEST:%Y-%m-%dT%H:%M:%SZ} and the end of {LATEST.year - 1} "
        f"(before {LATEST:%Y-%m-%dT%H:%M:%SZ})"
    )


def parse_window(
    since: str | None, until: str | None, now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """SINCE and UNTIL parsed as ``parse_since`` does, both against one NOW.

    Parsed one after the other against the clock, ``since=1d&until=1d``
    gave a since a few microseconds earlier than its until: a window the
    API accepted although its ends are the same time.
    """
    now = now or datetime.now(UTC)
    return parse_since(since, now), parse_since(until, now)


def error_type_label(types: list[str], *, short: bool = False) -> str:
    """A fingerprint's error types for people: the most frequent one, and how many
    others there are (``RateLimitError (+1 other)``); "" when it has none.

    TYPES come most frequent first (``error_types``). SHORT drops module
    paths and writes ``RateLimitError +1``, for chart labels.
    """
    if not types:
        return ""
    first = types[0].rsplit(".", 1)[-1] if short else types[0]
    others = len(types) - 1
    if not others:
        return first
    if short:
        return f"{first} +{others}"
    return f"{first} (+{others} other{'s' if others > 1 else ''})"


def parse_fingerprint(value: str) -> int:
    """A fingerprint given as up to 16 hex digits."""
    if not _FINGERPRINT.match(value or ""):
        raise QueryError(f"invalid fingerprint {value!r}: expected up to 16 hex digits")
    return int(value, 16)


def _check_text(name: str, value: str | None) -> None:
    if value is not None and (len(value) > MAX_VERSION_CHARS or "\x00" in value):
        raise QueryError(f"{name} must be at most {MAX_VERSION_CHARS} characters without NUL")


def _window(
    since: datetime | None, until: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """The window [SINCE, UNTIL) checked, with its end: UNTIL, or now for a
    window that has a start and no end.

    "The last 24 hours" ends now: a call stamped later (ingest takes start
    times up to a day ahead, from a sender whose clock runs fast) is not in
    it until its time has come, as Grafana's "now" leaves it out. The window
    is read by whole hours, so the hour under way is in it.
    """
    if since and until and since >= until:
        raise QueryError("since must be earlier than until")
    if since is not None and until is None:
        now = datetime.now(UTC)
        if since < now:  # one that starts later is empty either way, and says so
            until = now
    return since, until


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.isoformat()
    return value


def _round(value: float | None, digits: int = 6) -> float | int | None:
    if value is None:
        return None
    value = round(float(value), digits)
    return int(value) if value.is_integer() and abs(value) >= 1 else value


def _count(value: float) -> float | int:
    """A weighted count (calls, failures) for JSON: an integer when it is whole.

    Counts are sums of sample weights, so a float in the store; without
    sampling every count is whole, and ``0`` is then as much an integer as
    ``73`` (``0.0`` beside ``calls: 20`` read as a different kind of
    value). A count of sampled calls keeps its fraction, to 3 decimals.
    """
    value = round(float(value), 3)
    return int(value) if value.is_integer() else value


def list_versions(
    store: Store,
    project: str,
    since: datetime | None = None,
    until: datetime | None = None,
    call_site: str | None = None,
) -> list[dict[str, Any]]:
    """Every model version with its consistency metrics, each call counted once."""
    _check_text("call_site", call_site)
    since, until = _window(since, until)
    metrics = version_metrics(
        store, Selection(project=project, call_site=call_site, since=since, until=until)
    )
    out = []
    for version, m in sorted(metrics.items()):
        out.append(
            {
                "model_version": version,
                "calls": _count(m["calls"]),
                "failures": _count(m["failures"]),
                "failure_rate": _round(m["failure_rate"], 8),
                "failure_rate_ci": [_round(v, 8) for v in m["failure_rate_ci"]],
                "distinct_modes": m["distinct_modes"],
                "distinct_fingerprints": m["distinct_modes"],
                "effective_modes": _round(m["effective_modes"]),
                "top3_share": _round(m["top3_share"]),
                "novelty_rate": _round(m["novelty_rate"]),
                "repeatability": _round(m["repeatability"]),
                "repeated_inputs": m["repeated_inputs"],
                "repeatability_sample": _round(m["repeatability_sample"]),
                "drift": _round(m["drift"]),
                "grouping_strategies": m["strategies"],
                "first_seen": _iso(m["first_call"]),
                "last_seen": _iso(m["last_call"]),
            }
        )
    return out


def grouping_note(versions: list[dict[str, Any]]) -> str | None:
    """What to say when the listed versions' failures were grouped by more than
    one fingerprint strategy (a collector upgrade changed it in the window);
    None when one grouped them all."""
    used = sorted({s for v in versions for s in v.get("grouping_strategies", ())})
    if len(used) <= 1:
        return None
    return (
        f"Failures in this window were grouped by fingerprint strategies {', '.join(used)}: "
        "a failure mode recorded before the collector's upgrade has another fingerprint "
        "than after it, so modes, effective modes and novelty count it once per strategy. "
        "Choose a window after the upgrade to compare modes."
    )


def _catalogue(store: Store, project: str, fps: list[int]) -> dict[int, dict[str, Any]]:
    if not fps:
        return {}
    rows = store.query_dicts(
        f"""
        SELECT fingerprint,
               min(first_seen) AS first_seen,
               max(last_seen) AS last_seen,
               any(coarse_fingerprint) AS coarse_fingerprint,
               any(call_site) AS call_site,
               any(category) AS category,
               any(error_type) AS error_type,
               any(error_code) AS error_code,
               any(template) AS template,
               any(example_message) AS example
        FROM {store.table("fingerprint_catalog")}
        WHERE project = {{project:String}} AND fingerprint IN {{fps:Array(UInt64)}}
        GROUP BY fingerprint
        """,
        {"project": project, "fps": fps},
    )
    name_error_types(store, project, rows)
    return {int(r["fingerprint"]): r for r in rows}


def list_fingerprints(
    store: Store,
    project: str,
    *,
    version: str | None = None,
    call_site: str | None = None,
    category: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Failure fingerprints with their failures in the window, most frequent first."""
    if not 1 <= limit <= 1000:
        raise QueryError("limit must be between 1 and 1000")
    for name, value in (("version", version), ("call_site", call_site), ("category", category)):
        _check_text(name, value)
    since, until = _window(since, until)
    sel = Selection(
        project=project,
        versions=[version] if version is not None else None,
        call_site=call_site,
        since=since,
        until=until,
    )
    params = {**sel.params(), "limit": limit}
    category_filter = ""
    if category is not None:
        category_filter = f"""AND fingerprint IN (
            SELECT fingerprint FROM {store.table("fingerprint_catalog")}
            WHERE project = {{project:String}} AND category = {{category:String}})"""
        params["category"] = category
    rows = store.query_dicts(
        f"""
        SELECT fingerprint,
               sum(calls) AS failures,
               arraySort(groupUniqArray(model_version)) AS model_versions,
               min(hour) AS first_hour,
               max(hour) AS last_hour
        FROM {store.table("calls_hourly")}
        WHERE {sel.where()} AND is_failure = 1 {category_filter}
        GROUP BY fingerprint
        HAVING failures > 0
        ORDER BY failures DESC, fingerprint
        LIMIT {{limit:UInt32}}
        """,
        params,
    )
    info = _catalogue(store, project, [int(r["fingerprint"]) for r in rows])
    out = []
    for r in rows:
        entry = info.get(int(r["fingerprint"]), {})
        out.append(
            {
                "fingerprint": fingerprint_hex(r["fingerprint"]),
                "failures": _count(r["failures"]),
                "model_versions": r["model_versions"],
                "category": entry.get("category", ""),
                "error_type": entry.get("error_type", ""),
                "error_code": entry.get("error_code", ""),
                "call_site": entry.get("call_site", ""),
                "template": entry.get("template", ""),
                "example": entry.get("example", ""),
                "first_seen": _iso(entry.get("first_seen")) or "",
                "last_seen": _iso(entry.get("last_seen")) or "",
                "window_first_hour": _iso(r["first_hour"]),
                "window_last_hour": _iso(r["last_hour"]),
            }
        )
    return out


def list_incidents(
    store: Store,
    project: str,
    since: datetime | None = None,
    limit: int = 20,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Top failure fingerprints in [SINCE, UNTIL) (whole hours), with an example each.

    ``first_seen`` / ``last_seen`` are the fingerprint's overall first and
    last occurrence: "since when does this happen" is what incident review asks.
    A SINCE not earlier than UNTIL is a QueryError, as for every window.
    """
    return list_fingerprints(store, project, since=since, until=until, limit=limit)


def has_calls(store: Store, project: str | None = None) -> bool:
    """Whether the store holds calls of PROJECT (None: of any project).

    Reads the hourly rollup every list and metric answers from, ordered by
    project first, so the check costs one granule.
    """
    where = "WHERE project = {project:String}" if project is not None else ""
    rows = store.query(
        f"SELECT 1 FROM {store.table('calls_hourly')} {where} LIMIT 1",
        {"project": project} if project is not None else {},
    ).result_rows
    return bool(rows)


def no_calls_note(store: Store, project: str) -> str | None:
    """Why an empty answer is empty, when it is because PROJECT has no calls at all.

    None when PROJECT has calls (an empty answer then means none in the
    window or no failures: the answer itself). Only PROJECT is looked at,
    never another project: the read API tells a caller nothing of the
    projects of other API keys.
    """
    if has_calls(store, project):
        return None
    return f"the store holds no calls yet (of project {project!r})"


def fingerprint_detail(
    store: Store,
    project: str,
    fp: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    exemplars: int = 10,
    now: datetime | None = None,
) -> dict[str, Any]:
    """One fingerprint: grouping components, per-version timeline, exemplar calls.

    The window [SINCE, UNTIL) (whole hours, as for every list) applies to the
    failure counts, the timeline, the exemplars and each version's exemplar
    trace ids; ``first_seen`` / ``last_seen`` stay the fingerprint's overall
    first and last failure ("since when does this happen"), and every version
    that ever had it is listed, with 0 failures when none fell in the window.
    What the fingerprint is (its components, category, template, error types)
    does not depend on the window. The timeline has every hour of the window
    (``_filled_timeline``; NOW, default the current time, ends a window
    without UNTIL), so an hour without failures reads as 0, not as absent.
    """
    if not 1 <= exemplars <= 100:
        raise QueryError("exemplars must be between 1 and 100")
    since, until = _window(since, until)
    versions = store.query_dicts(
        f"""
        SELECT model_version,
               min(first_seen) AS first_seen,
               max(last_seen) AS last_seen,
               sum(failures) AS failures,
               any(coarse_fingerprint) AS coarse_fingerprint,
               any(call_site) AS call_site,
               any(category) AS category,
               any(error_type) AS error_type,
               any(error_code) AS error_code,
               any(template) AS template,
               groupUniqArrayMerge(10)(exemplar_trace_ids) AS trace_ids
        FROM {store.table("fingerprint_catalog")}
        WHERE project = {{project:String}} AND fingerprint = {{fp:UInt64}}
        GROUP BY model_version
        ORDER BY first_seen
        """,
        {"project": project, "fp": fp},
    )
    if not versions:
        raise NotFound(f"fingerprint {fingerprint_hex(fp)} not found")
    head = versions[0]
    # every call of a fingerprint carries the same components (they are what
    # was hashed), so any one row answers: no need to sort all of them by time
    grouping = store.query_dicts(
        f"""
        SELECT components, strategy
        FROM {store.table("calls")}
        WHERE project = {{project:String}} AND fingerprint = {{fp:UInt64}} AND is_failure = 1
        ORDER BY components = ''
        LIMIT 1
        """,
        {"project": project, "fp": fp},
    )
    components: Any = {}
    strategy = ""
    if grouping:
        strategy = grouping[0]["strategy"]
        try:
            components = json.loads(grouping[0]["components"] or "{}")
        except ValueError:
            components = {"raw": grouping[0]["components"]}
    kinds = error_types(store, project, [fp]).get(fp, [])
    sel = Selection(project=project, since=since, until=until)
    params = {**sel.params(), "fp": fp, "n": exemplars}
    timeline = store.query_dicts(
        f"""
        SELECT model_version, hour, sum(calls) AS failures
        FROM {store.table("calls_hourly")}
        WHERE {sel.where()} AND is_failure = 1 AND fingerprint = {{fp:UInt64}}
        GROUP BY model_version, hour
        ORDER BY hour, model_version
        """,
        params,
    )
    # the exemplars come from the hours the counts cover (the rollups' whole
    # hours), so every exemplar is one of the failures counted
    in_hours = " ".join(f"AND {c}" for c in sel.call_times())
    # LIMIT 1 BY the call's identity drops replayed duplicates like FINAL
    # does, without merging the whole table (6x faster at 10M calls)
    examples = store.query_dicts(
        f"""
        SELECT time, trace_id, span_id, model_version, call_site, error_type, error_code,
               http_status, finish_reason, message
        FROM {store.table("calls")}
        WHERE project = {{project:String}} AND fingerprint = {{fp:UInt64}} AND is_failure = 1
              {in_hours}
        ORDER BY time DESC
        LIMIT 1 BY trace_id, span_id
        LIMIT {{n:UInt32}}
        """,
        params,
    )
    windowed = since is not None or until is not None
    failures = {v["model_version"]: float(v["failures"]) for v in versions}
    trace_ids = {v["model_version"]: list(v["trace_ids"]) for v in versions}
    if windowed:
        failures = dict.fromkeys(failures, 0.0)
        for t in timeline:
            failures[t["model_version"]] = failures.get(t["model_version"], 0.0) + t["failures"]
        trace_ids = {
            version: list(ids)
            for version, ids in store.query(
                f"""
                SELECT model_version, groupUniqArray(10)(trace_id)
                FROM {store.table("calls")}
                WHERE project = {{project:String}} AND fingerprint = {{fp:UInt64}}
                      AND is_failure = 1 {in_hours}
                GROUP BY model_version
                """,
                params,
            ).result_rows
        }
    return {
        "fingerprint": fingerprint_hex(fp),
        "coarse_fingerprint": fingerprint_hex(head["coarse_fingerprint"]),
        "category": head["category"],
        "error_type": kinds[0][0] if kinds else head["error_type"],
        "error_types": [{"error_type": k, "failures": _count(n)} for k, n in kinds],
        "error_code": head["error_code"],
        "call_site": head["call_site"],
        "template": head["template"],
        "strategy": strategy,
        "components": components,
        "first_seen": _iso(min(v["first_seen"] for v in versions)),
        "last_seen": _iso(max(v["last_seen"] for v in versions)),
        "failures": _count(sum(failures.values())),
        "window": {"since": _iso(since), "until": _iso(until)},
        "versions": [
            {
                "model_version": v["model_version"],
                "first_seen": _iso(v["first_seen"]),
                "last_seen": _iso(v["last_seen"]),
                "failures": _count(failures.get(v["model_version"], 0.0)),
                "trace_ids": sorted(trace_ids.get(v["model_version"], [])),
            }
            for v in versions
        ],
        "timeline": [
            {"model_version": version, "hour": _iso(hour), "failures": _count(n)}
            for version, hour, n in _filled_timeline(
                [(t["model_version"], _utc(t["hour"]), float(t["failures"])) for t in timeline],
                since,
                until,
                now or datetime.now(UTC),
            )
        ],
        "exemplars": [{k: _iso(v) for k, v in e.items()} for e in examples],
    }


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _hour(value: datetime) -> datetime:
    return _utc(value).replace(minute=0, second=0, microsecond=0)


def _filled_timeline(
    points: list[tuple[str, datetime, float]],
    since: datetime | None,
    until: datetime | None,
    now: datetime,
) -> list[tuple[str, datetime, float]]:
    """POINTS (version, hour, failures) with every hour of the window, empty ones as 0.

    The hours are those the rollups read for [SINCE, UNTIL): from SINCE's
    hour to the last hour that starts before UNTIL; an open end is the
    first or last hour with failures, except that a window with SINCE and
    no UNTIL runs to NOW's hour (it is "since then, up to now": the quiet
    hours since the last failure are part of the answer). Each version
    with failures in the window gets every hour, ordered by hour, then
    version. Beyond MAX_FILLED_HOURS the latest hours are filled and the
    earlier hours with failures are kept as they are.
    """
    if not points:
        return []
    first = min(h for _, h, _ in points)
    last = max(h for _, h, _ in points)
    start = _hour(since) if since is not None else first
    if since is None and until is None:
        end = last
    else:
        # no hour after NOW's has failures yet (nor one after UNTIL's)
        end = max(_hour(now), last)
        if until is not None:
            end = min(end, _hour(_utc(until) - timedelta(microseconds=1)))
    start = max(start, end - timedelta(hours=MAX_FILLED_HOURS - 1))
    counts = {(version, hour): n for version, hour, n in points}
    hours = {h for _, h, _ in points}
    step = start
    while step <= end:
        hours.add(step)
        step += timedelta(hours=1)
    names = sorted({version for version, _, _ in points})
    return [
        (version, hour, counts.get((version, hour), 0.0))
        for hour in sorted(hours)
        for version in names
        if (version, hour) in counts or start <= hour <= end
    ]


def _require_versions(store: Store, project: str, versions: list[str]) -> None:
    """Raise NotFound naming each of VERSIONS that has no calls at all in PROJECT.

    A version nobody sent is a typo or a canary that never ran, not a version
    with "not enough data": a comparison against it must not pass a CI gate.
    """
    table = store.table("calls_hourly")
    rows = store.query(
        f"""
        SELECT DISTINCT model_version FROM {table}
        WHERE project = {{project:String}} AND model_version IN {{versions:Array(String)}}
        """,
        {"project": project, "versions": versions},
    ).result_rows
    present = {r[0] for r in rows}
    missing = [v for v in versions if v not in present]
    if not missing:
        return
    known = [
        r[0]
        for r in store.query(
            f"""
            SELECT model_version FROM {table} WHERE project = {{project:String}}
            GROUP BY model_version ORDER BY max(hour) DESC, model_version
            LIMIT {{n:UInt32}}
            """,
            {"project": project, "n": _KNOWN_SHOWN + 1},
        ).result_rows
    ]
    names = _version_names(missing)
    if not known:
        hint = "this project has no calls yet"
    else:
        hint = "known versions (most recent first): " + _shown(known)
    raise NotFound(f"no calls of {names}; {hint}")


def _version_names(versions: list[str]) -> str:
    """``version 'a'`` or ``versions 'a' and 'b'``, for a message."""
    return ("versions " if len(versions) > 1 else "version ") + " and ".join(map(repr, versions))


def _shown(items: list[str]) -> str:
    """The first ``_KNOWN_SHOWN`` of ITEMS, comma-separated, "…" when there are more."""
    more = ", …" if len(items) > _KNOWN_SHOWN else ""
    return ", ".join(items[:_KNOWN_SHOWN]) + more


def _require_call_site(store: Store, project: str, versions: list[str], call_site: str) -> None:
    """Raise NotFound naming each of VERSIONS never called at CALL_SITE in PROJECT.

    As with a version nobody sent, a comparison at a call site one version
    never reached (a typo in it, a canary that did not exercise it) must not
    pass a CI gate as "not enough data".
    """
    table = store.table("calls_hourly")
    rows = store.query(
        f"""
        SELECT model_version, call_site FROM {table}
        WHERE project = {{project:String}} AND model_version IN {{versions:Array(String)}}
        GROUP BY model_version, call_site
        ORDER BY max(hour) DESC, call_site
        """,
        {"project": project, "versions": versions},
    ).result_rows
    present = {version for version, site in rows if site == call_site}
    missing = [v for v in versions if v not in present]
    if not missing:
        return
    names = _version_names(missing)
    known = list(dict.fromkeys(repr(site) for version, site in rows if version in missing))
    hint = f"call sites of {names}: " + _shown(known)
    raise NotFound(f"no calls of {names} at call site {call_site!r}; {hint}")


def _require_calls_in_window(
    store: Store,
    project: str,
    versions: list[str],
    call_site: str | None,
    since: datetime | None,
    until: datetime | None,
) -> None:
    """Raise NotFound naming each of VERSIONS without calls in the window.

    A canary that sent nothing in the gated window (``--since 24h`` after it
    stopped, a window in the future, a typo in a date) is no more evidence
    than one that never sent anything: it must not pass a CI gate as "not
    enough data". The window's hours are those the comparison reads.
    """
    selection = Selection(
        project=project, versions=tuple(versions), call_site=call_site, since=since, until=until
    )
    table = store.table("calls_hourly")
    rows = store.query(
        f"SELECT DISTINCT model_version FROM {table} WHERE {selection.where()}",
        selection.params(),
    ).result_rows
    present = {r[0] for r in rows}
    missing = [v for v in versions if v not in present]
    if not missing:
        return
    seen = store.query(
        f"""
        SELECT model_version, min(hour), max(hour) FROM {table}
        WHERE project = {{project:String}} AND model_version IN {{versions:Array(String)}}
        {"AND call_site = {call_site:String}" if call_site is not None else ""}
        GROUP BY model_version
        """,
        {"project": project, "versions": missing, "call_site": call_site},
    ).result_rows
    spans = {
        version: f"{_utc(first):%Y-%m-%d %H:00} to {_utc(last) + timedelta(hours=1):%Y-%m-%d %H:00}"
        for version, first, last in seen
    }
    if since is not None and until is not None:
        window = f"between {_iso(since)} and {_iso(until)}"
    else:
        window = f"since {_iso(since)}" if since is not None else f"before {_iso(until)}"
    where = f" at call site {call_site!r}" if call_site is not None else ""
    calls_span = "; ".join(f"{v!r} has calls from {spans[v]} UTC" for v in missing if v in spans)
    raise NotFound(f"no calls of {_version_names(missing)}{where} {window}; {calls_span}")


def compare(
    store: Store,
    project: str,
    baseline: str,
    candidate: str,
    *,
    call_site: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> dict[str, Any]:
    """Validated ``compare_versions`` (the fixed comparison JSON)."""
    for name, value in (("baseline", baseline), ("candidate", candidate)):
        if not value:
            raise QueryError(f"{name} version is required")
        _check_text(name, value)
    _check_text("call_site", call_site)
    since, until = _window(since, until)
    if not 0 < alpha < 0.5:
        raise QueryError("alpha must be between 0 and 0.5")
    if baseline == candidate:
        raise QueryError(
            f"baseline and candidate are the same version {baseline!r}: pick two different versions"
        )
    _require_versions(store, project, [baseline, candidate])
    if call_site is not None:
        _require_call_site(store, project, [baseline, candidate], call_site)
    if since is not None or until is not None:
        _require_calls_in_window(store, project, [baseline, candidate], call_site, since, until)
    return compare_versions(
        store,
        project,
        baseline,
        candidate,
        call_site=call_site,
        since=since,
        until=until,
        alpha=alpha,
    )
