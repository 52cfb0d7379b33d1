"""The dashboards' numbers mean what the API's do, on a store built for it.

The demo traffic of ``test_dashboards.py`` shows that every query runs; this
store holds what the demo lacks, each for one question a panel answers:

- names that break naive quoting: a project, versions, call sites, a service
  and an environment with quotes, backslashes, commas and ``$__`` (a version
  is whatever an instrumented application sets);
- a version with calls but no failures and no repeated input (its mode
  metrics and repeatability are no data, not 0);
- a baseline whose inputs repeat within each hour, and one input that
  repeats only across hours (repeatability follows the range);
- a candidate that adds a call site the baseline never called (a new mode
  there was never expected on the baseline);
- a mode first seen ten days ago, beyond the rollups' retention, that comes
  back (not novel, as the API says);
- a steady mix of two modes, one at :05 and one at :35 of every hour (no
  drift, however the minutes fall into windows);
- a second project whose rows no panel may show.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from faultprint_collector.analysis import Selection, mode_counts, mode_exposure, version_metrics
from faultprint_collector.analysis._reference import jensen_shannon
from faultprint_collector.ingest import CallRecord
from faultprint_collector.store._writer import insert_rows

from tests.dashboards.grafana_sql import (
    ALL,
    QueryContext,
    Variable,
    apply_conditional_all,
    expand,
    interval_for,
)

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards" / "json"
FILES = sorted(DASHBOARDS.glob("*.json"))

PROJECT = "acme's \\ shop"
BASE = "v1 'q' \\' OR 1=1 -- $__fromTime"
CAND = 'v2 "neu", ü \\'
QUIET = "v0 quiet'"
SITE_A = "shop.answer, 'x' \\"
SITE_B = "shop.new_site"
SERVICE = "checkout 'svc' \\"
ENVIRONMENT = "prod,eu"
OTHER_PROJECT = "other"
LEAK = "leak-version"

FP1, FP2, FP3 = 0x1111111111111111, 0x2222222222222222, 0x3333333333333333
FP_OLD, FP_NEW_A, FP_NEW_B = 0x0D0D0D0D0D0D0D0D, 0xA0A0A0A0A0A0A0A0, 0xB0B0B0B0B0B0B0B0

NOW_H = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
RETENTION_DAYS = 7
#: the time range of most tests: the 48 hours of data
SPAN = (NOW_H - timedelta(hours=48), NOW_H + timedelta(minutes=1))
#: the dashboard's default range
WEEK = (NOW_H - timedelta(days=7), NOW_H + timedelta(minutes=1))


def _call(
    version: str,
    site: str,
    when: datetime,
    fp: int = 0,
    *,
    input_hash: int = 0,
    project: str = PROJECT,
) -> CallRecord:
    return CallRecord(
        project=project,
        time=when,
        trace_id="",  # set in _traffic: one trace per call
        span_id="",
        service=SERVICE,
        environment=ENVIRONMENT,
        model_version=version,
        call_site=site,
        status="error" if fp else "ok",
        is_failure=int(fp != 0),
        category="exception" if fp else "",
        error_type="ValueError" if fp else "",
        message=f"mode {fp:x}" if fp else "",
        template=f"mode {fp:x}" if fp else "",
        fingerprint=fp,
        input_hash=input_hash,
        components=json.dumps({"call_site": site}) if fp else "",
    )


def _traffic() -> list[CallRecord]:
    calls: list[CallRecord] = []
    # the baseline: every hour of two days, 20 successes (ten inputs, each
    # repeated) and one failure of each steady mode; FP2 fails on input 1,
    # which otherwise succeeds (an input whose outcomes disagree)
    for k in range(48, 0, -1):
        hour = NOW_H - timedelta(hours=k)
        for i in range(20):
            calls.append(_call(BASE, SITE_A, hour + timedelta(minutes=i), input_hash=1 + i % 10))
        calls.append(
            _call(BASE, SITE_A, hour + timedelta(minutes=5, seconds=30), FP1, input_hash=11)
        )
        calls.append(_call(BASE, SITE_A, hour + timedelta(minutes=35), FP2, input_hash=1))
        # the quiet version: calls, never a failure, never an input twice
        calls.append(_call(QUIET, SITE_A, hour + timedelta(minutes=50)))
    # an old mode: first seen ten days ago (beyond the rollups' retention),
    # back three hours ago
    calls.append(_call(BASE, SITE_A, NOW_H - timedelta(days=10), FP_OLD))
    calls.append(_call(BASE, SITE_A, NOW_H - timedelta(hours=3) + timedelta(minutes=15), FP_OLD))
    # the candidate: the last day, at the baseline's call site and at a new one
    for k in range(24, 0, -1):
        hour = NOW_H - timedelta(hours=k)
        for i in range(8):
            calls.append(_call(CAND, SITE_A, hour + timedelta(minutes=i)))
        calls.append(_call(CAND, SITE_A, hour + timedelta(minutes=10), FP3))
        if k <= 10:
            calls.append(_call(CAND, SITE_A, hour + timedelta(minutes=20), FP_NEW_A))
        for i in range(10):
            calls.append(_call(CAND, SITE_B, hour + timedelta(minutes=30 + i)))
        calls.append(_call(CAND, SITE_B, hour + timedelta(minutes=40), FP_NEW_B))
    # another project, whose rows no panel may show
    for k in range(10):
        when = NOW_H - timedelta(hours=k + 1)
        calls.append(_call(LEAK, "leak.site", when, FP1, project=OTHER_PROJECT))
        calls.append(_call(LEAK, SITE_A, when, project=OTHER_PROJECT))
    for i, c in enumerate(calls):
        c.trace_id, c.span_id = f"{i + 1:032x}", f"{i + 1:016x}"
    return calls


TRAFFIC = _traffic()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """An embedded store holding TRAFFIC, with the rollups' retention applied."""
    from faultprint_collector.store import apply_migrations, open_store

    opened = open_store(str(tmp_path_factory.mktemp("meaning") / "store"))
    apply_migrations(opened, retention_days=RETENTION_DAYS)
    insert_rows(opened, [c.row() for c in TRAFFIC])
    # what the TTL does in the background, now: the rollups forget the mode's
    # first appearance, the catalogue keeps it
    opened.command(f"OPTIMIZE TABLE {opened.table('calls_hourly')} FINAL")
    opened.command(f"OPTIMIZE TABLE {opened.table('calls')} FINAL")
    yield opened
    opened.close()


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _board(name: str) -> dict[str, Any]:
    return _load(DASHBOARDS / f"{name}.json")


