"""Baseline vs candidate: did the new model version fail less, and the same way?

The rules, stated once (the README and the JSON notes repeat them):

- **Failure-rate change**: Fisher's exact test on each version's failures
  and calls, as the counts of an unsampled version whose rate is as precise
  (``rate_equivalent_calls``: sampled successes count for what they say
  about the rate); significant when p < alpha. Exact, it holds its level for
  a small canary against a large baseline, where the pooled z-test cried
  wolf.
- **Per-mode change**: for each fingerprint with x1 baseline and x2 candidate
  failures over n1 and n2 (weighted) calls at its call site (a fingerprint
  belongs to one: traffic moving between call sites is not a mode
  changing, and a mode of a call site the candidate never called has not
  vanished), the exact conditional binomial
  test — under equal rates, x2 ~ Binomial(x1 + x2, n2 / (n1 + n2)). With
  sampled successes n is an estimate, and each version's x and n are first
  shrunk to an unsampled version's as uncertain (``_mode_exposure``), a
  version that never showed the mode included. All
  per-mode p-values form one family, adjusted with Benjamini–Hochberg;
  significant when the adjusted p < alpha.
- **New mode**: x1 = 0, x2 > 0 and significant. With x1 = 0 the p-value is
  about (n2 / (n1 + n2))^x2, the chance that the baseline, producing the
  mode at the candidate's rate, shows it zero times; so a mode is new only
  when the baseline had enough calls to have shown it. **Vanished**
  likewise with the versions swapped. Other significant modes are
  **changed**.
- **Effective-modes change**: Hutcheson's t-test of the two versions'
  entropies, each at the smaller version's number of failures
  (``effective_modes_test``), where the mixes also differ (a permutation
  test, exact for identical versions); significant when p < alpha and the
  test found the change in the direction of the difference shown. A
  permutation test alone called a mix that only moved between modes (4%/1%
  becoming 1%/4%, the same spread) a change of spread; a raw threshold on
  the difference tripped on identical versions (the estimate is noisy, and
  biased low for the smaller sample). Without failures in a version its
  effective modes and top-3 share are None (0/0), and so is the difference.
- **Minimum sample sizes**: below MIN_CALLS effective calls in either
  version (the weighted calls, or fewer when successes are sampled: what
  they are worth for the failure rate, and never more than the calls
  stored: ``effective_calls``) there is no verdict, only "not enough
  data"; mix-level figures
  (JSD, effective modes) need MIN_FAILURES failures in each version to
  count towards a verdict or a gate.
- **One grouping strategy**: fingerprints are only comparable when one
  strategy grouped both versions' failures (a collector upgrade that changes
  the strategy gives every failure mode a new fingerprint). When the window
  holds failures grouped by more than one, modes and the failure mix are not
  judged; the failure rate still is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from faultprint_collector.analysis._reference import (
    benjamini_hochberg,
    conditional_binomial_test,
    effective_modes_test,
    fisher_exact_test,
    jensen_shannon,
)
from faultprint_collector.analysis._sql import (
    Selection,
    fingerprint_info,
    mode_counts,
    mode_exposure,
    version_metrics,
)
from faultprint_collector.store import Store

__all__ = [
    "DEFAULT_ALPHA",
    "MIN_CALLS",
    "MIN_FAILURES",
    "compare_metrics",
    "compare_versions",
    "concerns",
    "fingerprint_hex",
    "p_number",
    "p_text",
]

#: significance level for every test (low, because a CI gate must not cry wolf)
DEFAULT_ALPHA = 0.01
#: below this many effective calls in a version: "not enough data"
MIN_CALLS = 100
#: below this many failures in a version, mix-level figures are not judged
MIN_FAILURES = 20
#: JSD above which the verdict mentions a shifted failure mix
JSD_NOTEWORTHY = 0.1

_METRIC_KEYS = (
    "calls",
    "failures",
    "failure_rate",
    "failure_rate_ci",
    "distinct_modes",
    "effective_modes",
    "top3_share",
    "novelty_rate",
    "repeatability",
)


#: p-values below this are shown as "p<1e-300": a float's 0.0 is an underflow, not zero
P_FLOOR = 1e-300


def p_number(p: float, digits: int = 3) -> str:
    """A p-value to DIGITS significant digits; ``<1e-300`` for one that underflowed.

    A test that underflows returns 0.0, which would read as a certainty.
    """
    return "<1e-300" if p < P_FLOOR else f"{p:.{digits}g}"


def p_text(p: float, digits: int = 3, sep: str = "") -> str:
    """A p-value as text: ``p=0.0123``, or ``p<1e-300``; SEP goes around the sign."""
    number = p_number(p, digits)
    if number.startswith("<"):
        return f"p{sep}<{sep}{number[1:]}"
    return f"p{sep}={sep}{number}"


def fingerprint_hex(fp: int) -> str:
    """A fingerprint as 16 lowercase hex digits."""
    return f"{int(fp):016x}"


def _empty_metrics() -> dict[str, Any]:
    return {
        "calls": 0.0,
        "failures": 0.0,
        "failure_rate": 0.0,
        "failure_rate_ci": (0.0, 1.0),
        "effective_calls": 0.0,
        "rate_equivalent_calls": 0.0,
        "calls_sq": 0.0,
        "spans": 0.0,
        "distinct_modes": 0,
        "effective_modes": None,
        "top3_share": None,
        "novelty_rate": None,
        "repeatability": None,
    }


def _public(version: str, metrics: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"model_version": version}
    for key in _METRIC_KEYS:
        value = metrics.get(key)
        if key in ("calls", "failures") and value is not None:
            value = _count(value)
        elif key == "failure_rate_ci":
            value = [round(v, 6) for v in (value or (0.0, 1.0))]
        elif isinstance(value, float):
            value = round(value, 6)
        out[key] = value
    return out


def _count(value: float) -> float | int:
    value = round(float(value), 3)
    return int(value) if value.is_integer() else value


def _count_variance(n: float, calls_sq: float) -> float:
    """Relative variance of N weighted calls (0 without sampling).

    A success kept at rate 1/w stands for w calls, so the count of calls is
    an estimate whose variance is Σ w(w − 1) = Σw² − Σw (failures, weight 1,
    add nothing).
    """
    if n <= 0:
        return 0.0
    return max(0.0, calls_sq - n) / (n * n)


def _mode_exposure(x: float, expected: float, n: float, calls_sq: float) -> tuple[int, float]:
    """X failures over N (weighted) calls, as the counts of an unsampled version
    that would be as uncertain about the mode's rate.

    The exact test takes N as known; with sampled successes it is estimated,
    and Var(log rate) = 1/x + the count's relative variance. Both counts
    shrink by 1 + x·variance, which keeps the rate; without sampling they
    are unchanged. (Taking N as exact, an A/A comparison at 1% sampling
    flagged a mode in 7% of runs at alpha 0.01.) The x in the shrink is the
    larger of X and EXPECTED, the failures equal rates would give this
    version: a version that never showed a mode (X = 0) is as uncertain
    about its calls as one that did, and unshrunk, a candidate of six
    stored spans weighing 3,003 calls had "vanished" modes.
    """
    shrink = 1.0 + max(x, expected) * _count_variance(n, calls_sq)
    return round(x / shrink), n / shrink


def _rate_counts(metrics: Mapping[str, Any]) -> tuple[int, int]:
    """A version's failures and calls, as the whole counts of an unsampled
    version whose failure rate is as precise (for the exact test)."""
    calls, failures = float(metrics["calls"]), float(metrics["failures"])
    if calls <= 0:
        return 0, 0
    equivalent = metrics.get("rate_equivalent_calls", metrics.get("effective_calls"))
    worth = calls if equivalent is None else min(calls, float(equivalent))
    return round(failures * worth / calls), round(worth)


def _is_sampled(metrics: Mapping[str, Any]) -> bool:
    """Whether any stored call stands for more than one (a weight above 1)."""
    calls = float(metrics.get("calls") or 0.0)
    return float(metrics.get("calls_sq") or calls) > calls * (1 + 1e-9)


def _resamples(alpha: float) -> int:
    """Permutations for the effective-modes test's mix check: enough that its
    p-value resolves well below ALPHA (0.002 at the default), and a bounded cost."""
    return max(999, min(9999, math.ceil(20 / alpha) - 1))


def _pct(rate: float) -> str:
    return f"{rate * 100:.2f}%"


def compare_metrics(
    baseline: str,
    candidate: str,
    base: Mapping[str, Any] | None,
    cand: Mapping[str, Any] | None,
    base_modes: Mapping[int, float],
    cand_modes: Mapping[int, float],
    info: Mapping[int, Mapping[str, Any]] | None = None,
    *,
    alpha: float = DEFAULT_ALPHA,
    base_exposure: Mapping[int, tuple[float, float]] | None = None,
    cand_exposure: Mapping[int, tuple[float, float]] | None = None,
    strategies: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The comparison from per-version metrics and per-mode failure counts.

    Pure: no I/O. BASE / CAND are the metric dicts of ``version_metrics``
    (None when the version has no calls), *_MODES map fingerprint →
    weighted failures, INFO fingerprint → catalogue entry, *_EXPOSURE
    fingerprint → (calls, sum of squared weights) at its call site, as
    ``mode_exposure`` gives them (the whole version's when not given).
    STRATEGIES maps each version to the fingerprint strategies of its
    failures (``failure_strategies``); with more than one between them,
    modes and the mix are not judged.
    """
    info = info or {}
    b = dict(base) if base else _empty_metrics()
    c = dict(cand) if cand else _empty_metrics()
    n1, n2 = float(b["calls"]), float(c["calls"])
    f1, f2 = float(b["failures"]), float(c["failures"])
    # what the data is worth: sampled successes count for less than their
    # weight (two successes of weight 100 are 200 calls, worth two at most)
    m1 = _worth(b, n1)
    m2 = _worth(c, n2)
    notes: list[str] = []

    enough = m1 >= MIN_CALLS and m2 >= MIN_CALLS
    if not enough:
        for name, version, metrics, worth in (
            ("baseline", baseline, b, m1),
            ("candidate", candidate, c, m2),
        ):
            n = float(metrics["calls"])
            if worth >= MIN_CALLS:
                continue
            if _is_sampled(metrics):
                stored = metrics.get("spans")
                spans = f" ({_count(stored)} stored)" if stored is not None else ""
                notes.append(
                    f"not enough data: {name} {version!r} has {_count(n)} calls in the window"
                    f"{spans}, but with its calls sampled they are worth {worth:.1f} unsampled "
                    f"calls (need at least {MIN_CALLS} for a verdict)"
                )
            else:
                notes.append(
                    f"not enough data: {name} {version!r} has {_count(n)} calls in the window "
                    f"(need at least {MIN_CALLS} for a verdict)"
                )
    strategies = strategies or {}
    modes_ok = len({s for v in strategies.values() for s in v}) <= 1
    if not modes_ok:
        by_version = "; ".join(
            f"{name} {version!r}: {', '.join(strategies.get(version, [])) or 'none'}"
            for name, version in (("baseline", baseline), ("candidate", candidate))
        )
        notes.append(
            f"failures in the window were grouped by more than one fingerprint strategy "
            f"({by_version}): a failure mode has a different fingerprint under each, so "
            "failure modes and the failure mix are not compared; compare over a window "
            "grouped by one (since the collector's upgrade)"
        )
    mix_ok = enough and modes_ok and f1 >= MIN_FAILURES and f2 >= MIN_FAILURES
    if enough and modes_ok and not mix_ok:
        notes.append(
            f"too few failures to judge the failure mix (baseline {f1:g}, candidate {f2:g}; "
            f"need at least {MIN_FAILURES} each): JSD and effective modes are not gated"
        )

    for name, m in (("baseline", b), ("candidate", c)):
        share = m.get("repeatability_sample", 1.0)
        if share < 1.0 and m.get("repeatability") is not None:
            notes.append(
                f"{name} repeatability estimated from a {share:.1%} hash sample of its inputs "
                f"({m.get('repeated_inputs', 0)} repeated inputs read)"
            )

    p1 = f1 / n1 if n1 else 0.0
    p2 = f2 / n2 if n2 else 0.0
    rate_p = fisher_exact_test(*_rate_counts(b), *_rate_counts(c))
    rate_significant = enough and rate_p < alpha and p1 != p2

    # two groupings' fingerprints never match: their divergence says nothing
    jsd = jensen_shannon(base_modes, cand_modes) if modes_ok else None

    whole1 = (n1, float(b.get("calls_sq") or n1))
    whole2 = (n2, float(c.get("calls_sq") or n2))
    fps = sorted(set(base_modes) | set(cand_modes))
    tested: list[dict[str, Any]] = []
    if enough and modes_ok:
        for fp in fps:
            x1 = base_modes.get(fp, 0.0)
            x2 = cand_modes.get(fp, 0.0)
            # absent from a given exposure: no calls at the mode's call site
            e1 = base_exposure.get(fp, (0.0, 0.0)) if base_exposure is not None else whole1
            e2 = cand_exposure.get(fp, (0.0, 0.0)) if cand_exposure is not None else whole2
            # failures of the mode each version would show at equal rates
            share = e2[0] / (e1[0] + e2[0]) if e1[0] + e2[0] > 0 else 0.0
            expected1, expected2 = (x1 + x2) * (1 - share), (x1 + x2) * share
            p = conditional_binomial_test(
                *_mode_exposure(x1, expected1, *e1), *_mode_exposure(x2, expected2, *e2)
            )
            r1 = x1 / e1[0] if e1[0] > 0 else 0.0
            r2 = x2 / e2[0] if e2[0] > 0 else 0.0
            tested.append(
                {
                    "fingerprint": fingerprint_hex(fp),
                    "baseline_failures": _count(x1),
                    "candidate_failures": _count(x2),
                    "baseline_rate": round(r1, 8),
                    "candidate_rate": round(r2, 8),
                    "rate_ratio": round(r2 / r1, 6) if r1 > 0 else None,
                    "p_value": p,
                    "_fp": fp,
                    "_site_calls": (e1[0], e2[0]),
                }
            )
        for row, adjusted in zip(
            tested, benjamini_hochberg([t["p_value"] for t in tested]), strict=True
        ):
            row["adjusted_p_value"] = adjusted
            row["p_value"] = float(f"{row['p_value']:.6g}")
    new_modes, vanished_modes, changed_modes = [], [], []
    rare_new = rare_vanished = unmet_new = unmet_vanished = 0
    for row in tested:
        fp = row.pop("_fp")
        base_calls, cand_calls = row.pop("_site_calls")
        entry = info.get(fp, {})
        row["template"] = entry.get("template", "")
        row["category"] = entry.get("category", "")
        row["error_type"] = entry.get("error_type", "")
        row["call_site"] = entry.get("call_site", "")
        row["example"] = entry.get("example", "")
        significant = row["adjusted_p_value"] < alpha
        row["adjusted_p_value"] = float(f"{row['adjusted_p_value']:.6g}")
        if row["baseline_failures"] == 0 and row["candidate_failures"] > 0:
            if base_calls <= 0:
                unmet_new += 1
            elif significant:
                new_modes.append(row)
            else:
                rare_new += 1
        elif row["candidate_failures"] == 0 and row["baseline_failures"] > 0:
            if cand_calls <= 0:
                unmet_vanished += 1
            elif significant:
                vanished_modes.append(row)
            else:
                rare_vanished += 1
        elif significant:
            changed_modes.append(row)
    if rare_new:
        notes.append(
            f"{rare_new} fingerprint(s) appear only in the candidate but too rarely for the "
            "baseline's volume to rule out chance; not reported as new"
        )
    if rare_vanished:
        notes.append(
            f"{rare_vanished} fingerprint(s) appear only in the baseline but too rarely for the "
            "candidate's volume to rule out chance; not reported as vanished"
        )
    for count, version, other in (
        (unmet_new, "candidate", "baseline"),
        (unmet_vanished, "baseline", "candidate"),
    ):
        if count:
            notes.append(
                f"{count} fingerprint(s) of the {version} are at call sites the {other} never "
                "called in the window; not compared"
            )
    new_modes.sort(key=lambda r: -r["candidate_failures"])
    vanished_modes.sort(key=lambda r: -r["baseline_failures"])
    changed_modes.sort(key=lambda r: r["adjusted_p_value"])

    # no failures, no effective modes (0/0): no difference either
    eff1, eff2 = b.get("effective_modes"), c.get("effective_modes")
    modes_delta = float(eff2) - float(eff1) if eff1 is not None and eff2 is not None else None
    spread = (
        effective_modes_test(base_modes, cand_modes, resamples=_resamples(alpha))
        if mix_ok and modes_delta is not None
        else None
    )
    modes_p = spread.p_value if spread is not None else None
    # the test compares both versions at one number of failures; the delta
    # shown compares each at its own, so with very different numbers the
    # two could point in opposite directions: a change is claimed only in
    # the direction both show
    spread_significant = (
        spread is not None
        and modes_delta is not None
        and spread.p_value < alpha
        and spread.difference * modes_delta > 0
    )
    result: dict[str, Any] = {
        "baseline": _public(baseline, b),
        "candidate": _public(candidate, c),
        "failure_rate_change": {
            "delta": round(p2 - p1, 8),
            "p_value": float(f"{rate_p:.6g}"),
            "significant": rate_significant,
        },
        "effective_modes_change": {
            "delta": round(modes_delta, 6) if modes_delta is not None else None,
            "p_value": float(f"{modes_p:.6g}") if modes_p is not None else None,
            "significant": spread_significant,
        },
        "jsd": round(jsd, 6) if jsd is not None else None,
        "new_modes": new_modes,
        "vanished_modes": vanished_modes,
        "changed_modes": changed_modes,
        "enough_data": enough,
        "modes_judged": modes_ok,
        "mix_judged": mix_ok,
        "alpha": alpha,
        "notes": notes,
    }
    result["verdict"] = _verdict(result, _same_modes(base_modes, cand_modes))
    return result


