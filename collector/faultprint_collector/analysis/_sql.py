"""The consistency metrics computed in ClickHouse from the rollups.

The metrics read the pre-aggregated tables (``calls_hourly``,
``input_outcomes_hourly``, ``fingerprint_catalog``), so the cost grows with
versions × call sites × hours × fingerprints rather than with the number
of calls; ``calls`` itself is read only by its key over a bounded slice
(a version's first call, where novelty's window starts, and the grouping
strategies of its failures). Windows are whole hours: an hour is selected
when it overlaps [since, until). Every query is parameterised and scoped
by project.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from faultprint_collector.analysis._reference import (
    effective_calls,
    jensen_shannon,
    rate_equivalent_calls,
    wilson_interval,
)
from faultprint_collector.ingest import LATEST_START
from faultprint_collector.store import Store

__all__ = [
    "Selection",
    "error_types",
    "failure_strategies",
    "fingerprint_info",
    "mode_counts",
    "mode_exposure",
    "name_error_types",
    "version_metrics",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: the end of an open window: past every time the store holds (up to the end of 2105)
_FAR = LATEST_START


def _ch_time(value: datetime, *, round_up: bool = False) -> str:
    """A UTC 'YYYY-MM-DD HH:MM:SS' string for a DateTime('UTC') parameter.

    ROUND_UP takes the next whole second when VALUE has a fraction, for an
    exclusive end: ``hour < until`` then still holds the hour that starts
    within that fraction (cut down, an ``until`` of 10:00:00.5 left out the
    10:00 hour although the window reaches into it).
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if round_up and value.microsecond:
        value += timedelta(microseconds=1_000_000 - value.microsecond)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class Selection:
    """Which rollup rows a metric reads: project, versions, call site, window."""

    project: str
    versions: Sequence[str] | None = None
    call_site: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self, alias: str = "") -> str:
        """The WHERE conditions on a rollup with an ``hour`` (parameter
        placeholders only, never values)."""
        a = f"{alias}." if alias else ""
        parts = [
            f"{a}project = {{project:String}}",
            f"{a}hour >= toStartOfHour({{since:DateTime('UTC')}})",
            f"{a}hour < {{until:DateTime('UTC')}}",
        ]
        if self.versions is not None:
            parts.append(f"{a}model_version IN {{versions:Array(String)}}")
        if self.call_site is not None:
            parts.append(f"{a}call_site = {{call_site:String}}")
        return " AND ".join(parts)

    def call_times(self) -> list[str]:
        """Conditions on the ``calls`` table's time for the hours :meth:`where` reads.

        The rollups read the hours from the start of SINCE's hour to the last
        hour that starts before UNTIL; these bound the time itself to those
        hours, so a read of the calls covers exactly the calls the rollups
        count (and the table's key can use them). None for an open window.
        Bound with :meth:`params`.
        """
        parts = []
        if self.since is not None:
            parts.append("time >= toStartOfHour({since:DateTime('UTC')})")
        if self.until is not None:
            parts.append(
                "time < toStartOfHour({until:DateTime('UTC')} - INTERVAL 1 SECOND)"
                " + INTERVAL 1 HOUR"
            )
        return parts

    def params(self) -> dict[str, Any]:
        """The bound values for :meth:`where`."""
        params: dict[str, Any] = {
            "project": self.project,
            "since": _ch_time(self.since or _EPOCH),
            "until": _ch_time(self.until or _FAR, round_up=True),
        }
        if self.versions is not None:
            params["versions"] = list(self.versions)
        if self.call_site is not None:
            params["call_site"] = self.call_site
        return params


def _totals(store: Store, sel: Selection) -> list[dict[str, Any]]:
    return store.query_dicts(
        f"""
        SELECT model_version,
               sum(calls) AS n,
               sumIf(calls, is_failure = 1) AS f,
               sumIf(calls_sq, is_failure = 1) AS fail_sq,
               sumIf(calls_sq, is_failure = 0) AS ok_sq,
               sum(occurrences) AS spans,
               min(hour) AS first_hour,
               max(hour) AS last_hour
        FROM {store.table("calls_hourly")}
        WHERE {sel.where()}
        GROUP BY model_version
        ORDER BY model_version
        """,
        sel.params(),
    )


