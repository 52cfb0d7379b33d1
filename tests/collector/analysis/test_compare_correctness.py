"""The comparison is right where it matters: A/A, a scripted swap, sampling.

All data goes through the real write path into the embedded engine; the
comparison reads the rollups, exactly as the collector's API does.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from faultprint_collector.analysis import (
    Selection,
    compare_metrics,
    compare_versions,
    concerns,
    evaluate_rules,
    parse_rules,
    version_metrics,
)
from faultprint_collector.analysis._reference import (
    Call,
    effective_calls,
    effective_modes,
    reference_metrics,
)
from faultprint_collector.store import Store

from .conftest import T0, store_calls, synth_calls

MODES = {0xA1: 0.02, 0xA2: 0.015, 0xA3: 0.01, 0xA4: 0.005, 0xA5: 0.002, 0xA6: 0.001}
_TEN = timedelta(minutes=10)


def test_a_a_finds_no_difference_in_at_least_95_percent_of_repetitions(store: Store) -> None:
    repetitions = 40
    clean = 0
    for rep in range(repetitions):
        project = f"aa{rep}"
        calls = synth_calls("a", 3000, MODES, seed=2 * rep) + synth_calls(
            "b", 3000, MODES, seed=2 * rep + 1
        )
        store_calls(store, calls, project)
        r = compare_versions(store, project, "a", "b")
        assert r["enough_data"]
        if not (
            r["new_modes"]
            or r["vanished_modes"]
            or r["changed_modes"]
            or r["failure_rate_change"]["significant"]
        ):
            clean += 1
    assert clean / repetitions >= 0.95, f"only {clean} of {repetitions} A/A runs were clean"


def test_scripted_swap_reports_exactly_the_dropped_and_added_modes(store: Store) -> None:
    baseline = {0xB1: 0.03, 0xB2: 0.02, 0xB3: 0.015}
    # the candidate drops B3 and adds C1 and C2
    candidate = {0xB1: 0.03, 0xB2: 0.02, 0xC1: 0.015, 0xC2: 0.01}
    calls = synth_calls("old", 5000, baseline, seed=7) + synth_calls("new", 5000, candidate, seed=8)
    store_calls(store, calls)
    counts = Counter((c.model_version, c.fingerprint) for c in calls if c.is_failure)

    r = compare_versions(store, "default", "old", "new")

    assert r["enough_data"]
    assert {m["fingerprint"] for m in r["new_modes"]} == {f"{0xC1:016x}", f"{0xC2:016x}"}
    assert [m["fingerprint"] for m in r["vanished_modes"]] == [f"{0xB3:016x}"]
    assert r["changed_modes"] == []
    for m in r["new_modes"]:
        fp = int(m["fingerprint"], 16)
        assert m["candidate_failures"] == counts["new", fp]
        assert m["baseline_failures"] == 0
        assert m["rate_ratio"] is None
        assert m["adjusted_p_value"] < r["alpha"]
        assert m["template"].startswith("failure mode")
        assert m["example"]
    vanished = r["vanished_modes"][0]
    assert vanished["baseline_failures"] == counts["old", 0xB3]
    assert vanished["candidate_failures"] == 0
    assert r["baseline"]["distinct_modes"] == 3
    assert r["candidate"]["distinct_modes"] == 4
    assert r["baseline"]["failures"] == sum(v for (ver, _), v in counts.items() if ver == "old")
    assert "new failure mode" in r["verdict"]
    assert r["jsd"] > 0.2


def test_modes_grouped_by_different_strategies_are_not_compared(store: Store) -> None:
    """A collector upgrade that changes the fingerprint strategy gives every
    failure mode a new fingerprint: a window holding both groupings compares
    failure rates, not modes, and says why; a window after the upgrade
    compares modes again."""
    upgrade = T0 + timedelta(hours=6)
    six = timedelta(hours=6)
    before = {0xB1: 0.03, 0xB2: 0.02}
    after = {0xD1: 0.03, 0xD2: 0.02}  # the same two modes, as the new strategy hashes them
    # the baseline ran before the upgrade only, the candidate before and after it
    store_calls(store, synth_calls("old", 5000, before, seed=1, span=six), strategy="v3")
    store_calls(store, synth_calls("new", 2500, before, seed=2, span=six), strategy="v3")
    store_calls(
        store, synth_calls("new", 2500, after, seed=3, start=upgrade, span=six), strategy="v4"
    )

    r = compare_versions(store, "default", "old", "new")
    assert r["enough_data"] and not r["modes_judged"] and not r["mix_judged"]
    assert r["new_modes"] == r["vanished_modes"] == r["changed_modes"] == []
    assert r["failure_rate_change"]["p_value"] > 0  # the rate is still compared
    assert "failure modes not compared" in r["verdict"]
    (note,) = [n for n in r["notes"] if "strategy" in n]
    assert "baseline 'old': v3; candidate 'new': v3, v4" in note
    rules = parse_rules("new-modes,novelty>0.5,rate-increase")
    outcomes = {o.rule.name: o for o in evaluate_rules(rules, r)}
    for name in ("new-modes", "novelty"):
        assert not outcomes[name].tripped
        assert "different fingerprint strategies" in outcomes[name].reason
    assert "strategies" not in outcomes["rate-increase"].reason

    # After the upgrade only the new grouping is in the window: compared again.
    store_calls(
        store, synth_calls("old", 2500, after, seed=4, start=upgrade, span=six), strategy="v4"
    )
    r = compare_versions(store, "default", "old", "new", since=upgrade)
    assert r["modes_judged"] and r["enough_data"]
    assert not any("strategy" in n for n in r["notes"])
    assert r["new_modes"] == [] and r["vanished_modes"] == []


def test_a_mode_too_rare_for_the_baseline_volume_is_not_called_new(store: Store) -> None:
    # the candidate shows a mode 3 times; a baseline of the same size would
    # miss a mode that rare about one time in eight, so it is not "new"
    base = synth_calls("x", 2000, {0xD1: 0.03}, seed=1)
    cand = synth_calls("y", 2000, {0xD1: 0.03}, seed=2)
    cand = cand + [
        replace(cand[0], is_failure=True, fingerprint=0xD9, sample_weight=1.0) for _ in range(3)
    ]
    store_calls(store, base + cand)
    r = compare_versions(store, "default", "x", "y")
    assert r["new_modes"] == []
    assert any("too rarely" in n for n in r["notes"])


def test_a_mode_too_rare_to_be_called_vanished_is_named_in_the_notes(store: Store) -> None:
    # the rule reversed: the baseline showed a mode 3 times, the candidate not
    # at all; that is not "vanished", and like a rare new one it is in the
    # notes (it was in neither)
    base = synth_calls("x", 2000, {0xD1: 0.03}, seed=1)
    base = base + [
        replace(base[0], is_failure=True, fingerprint=0xD9, sample_weight=1.0) for _ in range(3)
    ]
    cand = synth_calls("y", 2000, {0xD1: 0.03}, seed=2)
    store_calls(store, base + cand)
    r = compare_versions(store, "default", "x", "y")
    assert r["vanished_modes"] == []
    assert any("only in the baseline but too rarely" in n for n in r["notes"])


def test_not_enough_data_gives_no_verdict(store: Store) -> None:
    store_calls(
        store,
        synth_calls("s", 50, {0xE1: 0.2}, seed=1) + synth_calls("t", 5000, {0xE2: 0.2}, seed=2),
    )
    r = compare_versions(store, "default", "s", "t")
    assert not r["enough_data"]
    assert r["verdict"] == "not enough data for a verdict"
    assert r["new_modes"] == [] and r["vanished_modes"] == []
    assert any("not enough data" in n and "'s'" in n for n in r["notes"])


def test_a_few_heavily_weighted_calls_are_not_enough_data(store: Store) -> None:
    # successes sampled at 1%: two stored successes of weight 100 sum to 200
    # calls, but they say no more about the failure rate than two calls do, so
    # they must not pass for the 100 calls a verdict needs (they did: the
    # comparison judged them and a not-enough-data gate let them through)
    base = synth_calls("full", 2000, {0xE1: 0.03, 0xE2: 0.02}, seed=3)
    heavy = synth_calls("heavy", 2, {}, seed=4)
    heavy = [replace(c, sample_weight=100.0) for c in heavy]
    store_calls(store, base + heavy)
    r = compare_versions(store, "default", "full", "heavy")
    assert r["candidate"]["calls"] == 200
    assert not r["enough_data"]
    assert r["verdict"] == "not enough data for a verdict"
    assert any("not enough data" in n and "'heavy'" in n for n in r["notes"])
    outcomes = evaluate_rules(parse_rules("not-enough-data,vanished-modes"), r)
    assert [o.tripped for o in outcomes] == [True, False]


def test_sampled_successes_give_rates_that_agree_with_the_truth(store: Store) -> None:
    seeds = 20
    inside = 0
    for seed in range(seeds):
        project = f"s{seed}"
        full = synth_calls("full", 20_000, {0xF1: 0.03, 0xF2: 0.02}, seed=seed)
        rng = random.Random(1000 + seed)
        sampled = []
        for c in full:
            if c.is_failure:
                sampled.append(replace(c, model_version="sampled"))
            elif rng.random() < 0.1:
                sampled.append(replace(c, model_version="sampled", sample_weight=10.0))
        store_calls(store, full + sampled, project)
        metrics = version_metrics(store, Selection(project=project))
        truth = metrics["full"]["failure_rate"]
        est = metrics["sampled"]
        lo, hi = est["failure_rate_ci"]
        if lo <= truth <= hi:
            inside += 1
        # sampling at 10% keeps the estimate close and its interval honest:
        # wider than the unsampled one, overlapping it
        full_lo, full_hi = metrics["full"]["failure_rate_ci"]
        assert hi - lo > full_hi - full_lo
        assert lo <= full_hi and full_lo <= hi
        assert est["failures"] == metrics["full"]["failures"]
        r = compare_versions(store, project, "full", "sampled")
        assert not r["new_modes"] and not r["vanished_modes"]
    assert inside >= 0.9 * seeds, f"truth inside the sampled interval only {inside}/{seeds}"


def test_per_mode_tests_allow_for_sampled_call_counts() -> None:
    # A/A at the level of counts: 30,000 calls a version, four modes; the
    # candidate keeps successes at 1% (weight 100), so its call count is an
    # estimate from about 290 stored successes. Taken as exact, that count
    # made the per-mode tests flag a mode in about 7% of runs at alpha 0.01.
    rng = random.Random(5)
    modes = {1: 0.02, 2: 0.015, 3: 0.01, 4: 0.005}
    n = 30_000

    def version(rate: float) -> tuple[dict[str, float], dict[int, float]]:
        counts = {
            fp: float(round(rng.gauss(n * p, (n * p * (1 - p)) ** 0.5))) for fp, p in modes.items()
        }
        f = sum(counts.values())
        ok = n - f
        kept = ok if rate == 1 else round(rng.gauss(ok * rate, (ok * rate * (1 - rate)) ** 0.5))
        weight = 1 / rate
        calls, ok_sq = f + kept * weight, kept * weight * weight
        metrics = {
            "calls": calls,
            "failures": f,
            "failure_rate": f / calls,
            "effective_calls": effective_calls(calls, f, f, ok_sq),
            "calls_sq": f + ok_sq,
        }
        return metrics, counts

    repetitions = 400
    flagged = 0
    for _ in range(repetitions):
        (b, b_modes), (c, c_modes) = version(1.0), version(0.01)
        r = compare_metrics("a", "b", b, c, b_modes, c_modes)
        assert r["enough_data"]
        flagged += bool(r["new_modes"] or r["vanished_modes"] or r["changed_modes"])
    assert flagged / repetitions <= 0.025, f"{flagged} of {repetitions} A/A runs flagged a mode"


def test_modes_are_judged_against_the_calls_of_their_call_site(store: Store) -> None:
    # the same two call sites, failing the same way in both versions, but the
    # candidate's traffic goes mostly to B: each mode's rate per call of the
    # whole version moved ×0.1 and ×8, and both were reported as changed
    calls = (
        synth_calls("a", 9000, {0xA: 0.02}, seed=1, call_site="A")
        + synth_calls("a", 1000, {0xB: 0.02}, seed=2, call_site="B")
        + synth_calls("b", 1000, {0xA: 0.02}, seed=3, call_site="A")
        + synth_calls("b", 9000, {0xB: 0.02}, seed=4, call_site="B")
        # a mode of a call site the candidate never called has not vanished
        + synth_calls("a", 300, {0xC: 0.1}, seed=5, call_site="C")
    )
    store_calls(store, calls)
    r = compare_versions(store, "default", "a", "b")
    assert r["changed_modes"] == [] and r["vanished_modes"] == []
    assert r["verdict"].startswith("no significant change")
    assert any("call sites the candidate never called" in n for n in r["notes"])
    outcomes = evaluate_rules(parse_rules("changed-modes,mode-increase,vanished-modes"), r)
    assert not any(o.tripped for o in outcomes)
    # a real change at one call site still shows, with its rate per call there
    calls += synth_calls("b", 1000, {0xA: 0.08}, seed=6, call_site="A")
    store_calls(store, calls, "changed")
    (mode,) = compare_versions(store, "changed", "a", "b")["changed_modes"]
    assert mode["fingerprint"] == f"{0xA:016x}"
    counts = Counter((c.model_version, c.call_site, c.is_failure) for c in calls)
    assert mode["candidate_rate"] == pytest.approx(
        mode["candidate_failures"] / sum(counts["b", "A", f] for f in (True, False))
    )


def _calls(
    version: str,
    failures: dict[int, int],
    successes: int,
    *,
    weight: float = 1.0,
    call_site: str = "app.summarise",
) -> list[Call]:
    """Exactly FAILURES[fp] failures per mode and SUCCESSES successes of WEIGHT."""
    calls = [
        Call(version, call_site, T0 + timedelta(seconds=i), True, fp)
        for fp, k in failures.items()
        for i in range(k)
    ]
    return calls + [
        Call(version, call_site, T0 + timedelta(seconds=i), False, 0, weight)
        for i in range(successes)
    ]


@pytest.mark.parametrize(
    ("failures", "successes", "weight"),
    [(3, 3, 1000.0), (1, 2, 100.0), (0, 2, 100.0)],
    ids=["3+3x1000", "1+2x100", "0+2x100"],
)
def test_a_handful_of_heavily_weighted_spans_is_not_enough_data(
    store: Store, failures: int, successes: int, weight: float
) -> None:
    # 3 failures and 3 successes of weight 1000 are 3,003 calls in six stored
    # spans; the linearised variance alone credited them with about 1,500
    # calls at this low failure rate, and the comparison gave a confident
    # verdict (p=3e-10) with "vanished" modes while not-enough-data stayed green
    base = _calls("base", {0xE1: 100, 0xE2: 50, 0xE3: 30}, 4820)
    heavy = _calls("heavy", {0xE1: failures} if failures else {}, successes, weight=weight)
    store_calls(store, base + heavy)
    stored = failures + successes

    r = compare_versions(store, "default", "base", "heavy")
    assert r["candidate"]["calls"] == failures + successes * weight
    assert not r["enough_data"]
    assert r["verdict"] == "not enough data for a verdict"
    assert r["new_modes"] == r["vanished_modes"] == r["changed_modes"] == []
    outcomes = evaluate_rules(parse_rules("not-enough-data,vanished-modes,rate-increase"), r)
    assert [o.tripped for o in outcomes] == [True, False, False]
    (note,) = [n for n in r["notes"] if "'heavy'" in n]
    assert f"({stored} stored)" in note and "sampled" in note
    metrics = version_metrics(store, Selection(project="default"))["heavy"]
    assert metrics["spans"] == stored
    assert metrics["effective_calls"] <= stored


def test_exactly_100_unsampled_calls_are_enough_data(store: Store) -> None:
    # computed through the variance, 100 calls were worth 99.99999999999999:
    # "not enough data", with a note about sampling that never happened
    base = _calls("base", {0xE1: 60}, 1940)
    hundred = _calls("hundred", {0xE1: 3}, 97)
    store_calls(store, base + hundred)
    r = compare_versions(store, "default", "base", "hundred")
    assert r["enough_data"]
    assert not any("not enough data" in n or "sampled" in n for n in r["notes"])
    metrics = version_metrics(store, Selection(project="default"))["hundred"]
    assert metrics["effective_calls"] == metrics["rate_equivalent_calls"] == 100
    # one call fewer is not enough, and the note says so without any sampling
    store_calls(store, base + hundred[1:], "ninety-nine")
    r = compare_versions(store, "ninety-nine", "base", "hundred")
    assert not r["enough_data"]
    (note,) = r["notes"]
    assert "has 99 calls" in note and "sampled" not in note


def test_a_small_canary_against_a_large_baseline_is_judged_by_an_exact_test(
    store: Store,
) -> None:
    # 4 failures in 100 calls against 200 in 20,000, all one mode: the pooled
    # z-test said "candidate fails more often (p=0.003)" and tripped
    # rate-increase, while the exact tests, the per-mode one included, give
    # about 0.02; the verdict and the per-mode test must agree
    store_calls(store, _calls("prod", {0xC1: 200}, 19_800) + _calls("canary", {0xC1: 4}, 96))
    r = compare_versions(store, "default", "prod", "canary")
    change = r["failure_rate_change"]
    assert change["delta"] == pytest.approx(0.03)
    assert 0.01 < change["p_value"] < 0.03
    assert not change["significant"]
    assert r["verdict"].startswith("no significant change in failure rate")
    assert r["changed_modes"] == []
    (outcome,) = evaluate_rules(parse_rules("rate-increase"), r)
    assert not outcome.tripped
    assert "not significant" in outcome.reason
    # a clear increase still trips it
    store_calls(store, _calls("prod", {0xC1: 200}, 19_800) + _calls("worse", {0xC1: 9}, 91), "w")
    r = compare_versions(store, "w", "prod", "worse")
    assert r["failure_rate_change"]["significant"]
    assert r["verdict"].startswith("candidate fails more often")
    assert evaluate_rules(parse_rules("rate-increase"), r)[0].tripped


def _counts_version(rng: random.Random, n: int, rate: float) -> tuple[dict, dict[int, float]]:
    """The metrics of N unsampled calls failing (in one mode) at RATE."""
    f = float(sum(rng.random() < rate for _ in range(n)))
    metrics = {
        "calls": float(n),
        "failures": f,
        "failure_rate": f / n,
        "effective_calls": effective_calls(n, f, f, n - f),
        "calls_sq": float(n),
        "spans": float(n),
    }
    return metrics, ({0xC1: f} if f else {})


def test_small_canaries_do_not_trip_rate_increase_in_a_a_comparisons() -> None:
    # canaries of 100 to 500 calls against one large baseline, all failing at
    # 1%: the pooled z-test tripped rate-increase in 1.1-1.9% of them, more
    # than the alpha of 0.01 it claims; the exact test holds it
    rng = random.Random(17)
    baseline_calls = 100_000
    f = 1000.0
    baseline = {
        "calls": float(baseline_calls),
        "failures": f,
        "failure_rate": f / baseline_calls,
        "effective_calls": float(baseline_calls),
        "calls_sq": float(baseline_calls),
        "spans": float(baseline_calls),
    }
    rules = parse_rules("rate-increase")
    repetitions = 2000
    tripped = judged = 0
    for rep in range(repetitions):
        canary, canary_modes = _counts_version(rng, 100 + 100 * (rep % 5), 0.01)
        r = compare_metrics("prod", "canary", baseline, canary, {0xC1: f}, canary_modes)
        judged += r["enough_data"]
        tripped += evaluate_rules(rules, r)[0].tripped
    assert tripped / repetitions <= 0.01, f"rate-increase tripped {tripped} of {repetitions}"
    assert judged == repetitions


#: eight modes at fixed rates: about 32 failures in 1,000 calls
EIGHT_MODES = {
    0xA1: 0.01,
    0xA2: 0.008,
    0xA3: 0.006,
    0xA4: 0.004,
    0xA5: 0.002,
    0xA6: 0.001,
    0xA7: 0.0005,
    0xA8: 0.0003,
}


def test_effective_modes_increase_stays_quiet_on_identical_versions() -> None:
    # a raw threshold on the difference of two noisy estimates: between
    # identical versions of 1,000 calls it passed 1 in one A/A pair of eight
    # ("gate failed: effective-modes-increase = 1.97955") while the verdict
    # saw no change; now it also needs a significant increase
    rules = parse_rules("effective-modes-increase")
    repetitions = 200
    tripped = over_threshold = 0
    reasons = []
    for rep in range(repetitions):
        calls = synth_calls("a", 1000, EIGHT_MODES, seed=2 * rep) + synth_calls(
            "b", 1000, EIGHT_MODES, seed=2 * rep + 1
        )
        b, c = reference_metrics(calls, "a"), reference_metrics(calls, "b")
        r = compare_metrics("a", "b", b, c, b["modes"], c["modes"])
        (outcome,) = evaluate_rules(rules, r)
        tripped += outcome.tripped
        if r["mix_judged"] and c["effective_modes"] - b["effective_modes"] > 1:
            over_threshold += 1
            reasons.append(outcome.reason)
    assert tripped / repetitions <= 0.01, f"tripped {tripped} of {repetitions}"
    # the case the rule used to trip on did occur, and the gate says why it held
    assert over_threshold >= 10
    assert all("not tripped: the increase is not significant" in r for r in reasons)


def test_the_default_gate_stays_quiet_on_identical_versions_end_to_end(store: Store) -> None:
    # the auditor's run through the store: 40 A/A pairs, 5 failed the gate
    rules = parse_rules("effective-modes-increase,rate-increase,new-modes,vanished-modes")
    tripped = []
    for rep in range(40):
        project = f"gate{rep}"
        calls = synth_calls("a", 1000, EIGHT_MODES, seed=500 + 2 * rep) + synth_calls(
            "b", 1000, EIGHT_MODES, seed=501 + 2 * rep
        )
        store_calls(store, calls, project)
        r = compare_versions(store, project, "a", "b")
        tripped += [o.reason for o in evaluate_rules(rules, r) if o.tripped]
    assert len(tripped) <= 1, tripped


def test_effective_modes_increase_trips_on_a_real_spread(store: Store) -> None:
    concentrated = {0xB1: 0.04, 0xB2: 0.002, 0xB3: 0.002, 0xB4: 0.002}
    spread = {0xB1: 0.012, 0xB2: 0.012, 0xB3: 0.012, 0xB4: 0.012}
    calls = synth_calls("a", 3000, concentrated, seed=1) + synth_calls("b", 3000, spread, seed=2)
    store_calls(store, calls)
    r = compare_versions(store, "default", "a", "b")
    change = r["effective_modes_change"]
    assert change["delta"] > 1.5 and change["significant"] and change["p_value"] < r["alpha"]
    assert "failures spread over more modes" in r["verdict"]
    (outcome,) = evaluate_rules(parse_rules("effective-modes-increase"), r)
    assert outcome.tripped


def test_disjoint_modes_are_not_called_the_same(store: Store) -> None:
    # three failures of one mode against three of another (JSD 1): too few to
    # call either new or vanished, but not "the same failure modes" either
    store_calls(store, _calls("a", {0xD1: 3}, 997) + _calls("b", {0xD2: 3}, 997))
    r = compare_versions(store, "default", "a", "b")
    assert r["jsd"] == pytest.approx(1.0)
    assert r["new_modes"] == r["vanished_modes"] == []
    assert "the same failure modes" not in r["verdict"]
    assert "no significant difference in failure modes" in r["verdict"]
    assert "share no mode" in r["verdict"]
    # overlapping but not equal: no claim of sameness, none of disjointness
    store_calls(store, _calls("a", {0xD1: 3}, 997) + _calls("b", {0xD1: 3, 0xD2: 2}, 995), "o")
    verdict = compare_versions(store, "o", "a", "b")["verdict"]
    assert verdict.endswith("no significant difference in failure modes")
    # the same modes still read so
    store_calls(store, _calls("a", {0xD1: 3}, 997) + _calls("b", {0xD1: 4}, 996), "s")
    assert compare_versions(store, "s", "a", "b")["verdict"].endswith("the same failure modes")


def test_a_sampled_candidate_counts_for_what_it_says_about_the_rate(store: Store) -> None:
    # 200 failures beside 100 stored successes of weight 1000: 300 stored
    # spans, but the failure rate (0.2%) is known within about 12%, as well
    # as some 33,000 unsampled calls would know it. Ten times the baseline's
    # 0.02% is an increase the gate must see; counted as 300 calls, the
    # candidate's rate test saw 1 failure in 300 and let it pass.
    calls = _calls("prod", {0xF1: 4}, 19_996) + _calls("canary", {0xF1: 200}, 100, weight=1000.0)
    store_calls(store, calls)
    r = compare_versions(store, "default", "prod", "canary")
    assert r["enough_data"]
    assert r["failure_rate_change"]["significant"]
    assert r["candidate"]["failure_rate_ci"][0] > 0.0015
    assert evaluate_rules(parse_rules("rate-increase"), r)[0].tripped


def _counts_only(modes: dict[int, float], n: float) -> dict[str, float]:
    """Unsampled metrics of a version with N calls and MODES' failures."""
    f = sum(modes.values())
    return {"calls": n, "failures": f, "failure_rate": f / n, "calls_sq": n}