def _worth(metrics: Mapping[str, Any], calls: float) -> float:
    """The effective calls of a version's METRICS (its CALLS when not given)."""
    effective = metrics.get("effective_calls")
    return min(calls, float(effective)) if effective is not None else calls


def _same_modes(base_modes: Mapping[int, float], cand_modes: Mapping[int, float]) -> str:
    """How the versions' failure modes compare when no mode differs significantly."""
    base = {fp for fp, w in base_modes.items() if w > 0}
    cand = {fp for fp, w in cand_modes.items() if w > 0}
    if not base and not cand:
        return "no failures in either version"
    if base == cand:
        return "the same failure modes"
    if base and cand and not base & cand:
        # disjoint mixes (JSD 1) are not "the same" even when too rare to call
        # any mode new or vanished
        return "no significant difference in failure modes, though they share no mode"
    return "no significant difference in failure modes"


def _verdict(r: dict[str, Any], same_modes: str = "the same failure modes") -> str:
    b, c = r["baseline"], r["candidate"]
    if not r["enough_data"]:
        return "not enough data for a verdict"
    parts = []
    change = r["failure_rate_change"]
    rates = f"{_pct(c['failure_rate'])} vs {_pct(b['failure_rate'])}, {p_text(change['p_value'])}"
    if change["significant"]:
        word = "more" if change["delta"] > 0 else "less"
        parts.append(f"candidate fails {word} often ({rates})")
    else:
        parts.append(f"no significant change in failure rate ({rates})")
    counts = []
    if r["new_modes"]:
        counts.append(f"{len(r['new_modes'])} new failure mode(s)")
    if r["vanished_modes"]:
        counts.append(f"{len(r['vanished_modes'])} vanished")
    if r["changed_modes"]:
        counts.append(f"{len(r['changed_modes'])} changed in frequency")
    if not r["modes_judged"]:
        parts.append("failure modes not compared (grouped by different fingerprint strategies)")
    else:
        parts.append(", ".join(counts) if counts else same_modes)
    if r["mix_judged"] and r["jsd"] is not None and r["jsd"] > JSD_NOTEWORTHY:
        parts.append(f"failure mix shifted (JSD {r['jsd']:.2f})")
    spread = r["effective_modes_change"]
    if r["mix_judged"] and spread["significant"]:
        word = "more" if spread["delta"] > 0 else "fewer"
        parts.append(
            f"failures spread over {word} modes "
            f"({spread['delta']:+.2f} effective modes, {p_text(spread['p_value'])})"
        )
    return "; ".join(parts)