def _panel(board: dict[str, Any], panel_id: int) -> dict[str, Any]:
    return next(p for p in board["panels"] if p["id"] == panel_id)


def _variables(
    store: Any,
    board: dict[str, Any],
    span: tuple[datetime, datetime],
    chosen: Mapping[str, str | Sequence[str]],
) -> dict[str, Variable]:
    """Run each variable's query in order and pick the options shown as CHOSEN.

    A user picks by the text a variable shows; the panels get its value
    (which may differ: see the variable's query). Multi-value variables not
    in CHOSEN are on *All*.
    """
    resolved: dict[str, Variable] = {}
    for var in board["templating"]["list"]:
        name = var["name"]
        if var["type"] == "custom":
            value = str(chosen.get(name, var["current"]["value"]))
            resolved[name] = Variable(name, value, options=var["query"].split(","))
            continue
        ctx = QueryContext(*span, interval_s=60, variables=resolved)
        rows = store.query(expand(var["query"]["rawSql"], ctx)).result_rows
        options = [str(r[0]) for r in rows]
        shown = {str(r[0]): str(r[0]) for r in rows} | {str(r[-1]): str(r[0]) for r in rows}
        if var.get("multi"):
            picked = chosen.get(name)
            value = [ALL] if picked is None else [shown[t] for t in picked]
            resolved[name] = Variable(
                name, value, options=options, multi=True, all_value=var.get("allValue")
            )
        else:
            resolved[name] = Variable(name, shown[str(chosen[name])], options=options)
    return resolved


