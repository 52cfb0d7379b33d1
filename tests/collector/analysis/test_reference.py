"""The reference metrics and tests against values worked out by hand."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import pytest
from faultprint_collector.analysis._reference import (
    Call,
    benjamini_hochberg,
    conditional_binomial_test,
    distinct_modes,
    drift,
    effective_calls,
    effective_modes,
    effective_modes_test,
    entropy,
    entropy_t_test,
    fisher_exact_test,
    jensen_shannon,
    mix_permutation_test,
    novelty_rate,
    reference_metrics,
    repeatability,
    student_t_two_sided,
    top_share,
    wilson_interval,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import steady_across_midnight

T = datetime(2026, 5, 1, 12, tzinfo=UTC)


def test_wilson_interval_matches_textbook_values() -> None:
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4)
    assert hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0
    assert hi == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_effective_calls_is_the_count_with_unit_weights() -> None:
    # 30 failures, 970 successes, all weight 1
    assert effective_calls(1000, 30, 30, 970) == pytest.approx(1000)
    # exactly: computed through the variance, 100 calls came out as
    # 99.99999999999999 and fell short of the 100 a verdict needs
    for failures in range(0, 101):
        assert effective_calls(100, failures, failures, 100 - failures, 100) == 100


def test_effective_calls_shrinks_when_successes_are_sampled() -> None:
    # 1000 failures (weight 1) and 900 sampled successes of weight 10: the
    # linearised variance is 1710/1e8, i.e. about 5263 effective calls
    m = effective_calls(10_000, 1000, 1000, 900 * 100)
    assert m == pytest.approx(0.1 * 0.9 / (1710 / 1e8), rel=1e-9)
    assert m < 10_000


@pytest.mark.parametrize(
    ("failures", "ok", "weight"),
    [(3, 3, 1000.0), (1, 2, 100.0), (0, 2, 100.0), (20, 80, 100.0), (1000, 1900, 10.0)],
)
def test_effective_calls_never_exceed_the_stored_calls(
    failures: int, ok: int, weight: float
) -> None:
    # a stored span says at most as much as one call: at a low failure rate the
    # linearised variance alone credited 3 failures and 3 successes of weight
    # 1000 with about 1,500 calls, and 1 failure and 2 of weight 100 with 134
    calls = failures + ok * weight
    m = effective_calls(calls, failures, failures, ok * weight**2, failures + ok)
    assert m <= failures + ok
    assert m <= effective_calls(calls, failures, failures, ok * weight**2)


@settings(max_examples=200, deadline=None)
@given(
    failures=st.integers(0, 50),
    ok=st.integers(0, 50),
    weight=st.sampled_from([1.0, 2.0, 10.0, 100.0, 1000.0]),
)
def test_effective_calls_are_bounded_by_calls_and_spans(
    failures: int, ok: int, weight: float
) -> None:
    calls = failures + ok * weight
    m = effective_calls(calls, failures, failures, ok * weight**2, failures + ok)
    assert 0 <= m <= min(calls, failures + ok)


def _brute_force_fisher(x1: int, n1: int, x2: int, n2: int) -> float:
    t, total = x1 + x2, n1 + n2
    pmf = {
        k: math.comb(t, k) * math.comb(total - t, n2 - k) / math.comb(total, n2)
        for k in range(max(0, t - n1), min(t, n2) + 1)
    }
    return min(1.0, sum(v for v in pmf.values() if v <= pmf[x2] * (1 + 1e-7)))


def test_fisher_exact_test_known_values() -> None:
    # R: fisher.test(matrix(c(3, 7, 7, 3), 2))$p.value
    assert fisher_exact_test(3, 10, 7, 10) == pytest.approx(0.1788954, rel=1e-6)
    # R: fisher.test(matrix(c(1, 3, 3, 1), 2))$p.value
    assert fisher_exact_test(1, 4, 3, 4) == pytest.approx(0.4857143, rel=1e-6)
    assert fisher_exact_test(30, 100, 30, 100) == pytest.approx(1.0)
    assert fisher_exact_test(0, 100, 0, 100) == 1.0
    assert fisher_exact_test(1, 0, 2, 100) == 1.0
    # a canary of 100 calls with 4 failures against 1,000 of 100,000: the
    # pooled z-test said p=0.0026, the exact tests about 0.019
    assert fisher_exact_test(1000, 100_000, 4, 100) == pytest.approx(0.0185, abs=5e-4)


@settings(max_examples=200, deadline=None)
@given(
    x1=st.integers(0, 30),
    x2=st.integers(0, 30),
    extra1=st.integers(0, 60),
    extra2=st.integers(0, 60),
)
def test_fisher_exact_test_agrees_with_brute_force(
    x1: int, x2: int, extra1: int, extra2: int
) -> None:
    n1, n2 = x1 + extra1, x2 + extra2
    if n1 == 0 or n2 == 0 or x1 + x2 in (0, n1 + n2):
        assert fisher_exact_test(x1, n1, x2, n2) == 1.0
        return
    assert fisher_exact_test(x1, n1, x2, n2) == pytest.approx(
        _brute_force_fisher(x1, n1, x2, n2), rel=1e-6, abs=1e-12
    )


def test_effective_modes_test_separates_a_real_spread_from_noise() -> None:
    concentrated = {1: 60, 2: 5, 3: 5, 4: 5}
    spread = {1: 20, 2: 20, 3: 20, 4: 15}
    up, down = (
        effective_modes_test(concentrated, spread),
        effective_modes_test(spread, concentrated),
    )
    assert up.p_value < 0.01 and up.difference > 1
    assert down.p_value < 0.01 and down.difference < -1
    # the same mix at different sizes: a small sample's effective modes run
    # low, and the test compares both at the smaller one's size
    same = effective_modes_test({1: 10, 2: 8, 3: 6, 4: 4}, {1: 100, 2: 80, 3: 60, 4: 40})
    assert same.p_value > 0.1
    # seeded by the counts: the same comparison always gives the same answer
    assert effective_modes_test(concentrated, spread) == effective_modes_test(concentrated, spread)
    assert effective_modes_test({}, spread).p_value == 1.0
    # one mode against four equally common ones: the plainest change of spread
    # (the smallest p-value of 999 permutations)
    assert effective_modes_test({1: 200}, {1: 50, 2: 50, 3: 50, 4: 50}).p_value == 0.002
    assert entropy_t_test({1: 200}, {1: 50, 2: 50, 3: 50, 4: 50}).p_value < 1e-9


def test_a_mix_that_only_moved_between_modes_has_the_same_spread() -> None:
    # 4%/1% against 1%/4% of 10,000 calls each, as drawn in the audit: 1.71
    # against 1.64 effective modes. The permutation test (whose null is one
    # pooled mix) calls it significant; the spread is the same
    base, cand = {1: 379, 2: 111}, {1: 107, 2: 440}
    assert mix_permutation_test(base, cand) < 0.01
    assert entropy_t_test(base, cand).p_value > 0.1
    assert effective_modes_test(base, cand).p_value > 0.1
    # the exact mirror: equal entropies
    assert entropy_t_test({1: 400, 2: 100}, {1: 100, 2: 400}).p_value == pytest.approx(1.0)


def test_hutchesons_t_test_matches_a_hand_computation() -> None:
    # equal sizes (no rarefaction), and the same log-share variance on both
    # sides: H, the variance and the degrees of freedom by hand
    base, cand = {1: 50, 2: 50}, {1: 50, 2: 25, 3: 25}
    h1, h2 = math.log(2), -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    spread = 0.5 * math.log(0.5) ** 2 + 0.5 * math.log(0.25) ** 2 - (h2**2)
    v1 = spread / 100 + 1 / (2 * 100**2)
    v2 = spread / 100 + 2 / (2 * 100**2)
    df = (v1 + v2) ** 2 / (v1**2 / 100 + v2**2 / 100)
    t = (h2 - h1) / math.sqrt(v1 + v2)
    result = entropy_t_test(base, cand)
    assert result.p_value == pytest.approx(student_t_two_sided(t, df), rel=1e-9)
    assert result.difference == pytest.approx(math.exp(h2) - 2)


@pytest.mark.parametrize(
    ("t", "df", "p"),
    [
        # two-sided critical values from Student's t tables
        (12.7062047, 1, 0.05),
        (2.2281389, 10, 0.05),
        (2.7499957, 30, 0.01),
        (3.2905267, 1e9, 0.001),
        (1.0, 2, 1 - 1 / math.sqrt(3)),  # closed form at df = 2
        (0.0, 5, 1.0),
    ],
)
def test_student_t_two_sided_known_values(t: float, df: float, p: float) -> None:
    assert student_t_two_sided(t, df) == pytest.approx(p, rel=1e-5)
    assert student_t_two_sided(-t, df) == student_t_two_sided(t, df)


def test_rarefied_entropy_is_the_mean_entropy_of_every_subsample() -> None:
    from faultprint_collector.analysis._reference import _rarefied_entropy

    counts = {1: 4, 2: 2, 3: 1, 4: 1}
    failures = [fp for fp, n in counts.items() for _ in range(n)]
    subsamples = list(itertools.combinations(failures, 3))
    mean = sum(entropy([sub.count(fp) for fp in counts]) for sub in subsamples) / len(subsamples)
    import numpy as np

    assert _rarefied_entropy(np.array(list(counts.values())), 3) == pytest.approx(mean)
    # many failures: the expansion agrees with the exact sum where both apply
    big = np.array([30_000, 20_000, 5_000])
    exact = _rarefied_entropy(big, 10_000)
    p = big / big.sum()
    # to first order the entropy of 10,000 runs low by (S - 1)/(2 * 10,000)
    # times the share not already drawn
    assert exact == pytest.approx(
        float(-(p * np.log(p)).sum()) - (2 / 20_000) * (1 - 10_000 / 55_000), rel=1e-4
    )


def test_effective_modes_and_top_share_of_no_failures_are_no_value() -> None:
    calls = [Call("v", "s", T, False) for _ in range(10)]
    metrics = reference_metrics(calls, "v")
    assert metrics is not None
    assert (metrics["effective_modes"], metrics["top3_share"]) == (None, None)
    assert metrics["novelty_rate"] is None and metrics["distinct_modes"] == 0


def _brute_force(x1: int, n1: float, x2: int, n2: float) -> float:
    t = x1 + x2
    p = n2 / (n1 + n2)
    pmf = [math.comb(t, k) * p**k * (1 - p) ** (t - k) for k in range(t + 1)]
    return min(1.0, sum(v for v in pmf if v <= pmf[x2] * (1 + 1e-7)))


def test_conditional_binomial_test_known_value() -> None:
    # seven of ten in equal exposure: the exact binomial test gives 0.34375
    assert conditional_binomial_test(3, 100, 7, 100) == pytest.approx(0.34375)
    assert conditional_binomial_test(0, 100, 0, 100) == 1.0
    # a mode seen 12 times in the candidate and never in an equally large
    # baseline: about 2 * 0.5**12
    assert conditional_binomial_test(0, 1000, 12, 1000) == pytest.approx(2 * 0.5**12)


@settings(max_examples=200, deadline=None)
@given(
    x1=st.integers(0, 40),
    x2=st.integers(0, 40),
    n1=st.floats(1, 1e6),
    n2=st.floats(1, 1e6),
)
def test_conditional_binomial_test_agrees_with_brute_force(
    x1: int, x2: int, n1: float, n2: float
) -> None:
    assert conditional_binomial_test(x1, n1, x2, n2) == pytest.approx(
        _brute_force(x1, n1, x2, n2), rel=1e-6, abs=1e-12
    )


def test_conditional_binomial_test_is_fast_and_sane_for_large_counts() -> None:
    p = conditional_binomial_test(500_000, 1e7, 500_000, 1e7)
    assert p == pytest.approx(1.0, abs=1e-6)
    assert conditional_binomial_test(500_000, 1e7, 510_000, 1e7) < 1e-10


def test_benjamini_hochberg() -> None:
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert benjamini_hochberg([]) == []
    assert benjamini_hochberg([0.9, 0.8]) == pytest.approx([0.9, 0.9])


def test_modes_entropy_and_concentration() -> None:
    assert entropy([1, 1, 1, 1]) == pytest.approx(math.log(4))
    assert effective_modes([5, 5, 5, 5]) == pytest.approx(4)
    assert effective_modes([10]) == pytest.approx(1)
    # no failures: shares of nothing (0/0), so no value rather than 0
    assert effective_modes([]) is None
    assert distinct_modes([3, 0, 2]) == 2
    assert top_share([50, 20, 10, 10, 10]) == pytest.approx(0.8)
    assert top_share([]) is None


def test_jensen_shannon_base_two() -> None:
    assert jensen_shannon({1: 3, 2: 1}, {1: 6, 2: 2}) == pytest.approx(0.0)
    assert jensen_shannon({1: 3}, {2: 5}) == pytest.approx(1.0)
    assert jensen_shannon({1: 1}, {1: 1, 2: 1}) == pytest.approx(0.3113, abs=1e-4)
    assert jensen_shannon({}, {1: 1}) is None


def test_novelty_rate() -> None:
    first = {1: T - timedelta(days=3), 2: T + timedelta(hours=1)}
    # fingerprint 1 was seen before the window, 2 and 3 were not
    assert novelty_rate({1: 6, 2: 3, 3: 1}, first, T) == pytest.approx(0.4)
    assert novelty_rate({}, first, T) is None


def test_repeatability() -> None:
    def call(h: int, fp: int) -> Call:
        return Call("v", "site", T, fp != 0, fp, 1.0, h)

    calls = [
        call(1, 0),
        call(1, 0),  # agree: all succeed
        call(2, 7),
        call(2, 7),  # agree: same fingerprint
        call(3, 0),
        call(3, 7),  # disagree
        call(4, 7),  # called once: not counted
        call(0, 7),
        call(0, 9),  # no input hash: not counted
    ]
    assert repeatability(calls) == pytest.approx(2 / 3)
    assert repeatability(calls[:1]) is None


def test_drift_compares_the_last_two_days() -> None:
    day1 = [Call("v", "s", T, True, 1), Call("v", "s", T, True, 2)]
    day2 = [Call("v", "s", T + timedelta(days=1), True, 3)]
    assert drift(day1) is None
    assert drift(day1 + day2) == pytest.approx(1.0)


def test_drift_days_end_with_the_latest_failure_not_at_midnight() -> None:
    # the last day is the 24 hours up to the failure after midnight, not the
    # 30 s of a calendar "today" holding one failure (JSD 0.31 against yesterday)
    calls = steady_across_midnight(T.replace(hour=0))
    assert drift(calls) == pytest.approx(jensen_shannon({1: 24, 2: 24}, {1: 24, 2: 23}))
    # two failures minutes apart are one day's, whichever side of midnight
    assert (
        drift([Call("v", "s", T.replace(hour=0) - timedelta(minutes=1), True, 1), calls[-1]])
        is None
    )