def concerns(result: Mapping[str, Any]) -> list[str]:
    """What in a comparison RESULT speaks against the candidate, or stops a
    verdict; empty when nothing does.

    Only the comparison's own findings, at its own thresholds: no verdict
    (not enough data, modes not comparable), a significantly higher failure
    rate, new modes, modes significantly more frequent, the failure mix
    shifted as the verdict reports it (JSD above ``JSD_NOTEWORTHY`` on a
    judged mix), failures spread over significantly more modes. Vanished
    modes and modes that became rarer are not concerns. For a view that must
    not show a regression as a pass (a colour people skim).
    """
    if not result["enough_data"]:
        return ["not enough data for a verdict"]
    out = []
    change = result["failure_rate_change"]
    if change["significant"] and change["delta"] > 0:
        out.append("the candidate fails significantly more often")
    if not result["modes_judged"]:
        out.append("failure modes not compared (grouped by different fingerprint strategies)")
    if result["new_modes"]:
        out.append(f"{len(result['new_modes'])} new failure mode(s)")
    rising = [m for m in result["changed_modes"] if m["candidate_rate"] > m["baseline_rate"]]
    if rising:
        ratios = [m["rate_ratio"] for m in rising if m.get("rate_ratio") is not None]
        most = f", up to {max(ratios):.1f}x as frequent" if ratios else ""
        out.append(f"{len(rising)} failure mode(s) significantly more frequent{most}")
    jsd = result.get("jsd")
    if result["mix_judged"] and jsd is not None and jsd > JSD_NOTEWORTHY:
        out.append(f"failure mix shifted (JSD {jsd:.2f})")
    spread = result["effective_modes_change"]
    if result["mix_judged"] and spread["significant"] and spread["delta"] > 0:
        out.append(f"failures spread over more modes ({spread['delta']:+.2f} effective modes)")
    return out