def test_a_mode_that_rose_is_a_concern_even_with_the_mix_and_rate_steady() -> None:
    base = {1: 1000.0, 2: 20.0}
    cand = {1: 1000.0, 2: 80.0}
    r = compare_metrics(
        "a", "b", _counts_only(base, 100_000), _counts_only(cand, 100_000), base, cand
    )
    assert not r["failure_rate_change"]["significant"] and r["jsd"] < 0.1
    assert not r["new_modes"]
    assert concerns(r) == ["1 failure mode(s) significantly more frequent, up to 4.0x as frequent"]


def test_modes_that_only_fell_are_no_concern() -> None:
    base = {1: 1000.0, 2: 80.0}
    cand = {1: 1000.0, 2: 20.0}
    r = compare_metrics(
        "a", "b", _counts_only(base, 100_000), _counts_only(cand, 100_000), base, cand
    )
    assert [m["rate_ratio"] for m in r["changed_modes"]] == [0.25]
    assert concerns(r) == []


def test_a_shifted_mix_and_no_verdict_are_concerns() -> None:
    base = {1: 200.0, 2: 200.0}
    cand = {1: 200.0, 3: 200.0}
    r = compare_metrics(
        "a", "b", _counts_only(base, 10_000), _counts_only(cand, 10_000), base, cand
    )
    assert any(c.startswith("failure mix shifted (JSD 0.") for c in concerns(r))
    canary = {1: 2.0}
    small = compare_metrics(
        "a", "b", _counts_only(base, 10_000), _counts_only(canary, 50), base, canary
    )
    assert concerns(small) == ["not enough data for a verdict"]