def _run(
    store: Any,
    board: dict[str, Any],
    panel_id: int,
    span: tuple[datetime, datetime],
    chosen: Mapping[str, str | Sequence[str]],
) -> list[dict[str, Any]]:
    """The rows panel PANEL_ID shows over SPAN, with the interval Grafana gives it."""
    panel = _panel(board, panel_id)
    variables = _variables(store, board, span, chosen)
    interval = interval_for(*span, panel.get("maxDataPoints", 1000), panel.get("interval"))
    (target,) = panel["targets"]
    return list(
        store.query_dicts(expand(target["rawSql"], QueryContext(*span, interval, variables)))
    )


CHOSEN = {"project": PROJECT, "baseline": BASE, "candidate": CAND}


# --- #2: any stored name works, and none can change the SQL -------------------------

_VAR_REF = re.compile(r"\$\{(\w+)(?::([^}]*))?\}|\[\[(\w+)(?::\w+)?\]\]|\$(?!__)(\w+)")


def _sql_texts() -> list[Any]:
    out = []
    for path in FILES:
        board = _load(path)
        for var in board["templating"]["list"]:
            if var["type"] == "query":
                out.append(pytest.param(var["query"]["rawSql"], id=f"{path.stem}-${var['name']}"))
                out.append(pytest.param(var["definition"], id=f"{path.stem}-${var['name']}-def"))
        for panel in board["panels"]:
            for target in panel["targets"]:
                out.append(pytest.param(target["rawSql"], id=f"{path.stem}-{panel['id']}"))
    return out


@pytest.mark.parametrize("sql", _sql_texts())
def test_every_variable_in_sql_is_percent_encoded(sql: str) -> None:
    """A value reaches ClickHouse only as ``%XX`` text inside a literal.

    Quoting is not enough for ClickHouse: Grafana's ``:sqlstring`` doubles
    quotes but keeps backslashes, and ClickHouse reads ``\\'`` as an escaped
    quote (``x\\' OR 1=1 --`` gets out of the literal). Percent-encoded
    text holds only ``A-Za-z0-9-_.~%``, and a SQL comment is no exception
    (a value with a line break would end it).
    """
    # $__conditionalAll's second argument names its variable; it never
    # reaches ClickHouse (the plugin removes the whole macro call)
    consumed = apply_conditional_all(
        sql, {n: Variable(n, ["x"], multi=True) for n in ("service", "environment", "call_site")}
    )
    for m in _VAR_REF.finditer(consumed):
        assert m[2] == "percentencode", f"{m[0]} is interpolated as it is"


def _every_panel() -> list[tuple[str, int]]:
    return [(path.stem, p["id"]) for path in FILES for p in _load(path)["panels"]]


@pytest.mark.parametrize(("board_name", "panel_id"), _every_panel())
@pytest.mark.parametrize("selected", [False, True], ids=["all", "selected"])
def test_panels_work_for_names_with_quotes_backslashes_and_commas(
    store: Any, board_name: str, panel_id: int, selected: bool
) -> None:
    board = _board(board_name)
    chosen: dict[str, str | Sequence[str]] = {**CHOSEN, "fingerprint": f"{FP1:016x}"}
    if selected:
        chosen |= {"service": [SERVICE], "environment": [ENVIRONMENT], "call_site": [SITE_A]}
    rows = _run(store, board, panel_id, SPAN, chosen)
    assert rows, f"panel {panel_id} shows nothing"
    shown = {str(v) for row in rows for v in row.values()}
    assert not any(LEAK in v or "leak.site" in v for v in shown), "another project's rows"
    versions = {row["model_version"] for row in rows if "model_version" in row}
    assert versions <= {BASE, CAND, QUIET}
    if board_name == "failure-consistency" and panel_id in (1, 4, 5):
        assert BASE in versions