def compare_versions(
    store: Store,
    project: str,
    baseline: str,
    candidate: str,
    *,
    call_site: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> dict[str, Any]:
    """Compare two model versions of PROJECT over a window; the fixed JSON interface.

    Reads only the rollups. See the module docstring for the rules behind
    new / vanished / changed modes and the minimum sample sizes.
    """
    sel = Selection(
        project=project,
        versions=[baseline, candidate],
        call_site=call_site,
        since=since,
        until=until,
    )
    metrics = version_metrics(store, sel, with_drift=False)
    modes = mode_counts(store, sel)
    exposure = mode_exposure(store, sel)
    strategies = {v: m["strategies"] for v, m in metrics.items()}
    base_modes = modes.get(baseline, {})
    cand_modes = modes.get(candidate, {})
    flagged = set(base_modes) | set(cand_modes)
    result = compare_metrics(
        baseline,
        candidate,
        metrics.get(baseline),
        metrics.get(candidate),
        base_modes,
        cand_modes,
        None,
        alpha=alpha,
        base_exposure=exposure.get(baseline, {}),
        cand_exposure=exposure.get(candidate, {}),
        strategies=strategies,
    )
    listed = [
        int(m["fingerprint"], 16)
        for key in ("new_modes", "vanished_modes", "changed_modes")
        for m in result[key]
    ]
    if listed and flagged:
        info = fingerprint_info(store, project, listed, prefer_version=candidate)
        for key in ("new_modes", "vanished_modes", "changed_modes"):
            for m in result[key]:
                entry = info.get(int(m["fingerprint"], 16), {})
                for field in ("template", "category", "error_type", "call_site", "example"):
                    m[field] = entry.get(field, "")
    result["window"] = {
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "call_site": call_site,
    }
    return result
