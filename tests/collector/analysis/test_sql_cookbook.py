"""Every query of the README's "Incident review in SQL" cookbook, run as written
against the embedded engine, both directly and through ``faultprint sql``'s
read-only, project-scoped path, on data where the right answer is known."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from faultprint_collector.analysis._adhoc import run_readonly_sql
from faultprint_collector.ingest import CallRecord
from faultprint_collector.store import Store
from faultprint_collector.store._writer import CALL_COLUMNS, insert_rows

README = Path(__file__).resolve().parents[3] / "README.md"
FP = 0x9F2C4E1AB3D07765  # the fingerprint the cookbook names
SPIKE = 0x51AB7700C0FFEE01
STEADY = 0x0BADC0DE00000001


def cookbook() -> dict[str, str]:
    """The README section's SQL blocks, keyed by their first comment line."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Incident review in SQL", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sql\n(.*?)```", section, re.S)
    return {block.splitlines()[0].removeprefix("-- ").strip(): block for block in blocks}


def _row(
    i: int, when: datetime, deploy: datetime, fp: int = 0, message: str = "", weight: float = 1.0
) -> list:
    version = "v2" if when >= deploy else "v1"
    return CallRecord(
        project="default",
        time=when,
        trace_id=f"{i + 1:032x}",
        span_id=f"{i + 1:016x}",
        release="2.4.0" if when >= deploy else "2.3.0",
        model_version=version,
        call_site="shop.summarise",
        status="error" if fp else "ok",
        is_failure=1 if fp else 0,
        category="invalid_output" if fp else "",
        message=message,
        template=re.sub(r"\d+", "<num>", message),
        fingerprint=fp,
        sample_weight=weight,
    ).row()


@pytest.fixture
def incident(store: Store) -> dict[str, Any]:
    """Calls over the last 30 hours with a steady mode, a spike and a deploy.

    Every other success is a sampled one of weight 2, and the batch is
    inserted twice with one token (the spool replaying it after a crash), so
    the answers below hold only if the rollups weight calls and count each once.

    "Now" is taken here, not when the module is imported: the cookbook's SQL
    reads ``now()`` when the test runs, and the spike must still be in its
    last hour however long the session ran before this test.
    """
    now = datetime.now(UTC)
    deploy = now - timedelta(hours=3)
    rows: list[list] = []
    counts: dict[str, Any] = {"deploy": deploy, "fp_before": 0, "fp_after": 0, "fp": {}}
    i = 0
    for minutes in range(0, 30 * 60, 3):  # a call every three minutes
        when = now - timedelta(minutes=minutes)
        rows.append(_row(i, when, deploy, weight=2.0 if minutes % 2 else 1.0))
        i += 1
        if minutes % 30 == 0:  # two steady failures an hour
            rows.append(_row(i, when, deploy, STEADY, message=f"timeout after {minutes} ms"))
            i += 1
        if minutes % 20 == 0 and minutes > 60:  # the cookbook's fingerprint
            rows.append(_row(i, when, deploy, FP, message=f"missing field 'summary' in item {i}"))
            counts["fp"][f"{i + 1:032x}"] = when
            if deploy - timedelta(days=1) <= when < deploy:
                counts["fp_before"] += 1
            elif when >= deploy:
                counts["fp_after"] += 1
            i += 1
    for k in range(40):  # a storm in the last 40 minutes
        when = now - timedelta(minutes=k)
        rows.append(_row(i, when, deploy, SPIKE, message=f"rate limited, retry in {k} s"))
        i += 1
    insert_rows(store, rows, token="incident")
    insert_rows(store, rows, token="incident")
    hourly: dict[tuple[datetime, str], list[float]] = {}
    for row in rows:
        record = dict(zip(CALL_COLUMNS, row, strict=True))
        key = (record["time"].replace(minute=0, second=0, microsecond=0), record["model_version"])
        totals = hourly.setdefault(key, [0.0, 0.0])
        totals[0] += record["sample_weight"]
        totals[1] += record["is_failure"]
    counts["hourly"] = hourly
    return counts


def _both(store: Store, sql: str) -> list[list]:
    """Run SQL directly and through the read-only path; they must agree."""
    direct = [list(r) for r in store.query(sql).result_rows]
    scoped = run_readonly_sql(store, "default", sql)
    assert len(scoped["rows"]) == len(direct)
    assert run_readonly_sql(store, "someone-else", sql)["rows"] == []
    return direct


def test_the_cookbook_has_the_queries_the_docs_promise() -> None:
    assert set(cookbook()) == {
        "what spiked in the last hour",
        "first occurrence of a fingerprint per version",
        "exemplars of a fingerprint",
        "failure mix before and after a deploy",
        "failure rate per version and hour",
    }