def _call_times(
    store: Store, sel: Selection, totals: Sequence[dict[str, Any]]
) -> dict[str, tuple[datetime, datetime]]:
    """Per version, the times of its first and last call in the selection's hours.

    The rollups know only hours; the times themselves are read from
    ``calls``, in the versions' first and last hours only (a version's
    earliest and latest calls are in those hours, whatever other hours the
    query also reads), by the table's key: the cost of a few hours of calls,
    in one query whatever the number of versions. A version none of whose
    calls of those hours are left (rows deleted by hand) keeps its hours, as
    the rollups know them.
    """
    if not totals:
        return {}
    hours = sorted({h for t in totals for h in (t["first_hour"], t["last_hour"])})
    site = "AND call_site = {call_site:String}" if sel.call_site is not None else ""
    rows = store.query(
        f"""
        SELECT model_version, min(time), max(time)
        FROM {store.table("calls")}
        WHERE project = {{project:String}}
          AND model_version IN {{versions:Array(String)}}
          AND time >= {{low:DateTime('UTC')}}
          AND time < {{high:DateTime('UTC')}} + INTERVAL 1 HOUR
          AND toStartOfHour(time, 'UTC') IN {{hours:Array(DateTime('UTC'))}}
          {site}
        GROUP BY model_version
        """,
        {
            "project": sel.project,
            "versions": [t["model_version"] for t in totals],
            "low": _ch_time(hours[0]),
            "high": _ch_time(hours[-1]),
            "hours": [_ch_time(h) for h in hours],
            "call_site": sel.call_site,
        },
    ).result_rows
    seen = {str(version): (_utc(first), _utc(last)) for version, first, last in rows}
    return {
        t["model_version"]: seen.get(
            t["model_version"],
            (_utc(t["first_hour"]), _utc(t["last_hour"]) + timedelta(hours=1)),
        )
        for t in totals
    }


def _window_starts(
    sel: Selection, times: Mapping[str, tuple[datetime, datetime]]
) -> dict[str, datetime]:
    """Per version, when its window starts for novelty: SINCE itself, exactly
    (not the start of its hour), or without one the version's first call in
    the selection (``_call_times``).

    The rollups know only hours, and a cut-off at the version's first hour
    counted every mode another version first showed earlier in that hour as
    new (a candidate run right after its baseline read 100% novelty). The
    catalogue's per-version first seen is a failure's; a version's first
    call may be a success.
    """
    if sel.since is not None:
        return {v: _utc(sel.since) for v in times}
    return {v: first for v, (first, _last) in times.items()}


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _micros(value: datetime) -> int:
    """VALUE as microseconds since 1970 (a DateTime64(6) to the microsecond)."""
    return (_utc(value) - _EPOCH) // timedelta(microseconds=1)


def _mode_stats(
    store: Store, sel: Selection, starts: dict[str, datetime]
) -> dict[str, dict[str, Any]]:
    # K, exp(H), top-3 share and novelty from one pass over the per-mode
    # sums; novelty counts the failures whose fingerprint the catalogue
    # first saw at or after the version's window start (``_window_starts``).
    # Without failures exp(H) and the top-3 share are 0/0: NULL, as novelty.
    params = {
        **sel.params(),
        "start_versions": list(starts),
        "start_micros": [_micros(t) for t in starts.values()],
    }
    rows = store.query_dicts(
        f"""
        SELECT model_version,
               arraySum(ws) AS f,
               length(ws) AS k,
               if(f > 0, exp(-arraySum(x -> (x / f) * ln(x / f), ws)), NULL) AS effective_modes,
               if(f > 0, arraySum(arraySlice(arrayReverseSort(ws), 1, 3)) / f, NULL) AS top3_share,
               if(f > 0, arraySum(arrayFilter((x, s) -> s >= start, ws, firsts)) / f, NULL)
                   AS novelty_rate
        FROM (
            SELECT m.model_version AS model_version,
                   groupArray(m.w) AS ws,
                   groupArray(fs.first_seen) AS firsts,
                   any(fromUnixTimestamp64Micro(
                       {{start_micros:Array(Int64)}}[
                           indexOf({{start_versions:Array(String)}}, m.model_version)],
                       'UTC')) AS start
            FROM (
                SELECT model_version, fingerprint, sum(calls) AS w
                FROM {store.table("calls_hourly")}
                WHERE {sel.where()} AND is_failure = 1
                GROUP BY model_version, fingerprint
                HAVING w > 0
            ) AS m
            INNER JOIN (
                SELECT fingerprint, min(first_seen) AS first_seen
                FROM {store.table("fingerprint_catalog")}
                WHERE project = {{project:String}}
                GROUP BY fingerprint
            ) AS fs ON m.fingerprint = fs.fingerprint
            GROUP BY m.model_version
        )
        """,
        params,
    )
    return {r["model_version"]: r for r in rows}