def test_the_candidates_new_modes_with_a_quoted_baseline(store: Any) -> None:
    rows = _run(store, _board("failure-consistency"), 9, SPAN, CHOSEN)
    assert {(r["fingerprint"], r["failures"]) for r in rows} == {
        (f"{FP3:016x}", 24),
        (f"{FP_NEW_A:016x}", 10),
        (f"{FP_NEW_B:016x}", 24),
    }


# --- #1: no data reads as no data ------------------------------------------------


def test_versions_at_a_glance_shows_no_value_where_there_is_no_data(store: Any) -> None:
    rows = {
        r["model_version"]: r for r in _run(store, _board("failure-consistency"), 1, SPAN, CHOSEN)
    }
    assert set(rows) == {BASE, CAND, QUIET}
    quiet = rows[QUIET]
    assert (quiet["calls"], quiet["failures"], quiet["distinct_modes"]) == (48, 0, 0)
    for column in ("effective_modes", "top3_share", "novelty_rate", "repeatability"):
        assert quiet[column] is None, f"{column} of a version without failures or repeats"
    # failures but no input called twice: modes yes, repeatability no
    assert rows[CAND]["top3_share"] is not None and rows[CAND]["repeatability"] is None


def test_versions_at_a_glance_agrees_with_the_api(store: Any) -> None:
    rows = {
        r["model_version"]: r for r in _run(store, _board("failure-consistency"), 1, SPAN, CHOSEN)
    }
    api = version_metrics(store, Selection(PROJECT, since=SPAN[0], until=SPAN[1]), with_drift=False)
    assert set(rows) == set(api)
    for version, truth in api.items():
        row = rows[version]
        assert (row["calls"], row["failures"]) == (truth["calls"], truth["failures"])
        assert row["distinct_modes"] == truth["distinct_modes"]
        for column in ("repeatability", "novelty_rate"):  # None: no data
            if truth[column] is None:
                assert row[column] is None, (version, column)
            else:
                assert row[column] == pytest.approx(truth[column]), (version, column)
        if truth["failures"]:
            assert row["effective_modes"] == pytest.approx(truth["effective_modes"])
            assert row["top3_share"] == pytest.approx(truth["top3_share"])
    assert rows[BASE]["repeatability"] == pytest.approx(10 / 11)


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        # one hour: inputs 1-10 twice each, input 1 also failing with FP2;
        # input 11 (FP1) is called once an hour, so it repeats over two hours
        (1, (9 / 10, 10)),
        (2, (10 / 11, 11)),
    ],
)
def test_repeatability_follows_the_range(
    store: Any, hours: int, expected: tuple[float, int]
) -> None:
    # the range ends on a whole hour: that hour is not read
    span = (NOW_H - timedelta(hours=5), NOW_H - timedelta(hours=5 - hours))
    board = _board("failure-consistency")
    glance = {r["model_version"]: r for r in _run(store, board, 1, span, CHOSEN)}
    per_version = {r["model_version"]: r for r in _run(store, board, 6, span, CHOSEN)}
    assert set(per_version) == {BASE}  # the others never call an input twice
    shown = per_version[BASE]
    assert (shown["repeatability"], shown["repeated_inputs"]) == (
        pytest.approx(expected[0]),
        expected[1],
    )
    assert glance[BASE]["repeatability"] == pytest.approx(expected[0])
    assert glance[CAND]["repeatability"] is None
    api = version_metrics(store, Selection(PROJECT, since=span[0], until=span[1]), with_drift=False)
    assert api[BASE]["repeatability"] == pytest.approx(expected[0])
    assert api[BASE]["repeated_inputs"] == expected[1]


# --- #3: expected on the baseline at the mode's own call site ---------------------