# --- the spread of failures over modes (effective modes) ------------------------


def _with_modes(modes: dict[int, float], n: float) -> dict[str, Any]:
    """Unsampled metrics of a version with N calls and MODES' failures, with
    its effective modes (as ``version_metrics`` gives them)."""
    return {**_counts_only(modes, n), "effective_modes": effective_modes(modes.values())}


def _drawn(rng: random.Random, n: int, rates: dict[int, float]) -> dict[int, float]:
    """The failures per mode of N calls failing in each mode at its rate."""
    counts: Counter[int] = Counter()
    for _ in range(n):
        u, acc = rng.random(), 0.0
        for fp, rate in rates.items():
            acc += rate
            if u < acc:
                counts[fp] += 1
                break
    return {fp: float(k) for fp, k in counts.items()}


def test_a_mix_that_only_moved_between_modes_is_not_called_a_change_of_spread() -> None:
    # 4%/1% became 1%/4% (10,000 calls each, as drawn in the audit): the mix
    # shifted, the spread did not (1.71 against 1.64 effective modes); the
    # verdict said "failures spread over fewer modes (-0.07 effective modes,
    # p=0.002)", and "more" the other way round, tripping the gate
    base, cand = {1: 379.0, 2: 111.0}, {1: 107.0, 2: 440.0}
    for b, c in ((base, cand), (cand, base)):
        r = compare_metrics("a", "b", _with_modes(b, 10_000), _with_modes(c, 10_000), b, c)
        assert r["mix_judged"] and "failure mix shifted" in r["verdict"]
        assert "spread over" not in r["verdict"]
        assert not r["effective_modes_change"]["significant"]
        assert not any("spread" in concern for concern in concerns(r))
        (outcome,) = evaluate_rules(parse_rules("effective-modes-increase>0"), r)
        assert not outcome.tripped