#: above this many input rows (an input's hours), repeatability reads a hash range of inputs
REPEATABILITY_MAX_INPUTS = 200_000
_U64 = 2**64 - 1


def _repeatability(
    store: Store, sel: Selection, *, max_inputs: int = REPEATABILITY_MAX_INPUTS
) -> dict[str, tuple[float, int, float]]:
    """Per version: (repeatability, repeated inputs counted, share of inputs read).

    Reads ``input_outcomes_hourly`` over the window's hours, as the other
    metrics read ``calls_hourly``, and merges each input's hours: an input
    is repeated when it was called at least twice within them, and its
    outcomes agree when the smallest equals the largest. Calls of the input
    outside the window count neither way (the all-time ``input_outcomes``
    counted them: a version with 2 calls in the window showed the
    repeatability of its whole history).

    Input hashes are uniform 64-bit hashes, so the inputs whose hash lies in
    [0, f·2⁶⁴) are a random sample of inputs, independent of their outcomes:
    when a selection holds more than MAX_INPUTS rows, only that range is
    read (the sort key has input_hash right after the call site, so the
    range prunes granules) and repeatability is the share among the sampled
    inputs. An input's rows may sit in several parts, hours or shards; the
    GROUP BY merges them all.
    """
    params = sel.params()
    table = store.table("input_outcomes_hourly")
    where = sel.where()
    total = store.query(f"SELECT count() FROM {table} WHERE {where}", params).result_rows[0][0]
    fraction = 1.0 if total <= max_inputs else max_inputs / total
    params["cut"] = _U64 if fraction >= 1.0 else int(fraction * 2**64)
    where += " AND input_hash <= {cut:UInt64}"
    rows = store.query_dicts(
        f"""
        SELECT model_version,
               countIf(lo = hi) / count() AS repeatability,
               count() AS inputs
        FROM (
            SELECT model_version, call_site, input_hash,
                   sum(occurrences) AS n, min(min_outcome) AS lo, max(max_outcome) AS hi
            FROM {table}
            WHERE {where}
            GROUP BY model_version, call_site, input_hash
            HAVING n >= 2
        )
        GROUP BY model_version
        """,
        params,
    )
    return {r["model_version"]: (r["repeatability"], r["inputs"], fraction) for r in rows}


