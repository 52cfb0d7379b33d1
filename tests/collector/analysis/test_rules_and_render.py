"""``--fail-on`` parsing and evaluation, and the human-readable renderings."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from faultprint_collector.analysis import (
    RuleError,
    compare_metrics,
    evaluate_rules,
    p_number,
    p_text,
    parse_rules,
    render_markdown,
    render_table,
)
from faultprint_collector.analysis._reference import Call, reference_metrics

from .conftest import synth_calls, underflowing_comparison

T = datetime(2026, 5, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def swap() -> dict[str, Any]:
    """A comparison where the candidate fails more, with two new modes and one gone."""
    base = synth_calls("old", 4000, {1: 0.03, 2: 0.02, 3: 0.02}, seed=1)
    cand = synth_calls("new", 4000, {1: 0.03, 2: 0.02, 4: 0.03, 5: 0.02}, seed=2)
    calls = base + cand
    b, c = reference_metrics(calls, "old"), reference_metrics(calls, "new")
    info = {4: {"template": "schema mismatch at <*>", "category": "invalid_output"}}
    return compare_metrics("old", "new", b, c, b["modes"], c["modes"], info)


@pytest.fixture(scope="module")
def tiny() -> dict[str, Any]:
    calls = synth_calls("old", 30, {1: 0.2}, seed=1) + synth_calls("new", 30, {2: 0.2}, seed=2)
    b, c = reference_metrics(calls, "old"), reference_metrics(calls, "new")
    return compare_metrics("old", "new", b, c, b["modes"], c["modes"])


def _tripped(text: str, result: dict[str, Any]) -> list[bool]:
    return [o.tripped for o in evaluate_rules(parse_rules(text), result)]


def test_rules_parse_with_defaults_and_thresholds() -> None:
    rules = parse_rules("new-modes, jsd>0.2,rate-increase>=0.01 , effective-modes-increase")
    assert [str(r) for r in rules] == [
        "new-modes>0",
        "jsd>0.2",
        "rate-increase>=0.01",
        "effective-modes-increase>1",
    ]


@pytest.mark.parametrize("text", ["", "bogus", "jsd", "jsd>>1", "new-modes>x", "jsd>0.2;rm"])
def test_bad_rules_are_refused_with_the_list_of_rules(text: str) -> None:
    with pytest.raises(RuleError) as info:
        parse_rules(text)
    assert "new-modes" in str(info.value) or "threshold" in str(info.value)


def test_rules_trip_on_a_bad_swap(swap: dict[str, Any]) -> None:
    assert len(swap["new_modes"]) == 2 and len(swap["vanished_modes"]) == 1
    assert swap["failure_rate_change"]["significant"]
    assert _tripped("new-modes", swap) == [True]
    assert _tripped("new-modes>2", swap) == [False]
    assert _tripped("vanished-modes", swap) == [True]
    assert _tripped("rate-increase", swap) == [True]
    assert _tripped("rate-increase>0.5", swap) == [False]
    assert _tripped("jsd>0.2, jsd>0.9", swap) == [True, False]
    assert _tripped("failure-rate>0.05, failure-rate>0.5", swap) == [True, False]
    assert _tripped("effective-modes-increase>0.5", swap) == [True]
    assert _tripped("not-enough-data", swap) == [False]


def test_rules_do_not_judge_without_enough_data(tiny: dict[str, Any]) -> None:
    assert not tiny["enough_data"]
    outcomes = evaluate_rules(parse_rules("new-modes,jsd>0.1,not-enough-data"), tiny)
    assert [o.tripped for o in outcomes] == [False, False, True]
    assert "not enough data" in outcomes[0].reason


def test_table_and_markdown_lead_with_the_verdict(swap: dict[str, Any]) -> None:
    outcomes = evaluate_rules(parse_rules("new-modes,jsd>0.9"), swap)
    text = render_table(swap, outcomes)
    lines = text.splitlines()
    assert lines[0] == "old → new"
    assert lines[1].startswith("verdict: candidate fails more often")
    assert "New failure modes (2):" in text
    assert "schema mismatch at <*>" in text
    assert "Vanished failure modes (1):" in text
    assert "TRIPPED  new-modes>0" in text
    md = render_markdown(swap, outcomes)
    assert md.startswith("### faultprint compare: old → new")
    assert "| failure rate (95% CI) |" in md
    assert "#### New failure modes (2)" in md
    assert "❌ `new-modes>0`" in md and "✅ `jsd>0.9`" in md


def test_renderings_say_not_enough_data(tiny: dict[str, Any]) -> None:
    assert "not enough data" in render_table(tiny)
    assert "not enough data" in render_markdown(tiny)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("failure-rate>4", "between 0 and 1"),
        ("rate-increase>5", "between -1 and 1"),
        ("jsd>1.5", "between 0 and 1"),
        ("jsd>1", "between 0 and 1"),
        ("novelty>=1.01", "between 0 and 1"),
        ("failure-rate<-0.5", "between 0 and 1"),
        ("new-modes>-1", "at least 0"),
        ("not-enough-data>1", "between 0 and 1"),
    ],
)
def test_thresholds_no_comparison_can_cross_are_refused(text: str, where: str) -> None:
    # "failure-rate>4" meant 4% but can never trip: a gate that passes every
    # rollout, accepted without a word
    with pytest.raises(RuleError) as info:
        parse_rules(text)
    message = str(info.value)
    assert repr(text) in message and where in message
    if not text.startswith(("new-modes", "not-enough-data")):
        assert "0.04 for 4%" in message


def test_a_percent_sign_gets_the_fraction_hint() -> None:
    with pytest.raises(RuleError, match=re.escape("0.04 for 4%")):
        parse_rules("failure-rate>4%")


@pytest.mark.parametrize(
    "text",
    ["failure-rate>0.04", "failure-rate>=1", "jsd>.99", "rate-increase>=1e-3", "new-modes>0"],
)
def test_thresholds_within_range_are_accepted(text: str) -> None:
    (rule,) = parse_rules(text)
    assert rule.name == text.split(">")[0]


def _compare_counts(base: dict[int, int], cand: dict[int, int]) -> dict[str, Any]:
    """A comparison of 2,000 calls a version with exactly these failures per mode."""
    calls = []
    for version, modes in (("old", base), ("new", cand)):
        calls += [Call(version, "s", T, True, fp) for fp, k in modes.items() for _ in range(k)]
        calls += [Call(version, "s", T, False) for _ in range(2000 - sum(modes.values()))]
    b, c = reference_metrics(calls, "old"), reference_metrics(calls, "new")
    return compare_metrics("old", "new", b, c, b["modes"], c["modes"])


def test_effective_modes_increase_says_why_it_did_not_trip() -> None:
    # +1.3 effective modes is past the default threshold, but between 27 and
    # 28 failures a difference that large is common chance (p about 0.1)
    r = _compare_counts({1: 12, 2: 8, 3: 4, 4: 2, 5: 1}, {1: 8, 2: 7, 3: 6, 4: 4, 5: 2, 6: 1})
    assert r["mix_judged"]
    change = r["effective_modes_change"]
    assert change["delta"] > 1 and not change["significant"] and change["p_value"] > r["alpha"]
    (outcome,) = evaluate_rules(parse_rules("effective-modes-increase"), r)
    assert not outcome.tripped
    assert outcome.value == pytest.approx(change["delta"])
    assert "not tripped: the increase is not significant (p=" in outcome.reason
    # the same move with ten times the failures is significant, and trips
    r = _compare_counts(
        {1: 120, 2: 80, 3: 40, 4: 20, 5: 10}, {1: 80, 2: 70, 3: 60, 4: 40, 5: 20, 6: 10}
    )
    assert r["effective_modes_change"]["significant"]
    assert evaluate_rules(parse_rules("effective-modes-increase"), r)[0].tripped


def test_a_long_template_is_shortened_with_an_ellipsis() -> None:
    from faultprint_collector.analysis._render import _mode_line

    mode = {
        "fingerprint": "00000000000000ab",
        "baseline_failures": 1,
        "candidate_failures": 9,
        "rate_ratio": 9.0,
        "adjusted_p_value": 0.001,
        "category": "exception",
        "template": "word " * 40,
    }
    text = _mode_line(mode)[-1]
    assert len(text) == 70 and text.endswith("…")


# --- rules that were not evaluated are skipped, not passed -----------------------


@pytest.fixture(scope="module")
def canary() -> dict[str, Any]:
    """A 50-call canary failing 22% (a new mode among them) against 5% of 2,000."""
    base = synth_calls("prod", 2000, {1: 0.05}, seed=3)
    cand = [Call("canary", "s", T, True, 2) for _ in range(6)]
    cand += [Call("canary", "s", T, True, 1) for _ in range(5)]
    cand += [Call("canary", "s", T, False) for _ in range(39)]
    calls = base + cand
    b, c = reference_metrics(calls, "prod"), reference_metrics(calls, "canary")
    return compare_metrics("prod", "canary", b, c, b["modes"], c["modes"])


def test_rules_without_enough_data_are_skipped_not_passed(canary: dict[str, Any]) -> None:
    assert not canary["enough_data"]
    outcomes = evaluate_rules(parse_rules("new-modes,rate-increase,jsd>0.2"), canary)
    assert [(o.tripped, o.evaluated, o.status) for o in outcomes] == [(False, False, "skipped")] * 3
    assert [o.as_dict()["evaluated"] for o in outcomes] == [False] * 3
    assert outcomes[0].as_dict() == {
        "rule": "new-modes>0",
        "tripped": False,
        "evaluated": False,
        "value": None,
        "reason": "skipped: not enough data",
    }
    (judged,) = evaluate_rules(parse_rules("not-enough-data"), canary)
    assert judged.tripped and judged.evaluated and judged.as_dict()["evaluated"] is True


def test_skipped_rules_render_as_skipped(canary: dict[str, Any]) -> None:
    outcomes = evaluate_rules(parse_rules("new-modes,rate-increase,jsd>0.2"), canary)
    md = render_markdown(canary, outcomes)
    assert "- ⚠️ `new-modes>0`: skipped: not enough data" in md
    assert "✅" not in md
    assert "3 rule(s) skipped for lack of data do not fail the gate" in md
    assert "add `not-enough-data` to `--fail-on`" in md
    text = render_table(canary, outcomes)
    assert "  SKIPPED  new-modes>0: not enough data" in text
    assert not re.search(r"^\s+ok\s", text, re.MULTILINE)
    # with not-enough-data in the gate, no advice: it trips
    outcomes = evaluate_rules(parse_rules("new-modes,not-enough-data"), canary)
    md = render_markdown(canary, outcomes)
    assert "- ❌ `not-enough-data>0`" in md and "do not fail the gate" not in md


def test_the_headline_says_modes_were_not_tested_without_enough_data(
    canary: dict[str, Any], swap: dict[str, Any]
) -> None:
    for text in (render_table(canary), render_markdown(canary)):
        assert "modes not tested (not enough data)" in text
        assert "new 0" not in text and "vanished 0" not in text
    assert "new 2, vanished 1, changed" in render_table(swap)


def test_passed_rules_still_read_as_passed(swap: dict[str, Any]) -> None:
    outcomes = evaluate_rules(parse_rules("new-modes>2,jsd>0.9"), swap)
    assert [o.status for o in outcomes] == ["passed", "passed"]
    assert all(o.as_dict()["evaluated"] for o in outcomes)
    assert "  ok       new-modes>2: new-modes = 2 (rule new-modes>2)" in render_table(
        swap, outcomes
    )
    assert "- ✅ `jsd>0.9`" in render_markdown(swap, outcomes)


# --- thresholds that trip on every comparison ------------------------------------


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("new-modes>=0", "at least 0"),
        ("vanished-modes>=0", "at least 0"),
        ("changed-modes>=0", "at least 0"),
        ("mode-increase>=0", "at least 0"),
        ("not-enough-data>=0", "between 0 and 1"),
        ("jsd>=0", "between 0 and 1"),
        ("jsd<=1", "between 0 and 1"),
        ("failure-rate<=1", "between 0 and 1"),
        ("failure-rate>=0", "between 0 and 1"),
        ("novelty<=1", "between 0 and 1"),
        ("not-enough-data<=1", "between 0 and 1"),
    ],
)
def test_thresholds_every_comparison_crosses_are_refused(text: str, where: str) -> None:
    # "new-modes>=0" failed an A/A comparison ("new-modes = 0 (rule
    # new-modes>=0)", exit 1): a gate that fails every rollout
    with pytest.raises(RuleError) as info:
        parse_rules(text)
    message = str(info.value)
    assert f"rule {text!r} would trip on every comparison" in message and where in message


@pytest.mark.parametrize(
    "text",
    [
        # each can hold or not
        "jsd<1",
        "failure-rate<0.5",
        "new-modes<1",
        "not-enough-data>=1",
        # a significant increase is needed too, so these do not always trip
        "rate-increase>=0",
        "effective-modes-increase>=-3",
    ],
)
def test_thresholds_that_can_go_either_way_are_accepted(text: str) -> None:
    assert len(parse_rules(text)) == 1


# --- no failures: no effective modes, no top-3 share -----------------------------


def test_a_version_without_failures_renders_no_value_for_its_spread() -> None:
    calls = synth_calls("old", 2000, {1: 0.03, 2: 0.02}, seed=5)
    calls += [Call("new", "s", T, False) for _ in range(2000)]
    b, c = reference_metrics(calls, "old"), reference_metrics(calls, "new")
    r = compare_metrics("old", "new", b, c, b["modes"], c["modes"])
    assert r["candidate"]["effective_modes"] is None and r["candidate"]["top3_share"] is None
    assert r["effective_modes_change"]["delta"] is None
    text = render_table(r)
    (row,) = [line for line in text.splitlines() if line.startswith("effective modes")]
    assert row.split()[-1] == "–" and row.split()[-2] != "–"
    (row,) = [line for line in text.splitlines() if line.startswith("top-3 share")]
    assert row.split() == ["top-3", "share", "100.0%", "–"]
    assert "| effective modes |" in render_markdown(r)
    (md_row,) = [line for line in render_markdown(r).splitlines() if "| top-3 share |" in line]
    assert md_row == "| top-3 share | 100.0% | – |"
    (outcome,) = evaluate_rules(parse_rules("effective-modes-increase"), r)
    assert not outcome.tripped and not outcome.evaluated


# --- a p-value that underflows ---------------------------------------------------


def test_p_values_are_shown_with_three_digits_and_an_underflow_as_a_bound() -> None:
    assert p_text(0.012345) == "p=0.0123"
    assert p_text(0.5, sep=" ") == "p = 0.5"
    assert p_text(0.0) == "p<1e-300"
    assert p_text(0.0, sep=" ") == "p < 1e-300"
    assert p_number(3.2e-12, 2) == "3.2e-12"
    assert p_number(0.0, 2) == "<1e-300"


def test_a_p_value_that_underflows_is_not_rendered_as_zero() -> None:
    # a million calls per version: "p=0" read as if the change were certain
    result = underflowing_comparison()
    assert result["failure_rate_change"]["p_value"] == 0.0
    assert any(m["adjusted_p_value"] == 0.0 for m in result["new_modes"] + result["changed_modes"])
    for text in (render_table(result), render_markdown(result)):
        assert "p<1e-300" in text
        assert not re.search(r"p=0\b", text)
    table = render_table(result).splitlines()
    assert any(line.split()[:1] == [f"{4:016x}"] and "<1e-300" in line for line in table), table


# --- rate-increase: a signed change that trips only on a significant increase -----


def test_rate_increase_takes_negative_values_and_its_messages_say_so() -> None:
    calls = synth_calls("old", 2000, {1: 0.06}, seed=3)
    calls += synth_calls("new", 2000, {1: 0.03}, seed=4)
    b, c = reference_metrics(calls, "old"), reference_metrics(calls, "new")
    fell = compare_metrics("old", "new", b, c, b["modes"], c["modes"])
    (outcome,) = evaluate_rules(parse_rules("rate-increase>-0.5"), fell)
    # the value the gate reports is below 0, and a fall does not trip it
    assert outcome.value is not None and outcome.value < 0
    assert not outcome.tripped and "did not increase" in outcome.reason
    for text, effect, where in (
        ("rate-increase>5", "would never trip", "lies between -1 and 1"),
        ("rate-increase>-1.5", "sets a threshold outside", "lies between -1 and 1"),
        ("rate-increase<-0.1", "would never trip", "only on a significant increase"),
        ("rate-increase<=0", "would never trip", "only on a significant increase"),
        ("effective-modes-increase<0", "would never trip", "only on a significant increase"),
    ):
        with pytest.raises(RuleError) as info:
            parse_rules(text)
        message = str(info.value)
        assert f"rule {text!r} {effect}" in message and where in message, message
        assert "would trip on every comparison" not in message
