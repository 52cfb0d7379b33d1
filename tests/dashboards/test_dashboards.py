"""The Grafana dashboards: valid structure, and every query runs on real data.

Each panel's SQL (and each variable's query) is expanded the way Grafana and
the ClickHouse plugin expand it (tests/dashboards/grafana_sql.py) and run on
the embedded ClickHouse engine over ``faultprint demo`` traffic, once with
every multi-value variable on *All* and once with explicit selections, so
both branches of ``$__conditionalAll`` execute.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dashboards.grafana_sql import (
    ALL,
    MacroError,
    QueryContext,
    Variable,
    expand,
    interval_for,
)

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards" / "json"
PROVISIONING = ROOT / "dashboards" / "provisioning"
FILES = sorted(DASHBOARDS.glob("*.json"))

# panel id -> the columns the panel's visualisation reads, in order
EXPECTED_COLUMNS: dict[str, dict[int, list[str]]] = {
    "failure-consistency": {
        1: [
            "model_version",
            "calls",
            "failures",
            "failure_rate",
            "ci_low",
            "ci_high",
            "distinct_modes",
            "effective_modes",
            "top3_share",
            "novelty_rate",
            "repeatability",
        ],
        2: ["time", "model_version", "failure_rate", "ci_low", "ci_high"],
        3: ["time", "model_version", "jsd"],
        4: ["model_version", "effective_modes", "distinct_modes", "top3_share"],
        5: ["model_version", "top3_share"],
        6: ["model_version", "repeatability", "repeated_inputs"],
        7: ["time", "model_version", "novelty_rate"],
        8: ["time", "model_version", "jsd"],
        9: [
            "fingerprint",
            "failures",
            "expected_on_baseline",
            "first_seen",
            "category",
            "call_site",
            "template",
            "example",
        ],
        10: [
            "fingerprint",
            "model_version",
            "failures",
            "first_seen",
            "last_seen",
            "category",
            "call_site",
            "template",
        ],
    },
    "incident-review": {
        1: [
            "fingerprint",
            "recent_failures",
            "expected",
            "ratio",
            "score",
            "model_versions",
            "category",
            "call_site",
            "first_seen",
            "template",
        ],
        2: ["time", "model_version", "failures"],
        3: ["category", "failures"],
        4: [
            "model_version",
            "failures",
            "first_seen",
            "last_seen",
            "category",
            "error_type",
            "call_site",
            "template",
            "components",
        ],
        5: [
            "time",
            "trace_id",
            "span_id",
            "model_version",
            "service",
            "call_site",
            "error_type",
            "error_code",
            "message",
            "latency_ms",
        ],
        6: ["time", "category", "failures"],
    },
}

# panels comparing consecutive windows of an hour or more: empty when all data
# is in one hour
NEEDS_TWO_HOURS = {("failure-consistency", 3)}
GLOBAL_VARIABLES = {"__from", "__to", "__interval", "__interval_ms", "__rate_interval"}
_VAR_REF = re.compile(r"\$\{(\w+)(?:[.:][^}]*)?\}|\[\[(\w+)(?::\w+)?\]\]|\$(\w+)")


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _provisioned_uid() -> str:
    config = yaml.safe_load((PROVISIONING / "datasources" / "clickhouse.yaml").read_text())
    (source,) = config["datasources"]
    assert source["type"] == "grafana-clickhouse-datasource"
    return str(source["uid"])


def _variable_refs(text: str) -> set[str]:
    """Names of variables TEXT refers to (macros ``$__x(`` are not variables)."""
    names = set()
    for m in _VAR_REF.finditer(text):
        name = m[1] or m[2] or m[3]
        if name.startswith("__") and name not in GLOBAL_VARIABLES:
            continue  # a plugin macro such as $__timeFilter
        names.add(name)
    return names


def _panel_sql(panel: dict[str, Any]) -> str:
    (target,) = panel["targets"]
    return str(target["rawSql"])


# --- structure -------------------------------------------------------------------


def test_there_are_the_two_dashboards() -> None:
    assert {p.stem for p in FILES} == set(EXPECTED_COLUMNS)
    uids = [_load(p)["uid"] for p in FILES]
    assert len(uids) == len(set(uids)), "dashboard uids must be unique"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_dashboard_structure(path: Path) -> None:
    board = _load(path)
    uid = _provisioned_uid()
    panels = board["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}"
    assert set(ids) == set(EXPECTED_COLUMNS[path.stem]), "every panel has expected columns"

    variables = board["templating"]["list"]
    names = [v["name"] for v in variables]
    assert len(names) == len(set(names)), "duplicate variable names"
    defined = set(names) | GLOBAL_VARIABLES

    occupied: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] >= 0 and grid["y"] >= 0
        assert grid["x"] + grid["w"] <= 24, f"panel {panel['id']} is wider than the grid"
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"panel {panel['id']} overlaps another panel"
        occupied |= cells
        assert panel["datasource"]["uid"] == uid
        refids = [t["refId"] for t in panel["targets"]]
        assert len(refids) == len(set(refids))
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "grafana-clickhouse-datasource", "uid": uid}
            assert target["editorType"] == "sql"
            assert target["format"] in (0, 1), "0 = time series, 1 = table"
            if target["format"] == 0:
                assert panel["type"] == "timeseries"
        texts = [panel["title"], panel.get("description", ""), _panel_sql(panel)]
        used = set().union(*(_variable_refs(t) for t in texts))
        assert used <= defined, f"panel {panel['id']} uses undefined {used - defined}"

    for i, var in enumerate(variables):
        if var["type"] == "query":
            assert var["datasource"]["uid"] == uid
            earlier = set(names[:i]) | GLOBAL_VARIABLES
            used = _variable_refs(var["query"]["rawSql"])
            assert used <= earlier, f"variable {var['name']} uses {used - earlier} before it"
        elif var["type"] == "custom":
            assert var["query"] and var["current"]["value"] in var["query"].split(",")


def test_provisioning_points_grafana_at_the_dashboards() -> None:
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "faultprint.yaml").read_text())
    (entry,) = provider["providers"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    host = next(src for src, dst in mounts.items() if dst == entry["options"]["path"])
    assert (ROOT / host).resolve() == DASHBOARDS.resolve()


# --- the expander itself -----------------------------------------------------------

_CTX = QueryContext(
    time_from=datetime(2025, 1, 1, 10, 0, tzinfo=UTC),
    time_to=datetime(2025, 1, 1, 11, 0, tzinfo=UTC),
    interval_s=30,
    variables={
        "svc": Variable("svc", [ALL], options=["a", "b"], multi=True),
        "site": Variable("site", ["x", "y"], options=["x", "y", "z"], multi=True),
        "one": Variable("one", "v1"),
        "custom": Variable("custom", [ALL], options=["a"], multi=True, all_value=".*"),
    },
)


def test_expander_matches_the_plugin() -> None:
    sql = expand(
        "SELECT $__timeInterval(time) FROM t WHERE $__timeFilter(time)"
        " AND $__conditionalAll(s IN (${svc}), $svc) AND $__conditionalAll(c IN ($site), $site)"
        " AND v = '${one}' AND w IN (${svc}) AND r = '$custom' AND n = $__interval_s",
        _CTX,
    )
    assert sql == (
        "SELECT toStartOfInterval(toDateTime(time), INTERVAL 30 second) FROM t"
        " WHERE time >= toDateTime(1735725600) AND time <= toDateTime(1735729200)"
        " AND 1=1 AND c IN ('x','y') AND v = 'v1' AND w IN ('a','b') AND r = '.*' AND n = 30"
    )
    assert (
        expand("$__fromTime_ms $__to", _CTX)
        == "fromUnixTimestamp64Milli(1735725600000) 1735729200000"
    )


def test_interval_follows_grafana_rounding_and_the_panel_minimum() -> None:
    t = datetime(2025, 1, 1, tzinfo=UTC)
    assert interval_for(t - timedelta(days=60), t, 1000, None) == 3600
    assert interval_for(t - timedelta(hours=6), t, 1000, None) == 20
    assert interval_for(t - timedelta(hours=6), t, 1000, "1h") == 3600
    assert interval_for(t - timedelta(minutes=5), t, 1000, None) == 0.2


def test_expander_rejects_what_the_plugin_rejects() -> None:
    with pytest.raises(MacroError):
        expand("SELECT $__timeFilter(a, b)", _CTX)
    with pytest.raises(MacroError):
        expand("SELECT $__nosuchmacro(a)", _CTX)
    with pytest.raises(MacroError):
        expand("SELECT $__conditionalAll(a = 1, $undefined)", _CTX)


# --- every query on real data --------------------------------------------------------


def _rows(store: Any, sql: str) -> tuple[list[str], list[str], list[tuple[Any, ...]]]:
    result = store.query(sql)
    types = [t.name for t in result.column_types]
    return list(result.column_names), types, list(result.result_rows)


@pytest.fixture(scope="module")
def time_range(engine: Any) -> tuple[datetime, datetime]:
    """A range like Grafana's "last N minutes" that holds all the demo traffic."""
    ((first,),) = engine.query("SELECT min(time) FROM calls").result_rows
    first = first.replace(tzinfo=UTC) if first.tzinfo is None else first
    return first - timedelta(minutes=10), datetime.now(UTC) + timedelta(minutes=1)


def _resolve_variables(
    store: Any, board: dict[str, Any], time_range: tuple[datetime, datetime], explicit: bool
) -> dict[str, Variable]:
    """Run each variable's query in order and pick values as a user would."""
    resolved: dict[str, Variable] = {}
    for var in board["templating"]["list"]:
        name = var["name"]
        if var["type"] == "custom":
            options = var["query"].split(",")
            resolved[name] = Variable(name, var["current"]["value"], options=options)
            continue
        ctx = QueryContext(*time_range, interval_s=60, variables=resolved)
        _, _, rows = _rows(store, expand(var["query"]["rawSql"], ctx))
        options = [str(r[0]) for r in rows]
        assert options, f"variable {name} offers no values on demo data"
        if var.get("multi"):
            value: str | list[str] = options[:2] if explicit else [ALL]
            resolved[name] = Variable(
                name, value, options=options, multi=True, all_value=var.get("allValue")
            )
        else:
            resolved[name] = Variable(name, options[0], options=options)
    return resolved


def _cases() -> list[tuple[str, int, bool]]:
    return [
        (path.stem, panel["id"], explicit)
        for path in FILES
        for panel in _load(path)["panels"]
        for explicit in (False, True)
    ]


@pytest.mark.parametrize(
    ("board_name", "panel_id", "explicit"),
    _cases(),
    ids=lambda v: (
        {False: "all", True: "selected"}.get(v, str(v)) if isinstance(v, bool) else str(v)
    ),
)
def test_panel_query_runs_on_demo_data(
    engine: Any,
    time_range: tuple[datetime, datetime],
    board_name: str,
    panel_id: int,
    explicit: bool,
) -> None:
    board = _load(DASHBOARDS / f"{board_name}.json")
    panel = next(p for p in board["panels"] if p["id"] == panel_id)
    variables = _resolve_variables(engine, board, time_range, explicit)
    interval = interval_for(*time_range, panel.get("maxDataPoints", 1000), panel.get("interval"))
    sql = expand(_panel_sql(panel), QueryContext(*time_range, interval, variables))
    assert "$" not in sql.replace("'$", ""), f"unexpanded variable or macro left in:\n{sql}"
    names, types, rows = _rows(engine, sql)
    if (board_name, panel_id) in NEEDS_TWO_HOURS and not rows:
        return  # windows of an hour or more; the demo's traffic fits in one (see
        # tests/dashboards/test_panel_meaning.py for these panels on hours of data)
    assert names == EXPECTED_COLUMNS[board_name][panel_id]
    assert rows, f"panel {panel_id} ({panel['title']}) is empty on demo data"
    if panel["targets"][0]["format"] == 0:
        assert types[0].startswith("DateTime"), "a time series starts with its time column"
        times = [r[0] for r in rows]
        assert times == sorted(times), "time series rows come in time order"


def test_versions_panel_agrees_with_the_raw_calls(
    engine: Any, time_range: tuple[datetime, datetime]
) -> None:
    board = _load(DASHBOARDS / "failure-consistency.json")
    panel = next(p for p in board["panels"] if p["id"] == 1)
    variables = _resolve_variables(engine, board, time_range, explicit=False)
    names, _, rows = _rows(
        engine, expand(_panel_sql(panel), QueryContext(*time_range, 60, variables))
    )
    shown = {r[0]: dict(zip(names, r, strict=True)) for r in rows}
    truth = engine.query_dicts(
        "SELECT model_version, count() AS calls, countIf(is_failure = 1) AS failures,"
        " uniqExactIf(fingerprint, is_failure = 1) AS modes FROM calls FINAL GROUP BY model_version"
    )
    assert {t["model_version"] for t in truth} == set(shown)
    for t in truth:
        row = shown[t["model_version"]]
        assert (row["calls"], row["failures"]) == (t["calls"], t["failures"])
        assert row["distinct_modes"] == t["modes"]
        assert row["ci_low"] <= row["failure_rate"] <= row["ci_high"]
        assert 1 <= row["effective_modes"] <= row["distinct_modes"]
        assert 0 < row["top3_share"] <= 1 and 0 <= row["repeatability"] <= 1


def test_new_modes_panel_lists_only_modes_the_baseline_never_had(
    engine: Any, time_range: tuple[datetime, datetime]
) -> None:
    board = _load(DASHBOARDS / "failure-consistency.json")
    panel = next(p for p in board["panels"] if p["id"] == 9)
    variables = _resolve_variables(engine, board, time_range, explicit=False)
    baseline, candidate = variables["baseline"].value, variables["candidate"].value
    assert baseline != candidate
    _, _, rows = _rows(engine, expand(_panel_sql(panel), QueryContext(*time_range, 60, variables)))
    truth = engine.query_dicts(
        "SELECT leftPad(lower(hex(fingerprint)), 16, '0') AS fp, count() AS n FROM calls FINAL"
        " WHERE is_failure = 1 AND model_version = {c:String} AND fingerprint NOT IN"
        " (SELECT fingerprint FROM calls WHERE is_failure = 1 AND model_version = {b:String})"
        " GROUP BY fp",
        {"b": baseline, "c": candidate},
    )
    assert {(r[0], r[1]) for r in rows} == {(t["fp"], t["n"]) for t in truth}


@pytest.mark.parametrize("minutes_past", [0.5, 59.5])
def test_spike_panel_counts_the_last_window_across_the_turn_of_the_hour(
    engine: Any, minutes_past: float
) -> None:
    """Just after the hour turns, the failures of a minute ago are still recent.

    The range ends ``minutes_past`` minutes into the hour after the demo's last
    call; with a one-hour window every failure of the last call's hour is
    recent, and none of the hour(s) before it are.
    """
    board = _load(DASHBOARDS / "incident-review.json")
    panel = next(p for p in board["panels"] if p["id"] == 1)
    ((last,),) = engine.query("SELECT max(time) FROM calls").result_rows
    last = last.replace(tzinfo=UTC) if last.tzinfo is None else last
    last_hour = last.replace(minute=0, second=0, microsecond=0)
    end = last_hour + timedelta(hours=1, minutes=minutes_past)
    span = (last_hour - timedelta(hours=3), end)
    variables = _resolve_variables(engine, board, span, explicit=False)
    variables["window"] = Variable("window", "1", options=["1", "3", "6", "24"])
    names, _, rows = _rows(engine, expand(_panel_sql(panel), QueryContext(*span, 60, variables)))
    shown = {r[0]: dict(zip(names, r, strict=True)) for r in rows}
    truth = engine.query_dicts(
        "SELECT leftPad(lower(hex(fingerprint)), 16, '0') AS fp,"
        " countIf(time >= {h:DateTime}) AS recent, countIf(time < {h:DateTime}) AS before"
        " FROM calls FINAL WHERE is_failure = 1 GROUP BY fp",
        {"h": last_hour.replace(tzinfo=None)},
    )
    assert truth
    assert {fp: r["recent_failures"] for fp, r in shown.items()} == {
        t["fp"]: t["recent"] for t in truth if t["recent"]
    }
    window_hours = 1 + minutes_past / 60
    for t in truth:
        if t["recent"]:
            # the usual rate is per hour over the three hours before the window
            expected = t["before"] / 3 * window_hours
            assert shown[t["fp"]]["expected"] == pytest.approx(expected, abs=0.051)


def _time_series_panels() -> list[tuple[str, int]]:
    return [
        (path.stem, panel["id"])
        for path in FILES
        for panel in _load(path)["panels"]
        if panel["targets"][0]["format"] == 0
    ]


@pytest.mark.parametrize(("board_name", "panel_id"), _time_series_panels())
def test_time_series_over_a_long_range_read_the_hourly_rollups(
    engine: Any, board_name: str, panel_id: int
) -> None:
    """Over weeks Grafana's interval passes an hour: the rollup branch must answer."""
    board = _load(DASHBOARDS / f"{board_name}.json")
    panel = next(p for p in board["panels"] if p["id"] == panel_id)
    now = datetime.now(UTC)
    long_range = (now - timedelta(days=60), now + timedelta(minutes=1))
    variables = _resolve_variables(engine, board, long_range, explicit=False)
    interval = interval_for(*long_range, 1000, panel.get("interval"))
    assert interval >= 3600
    sql = expand(_panel_sql(panel), QueryContext(*long_range, interval, variables))
    names, types, rows = _rows(engine, sql)
    if (board_name, panel_id) in NEEDS_TWO_HOURS and not rows:
        return  # the demo's traffic fits in one hour: no previous hourly window
    assert names == EXPECTED_COLUMNS[board_name][panel_id]
    assert rows and types[0].startswith("DateTime")
    # hourly buckets: every time is on an hour boundary
    assert all(r[0].minute == 0 and r[0].second == 0 for r in rows)