def test_mirrored_mixes_rarely_read_as_a_change_of_spread() -> None:
    # 100 pairs whose true effective modes are equal (4%/1% against 1%/4%):
    # the permutation test claimed a change of spread in about 93 of them
    rng = random.Random(41)
    rules = parse_rules("effective-modes-increase>0")
    claimed = tripped = 0
    for _ in range(100):
        b = _drawn(rng, 10_000, {1: 0.04, 2: 0.01})
        c = _drawn(rng, 10_000, {1: 0.01, 2: 0.04})
        r = compare_metrics("a", "b", _with_modes(b, 10_000), _with_modes(c, 10_000), b, c)
        claimed += "spread over" in r["verdict"]
        tripped += evaluate_rules(rules, r)[0].tripped
    assert claimed <= 2 and tripped <= 2, (claimed, tripped)


def test_one_mode_becoming_four_is_a_change_of_spread_at_canary_size() -> None:
    # 5% of 1,000 calls in one mode, against 5% spread evenly over four
    rng = random.Random(43)
    for _ in range(20):
        b = _drawn(rng, 1000, {1: 0.05})
        c = _drawn(rng, 1000, {1: 0.0125, 2: 0.0125, 3: 0.0125, 4: 0.0125})
        r = compare_metrics("a", "b", _with_modes(b, 1000), _with_modes(c, 1000), b, c)
        assert "failures spread over more modes" in r["verdict"]
        assert evaluate_rules(parse_rules("effective-modes-increase"), r)[0].tripped
        back = compare_metrics("b", "a", _with_modes(c, 1000), _with_modes(b, 1000), c, b)
        assert "failures spread over fewer modes" in back["verdict"]