def _drift(store: Store, sel: Selection) -> dict[str, float | None]:
    # The two most recent days with failures, per version; a day is 24 hours
    # counted back from the version's latest hour with failures (days_back 0
    # ends with it), never a calendar day, whose first minutes would hold a
    # handful of failures (see the reference ``drift``).
    rows = store.query(
        f"""
        SELECT model_version, days_back, fingerprint, w
        FROM (
            SELECT model_version, days_back, fingerprint, w,
                   dense_rank() OVER (PARTITION BY model_version ORDER BY days_back) AS r
            FROM (
                SELECT model_version,
                       intDiv(dateDiff('hour', hour, latest), 24) AS days_back,
                       fingerprint, sum(calls) AS w
                FROM (
                    SELECT model_version, hour, fingerprint, calls,
                           max(hour) OVER (PARTITION BY model_version) AS latest
                    FROM {store.table("calls_hourly")}
                    WHERE {sel.where()} AND is_failure = 1
                )
                GROUP BY model_version, days_back, fingerprint
                HAVING w > 0
            )
        )
        WHERE r <= 2
        """,
        sel.params(),
    ).result_rows
    days: dict[str, dict[int, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for version, days_back, fp, w in rows:
        days[version][int(days_back)][fp] = w
    out: dict[str, float | None] = {}
    for version, per_day in days.items():
        if len(per_day) < 2:
            out[version] = None
            continue
        last, previous = sorted(per_day)[:2]
        out[version] = jensen_shannon(per_day[previous], per_day[last])
    return out


def version_metrics(
    store: Store, sel: Selection, *, with_drift: bool = True
) -> dict[str, dict[str, Any]]:
    """Every consistency metric for each model version in the selection.

    Values are raw (weighted sums as floats); ``spans`` the calls stored;
    ``failure_rate_ci`` is the Wilson 95% interval at the rate-equivalent
    number of calls (``rate_equivalent_calls``); ``effective_calls`` is that,
    but never more than ``spans`` (see ``effective_calls``); ``strategies`` the
    fingerprint strategies that grouped its failures. Repeatability
    counts the calls in the window's hours, as every other metric (an input
    called once before the window and once in it is not repeated; see
    ``_repeatability``). Without failures, effective modes,
    top-3 share and novelty are None (shares of no failures are 0/0).
    Novelty counts from ``novelty_start``: SINCE exactly, else the version's
    first call in the selection (``_window_starts``); ``first_call`` and
    ``last_call`` the times of its first and last call in the window's hours.
    """
    totals = _totals(store, sel)
    if not totals:
        return {}
    times = _call_times(store, sel, totals)
    starts = _window_starts(sel, times)
    modes = _mode_stats(store, sel, starts)
    repeat = _repeatability(store, sel)
    drift = _drift(store, sel) if with_drift else {}
    strategies = failure_strategies(store, sel)
    out: dict[str, dict[str, Any]] = {}
    for t in totals:
        v = t["model_version"]
        n, f = float(t["n"]), float(t["f"])
        fail_sq, ok_sq, spans = float(t["fail_sq"]), float(t["ok_sq"]), float(t["spans"])
        m = rate_equivalent_calls(n, f, fail_sq, ok_sq)
        rate = f / n if n > 0 else 0.0
        mode = modes.get(v, {})
        rep = repeat.get(v)
        out[v] = {
            "calls": n,
            "failures": f,
            "failure_rate": rate,
            "failure_rate_ci": wilson_interval(rate * m, m),
            "effective_calls": effective_calls(n, f, fail_sq, ok_sq, spans),
            "rate_equivalent_calls": m,
            "calls_sq": fail_sq + ok_sq,
            "spans": spans,
            "distinct_modes": int(mode.get("k", 0)),
            "effective_modes": _optional(mode.get("effective_modes")),
            "top3_share": _optional(mode.get("top3_share")),
            "novelty_rate": _optional(mode.get("novelty_rate")),
            "novelty_start": starts[v],
            "repeatability": rep[0] if rep else None,
            "repeated_inputs": rep[1] if rep else 0,
            "repeatability_sample": rep[2] if rep else 1.0,
            "drift": drift.get(v),
            "strategies": strategies.get(v, []),
            "first_hour": t["first_hour"],
            "last_hour": t["last_hour"],
            "first_call": times[v][0],
            "last_call": times[v][1],
        }
    return out


def _optional(value: Any) -> float | None:
    """A metric that has no value without failures (0/0): None, else a float."""
    return None if value is None else float(value)


def mode_counts(store: Store, sel: Selection) -> dict[str, dict[int, float]]:
    """Weighted failures per fingerprint, per model version in the selection."""
    rows = store.query(
        f"""
        SELECT model_version, fingerprint, sum(calls) AS w
        FROM {store.table("calls_hourly")}
        WHERE {sel.where()} AND is_failure = 1
        GROUP BY model_version, fingerprint
        HAVING w > 0
        """,
        sel.params(),
    ).result_rows
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for version, fp, w in rows:
        out[version][int(fp)] = float(w)
    return dict(out)


def mode_exposure(store: Store, sel: Selection) -> dict[str, dict[int, tuple[float, float]]]:
    """Per version and fingerprint: (calls, sum of squared weights) at the call
    site(s) where the fingerprint failed in the selection (see the reference
    ``mode_exposure``)."""
    rows = store.query(
        f"""
        SELECT c.model_version, m.fingerprint, sum(c.n), sum(c.sq)
        FROM (
            SELECT model_version, call_site, sum(calls) AS n, sum(calls_sq) AS sq
            FROM {store.table("calls_hourly")}
            WHERE {sel.where()}
            GROUP BY model_version, call_site
        ) AS c
        INNER JOIN (
            SELECT fingerprint, call_site
            FROM {store.table("calls_hourly")}
            WHERE {sel.where()} AND is_failure = 1
            GROUP BY fingerprint, call_site
            HAVING sum(calls) > 0
        ) AS m ON c.call_site = m.call_site
        GROUP BY c.model_version, m.fingerprint
        """,
        sel.params(),
    ).result_rows
    out: dict[str, dict[int, tuple[float, float]]] = defaultdict(dict)
    for version, fp, n, sq in rows:
        out[version][int(fp)] = (float(n), float(sq))
    return dict(out)


def failure_strategies(store: Store, sel: Selection) -> dict[str, list[str]]:
    """Per model version, the fingerprint strategies its failures in the
    selection were grouped by (one, unless the collector's grouping changed
    within the window; none for failures stored without one, written by
    hand rather than by a collector).

    Reads the ``calls`` table (the rollups do not keep the strategy), by its
    key: project, version, call site, time; failures first (PREWHERE: the
    other columns are read for them only).
    """
    parts = ["project = {project:String}"]
    if sel.versions is not None:
        parts.append("model_version IN {versions:Array(String)}")
    if sel.call_site is not None:
        parts.append("call_site = {call_site:String}")
    # the hours the rollups read, as bounds on the time itself, which the
    # table's key can use; none for an open window (reading no time column)
    parts += sel.call_times()
    rows = store.query(
        f"""
        SELECT model_version, arraySort(groupUniqArrayIf(strategy, strategy != ''))
        FROM {store.table("calls")}
        PREWHERE is_failure = 1
        WHERE {" AND ".join(parts)}
        GROUP BY model_version
        """,
        sel.params(),
    ).result_rows
    return {str(version): [str(s) for s in strategies] for version, strategies in rows}


def error_types(
    store: Store, project: str, fingerprints: Sequence[int]
) -> dict[int, list[tuple[str, float]]]:
    """Per fingerprint, its error types with their failures, most frequent first.

    A mode grouped by a provider's error code can arrive under several error
    types (``RateLimitError`` and ``APIStatusError`` for the same
    ``rate_limit_exceeded``); the catalogue keeps an arbitrary one of them,
    so they are counted on the calls (rows: a replayed duplicate not yet
    merged away counts twice, as in the rollups; counting distinct calls
    made a comparison over 10M calls 2.6x slower for a ranking it seldom
    changes). Ties go by name; empty types are left out (a fingerprint
    without any has no entry).
    """
    if not fingerprints:
        return {}
    rows = store.query(
        f"""
        SELECT fingerprint, error_type, count() AS n
        FROM {store.table("calls")}
        PREWHERE is_failure = 1
        WHERE project = {{project:String}} AND fingerprint IN {{fps:Array(UInt64)}}
          AND error_type != ''
        GROUP BY fingerprint, error_type
        ORDER BY fingerprint, n DESC, error_type
        """,
        {"project": project, "fps": [int(f) for f in fingerprints]},
    ).result_rows
    out: dict[int, list[tuple[str, float]]] = defaultdict(list)
    for fp, kind, n in rows:
        out[int(fp)].append((str(kind), float(n)))
    return dict(out)


def fingerprint_info(
    store: Store, project: str, fingerprints: Sequence[int], prefer_version: str = ""
) -> dict[int, dict[str, Any]]:
    """Template, category, error type, call site and an example per fingerprint.

    The error type is the most frequent of the fingerprint's failures, and
    ``error_types`` lists them all, most frequent first (``error_types``).
    The example message comes from PREFER_VERSION when it has one.
    """
    if not fingerprints:
        return {}
    rows = store.query_dicts(
        f"""
        SELECT fingerprint,
               any(template) AS template,
               any(category) AS category,
               any(error_type) AS error_type,
               any(call_site) AS call_site,
               argMax(example_message, model_version = {{prefer:String}}) AS example,
               min(first_seen) AS first_seen
        FROM {store.table("fingerprint_catalog")}
        WHERE project = {{project:String}} AND fingerprint IN {{fps:Array(UInt64)}}
        GROUP BY fingerprint
        """,
        {"project": project, "fps": [int(f) for f in fingerprints], "prefer": prefer_version},
    )
    name_error_types(store, project, rows)
    return {int(r["fingerprint"]): r for r in rows}


def name_error_types(store: Store, project: str, rows: list[dict[str, Any]]) -> None:
    """Set each fingerprint row's ``error_type`` to its most frequent one, and
    ``error_types`` to all of them, most frequent first (``error_types``); a
    row whose failures name none keeps the error type it has."""
    kinds = error_types(store, project, [int(r["fingerprint"]) for r in rows])
    for r in rows:
        named = [kind for kind, _ in kinds.get(int(r["fingerprint"]), [])]
        r["error_types"] = named
        if named:
            r["error_type"] = named[0]