def test_new_modes_expected_on_baseline_counts_the_modes_call_site(store: Any) -> None:
    rows = {
        r["fingerprint"]: r for r in _run(store, _board("failure-consistency"), 9, SPAN, CHOSEN)
    }
    sel = Selection(PROJECT, versions=[BASE, CAND], since=SPAN[0], until=SPAN[1])
    exposure, failures = mode_exposure(store, sel), mode_counts(store, sel)[CAND]
    for fp in (FP3, FP_NEW_A, FP_NEW_B):
        base_calls, cand_calls = exposure[BASE].get(fp, (0.0, 0.0))[0], exposure[CAND][fp][0]
        expected = failures[fp] / cand_calls * base_calls
        assert rows[f"{fp:016x}"]["expected_on_baseline"] == pytest.approx(expected, abs=0.051)
    # the baseline made 1,057 calls at SITE_A in the range, none at the new call site
    assert rows[f"{FP_NEW_A:016x}"]["expected_on_baseline"] == pytest.approx(
        10 / 226 * 1057, abs=0.051
    )
    assert rows[f"{FP_NEW_B:016x}"]["expected_on_baseline"] == 0


# --- #11: novelty counts from the catalogue's first seen, as the API ---------------


def _first_seen() -> dict[int, datetime]:
    first: dict[int, datetime] = {}
    for c in TRAFFIC:
        if c.is_failure and c.project == PROJECT:
            first[c.fingerprint] = min(first.get(c.fingerprint, c.time), c.time)
    return first


def test_a_mode_older_than_the_rollups_is_not_novel(store: Any) -> None:
    ((kept,),) = store.query(
        f"SELECT count() FROM {store.table('calls_hourly')}"
        f" WHERE fingerprint = {FP_OLD} AND hour < now() - INTERVAL 1 DAY"
    ).result_rows
    assert kept == 0, "the rollups should have forgotten the first appearance"
    rows = {
        r["model_version"]: r for r in _run(store, _board("failure-consistency"), 1, SPAN, CHOSEN)
    }
    assert rows[BASE]["novelty_rate"] == pytest.approx(96 / 97)  # all but FP_OLD's failure
    windows = _run(store, _board("failure-consistency"), 7, SPAN, CHOSEN)
    first = _first_seen()
    for row in windows:
        start = row["time"].replace(tzinfo=UTC)
        failures = [
            c.fingerprint
            for c in TRAFFIC
            if c.is_failure
            and c.project == PROJECT
            and c.model_version == row["model_version"]
            and start <= c.time < start + timedelta(hours=1)
        ]
        novel = sum(1 for fp in failures if first[fp] >= start)
        assert row["novelty_rate"] == pytest.approx(novel / len(failures)), row
    back = [
        r
        for r in windows
        if r["model_version"] == BASE
        and r["time"].replace(tzinfo=UTC) == NOW_H - timedelta(hours=3)
    ]
    assert [r["novelty_rate"] for r in back] == [0]


# --- #10: drift compares windows of an hour or more ------------------------------


def test_drift_at_the_default_range_reads_a_steady_mix_as_steady(store: Any) -> None:
    board = _board("failure-consistency")
    panel = _panel(board, 3)
    interval = interval_for(*WEEK, panel.get("maxDataPoints", 1000), panel.get("interval"))
    assert interval >= 3600
    rows = _run(store, board, 3, WEEK, CHOSEN)
    # the same JSD, computed in Python over the same windows
    windows: dict[str, dict[datetime, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for c in TRAFFIC:
        if c.is_failure and c.project == PROJECT and c.time >= WEEK[0]:
            epoch = int(c.time.replace(minute=0, second=0).timestamp())
            start = datetime.fromtimestamp(epoch - epoch % int(interval), UTC)
            dist = windows[c.model_version][start]
            dist[c.fingerprint] = dist.get(c.fingerprint, 0.0) + 1
    expected = {}
    for version, by_start in windows.items():
        starts = sorted(by_start)
        for prev, start in pairwise(starts):
            expected[version, start] = jensen_shannon(by_start[prev], by_start[start])
    shown = {(r["model_version"], r["time"].replace(tzinfo=UTC)): r["jsd"] for r in rows}
    assert set(shown) == set(expected)
    for key, jsd in expected.items():
        assert shown[key] == pytest.approx(jsd, abs=1e-9), key
    steady = [jsd for (version, _), jsd in shown.items() if version == BASE]
    assert sum(1 for jsd in steady if jsd < 1e-9) >= len(steady) - 2  # FP_OLD's window aside