def test_a_canary_failing_like_its_baseline_is_not_spread_differently() -> None:
    # 30 failures against 2,000 over the same 30 modes of falling frequency:
    # the smaller sample's entropy runs low, by about (S - 1)/2N; compared
    # at their own sizes the large baseline read as "more modes" in a third
    # of such A/A pairs, the canary swapped in, as "fewer"
    rng = random.Random(47)
    rates = {fp: 0.05 / fp**1.2 for fp in range(1, 31)}
    claims = 0
    for _ in range(100):
        big, small = _drawn(rng, 40_000, rates), _drawn(rng, 600, rates)
        if sum(small.values()) < 20:
            continue
        for b, nb, c, nc in ((big, 40_000, small, 600), (small, 600, big, 40_000)):
            r = compare_metrics("a", "b", _with_modes(b, nb), _with_modes(c, nc), b, c)
            claims += "spread over" in r["verdict"]
    assert claims <= 2, claims


# --- versions without failures ---------------------------------------------------


def test_a_version_without_failures_has_no_effective_modes_or_top_3_share(
    store: Store,
) -> None:
    # shares of no failures are 0/0: shown as 0.00 and 0%, read as "failures
    # maximally spread", where Grafana and the definitions have no value
    store_calls(store, _calls("noisy", {0xA1: 30, 0xA2: 10}, 460) + _calls("quiet", {}, 500))
    metrics = version_metrics(store, Selection(project="default"))
    assert metrics["quiet"]["effective_modes"] is None
    assert metrics["quiet"]["top3_share"] is None
    assert metrics["quiet"]["novelty_rate"] is None
    assert metrics["noisy"]["top3_share"] == 1.0
    r = compare_versions(store, "default", "noisy", "quiet")
    assert r["enough_data"] and r["failure_rate_change"]["significant"]
    assert (r["candidate"]["effective_modes"], r["candidate"]["top3_share"]) == (None, None)
    assert r["effective_modes_change"] == {"delta": None, "p_value": None, "significant": False}
    assert r["verdict"].startswith("candidate fails less often")
    outcomes = evaluate_rules(
        parse_rules("effective-modes-increase,effective-modes-increase>-5,novelty>0.1"), r
    )
    assert [(o.tripped, o.evaluated) for o in outcomes] == [(False, False)] * 3
    # and the other way round: the baseline had none
    back = compare_versions(store, "default", "quiet", "noisy")
    assert back["baseline"]["effective_modes"] is None
    assert back["effective_modes_change"]["delta"] is None
    assert not any(o.tripped for o in evaluate_rules(parse_rules("effective-modes-increase"), back))


