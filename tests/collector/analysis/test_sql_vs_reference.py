"""Property: the ClickHouse metrics (read from the rollups) equal the reference
metrics computed in Python from the raw calls, on random data.

One embedded store per test; every hypothesis example writes to its own
project, which is also what keeps examples apart in the rollups.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from faultprint_collector.analysis import (
    Selection,
    compare_metrics,
    mode_counts,
    mode_exposure,
    version_metrics,
)
from faultprint_collector.analysis._reference import Call, jensen_shannon, reference_metrics
from faultprint_collector.analysis._reference import mode_exposure as reference_exposure
from faultprint_collector.store import Store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import T0, steady_across_midnight, store_calls

_projects = itertools.count()

call_strategy = st.builds(
    lambda version, site, minutes, fp, weight, input_hash: Call(
        version,
        site,
        T0 + timedelta(minutes=minutes),
        fp != 0,
        fp,
        1.0 if fp else weight,
        input_hash,
    ),
    st.sampled_from(["v1", "v2"]),
    st.sampled_from(["s1", "s2"]),
    st.integers(0, 3 * 24 * 60),
    st.sampled_from([0, 0, 0, 11, 12, 13, 14, 2**63 + 5]),
    st.sampled_from([1.0, 1.0, 2.5, 10.0]),
    st.sampled_from([0, 1, 2, 3, 4, 5]),
)

window_strategy = st.tuples(
    st.sampled_from([None, "s1"]),
    st.sampled_from([None, 0, 20, 40]),  # since, hours after T0
    st.sampled_from([None, 30, 60]),  # until, hours after T0
)


def _assert_same(sql: dict, ref: dict) -> None:
    for key in (
        "calls",
        "failures",
        "failure_rate",
        "effective_calls",
        "rate_equivalent_calls",
        "calls_sq",
        "spans",
        "effective_modes",
        "top3_share",
        "novelty_rate",
        "repeatability",
        "drift",
    ):
        if ref[key] is None:
            assert sql[key] is None, key
        else:
            assert sql[key] == pytest.approx(ref[key], rel=1e-9, abs=1e-12), key
    assert sql["distinct_modes"] == ref["distinct_modes"]
    assert sql["failure_rate_ci"] == pytest.approx(ref["failure_rate_ci"], rel=1e-9, abs=1e-12)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(calls=st.lists(call_strategy, min_size=1, max_size=120), window=window_strategy)
def test_sql_metrics_equal_reference(store: Store, calls: list[Call], window: tuple) -> None:
    project = f"p{next(_projects)}"
    store_calls(store, calls, project)
    call_site, since_h, until_h = window
    since = T0 + timedelta(hours=since_h) if since_h is not None else None
    until = T0 + timedelta(hours=until_h) if until_h is not None else None
    sel = Selection(project=project, call_site=call_site, since=since, until=until)
    got = version_metrics(store, sel)
    modes = mode_counts(store, sel)
    exposure = mode_exposure(store, sel)
    ref_exposure = reference_exposure(
        calls, ["v1", "v2"], call_site=call_site, since=since, until=until
    )
    for version in ("v1", "v2"):
        ref = reference_metrics(calls, version, call_site=call_site, since=since, until=until)
        if ref is None:
            assert version not in got
            continue
        _assert_same(got[version], ref)
        assert modes.get(version, {}) == pytest.approx(ref["modes"])
        expected = {fp: e for fp, e in ref_exposure[version].items() if e[0] > 0}
        assert exposure.get(version, {}).keys() == expected.keys()
        for fp, (n, sq) in expected.items():
            assert exposure[version][fp] == pytest.approx((n, sq)), fp


def test_drift_just_after_midnight_compares_whole_days(store: Store) -> None:
    # whatever the hour the suite runs at, the data sit on a UTC midnight; a
    # calendar "today" of 30 s and one failure read as drift 0.31 here
    calls = steady_across_midnight(T0.replace(hour=0))
    store_calls(store, calls, "midnight")
    got = version_metrics(store, Selection(project="midnight"))["v"]["drift"]
    assert got == pytest.approx(jensen_shannon({1: 24, 2: 24}, {1: 24, 2: 23}))
    assert got == pytest.approx(reference_metrics(calls, "v")["drift"])


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(calls=st.lists(call_strategy, min_size=1, max_size=300))
def test_compare_from_sql_equals_compare_from_reference(store: Store, calls: list[Call]) -> None:
    from faultprint_collector.analysis import compare_versions

    project = f"c{next(_projects)}"
    store_calls(store, calls, project)
    got = compare_versions(store, project, "v1", "v2")
    refs = {v: reference_metrics(calls, v) for v in ("v1", "v2")}
    exposures = reference_exposure(calls, ["v1", "v2"])
    expected = compare_metrics(
        "v1",
        "v2",
        refs["v1"],
        refs["v2"],
        refs["v1"]["modes"] if refs["v1"] else {},
        refs["v2"]["modes"] if refs["v2"] else {},
        base_exposure=exposures["v1"],
        cand_exposure=exposures["v2"],
    )
    for key in ("baseline", "candidate", "failure_rate_change", "jsd", "verdict", "notes"):
        assert (
            got[key] == pytest.approx(expected[key]) if key == "jsd" else got[key] == expected[key]
        ), key
    for key in ("new_modes", "vanished_modes", "changed_modes"):
        assert [m["fingerprint"] for m in got[key]] == [m["fingerprint"] for m in expected[key]]


def _split_inputs() -> list[Call]:
    """Inputs whose calls the windows below cut in two.

    a: a success in hour 1 and another in hour 3 (repeated only over both);
    b: a success and a failure in hour 1 (repeated there, disagreeing);
    c: two successes in hour 3 (repeated there, agreeing).
    """
    h1, h3 = T0 + timedelta(hours=1), T0 + timedelta(hours=3)
    a, b, c = 0xA, 0xB, 0xC
    return [
        Call("v1", "s1", h1 + timedelta(minutes=5), False, 0, 1.0, a),
        Call("v1", "s1", h3 + timedelta(minutes=5), False, 0, 1.0, a),
        Call("v1", "s1", h1 + timedelta(minutes=10), False, 0, 1.0, b),
        Call("v1", "s1", h1 + timedelta(minutes=20), True, 11, 1.0, b),
        Call("v1", "s1", h3 + timedelta(minutes=10), False, 0, 1.0, c),
        Call("v1", "s1", h3 + timedelta(minutes=20), False, 0, 1.0, c),
    ]


@pytest.mark.parametrize(
    ("since_h", "until_h", "expected"),
    [
        (None, None, (2 / 3, 3)),  # a and c agree, b does not
        (0, 2, (0.0, 1)),  # b only: a's call in hour 1 is one call
        (2, 4, (1.0, 1)),  # c only: a's call in hour 3 is one call
        (1, 4, (2 / 3, 3)),  # both of a's hours
        (2, None, (1.0, 1)),
    ],
)
def test_repeatability_counts_the_calls_of_the_window_only(
    store: Store, since_h: int | None, until_h: int | None, expected: tuple[float, int]
) -> None:
    """A window that cuts an input's calls in two leaves it with one call: not
    a repeated input of the window (all-time it is, and agrees)."""
    calls = _split_inputs()
    project = f"w{next(_projects)}"
    store_calls(store, calls, project)
    since = T0 + timedelta(hours=since_h) if since_h is not None else None
    until = T0 + timedelta(hours=until_h) if until_h is not None else None
    got = version_metrics(store, Selection(project=project, since=since, until=until))["v1"]
    ref = reference_metrics(calls, "v1", since=since, until=until)
    assert ref is not None
    assert (got["repeatability"], got["repeated_inputs"]) == (
        pytest.approx(expected[0]),
        expected[1],
    )
    assert got["repeatability"] == pytest.approx(ref["repeatability"])


def test_a_window_after_every_repeat_has_no_repeatability(store: Store) -> None:
    # input a once more in hour 5: its third call, but the only one of the window
    calls = [*_split_inputs(), Call("v1", "s1", T0 + timedelta(hours=5), False, 0, 1.0, 0xA)]
    project = f"w{next(_projects)}"
    store_calls(store, calls, project)
    since = T0 + timedelta(hours=5)
    got = version_metrics(store, Selection(project=project, since=since))["v1"]
    assert (got["calls"], got["repeatability"], got["repeated_inputs"]) == (1, None, 0)
    ref = reference_metrics(calls, "v1", since=since)
    assert ref is not None and ref["repeatability"] is None


def test_repeatability_reads_a_hash_sample_of_many_inputs(store: Store) -> None:
    import random

    from faultprint_collector.analysis._sql import _repeatability

    rng = random.Random(5)
    calls = []
    for _ in range(3000):
        h = rng.getrandbits(64) | 1
        agree = rng.random() < 0.7
        calls.append(Call("v1", "s1", T0, False, 0, 1.0, h))
        calls.append(Call("v1", "s1", T0, not agree, 0 if agree else 11, 1.0, h))
    store_calls(store, calls, "sampled")
    sel = Selection(project="sampled")
    ((full, inputs, share),) = _repeatability(store, sel).values()
    assert (inputs, share) == (3000, 1.0)
    ((part, part_inputs, part_share),) = _repeatability(store, sel, max_inputs=1000).values()
    assert part_share == pytest.approx(1 / 3)
    assert 700 < part_inputs < 1300
    # a random third of the inputs: the share agrees within sampling error
    assert part == pytest.approx(full, abs=4 * (0.7 * 0.3 / part_inputs) ** 0.5)
