"""Parameter checks of the read queries shared by the API, the CLI and the UI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from faultprint_collector import queries
from faultprint_collector.analysis import fingerprint_info
from faultprint_collector.analysis._reference import Call
from faultprint_collector.ingest import LATEST_START, CallRecord, start_time_error
from faultprint_collector.store import Store
from faultprint_collector.store._writer import insert_rows

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


@pytest.mark.parametrize("value", ["2105-01-01T00:00:01", "2105-06-01", "2105-12-31T23:59:59"])
def test_times_of_2105_are_parsed(value: str) -> None:
    assert queries.parse_since(value) == datetime.fromisoformat(value).replace(tzinfo=UTC)


def test_the_query_range_is_the_range_ingest_stores() -> None:
    """What ingest stores (start times before the end of 2105) a query can
    name, and what it refuses a query refuses, saying where the range ends."""
    clock = LATEST_START - timedelta(hours=1)  # a collector whose clock says late 2105
    last = LATEST_START - timedelta(microseconds=1)
    assert start_time_error(last, clock, 90) == ""
    assert queries.parse_since(last.isoformat()) == last
    assert start_time_error(LATEST_START, clock, 90)
    with pytest.raises(queries.QueryError) as refused:
        queries.parse_since(LATEST_START.isoformat())
    assert "between 1970-01-01T00:00:00Z and the end of 2105" in str(refused.value)


def test_an_open_window_counts_the_calls_of_2105(store: Store) -> None:
    late = datetime(2105, 12, 31, 23, 30, tzinfo=UTC)
    store_calls(store, [Call("v1", "s", T0, False), Call("v1", "s", late, True, 7)])
    (version,) = queries.list_versions(store, "default")
    assert (version["calls"], version["failures"]) == (2, 1)
    until = queries.parse_since("2105-12-31T23:59:59")
    (windowed,) = queries.list_versions(store, "default", None, until)
    assert (windowed["calls"], windowed["failures"]) == (2, 1)


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


def test_a_window_in_which_a_version_has_no_calls_is_not_a_comparison(store: Store) -> None:
    """A canary that sent nothing in the gated window is no evidence: the
    comparison names it (a CI gate exits 2) instead of passing "not enough data"."""
    store_calls(store, synth_calls("v1", 150, {1: 0.1}, seed=2))
    store_calls(store, synth_calls("v2", 150, {1: 0.1}, seed=3, start=T0 + timedelta(days=2)))
    before_v2 = T0 + timedelta(days=1)
    with pytest.raises(queries.NotFound) as missing:
        queries.compare(store, "default", "v1", "v2", until=before_v2)
    message = str(missing.value)
    assert f"no calls of version 'v2' before {before_v2.isoformat()}" in message
    assert "'v2' has calls from" in message and "'v1'" not in message.split(";")[0]
    future = datetime(2099, 1, 1, tzinfo=UTC)
    with pytest.raises(queries.NotFound, match="versions 'v1' and 'v2' since 2099-01-01"):
        queries.compare(store, "default", "v1", "v2", since=future)
    with pytest.raises(queries.NotFound, match=r"'v2' at call site 'app\.summarise' before"):
        queries.compare(store, "default", "v1", "v2", call_site="app.summarise", until=before_v2)
    # a window holding both still compares them
    both = queries.compare(store, "default", "v1", "v2", since=T0, until=T0 + timedelta(days=30))
    assert both["baseline"]["calls"] == both["candidate"]["calls"] == 150


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


def test_both_ends_of_a_window_are_read_against_one_now() -> None:
    # one after the other, "1d" and "1d" were microseconds apart: a window
    since, until = queries.parse_window("1d", "1d")
    assert since is not None and since == until
    now = datetime(2030, 5, 1, 12, tzinfo=UTC)
    assert queries.parse_window("2h", "30m", now) == (
        now - timedelta(hours=2),
        now - timedelta(minutes=30),
    )
    assert queries.parse_window(None, "2030-05-01", now) == (None, datetime(2030, 5, 1, tzinfo=UTC))


def _failures(store: Store, spec: list[tuple[str, datetime, str]], fp: int = 0x5EED) -> None:
    """Failures of fingerprint FP as (version, time, error type), in that order."""
    rows = [
        CallRecord(
            project="default",
            time=when,
            trace_id=f"{i + 1:032x}",
            span_id=f"{i + 1:016x}",
            model_version=version,
            call_site="app.answer",
            status="error",
            is_failure=1,
            category="api_error",
            error_type=error_type,
            error_code="rate_limit_exceeded",
            message=f"rate limited {i}",
            template="rate limited <num>",
            fingerprint=fp,
            coarse_fingerprint=fp,
        ).row()
        for i, (version, when, error_type) in enumerate(spec)
    ]
    insert_rows(store, rows)


def test_a_fingerprints_window_limits_its_counts_and_exemplars(store: Store) -> None:
    early = [("v1", T0 + timedelta(hours=1, minutes=k), "RateLimitError") for k in range(2)]
    late = [("v2", T0 + timedelta(hours=10, minutes=k), "RateLimitError") for k in range(3)]
    _failures(store, early + late)
    whole = queries.fingerprint_detail(store, "default", 0x5EED)
    assert whole["failures"] == 5 and len(whole["exemplars"]) == 5

    d = queries.fingerprint_detail(store, "default", 0x5EED, since=T0 + timedelta(hours=5))
    assert d["failures"] == 3
    assert {v["model_version"]: v["failures"] for v in d["versions"]} == {"v1": 0, "v2": 3}
    assert {e["model_version"] for e in d["exemplars"]} == {"v2"} and len(d["exemplars"]) == 3
    assert {v["model_version"]: len(v["trace_ids"]) for v in d["versions"]} == {"v1": 0, "v2": 3}
    # the fingerprint's own first and last failure, whatever the window
    assert d["first_seen"] == whole["first_seen"] == (T0 + timedelta(hours=1)).isoformat()

    empty = queries.fingerprint_detail(
        store, "default", 0x5EED, since=T0 + timedelta(hours=3), until=T0 + timedelta(hours=5)
    )
    assert (empty["failures"], empty["exemplars"], empty["timeline"]) == (0, [], [])


def test_a_fingerprints_timeline_has_its_empty_hours_as_zero(store: Store) -> None:
    early = [("v1", T0 + timedelta(hours=1, minutes=k), "RateLimitError") for k in range(2)]
    late = [("v2", T0 + timedelta(hours=10, minutes=k), "RateLimitError") for k in range(3)]
    _failures(store, early + late)

    def series(d: dict, version: str) -> list[tuple[str, int]]:
        return [(t["hour"], t["failures"]) for t in d["timeline"] if t["model_version"] == version]

    def hours(first: int, last: int) -> list[str]:
        return [(T0 + timedelta(hours=h)).isoformat() for h in range(first, last + 1)]

    # no window: from the first to the last hour with failures, every version
    whole = queries.fingerprint_detail(store, "default", 0x5EED)
    assert series(whole, "v1") == list(zip(hours(1, 10), [2] + [0] * 9, strict=True))
    assert series(whole, "v2") == list(zip(hours(1, 10), [0] * 9 + [3], strict=True))
    # a window: its hours, and only the versions with failures in it
    d = queries.fingerprint_detail(
        store,
        "default",
        0x5EED,
        since=T0 + timedelta(hours=4, minutes=30),
        until=T0 + timedelta(hours=12),
    )
    assert {t["model_version"] for t in d["timeline"]} == {"v2"}
    assert series(d, "v2") == list(zip(hours(4, 11), [0] * 6 + [3, 0], strict=True))
    # a window open at its end runs to the current hour
    now = T0 + timedelta(hours=14, minutes=5)
    d = queries.fingerprint_detail(store, "default", 0x5EED, since=T0 + timedelta(hours=9), now=now)
    assert series(d, "v2") == list(zip(hours(9, 14), [0, 3, 0, 0, 0, 0], strict=True))


def test_a_fingerprints_error_type_is_its_most_frequent(store: Store) -> None:
    # the minority first: the catalogue keeps whichever type it met first
    _failures(
        store,
        [("v1", T0 + timedelta(minutes=k), "APIStatusError") for k in range(2)]
        + [("v1", T0 + timedelta(minutes=10 + k), "RateLimitError") for k in range(3)],
    )
    d = queries.fingerprint_detail(store, "default", 0x5EED)
    assert d["error_type"] == "RateLimitError"
    assert d["error_types"] == [
        {"error_type": "RateLimitError", "failures": 3},
        {"error_type": "APIStatusError", "failures": 2},
    ]
    info = fingerprint_info(store, "default", [0x5EED])[0x5EED]
    assert (info["error_type"], info["error_types"]) == (
        "RateLimitError",
        ["RateLimitError", "APIStatusError"],
    )
    (listed,) = queries.list_fingerprints(store, "default")
    assert listed["error_type"] == "RateLimitError"


def test_a_fingerprint_with_several_error_types_says_so() -> None:
    assert queries.error_type_label([]) == ""
    assert queries.error_type_label(["RateLimitError"]) == "RateLimitError"
    assert queries.error_type_label(["RateLimitError", "APIStatusError"]) == (
        "RateLimitError (+1 other)"
    )
    assert queries.error_type_label(["a.B", "C", "D"]) == "a.B (+2 others)"
    assert queries.error_type_label(["openai.RateLimitError", "C"], short=True) == (
        "RateLimitError +1"
    )


def test_an_open_window_ends_now_and_leaves_out_calls_stamped_later(store: Store) -> None:
    """A sender whose clock runs 3 hours fast (ingest takes start times up to a
    day ahead): its calls are not in "the last 24 hours" before their time,
    as Grafana's "now" leaves them out; the whole store holds them."""
    now = datetime.now(UTC)
    store_calls(store, synth_calls("v-now", 150, {1: 0.1}, seed=8, start=now - timedelta(hours=3)))
    ahead = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=3)
    store_calls(store, synth_calls("v-ahead", 50, {1: 0.5}, seed=9, start=ahead))
    day = now - timedelta(hours=24)
    assert [v["model_version"] for v in queries.list_versions(store, "default", day)] == ["v-now"]
    assert {v["model_version"] for v in queries.list_versions(store, "default")} == {
        "v-now",
        "v-ahead",
    }
    (incident,) = queries.list_incidents(store, "default", day)
    assert incident["model_versions"] == ["v-now"]
    # an explicit end is the caller's to choose
    later = now + timedelta(hours=12)
    both = queries.list_versions(store, "default", day, until=later)
    assert {v["model_version"] for v in both} == {"v-now", "v-ahead"}


