"""The panels count the hours that overlap the time range, as the API does.

The rollups are hourly, in UTC. A range [from, to) covers the hours from the
one holding *from* to the last one that starts before *to*: the read API's
``Selection`` (``hour >= toStartOfHour(since)``, ``hour < until``). Two ways
of getting this wrong showed up as wrong numbers:

- ``hour <= to``: a range ending on the hour also counted the hour that
  starts there, up to 59 minutes of calls after the range (and the spike
  panel compared two hours of failures with one hour's expectation);
- ``toStartOfHour(from)`` without a time zone truncates in the ClickHouse
  server's: in a zone half an hour off UTC (India, Newfoundland) a range
  starting at :45 lost its first hour, and the spike window moved by 30
  minutes.

The store holds steady traffic every hour, plus calls placed on the range's
edges: a version, a call site, a service and a mode seen only in the range's
first hour before *from*, and a call site, a service, an environment and a
mode seen only at *to* exactly. ``session_timezone`` stands in for the
server's ``<timezone>``: ``$__fromTime`` is ``toDateTime(epoch)``, read in it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from faultprint_collector.analysis import Selection, version_metrics
from faultprint_collector.ingest import CallRecord
from faultprint_collector.store._writer import insert_rows

from tests.dashboards.grafana_sql import ALL, QueryContext, Variable, expand, interval_for

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards" / "json"
FILES = sorted(DASHBOARDS.glob("*.json"))

PROJECT = "hours"
BASE, CAND, EARLY = "v1", "v2", "v0 early"
SITE, EARLY_SITE, LATE_SITE = "site.a", "site.early", "site.late"
SERVICE, EARLY_SERVICE, LATE_SERVICE = "checkout", "early-svc", "late-svc"
ENVIRONMENT, LATE_ENVIRONMENT = "prod", "staging"
FP_A, FP_B, FP_C = 0xAAAA000000000001, 0xBBBB000000000002, 0xCCCC000000000003
FP_EARLY, FP_LATE = 0xEEEE000000000004, 0xDDDD000000000005
CATEGORY = {FP_B: "timeout"}  # every other mode: "exception"

NOW_H = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
#: an absolute range from a quarter to the hour to a whole hour: its hours
#: are NOW_H-12h … NOW_H-3h (ten), not the one starting at its end
RANGE = (NOW_H - timedelta(hours=12) + timedelta(minutes=45), NOW_H - timedelta(hours=2))
#: the same, ending 300 ms into the next hour: that hour overlaps it (the API
#: rounds its end up to the second; $__toTime would cut it down)
JUST_PAST_THE_HOUR = (RANGE[0], RANGE[1] + timedelta(milliseconds=300))
#: a range ending mid-hour, where the spike window starts at the top of an hour
MID_HOUR = (NOW_H - timedelta(hours=20) + timedelta(minutes=15), RANGE[1] + timedelta(minutes=40))
HALF_HOUR_ZONES = ("Asia/Kolkata", "America/St_Johns")
#: what a user picks; multi-value variables stay on *All*
CHOSEN: dict[str, str | Sequence[str]] = {
    "project": PROJECT,
    "baseline": BASE,
    "candidate": CAND,
    "fingerprint": f"{FP_A:016x}",
    "window": "1",
}
#: every service, environment and call site of the ranges' hours, picked one by one
SELECTED: dict[str, str | Sequence[str]] = {
    **CHOSEN,
    "service": [SERVICE, EARLY_SERVICE],
    "environment": [ENVIRONMENT],
    "call_site": [SITE, EARLY_SITE],
}


def _call(
    version: str,
    site: str,
    when: datetime,
    fp: int = 0,
    *,
    service: str = SERVICE,
    environment: str = ENVIRONMENT,
    input_hash: int = 0,
) -> CallRecord:
    return CallRecord(
        project=PROJECT,
        time=when,
        trace_id="",  # set in _traffic: one trace per call
        span_id="",
        service=service,
        environment=environment,
        model_version=version,
        call_site=site,
        status="error" if fp else "ok",
        is_failure=int(fp != 0),
        category=CATEGORY.get(fp, "exception") if fp else "",
        error_type="ValueError" if fp else "",
        message=f"mode {fp:x}" if fp else "",
        template=f"mode {fp:x}" if fp else "",
        fingerprint=fp,
        input_hash=input_hash,
        components=json.dumps({"call_site": site}) if fp else "",
    )


def _traffic() -> list[CallRecord]:
    calls: list[CallRecord] = []
    for k in range(30, 0, -1):
        hour = NOW_H - timedelta(hours=k)
        # the baseline: a steady FP_A at the top of every hour (one lands on
        # the range's end) and FP_B at :40, among four successes (one input
        # asked every hour)
        calls.append(_call(BASE, SITE, hour, FP_A))
        calls.append(_call(BASE, SITE, hour + timedelta(minutes=5), input_hash=7))
        calls += [_call(BASE, SITE, hour + timedelta(minutes=m)) for m in (20, 35, 50)]
        calls.append(_call(BASE, SITE, hour + timedelta(minutes=40), FP_B))
        if k <= 24:  # the candidate: FP_A and a mode of its own, every hour
            calls += [_call(CAND, SITE, hour + timedelta(minutes=m)) for m in (15, 30, 45)]
            calls.append(_call(CAND, SITE, hour + timedelta(minutes=10), FP_A))
            calls.append(_call(CAND, SITE, hour + timedelta(minutes=25), FP_C))
    # only in the range's first hour, before the range starts (the hour
    # overlaps the range: it counts)
    first = NOW_H - timedelta(hours=12)
    calls.append(_call(EARLY, EARLY_SITE, first + timedelta(minutes=5), service=EARLY_SERVICE))
    calls.append(
        _call(EARLY, EARLY_SITE, first + timedelta(minutes=6), FP_EARLY, service=EARLY_SERVICE)
    )
    # only at the range's end, to the second (its hour is after the range)
    calls.append(
        _call(
            BASE,
            LATE_SITE,
            RANGE[1],
            FP_LATE,
            service=LATE_SERVICE,
            environment=LATE_ENVIRONMENT,
        )
    )
    for i, c in enumerate(calls):
        c.trace_id, c.span_id = f"{i + 1:032x}", f"{i + 1:016x}"
    return calls


TRAFFIC = _traffic()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """An embedded store holding TRAFFIC."""
    from faultprint_collector.store import apply_migrations, open_store

    opened = open_store(str(tmp_path_factory.mktemp("hours") / "store"))
    apply_migrations(opened)
    insert_rows(opened, [c.row() for c in TRAFFIC])
    yield opened
    opened.close()


# --- running the panels as Grafana does, on a server in ZONE -------------------------


def _board(name: str) -> dict[str, Any]:
    return json.loads((DASHBOARDS / f"{name}.json").read_text())


def _panel(board: dict[str, Any], panel_id: int) -> dict[str, Any]:
    return next(p for p in board["panels"] if p["id"] == panel_id)


def _query(store: Any, sql: str, zone: str) -> list[dict[str, Any]]:
    result = store.query(sql, settings={"session_timezone": zone})
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def _variables(
    store: Any,
    board: dict[str, Any],
    span: tuple[datetime, datetime],
    chosen: Mapping[str, str | Sequence[str]],
    zone: str,
) -> tuple[dict[str, Variable], dict[str, set[str]]]:
    """Run each variable's query in order and pick the options shown as CHOSEN.

    Multi-value variables not in CHOSEN are on *All*; a user picks by the
    text shown (the last column) or the value (the first), the panels get
    the value. Also returns the text of every option each query variable
    offers.
    """
    resolved: dict[str, Variable] = {}
    offered: dict[str, set[str]] = {}
    for var in board["templating"]["list"]:
        name = var["name"]
        if var["type"] == "custom":
            value = str(chosen.get(name, var["current"]["value"]))
            resolved[name] = Variable(name, value, options=var["query"].split(","))
            continue
        ctx = QueryContext(*span, interval_s=60, variables=resolved)
        rows = [list(r.values()) for r in _query(store, expand(var["query"]["rawSql"], ctx), zone)]
        options = [str(r[0]) for r in rows]
        offered[name] = {str(r[-1]) for r in rows}
        shown = {str(r[0]): str(r[0]) for r in rows} | {str(r[-1]): str(r[0]) for r in rows}
        picked = chosen.get(name)
        wanted = [picked] if isinstance(picked, str) else list(picked or [])
        assert set(wanted) <= shown.keys(), f"${name} does not offer {set(wanted) - shown.keys()}"
        if var.get("multi"):
            value = [shown[t] for t in wanted] or [ALL]
            resolved[name] = Variable(
                name, value, options=options, multi=True, all_value=var.get("allValue")
            )
        else:
            resolved[name] = Variable(name, shown[wanted[0]], options=options)
    return resolved, offered


def _offered(
    store: Any, board_name: str, span: tuple[datetime, datetime], zone: str = "UTC"
) -> dict[str, set[str]]:
    """The text of every option each query variable offers over SPAN."""
    return _variables(store, _board(board_name), span, CHOSEN, zone)[1]


def _run(
    store: Any,
    board_name: str,
    panel_id: int,
    span: tuple[datetime, datetime],
    chosen: Mapping[str, str | Sequence[str]] | None = None,
    zone: str = "UTC",
) -> list[dict[str, Any]]:
    """The rows panel PANEL_ID shows over SPAN, on a server whose time zone is ZONE."""
    board = _board(board_name)
    panel = _panel(board, panel_id)
    variables, _ = _variables(store, board, span, chosen or CHOSEN, zone)
    interval = interval_for(*span, panel.get("maxDataPoints", 1000), panel.get("interval"))
    (target,) = panel["targets"]
    return _query(store, expand(target["rawSql"], QueryContext(*span, interval, variables)), zone)


# --- what the hours in a range hold, from the rows written -----------------------


def _hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def _in_hours(span: tuple[datetime, datetime]) -> list[CallRecord]:
    """The calls of the hours that overlap SPAN: the read API's window."""
    return [c for c in TRAFFIC if _hour(span[0]) <= _hour(c.time) < span[1]]


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def _rounded(value: Any) -> Any:
    """VALUE with floats to 9 decimals: a sum's order may vary between runs."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


# --- #1: a range ending on the hour counts the hours inside it --------------------


@pytest.mark.parametrize(
    ("span", "base"),
    [(RANGE, (60, 20)), (JUST_PAST_THE_HOUR, (67, 23))],
    ids=["on-the-hour", "just-past-the-hour"],
)
def test_versions_at_a_glance_counts_the_hours_of_the_range(
    store: Any, span: tuple[datetime, datetime], base: tuple[int, int]
) -> None:
    """Calls and failures per version: the rows of the range's hours, as the API reads them."""
    rows = {r["model_version"]: r for r in _run(store, "failure-consistency", 1, span)}
    calls = Counter(c.model_version for c in _in_hours(span))
    failures = Counter(c.model_version for c in _in_hours(span) if c.is_failure)
    assert {v: (r["calls"], r["failures"]) for v, r in rows.items()} == {
        v: (calls[v], failures[v]) for v in calls
    }
    assert (calls[BASE], failures[BASE]) == base
    api = version_metrics(store, Selection(PROJECT, since=span[0], until=span[1]))
    assert {v: (r["calls"], r["failures"]) for v, r in rows.items()} == {
        v: (m["calls"], m["failures"]) for v, m in api.items()
    }


