"""Parameter checks of the read queries shared by the API, the CLI and the UI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from faultprint_collector import queries
from faultprint_collector.analysis._reference import Call
from faultprint_collector.store import Store

from tests.collector.analysis.conftest import T0, store_calls, synth_calls


@pytest.mark.parametrize(
    "value",
    [
        "99999w",  # year ~110: the store cannot hold it
        "100000w",
        "700000d",
        "20000000h",
        "9" * 30 + "m",
        "9" * 5000 + "s",  # beyond what int() converts
    ],
)
def test_a_duration_reaching_before_1970_is_refused(value: str) -> None:
    with pytest.raises(queries.QueryError, match="before 1970"):
        queries.parse_since(value)


@pytest.mark.parametrize(
    "value",
    ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1969-12-31", "2106-01-01"],
)
def test_an_iso_time_out_of_the_stores_range_is_refused(value: str) -> None:
    with pytest.raises(queries.QueryError, match="out of range"):
        queries.parse_since(value)


def test_times_within_range_are_parsed() -> None:
    assert queries.parse_since("1970-01-01") == datetime(1970, 1, 1, tzinfo=UTC)
    assert queries.parse_since("2000-01-01T01:00:00+01:00") == datetime(2000, 1, 1, tzinfo=UTC)
    # 2000 weeks back from now, whatever the date the suite runs on (checking a
    # year instead would start failing in May 2028)
    before = datetime.now(UTC) - timedelta(weeks=2000)
    ago = queries.parse_since("2000w")
    assert ago is not None and before <= ago <= datetime.now(UTC) - timedelta(weeks=2000)


def test_a_long_window_reads_instead_of_failing_in_the_store(store: Store) -> None:
    store_calls(store, synth_calls("v1", 50, {1: 0.2}, seed=1))
    since = queries.parse_since("2000w")
    assert [v["model_version"] for v in queries.list_versions(store, "default", since)] == ["v1"]
    with pytest.raises(queries.QueryError, match="earlier than until"):
        queries.list_versions(store, "default", since, queries.parse_since("2500w"))


def test_an_until_a_fraction_of_a_second_into_an_hour_keeps_that_hour(store: Store) -> None:
    # the hour overlaps [since, until) by half a second, and holds a failure in it
    hour = T0 + timedelta(days=1)
    store_calls(store, [Call("v1", "s", hour + timedelta(milliseconds=200), True, 7)])
    until = hour + timedelta(milliseconds=500)
    assert [f["failures"] for f in queries.list_fingerprints(store, "default", until=until)] == [1]
    assert [v["calls"] for v in queries.list_versions(store, "default", until=until)] == [1]
    assert queries.list_fingerprints(store, "default", until=hour) == []


def test_comparing_a_version_without_calls_names_it(store: Store) -> None:
    store_calls(store, synth_calls("v1", 150, {1: 0.1}, seed=2))
    store_calls(store, synth_calls("v2", 150, {1: 0.1}, seed=3))
    with pytest.raises(queries.NotFound) as missing:
        queries.compare(store, "default", "v1", "nope")
    assert "version 'nope'" in str(missing.value)
    assert "known versions" in str(missing.value) and "v1" in str(missing.value)
    with pytest.raises(queries.NotFound, match="versions 'x' and 'y'"):
        queries.compare(store, "default", "x", "y")
    with pytest.raises(queries.NotFound, match="no calls yet"):
        queries.compare(store, "other-project", "v1", "v2")
    assert queries.compare(store, "default", "v1", "v2")["baseline"]["calls"] == 150


def test_comparing_a_version_with_itself_is_refused(store: Store) -> None:
    store_calls(store, synth_calls("v1", 150, {1: 0.1}, seed=4))
    with pytest.raises(queries.QueryError, match="two different versions"):
        queries.compare(store, "default", "v1", "v1")


def test_versions_say_when_their_failures_were_grouped_by_two_strategies(store: Store) -> None:
    upgrade = T0 + timedelta(hours=6)
    store_calls(store, synth_calls("m1", 400, {0xB1: 0.05}, seed=1), strategy="v3")
    store_calls(store, synth_calls("m1", 400, {0xD1: 0.05}, seed=2, start=upgrade), strategy="v4")
    store_calls(store, synth_calls("m2", 400, {0xD1: 0.05}, seed=3, start=upgrade), strategy="v4")
    rows = queries.list_versions(store, "default")
    assert {r["model_version"]: r["grouping_strategies"] for r in rows} == {
        "m1": ["v3", "v4"],
        "m2": ["v4"],
    }
    note = queries.grouping_note(rows)
    assert note is not None and "strategies v3, v4" in note
    after = queries.list_versions(store, "default", since=upgrade)
    assert [r["grouping_strategies"] for r in after] == [["v4"], ["v4"]]
    assert queries.grouping_note(after) is None


def test_versions_are_first_and_last_seen_at_their_calls_not_their_hours(store: Store) -> None:
    """The rollups know hours; a version last called at 10:40 was not seen at
    11:00 (a time still in the future while that hour runs)."""
    calls = [
        Call("a", "s", T0 + timedelta(minutes=20), False),
        Call("a", "s", T0 + timedelta(hours=3, minutes=40), True, 7),
        Call("a", "other", T0 + timedelta(hours=3, minutes=50), False),
        Call("b", "s", T0 + timedelta(hours=1, minutes=5, seconds=30), False),
    ]
    store_calls(store, calls)
    seen = {
        v["model_version"]: (v["first_seen"], v["last_seen"])
        for v in queries.list_versions(store, "default")
    }
    iso = (T0 + timedelta(minutes=20)).isoformat()
    assert seen["a"] == (iso, (T0 + timedelta(hours=3, minutes=50)).isoformat())
    b = (T0 + timedelta(hours=1, minutes=5, seconds=30)).isoformat()
    assert seen["b"] == (b, b)
    by_site = queries.list_versions(store, "default", call_site="s")
    assert by_site[0]["last_seen"] == (T0 + timedelta(hours=3, minutes=40)).isoformat()