# --- novelty: from the window's exact start ---------------------------------------


def test_a_candidate_run_right_after_its_baseline_brings_no_new_modes(store: Store) -> None:
    # an offline evaluation: the baseline ran from :10 to :20, the candidate
    # from :30 to :40 of the same hour, both failing in the same modes; the
    # cut-off at the start of the candidate's first hour counted every mode
    # the baseline showed minutes before as new (novelty 100%)
    hour = T0 + timedelta(hours=30)
    modes = {0xA1: 0.02, 0xA2: 0.015, 0xA3: 0.01}
    base = synth_calls("a", 3000, modes, seed=61, start=hour + timedelta(minutes=10), span=_TEN)
    cand = synth_calls("b", 3000, modes, seed=62, start=hour + timedelta(minutes=30), span=_TEN)
    store_calls(store, base + cand)
    metrics = version_metrics(store, Selection(project="default"))
    assert metrics["b"]["novelty_rate"] == 0.0
    assert metrics["a"]["novelty_rate"] == 1.0
    assert metrics["b"]["novelty_start"] == min(c.time for c in cand)
    r = compare_versions(store, "default", "a", "b")
    assert r["candidate"]["novelty_rate"] == 0.0
    assert not evaluate_rules(parse_rules("novelty>0.1"), r)[0].tripped
    # a mode only the candidate shows is its novelty
    late = hour + timedelta(minutes=45)
    store_calls(store, base + cand + [Call("b", "app.summarise", late, True, 0xF7)] * 30, "n")
    r = compare_versions(store, "n", "a", "b")
    assert r["candidate"]["novelty_rate"] == pytest.approx(30 / r["candidate"]["failures"])
    assert evaluate_rules(parse_rules("novelty>0.1"), r)[0].tripped