def test_novelty_counts_modes_first_seen_from_the_range_start_as_the_api(store: Any) -> None:
    """A mode first seen in the range's first hour but before the range starts
    was not brought in the range: the API reads ``since`` to the second, and
    so does the panel (it counted from the start of that hour)."""
    rows = {r["model_version"]: r for r in _run(store, "failure-consistency", 1, RANGE)}
    api = version_metrics(store, Selection(PROJECT, since=RANGE[0], until=RANGE[1]))
    assert rows[EARLY]["novelty_rate"] == api[EARLY]["novelty_rate"] == 0.0
    assert {v: _rounded(r["novelty_rate"]) for v, r in rows.items()} == {
        v: _rounded(m["novelty_rate"]) for v, m in api.items()
    }


def test_failures_per_mode_and_category_count_the_hours_of_the_range(store: Any) -> None:
    failed = [c for c in _in_hours(RANGE) if c.is_failure]
    per_mode = Counter((f"{c.fingerprint:016x}", c.model_version) for c in failed)
    top = _run(store, "failure-consistency", 10, RANGE)
    assert {(r["fingerprint"], r["model_version"]): r["failures"] for r in top} == per_mode
    assert f"{FP_LATE:016x}" not in {r["fingerprint"] for r in top}, "a mode after the range"

    per_category = Counter(c.category for c in failed)
    pie = _run(store, "incident-review", 3, RANGE)
    assert {r["category"]: r["failures"] for r in pie} == per_category

    new = _run(store, "failure-consistency", 9, RANGE)
    assert {r["fingerprint"]: r["failures"] for r in new} == {
        f"{FP_C:016x}": per_mode[f"{FP_C:016x}", CAND]
    }