def test_repeatability_is_the_windows_own(store: Store) -> None:
    """QA's case: a version whose inputs were repeated hours ago and which
    made two calls of distinct inputs since shows no repeatability since then
    (it showed the whole history's, 11 repeated inputs), and the figure of
    its repeats in a window that holds them."""
    calls = synth_calls("v-rep", 60, {7: 0.2}, seed=11, span=timedelta(hours=2), inputs=12)
    later = T0 + timedelta(hours=5)
    calls += [
        Call("v-rep", "app.summarise", later + timedelta(minutes=1), False, 0, 1.0, 1001),
        Call("v-rep", "app.summarise", later + timedelta(minutes=2), False, 0, 1.0, 1002),
    ]
    calls += synth_calls("v-base", 60, {7: 0.2}, seed=12, span=timedelta(hours=6), inputs=12)
    store_calls(store, calls)
    early = [c for c in calls if c.model_version == "v-rep" and c.time < later]
    outcomes: dict[int, set[int]] = {}
    for c in early:
        outcomes.setdefault(c.input_hash, set()).add(c.outcome)
    agree = sum(1 for o in outcomes.values() if len(o) == 1) / len(outcomes)
    assert len(outcomes) == 12 and 0 < agree < 1  # every input repeated, some disagree

    def rep(since: datetime | None, until: datetime | None = None) -> dict:
        versions = queries.list_versions(store, "default", since, until)
        return next(v for v in versions if v["model_version"] == "v-rep")

    recent = rep(later)
    assert (recent["calls"], recent["repeatability"], recent["repeated_inputs"]) == (2, None, 0)
    holding = rep(T0, later)
    assert holding["calls"] == 60 and holding["repeated_inputs"] == 12
    assert holding["repeatability"] == pytest.approx(agree, abs=1e-6)
    assert rep(None)["repeated_inputs"] == 12  # all time: the two later calls repeat nothing

    compared = queries.compare(
        store, "default", "v-base", "v-rep", since=later - timedelta(hours=1)
    )
    assert compared["candidate"]["calls"] == 2
    assert compared["candidate"]["repeatability"] is None
    assert compared["baseline"]["repeatability"] is not None
    held = queries.compare(store, "default", "v-base", "v-rep", since=T0, until=later)
    assert held["candidate"]["repeatability"] == pytest.approx(agree)