def test_what_spiked_in_the_last_hour(store: Store, incident: dict) -> None:
    rows = _both(store, cookbook()["what spiked in the last hour"])
    assert [r[0] for r in rows] == [f"{SPIKE:016x}"]
    assert rows[0][1] == "rate limited, retry in <num> s"
    assert rows[0][2] == "invalid_output"
    assert rows[0][3] == 40
    assert rows[0][4] == 0  # never seen in the day before


@pytest.mark.parametrize(
    ("minutes_past", "rise", "flagged"),
    [(0.5, 3.0, True), (59.5, 3.0, True), (0.5, 1.15, False), (59.5, 1.15, False)],
)
def test_a_spike_is_judged_alike_at_any_minute_of_the_hour(
    store: Store, minutes_past: float, rise: float, flagged: bool
) -> None:
    """A mode at 20 failures an hour for a day, then ``rise`` times that.

    The query's "last hour" holds 1 to 2 rollup hours by the minute it runs;
    threefold is a spike and 15% more is not, at 00:30 and at 59:30 past.
    """
    top = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    now = top + timedelta(minutes=minutes_past)
    since = top - timedelta(hours=1)
    rows: list[list] = []
    hours = [(since - timedelta(hours=h), 20) for h in range(1, 25)]
    hours += [(since + timedelta(hours=h), round(20 * rise)) for h in range(2)]
    for start, count in hours:
        for k in range(count):
            when = start + timedelta(seconds=k * 3600 // count)
            if when <= now:
                rows.append(_row(len(rows), when, start, STEADY, message="timeout after 5 s"))
    insert_rows(store, rows, token="steady")
    sql = cookbook()["what spiked in the last hour"].replace(
        "now()", f"toDateTime('{now:%Y-%m-%d %H:%M:%S}', 'UTC')"
    )
    assert "now()" not in sql
    shown = [r[0] for r in store.query(sql).result_rows]
    assert shown == ([f"{STEADY:016x}"] if flagged else [])


def test_first_occurrence_per_version(store: Store, incident: dict) -> None:
    rows = _both(store, cookbook()["first occurrence of a fingerprint per version"])
    assert [r[0] for r in rows] == ["v1", "v2"]
    first_v2 = rows[1][1].replace(tzinfo=UTC)
    deploy = incident["deploy"]
    assert deploy <= first_v2 < deploy + timedelta(minutes=20)
    assert rows[0][1] < rows[1][1]
    seen = incident["fp"].values()
    for version, first, last, failures in rows:
        mine = sorted(t for t in seen if (t >= deploy) == (version == "v2"))
        assert (first.replace(tzinfo=UTC), last.replace(tzinfo=UTC)) == (mine[0], mine[-1])
        assert failures == len(mine)


def test_exemplars_of_a_fingerprint(store: Store, incident: dict) -> None:
    rows = _both(store, cookbook()["exemplars of a fingerprint"])
    assert len(rows) == 5
    assert all("missing field 'summary'" in r[4] and len(r[1]) == 32 for r in rows)
    assert [r[0] for r in rows] == sorted((r[0] for r in rows), reverse=True)
    newest = sorted(incident["fp"], key=incident["fp"].get, reverse=True)[:5]
    assert [r[1] for r in rows] == newest


def test_failure_mix_before_and_after_a_deploy(store: Store, incident: dict) -> None:
    rows = _both(store, cookbook()["failure mix before and after a deploy"])
    by_fp = {r[0]: (r[2], r[3]) for r in rows}
    assert by_fp[f"{FP:016x}"] == (incident["fp_before"], incident["fp_after"])
    assert by_fp[f"{SPIKE:016x}"] == (0, 40)
    assert rows[0][0] == f"{SPIKE:016x}"  # the biggest increase first


def test_failure_rate_per_version_and_hour(store: Store, incident: dict) -> None:
    day_ago = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    rows = _both(store, cookbook()["failure rate per version and hour"])
    assert {r[1] for r in rows} == {"v1", "v2"}
    # weighted calls and failures of every hour, each call once
    expected = {
        (hour.replace(tzinfo=None), version): tuple(totals)
        for (hour, version), totals in incident["hourly"].items()
        if hour >= day_ago
    }
    assert {(r[0].replace(tzinfo=None), r[1]): (r[2], r[3]) for r in rows} == expected
    deploy_hour = incident["deploy"].replace(minute=0, second=0, microsecond=0, tzinfo=None)
    for hour, _version, calls, failures, rate in rows:
        # the hour of the deploy is split between versions; a part of it may
        # hold no steady failure, depending on the minute the test runs
        assert calls >= failures >= (0 if hour.replace(tzinfo=None) == deploy_hour else 1)
        assert rate == pytest.approx(failures / calls, abs=1e-4)
    latest = max(rows, key=lambda r: r[0])
    assert latest[1] == "v2"