def test_spiking_now_reads_a_steady_mode_as_steady(store: Any) -> None:
    """Window 1 h at a range ending on the hour: the last hour against the nine before.

    Every mode fails the same number of times every hour, so none is a spike
    (recent = expected, score 0); the mode first seen at the range's end
    is after the range, so it is not shown at all.
    """
    rows = _run(store, "incident-review", 1, RANGE, {**CHOSEN, "window": "1"})
    last_hour = RANGE[1] - timedelta(hours=1)
    failed = [c for c in _in_hours(RANGE) if c.is_failure]
    recent = Counter(f"{c.fingerprint:016x}" for c in failed if c.time >= last_hour)
    usual = Counter(f"{c.fingerprint:016x}" for c in failed if c.time < last_hour)
    usual_hours = (last_hour - _hour(RANGE[0])) / timedelta(hours=1)
    assert usual_hours == 9
    shown = {r["fingerprint"]: (r["recent_failures"], r["expected"], r["score"]) for r in rows}
    assert shown == {fp: (n, round(usual[fp] / usual_hours, 1), 0) for fp, n in recent.items()}
    assert shown[f"{FP_A:016x}"] == (2, 2.0, 0)  # once an hour on each version


@pytest.mark.parametrize(
    ("board_name", "panel_id"),
    [
        ("failure-consistency", 2),
        ("failure-consistency", 3),
        ("failure-consistency", 7),
        ("failure-consistency", 8),
        ("incident-review", 2),
        ("incident-review", 5),
        ("incident-review", 6),
    ],
)
def test_no_panel_shows_a_time_at_or_after_the_range_end(
    store: Any, board_name: str, panel_id: int
) -> None:
    """A call at the range's end to the second, and its hour, are after the range."""
    rows = _run(store, board_name, panel_id, RANGE)
    assert rows
    times = sorted({_utc(r["time"]) for r in rows})
    assert times[-1] < RANGE[1], f"panel {panel_id} shows {times[-1]}, the range ends {RANGE[1]}"
    assert times[0] >= _hour(RANGE[0])


