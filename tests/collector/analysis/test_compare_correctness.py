"""The comparison is right where it matters: A/A, a scripted swap, sampling.

All data goes through the real write path into the embedded engine; the
comparison reads the rollups, exactly as the collector's API does.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest
from faultprint_collector.analysis import (
    Selection,
    compare_metrics,
    compare_versions,
    evaluate_rules,
    parse_rules,
    version_metrics,
)
from faultprint_collector.analysis._reference import effective_calls
from faultprint_collector.store import Store

from .conftest import T0, store_calls, synth_calls

MODES = {0xA1: 0.02, 0xA2: 0.015, 0xA3: 0.01, 0xA4: 0.005, 0xA5: 0.002, 0xA6: 0.001}


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