def test_novelty_in_a_window_counts_from_its_exact_start(store: Store) -> None:
    # since = :20: a mode first seen at :05 was seen before the window, one
    # first seen at :25 was not; floored to the hour, both were "new"
    hour = T0 + timedelta(hours=30)
    since = hour + timedelta(minutes=20)
    calls = [
        Call("a", "s", hour + timedelta(minutes=5), True, 0xE1),
        Call("a", "s", hour + timedelta(minutes=25), True, 0xE2),
        *[Call("b", "s", hour + timedelta(minutes=30 + i), True, 0xE1) for i in range(3)],
        Call("b", "s", hour + timedelta(minutes=40), True, 0xE2),
    ]
    store_calls(store, calls)
    got = version_metrics(store, Selection(project="default", since=since))
    assert got["b"]["novelty_rate"] == pytest.approx(0.25)
    assert got["b"]["novelty_rate"] == reference_metrics(calls, "b", since=since)["novelty_rate"]
    # the window still counts whole hours: a's failure at :05 is in it, its
    # mode first seen before the window
    assert got["a"]["failures"] == 2 and got["a"]["novelty_rate"] == pytest.approx(0.5)
    # all time, b's window starts at its first call (:30), after both modes
    assert version_metrics(store, Selection(project="default"))["b"]["novelty_rate"] == 0.0


def test_a_versions_window_starts_at_its_first_call_not_its_first_failure(
    store: Store,
) -> None:
    # b's first call (a success at :10) comes before a first fails in mode
    # E1 (:20): a mode first seen after b started is one b did not inherit
    hour = T0 + timedelta(hours=30)
    calls = [
        Call("b", "s", hour + timedelta(minutes=10), False),
        Call("a", "s", hour + timedelta(minutes=20), True, 0xE1),
        Call("b", "s", hour + timedelta(minutes=30), True, 0xE1),
    ]
    store_calls(store, calls)
    assert version_metrics(store, Selection(project="default"))["b"]["novelty_rate"] == 1.0
    assert reference_metrics(calls, "b")["novelty_rate"] == 1.0