def test_hourly_failures_per_category_are_the_hours_in_the_range(store: Any) -> None:
    rows = _run(store, "incident-review", 6, RANGE)
    expected = Counter((_hour(c.time), c.category) for c in _in_hours(RANGE) if c.is_failure)
    assert {(_utc(r["time"]), r["category"]): r["failures"] for r in rows} == expected


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_variables_offer_what_the_hours_of_the_range_hold(store: Any, path: Path) -> None:
    """The first hour's call site, service and mode; nothing first seen at the end."""
    offered = _offered(store, path.stem, RANGE)
    calls = _in_hours(RANGE)
    assert offered["call_site"] == {c.call_site for c in calls} == {SITE, EARLY_SITE}
    assert offered["service"] == {c.service for c in calls} == {SERVICE, EARLY_SERVICE}
    assert offered["environment"] == {c.environment for c in calls} == {ENVIRONMENT}
    if "fingerprint" in offered:
        fps = {f"{c.fingerprint:016x}" for c in calls if c.is_failure}
        assert {text.split(" ")[0] for text in offered["fingerprint"]} == fps


def test_choosing_every_service_offered_shows_what_all_shows(store: Any) -> None:
    """The service filter keeps the versions its services called in the hours counted."""
    services = sorted(_offered(store, "failure-consistency", RANGE)["service"])
    everything = _run(store, "failure-consistency", 1, RANGE)
    chosen = _run(store, "failure-consistency", 1, RANGE, {**CHOSEN, "service": services})
    assert EARLY in {r["model_version"] for r in everything}
    assert _rounded(chosen) == _rounded(everything)


# --- #2: a server in a half-hour time zone shows the same numbers ---------------------


def _every_panel() -> list[Any]:
    return [
        pytest.param(path.stem, panel["id"], id=f"{path.stem}-{panel['id']}")
        for path in FILES
        for panel in json.loads(path.read_text())["panels"]
    ]


@pytest.mark.parametrize("chosen", [CHOSEN, SELECTED], ids=["all", "selected"])
@pytest.mark.parametrize("span", [RANGE, MID_HOUR], ids=["on-the-hour", "mid-hour"])
@pytest.mark.parametrize("zone", HALF_HOUR_ZONES)
@pytest.mark.parametrize(("board_name", "panel_id"), _every_panel())
def test_a_half_hour_server_time_zone_changes_no_panel(
    store: Any,
    board_name: str,
    panel_id: int,
    zone: str,
    span: tuple[datetime, datetime],
    chosen: Mapping[str, str | Sequence[str]],
) -> None:
    """The rollups' hours are UTC: the server's zone must not move the range's hours."""
    in_utc = _run(store, board_name, panel_id, span, chosen)
    assert in_utc, f"panel {panel_id} shows nothing"
    in_zone = _run(store, board_name, panel_id, span, chosen, zone)
    assert _rounded(in_zone) == _rounded(in_utc)


@pytest.mark.parametrize("span", [RANGE, MID_HOUR], ids=["on-the-hour", "mid-hour"])
@pytest.mark.parametrize("zone", HALF_HOUR_ZONES)
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_a_half_hour_server_time_zone_changes_no_variable(
    store: Any, path: Path, zone: str, span: tuple[datetime, datetime]
) -> None:
    assert _offered(store, path.stem, span, zone) == _offered(store, path.stem, span)
