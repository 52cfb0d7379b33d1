"""Reference implementations of every consistency metric and test.

Pure functions over plain Python values: they define what the metrics mean,
the comparison uses the statistical ones directly, and the property tests
check that the ClickHouse queries (which read the rollups) agree with the
metric functions applied to raw calls.

Weights: every call carries a sample weight (1/r when successes are sampled
at rate r; failures always 1). Counts are sums of weights; the variance of a
weighted failure rate is the linearised (ratio-estimator) variance, turned
into a *rate-equivalent* number of calls for the Wilson interval and the
exact tests, so sampling widens the intervals honestly; the *effective*
number of calls, for the minimum sample size, is that but never more than
the calls stored.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import numpy as np
import xxhash

__all__ = [
    "Call",
    "SpreadTest",
    "benjamini_hochberg",
    "conditional_binomial_test",
    "distinct_modes",
    "drift",
    "effective_calls",
    "effective_modes",
    "effective_modes_test",
    "entropy",
    "entropy_t_test",
    "fisher_exact_test",
    "jensen_shannon",
    "mix_permutation_test",
    "mode_exposure",
    "novelty_rate",
    "rate_equivalent_calls",
    "reference_metrics",
    "repeatability",
    "student_t_two_sided",
    "top_share",
    "wilson_interval",
]

#: z for a two-sided 95% interval
Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Call:
    """The fields of one stored call that the metrics look at."""

    model_version: str
    call_site: str
    time: datetime
    is_failure: bool
    fingerprint: int = 0
    sample_weight: float = 1.0
    input_hash: int = 0

    @property
    def outcome(self) -> int:
        """0 for a success, else the failure fingerprint."""
        return self.fingerprint if self.is_failure else 0


# --- rates ----------------------------------------------------------------------


def rate_equivalent_calls(calls: float, failures: float, fail_sq: float, ok_sq: float) -> float:
    """The number of unsampled calls whose failure rate would be as precise.

    CALLS and FAILURES are sums of weights, FAIL_SQ and OK_SQ sums of squared
    weights of failed and successful calls. The ratio estimator's variance is
    ``Σ w²(y − p)² / (Σ w)²``; equating it with ``p(1 − p)/m`` gives ``m``.
    At p = 0 or 1 the linearisation is degenerate and Kish's ``(Σw)²/Σw²``
    is used. Never more than CALLS; with all weights 1 the plain count,
    exactly (computed, 100 calls came out as 99.99999999999999).

    The Wilson interval and the exact rate test take it. It may exceed the
    calls stored: when failures are rare and all kept, 200 failures beside
    100 successes of weight 1000 pin the rate down as well as some 33,000
    unsampled calls would (capped at the 300 spans, a tenfold increase of
    the failure rate over a baseline went unnoticed).
    """
    if calls <= 0:
        return 0.0
    total_sq = fail_sq + ok_sq
    if total_sq <= calls:
        # weights are never below 1, so Σw² = Σw means every weight is 1
        return calls
    p = failures / calls
    spread = fail_sq * (1 - p) ** 2 + ok_sq * p**2
    if spread <= 0 or p <= 0 or p >= 1:
        return calls * calls / total_sq
    return min(calls, p * (1 - p) * calls * calls / spread)


def effective_calls(
    calls: float, failures: float, fail_sq: float, ok_sq: float, spans: float | None = None
) -> float:
    """The effective sample size: how many calls the data is worth for the
    minimum sample size below which a comparison has no verdict.

    The rate-equivalent calls (``rate_equivalent_calls``), but never more
    than SPANS, the calls actually stored (None: not known): a stored span
    says at most as much as one call. The rate equivalence alone is an
    asymptotic one; at a low failure rate it credited 3 failures and 3
    successes of weight 1000 with about 1,500 calls, and 1 failure and 2
    successes of weight 100 with 134, which passed for enough data and gave
    confident verdicts on six and three stored spans.
    """
    m = rate_equivalent_calls(calls, failures, fail_sq, ok_sq)
    return min(m, spans) if spans is not None else m


def wilson_interval(failures: float, calls: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for the rate FAILURES/CALLS (CALLS may be effective)."""
    if calls <= 0:
        return (0.0, 1.0)
    p = min(1.0, max(0.0, failures / calls))
    z2 = z * z
    denom = 1 + z2 / calls
    centre = (p + z2 / (2 * calls)) / denom
    half = z * math.sqrt(p * (1 - p) / calls + z2 / (4 * calls * calls)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


# --- exact tests ------------------------------------------------------------------


def _log_pmf(k: int, n: int, p: float) -> float:
    if p <= 0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1:
        return 0.0 if k == n else -math.inf
    return (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * math.log(p)
        + (n - k) * math.log1p(-p)
    )


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _two_sided(log_pmf: Callable[[int], float], lo: int, hi: int, mode: int, k: int) -> float:
    """Two-sided p-value of observing K under a unimodal pmf on [LO, HI]
    (MODE its mode): the probability of every outcome no more likely than K,
    as R's binom.test and fisher.test. Summation walks outwards from K and
    from the first point of the other tail, and stops once terms no longer
    matter, so it stays fast for large counts."""
    cutoff = log_pmf(k) + 1e-7  # relative tolerance, as R's
    if k <= mode:
        near = range(k, lo - 1, -1)
        a, b = mode, hi
        while a < b:  # smallest j >= mode with pmf(j) <= pmf(k)
            mid = (a + b) // 2
            if log_pmf(mid) <= cutoff:
                b = mid
            else:
                a = mid + 1
        far = range(a, hi + 1) if log_pmf(a) <= cutoff else range(0)
    else:
        near = range(k, hi + 1)
        a, b = lo, mode
        while a < b:  # largest j <= mode with pmf(j) <= pmf(k)
            mid = (a + b + 1) // 2
            if log_pmf(mid) <= cutoff:
                a = mid
            else:
                b = mid - 1
        far = range(a, lo - 1, -1) if log_pmf(a) <= cutoff else range(0)
    return min(1.0, _tail_sum(near, log_pmf) + _tail_sum(far, log_pmf))


def _tail_sum(ks: range, log_pmf: Callable[[int], float]) -> float:
    total = 0.0
    for k in ks:
        term = math.exp(log_pmf(k))
        total += term
        if term < total * 1e-17 or (term == 0.0 and total > 0):
            break
    return total


def conditional_binomial_test(x1: int, n1: float, x2: int, n2: float) -> float:
    """Exact two-sided test that two Poisson rates x1/n1 and x2/n2 are equal.

    Conditional on the total t = x1 + x2, x2 ~ Binomial(t, n2/(n1+n2)) under
    the null. The p-value sums the probabilities of every outcome no more
    likely than the observed one (the usual exact binomial test).
    """
    t = x1 + x2
    if t == 0 or n1 <= 0 or n2 <= 0:
        return 1.0
    p = n2 / (n1 + n2)
    mode = min(t, max(0, math.floor((t + 1) * p)))
    return _two_sided(lambda k: _log_pmf(k, t, p), 0, t, mode, x2)


def fisher_exact_test(x1: int, n1: int, x2: int, n2: int) -> float:
    """Fisher's exact two-sided test that the proportions x1/n1 and x2/n2 are equal.

    Conditional on the total failures t = x1 + x2, x2 is hypergeometric: t
    failures among n1 + n2 calls, n2 of them drawn. The p-value sums the
    probabilities of every table no more likely than the observed one (as
    R's fisher.test). Exact at any sample size, so it holds its level where
    the pooled z-test does not: a canary of 100 calls against a baseline of
    100,000 tripped the z-test more often than alpha in A/A comparisons.
    """
    t = x1 + x2
    total = n1 + n2
    if t == 0 or t == total or n1 <= 0 or n2 <= 0:
        return 1.0
    lo, hi = max(0, t - n1), min(t, n2)
    base = _log_comb(total, n2)

    def log_pmf(k: int) -> float:
        return _log_comb(t, k) + _log_comb(total - t, n2 - k) - base

    mode = min(hi, max(lo, (n2 + 1) * (t + 1) // (total + 2)))
    return _two_sided(log_pmf, lo, hi, mode, x2)


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (same order as given)."""
    m = len(p_values)
    if m == 0:
        return []
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        adjusted[i] = min(1.0, running)
    return adjusted


# --- distributions over fingerprints --------------------------------------------


def entropy(weights: Iterable[float]) -> float:
    """Shannon entropy (natural log) of the distribution proportional to WEIGHTS."""
    ws = [w for w in weights if w > 0]
    total = sum(ws)
    if total <= 0:
        return 0.0
    return -sum((w / total) * math.log(w / total) for w in ws)


def effective_modes(weights: Iterable[float]) -> float | None:
    """exp(H): the number of equally common modes with the same entropy.

    None without failures: the shares of no failures are 0/0, so there is no
    distribution to count modes in (0 would read as "fewer modes than one").
    """
    ws = [w for w in weights if w > 0]
    return math.exp(entropy(ws)) if ws else None


class SpreadTest(NamedTuple):
    """Whether two versions spread their failures over as many effective modes."""

    #: candidate minus baseline, in effective modes at a common number of
    #: failures (the smaller version's; see ``entropy_t_test``): its sign is
    #: the direction the test found
    difference: float
    #: two-sided p-value of "equally many effective modes"
    p_value: float


def effective_modes_test(
    baseline: Mapping[int, float],
    candidate: Mapping[int, float],
    *,
    resamples: int = 999,
    stop_after: int = 20,
) -> SpreadTest:
    """Do two versions spread their failures over equally many effective modes?

    A change of spread is claimed only when two tests agree, so the p-value
    is the larger of theirs (an intersection–union test: it holds its level
    wherever either test does, identical versions by the second, a mix
    that moved but kept its spread by the first):

    - ``entropy_t_test``: Hutcheson's t-test of the two entropies, the test
      of the spread itself. A mix that only moved between modes (4%/1%
      becoming 1%/4%) has the same spread, and it says so. It rests on a
      normal approximation, which is optimistic for a few dozen failures
      over rare modes (in simulated A/A comparisons of about 32 failures
      over 8 modes it called a difference in 1.3% of runs at alpha 0.01);
    - ``mix_permutation_test``: could one mix of modes, shared by both,
      give a difference this large? Exact for identical versions at any
      size, it keeps the t-test's small-sample slips out of A/A
      comparisons. On its own it is no test of spread: a mix that moved
      between modes is not its null, and it called the 4%/1% to 1%/4% swap
      a significant change of spread in 929 runs of 1,000.

    Counts are rounded to whole failures (failures carry weight 1). No
    difference and p-value 1.0 when either version has no failures.
    """
    t_test = entropy_t_test(baseline, candidate)
    if t_test.p_value >= 1.0:
        return t_test
    mix_p = mix_permutation_test(baseline, candidate, resamples=resamples, stop_after=stop_after)
    return SpreadTest(t_test.difference, max(t_test.p_value, mix_p))


def _whole_counts(weights: Mapping[int, float]) -> np.ndarray:
    """The failures per mode as whole, positive counts (failures carry weight 1)."""
    counts = np.array([round(w) for w in weights.values()], dtype=np.int64)
    return counts[counts > 0]


def entropy_t_test(baseline: Mapping[int, float], candidate: Mapping[int, float]) -> SpreadTest:
    """Hutcheson's t-test that two versions' failures have equal Shannon entropy.

    H = −Σ p ln p of each version's N failures over S modes, with the
    variance (Σ p ln²p − (Σ p ln p)²)/N + (S − 1)/(2N²), Welch–Satterthwaite
    degrees of freedom (V₁ + V₂)² / (V₁²/N₁ + V₂²/N₂), and a two-sided p
    from Student's t. Effective modes are exp(H), so equal entropies are
    equal effective modes. Two adjustments for the sizes CI sees, a canary
    of a few dozen failures against a baseline of thousands:

    - the entropy of a sample runs low by about (S − 1)/2N, so a larger
      version would read as spread over more modes than a canary failing
      identically (for 25 against 500 failures over 50 equal modes,
      always): both entropies are taken at the smaller version's number of
      failures M, the larger version's as the expected entropy of M of its
      failures drawn at random (rarefaction, exact), whose bias is the
      smaller's;
    - Σ p ln²p − (Σ p ln p)² is the variance of −ln p over one failure,
      estimated at each version's own mix; it vanishes at an even mix (the
      entropy's slope is 0 there), so a canary that by chance looked evenly
      spread also looked precise, and read as significantly more spread
      (2% of simulated mirror-mix canaries at alpha 0.01). Both versions
      take the larger of the two estimates, which is the same under a mere
      relabelling of modes.

    DIFFERENCE is the exp of the two entropies at M failures, candidate
    minus baseline.
    """
    base, cand = _whole_counts(baseline), _whole_counts(candidate)
    n1, n2 = int(base.sum()), int(cand.sum())
    if n1 == 0 or n2 == 0:
        return SpreadTest(0.0, 1.0)
    m = min(n1, n2)
    h1, h2 = _rarefied_entropy(base, m), _rarefied_entropy(cand, m)
    per_failure = max(_log_share_variance(base), _log_share_variance(cand))
    v1 = per_failure / n1 + (len(base) - 1) / (2 * n1 * n1)
    v2 = per_failure / n2 + (len(cand) - 1) / (2 * n2 * n2)
    difference = math.exp(h2) - math.exp(h1)
    if v1 + v2 <= 0:
        # a single mode in each: both entropies are 0
        return SpreadTest(difference, 1.0 if abs(h2 - h1) < 1e-12 else 0.0)
    t = (h2 - h1) / math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1 * v1 / n1 + v2 * v2 / n2)
    return SpreadTest(difference, student_t_two_sided(t, df))


def _log_share_variance(counts: np.ndarray) -> float:
    """Σ p ln²p − (Σ p ln p)²: the variance of −ln p over one failure of COUNTS
    (whole, positive), Hutcheson's variance of the entropy times N."""
    p = counts / float(counts.sum())
    logs = np.log(p)
    return max(0.0, float((p * logs * logs).sum() - (p * logs).sum() ** 2))


def _rarefied_entropy(counts: np.ndarray, m: int) -> float:
    """The expected entropy of M of the failures in COUNTS drawn without
    replacement (the plain entropy when M is all of them).

    A random M of a version's failures are distributed exactly as a sample
    of M failures of that version, so this is an unbiased estimate of what
    a version with M failures would show, entropy's bias included.
    """
    n = int(counts.sum())
    if m >= n:
        p = counts / n
        return float(-(p * np.log(p)).sum())
    return -sum(_expected_xlogx(int(c), n, m) for c in counts)


#: above this variance of a mode's count among the failures drawn, the
#: expectation of (X/m)·ln(X/m) is its second-order expansion (the next
#: term is below 1e-4 of the entropy's standard error)
_EXPANSION_VARIANCE = 400.0


def _expected_xlogx(c: int, n: int, m: int) -> float:
    """E[(X/M)·ln(X/M)] for X the failures of a mode with C of N failures among
    M drawn without replacement (X hypergeometric)."""
    if c >= n:
        return 0.0
    mean = m * c / n
    var = mean * (1 - c / n) * (n - m) / (n - 1)
    if var >= _EXPANSION_VARIANCE:
        # g(x) = (x/m) ln(x/m), g''(x) = 1/(m x)
        return (mean / m) * math.log(mean / m) + var / (2 * m * mean)
    sd = math.sqrt(var)
    lo = max(0, m - (n - c), math.floor(mean - 15 * sd - 10))
    hi = min(c, m, math.ceil(mean + 15 * sd + 10))
    k = np.arange(lo, hi + 1, dtype=np.float64)
    # log pmf at LO, then the ratios of consecutive terms
    first = _log_comb(c, lo) + _log_comb(n - c, m - lo) - _log_comb(n, m)
    steps = np.log((c - k[:-1]) * (m - k[:-1])) - np.log((k[:-1] + 1) * (n - c - m + k[:-1] + 1))
    log_pmf = first + np.concatenate(([0.0], np.cumsum(steps)))
    share = k / m
    with np.errstate(divide="ignore", invalid="ignore"):
        xlogx = np.where(k > 0, share * np.log(np.where(k > 0, share, 1.0)), 0.0)
    return float((np.exp(log_pmf) * xlogx).sum())


def student_t_two_sided(t: float, df: float) -> float:
    """Two-sided p-value of T under Student's t with DF degrees of freedom.

    P(|T| ≥ |t|) = I_x(df/2, 1/2) at x = df/(df + t²), the regularized
    incomplete beta function; beyond a million degrees of freedom, the
    normal distribution's (the two differ by less than 1e-5 there).
    """
    if not math.isfinite(t):
        return 0.0
    if df > 1e6:
        return math.erfc(abs(t) / math.sqrt(2))
    t2 = t * t
    return min(1.0, _incomplete_beta(df / 2, 0.5, df / (df + t2), t2 / (df + t2)))


def _incomplete_beta(a: float, b: float, x: float, y: float) -> float:
    """I_x(a, b), regularized, for x + y = 1 (each given, so neither loses
    precision to 1 − the other), by its continued fraction (Lentz)."""
    if x <= 0:
        return 0.0
    if y <= 0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y)
    )
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, y) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300

    def bounded(v: float) -> float:
        return v if abs(v) > tiny else tiny

    c, d = 1.0, 1.0 / bounded(1.0 - (a + b) * x / (a + 1))
    h = d
    for i in range(1, 10_000):
        even = i * (b - i) * x / ((a + 2 * i - 1) * (a + 2 * i))
        d = 1.0 / bounded(1.0 + even * d)
        c = bounded(1.0 + even / c)
        h *= d * c
        odd = -(a + i) * (a + b + i) * x / ((a + 2 * i) * (a + 2 * i + 1))
        d = 1.0 / bounded(1.0 + odd * d)
        c = bounded(1.0 + odd / c)
        h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def mix_permutation_test(
    baseline: Mapping[int, float],
    candidate: Mapping[int, float],
    *,
    resamples: int = 999,
    stop_after: int = 20,
) -> float:
    """Two-sided p-value that two versions draw their failures from one mix of
    modes, by the difference in exp(H): a permutation test.

    Under the null both versions draw their failures from one mix of modes:
    the failures are pooled and split again at random into groups of the
    two versions' sizes (a multivariate hypergeometric draw), and the
    p-value is twice the share of splits whose difference is at least as far
    out, on the observed side, as the observed one. Each split keeps the
    versions' numbers of failures, so the downward bias of a small sample's
    effective modes is in the null distribution too. Its null is the *same
    mix*, not the same spread: a mix that moved between modes rejects it
    whatever the spread (near an even pooled mix every split has about the
    same effective modes, so 1.68 against 1.69 was "significant"), and
    ``effective_modes_test`` pairs it with a test of the spread.

    At most RESAMPLES splits, drawn in blocks (numpy's multivariate
    hypergeometric sampler) from a generator seeded by the counts, so that a
    comparison always gives the same answer; sampling stops after a block
    once STOP_AFTER splits fell beyond the observed difference on either side
    (Besag and Clifford's sequential p-value). Counts are
    rounded to whole failures (failures carry weight 1). 1.0 when either
    version has no failures.
    """
    fps = sorted(set(baseline) | set(candidate))
    base = np.array([max(0, round(baseline.get(fp, 0.0))) for fp in fps], dtype=np.int64)
    cand = np.array([max(0, round(candidate.get(fp, 0.0))) for fp in fps], dtype=np.int64)
    f1, f2 = int(base.sum()), int(cand.sum())
    if f1 == 0 or f2 == 0:
        return 1.0
    pooled = base + cand
    observed = float(_effective_modes_of_counts(cand[None, :])[0]) - float(
        _effective_modes_of_counts(base[None, :])[0]
    )
    seed = xxhash.xxh3_64_intdigest(repr((fps, base.tolist(), cand.tolist())).encode())
    rng = np.random.default_rng(seed)
    block = max(1, min(_BLOCK, _MAX_DRAWN_CELLS // len(fps)))
    above = below = 0
    done = 0
    while done < resamples:
        n = min(block, resamples - done)
        split = rng.multivariate_hypergeometric(pooled, f2, size=n)
        difference = _effective_modes_of_counts(split) - _effective_modes_of_counts(pooled - split)
        above += int(np.count_nonzero(difference >= observed - 1e-9))
        below += int(np.count_nonzero(difference <= observed + 1e-9))
        done += n
        if min(above, below) >= stop_after:
            # Besag and Clifford's sequential p-value: clearly no difference
            return min(1.0, 2 * min(above, below) / done)
    return min(1.0, 2 * (min(above, below) + 1) / (resamples + 1))


#: splits drawn at once; a clear "no difference" stops after the first block
_BLOCK = 250


#: bound on the counts drawn at once by the permutation test (8 bytes each)
_MAX_DRAWN_CELLS = 4_000_000


def _effective_modes_of_counts(counts: np.ndarray) -> np.ndarray:
    """exp(H) of each row of failure counts (0 for a row without failures)."""
    f = counts.sum(axis=1).astype(np.float64)
    # c·log(c), which is 0 for c = 0 and c = 1 alike
    xlogx = (counts * np.log(np.maximum(counts, 1))).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.exp(np.log(f) - xlogx / f)
    return np.where(f > 0, out, 0.0)


def distinct_modes(weights: Iterable[float]) -> int:
    """K: how many fingerprints have failures."""
    return sum(1 for w in weights if w > 0)


def top_share(weights: Iterable[float], k: int = 3) -> float | None:
    """Share of failures in the K most common fingerprints.

    None without failures: a share of no failures is 0/0 (0 would read as
    "failures spread over many modes", the opposite of "none").
    """
    ws = sorted((w for w in weights if w > 0), reverse=True)
    total = sum(ws)
    return sum(ws[:k]) / total if total > 0 else None


def jensen_shannon(p: Mapping[int, float], q: Mapping[int, float]) -> float | None:
    """Jensen–Shannon divergence, base 2 (0 = same mix, 1 = disjoint); None if empty."""
    sp = sum(v for v in p.values() if v > 0)
    sq = sum(v for v in q.values() if v > 0)
    if sp <= 0 or sq <= 0:
        return None
    total = 0.0
    for key in set(p) | set(q):
        a = max(0.0, p.get(key, 0.0)) / sp
        b = max(0.0, q.get(key, 0.0)) / sq
        m = (a + b) / 2
        if a > 0:
            total += 0.5 * a * math.log2(a / m)
        if b > 0:
            total += 0.5 * b * math.log2(b / m)
    return min(1.0, max(0.0, total))


# --- novelty and repeatability ---------------------------------------------------


def novelty_rate(
    failures: Mapping[int, float], first_seen: Mapping[int, datetime], window_start: datetime
) -> float | None:
    """Share of failures whose fingerprint was never seen before WINDOW_START.

    FAILURES maps fingerprint → weighted failures in the window; FIRST_SEEN
    maps fingerprint → its first occurrence anywhere in the project (the
    fingerprint already includes the call site). None without failures.
    """
    total = sum(failures.values())
    if total <= 0:
        return None
    new = sum(
        w for fp, w in failures.items() if fp not in first_seen or first_seen[fp] >= window_start
    )
    return new / total


def repeatability(calls: Iterable[Call]) -> float | None:
    """Among inputs called at least twice, the share whose outcomes all agree.

    An input is a (call site, input hash) pair; hash 0 means "not recorded".
    Outcomes agree when every call succeeded, or every call failed with the
    same fingerprint. Inputs count once each; a sampled-out success was never
    observed, so qualification uses the calls actually stored. CALLS are the
    calls of one window (``reference_metrics`` passes those of its window):
    only their occurrences count towards "at least twice".
    """
    outcomes: dict[tuple[str, int], set[int]] = defaultdict(set)
    counts: dict[tuple[str, int], int] = defaultdict(int)
    for c in calls:
        if c.input_hash == 0:
            continue
        key = (c.call_site, c.input_hash)
        outcomes[key].add(c.outcome)
        counts[key] += 1
    repeated = [key for key, n in counts.items() if n >= 2]
    if not repeated:
        return None
    return sum(1 for key in repeated if len(outcomes[key]) == 1) / len(repeated)


def drift(failures: Iterable[Call]) -> float | None:
    """JSD between the fingerprint mix of the last two days that have failures.

    A day is 24 whole hours counted back from the hour of the latest failure
    (day 0 ends with that hour, day 1 is the 24 hours before it, …), not a
    calendar day: just after midnight a calendar "today" holds a few minutes
    of failures, and its mix against yesterday's reads as drift of a version
    that did not change. None when failures fall on fewer than two days.
    """
    failures = list(failures)
    if not failures:
        return None
    latest = max(_hour(c.time) for c in failures)
    per_day: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for c in failures:
        days_back = int((latest - _hour(c.time)).total_seconds()) // (24 * 3600)
        per_day[days_back][c.fingerprint] += c.sample_weight
    if len(per_day) < 2:
        return None
    last, previous = sorted(per_day)[:2]
    return jensen_shannon(per_day[previous], per_day[last])


# --- everything, from raw calls ---------------------------------------------------


def _hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def _in_window(c: Call, call_site: str | None, lo: datetime | None, until: datetime | None) -> bool:
    h = _hour(c.time)
    return (
        (call_site is None or c.call_site == call_site)
        and (lo is None or h >= lo)
        and (until is None or h < until)
    )


def mode_exposure(
    calls: Sequence[Call],
    versions: Sequence[str],
    *,
    call_site: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, dict[int, tuple[float, float]]]:
    """Per version and fingerprint: the calls a mode's rate is taken over.

    That is (sum of weights, sum of squared weights) of the version's calls
    at the call site(s) where the fingerprint failed in any of VERSIONS: a
    fingerprint belongs to one call site, so the candidate's traffic moving
    between call sites does not read as its modes changing. Windows as
    ``reference_metrics``.
    """
    lo = _hour(since) if since else None
    chosen = [
        c for c in calls if c.model_version in versions and _in_window(c, call_site, lo, until)
    ]
    sites: dict[int, set[str]] = defaultdict(set)
    per_site: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for c in chosen:
        if c.is_failure:
            sites[c.fingerprint].add(c.call_site)
        totals = per_site[c.model_version, c.call_site]
        totals[0] += c.sample_weight
        totals[1] += c.sample_weight**2
    out: dict[str, dict[int, tuple[float, float]]] = {}
    for version in versions:
        out[version] = {
            fp: (
                sum(per_site[version, site][0] for site in fp_sites),
                sum(per_site[version, site][1] for site in fp_sites),
            )
            for fp, fp_sites in sites.items()
        }
    return out


def reference_metrics(
    calls: Sequence[Call],
    version: str,
    *,
    call_site: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, object] | None:
    """All per-version metrics computed from raw CALLS (the whole project's calls).

    Windows are whole hours: a call is selected when its hour overlaps
    [SINCE, UNTIL), i.e. hour >= SINCE's hour and hour < UNTIL. Novelty's
    window starts exactly at SINCE, or at the version's first call in the
    selection when SINCE is not given (not at the start of its hour: a mode
    another version first showed minutes before this one's first call is
    not one this version brought). Repeatability, as every other metric,
    reads the calls in the window only: an input called once before the
    window and once in it is not a repeated input of the window. None if
    the version has no calls in the selection.
    """
    lo = _hour(since) if since else None
    chosen = [
        c for c in calls if c.model_version == version and _in_window(c, call_site, lo, until)
    ]
    if not chosen:
        return None
    n = sum(c.sample_weight for c in chosen)
    f = sum(c.sample_weight for c in chosen if c.is_failure)
    fail_sq = sum(c.sample_weight**2 for c in chosen if c.is_failure)
    ok_sq = sum(c.sample_weight**2 for c in chosen if not c.is_failure)
    per_fp: dict[int, float] = defaultdict(float)
    for c in chosen:
        if c.is_failure:
            per_fp[c.fingerprint] += c.sample_weight
    first_seen: dict[int, datetime] = {}
    for c in calls:
        if c.is_failure and (c.fingerprint not in first_seen or c.time < first_seen[c.fingerprint]):
            first_seen[c.fingerprint] = c.time
    window_start = since or min(c.time for c in chosen)
    r = rate_equivalent_calls(n, f, fail_sq, ok_sq)
    return {
        "calls": n,
        "failures": f,
        "failure_rate": f / n if n else 0.0,
        "failure_rate_ci": wilson_interval(f / n * r if n else 0.0, r),
        "effective_calls": effective_calls(n, f, fail_sq, ok_sq, len(chosen)),
        "rate_equivalent_calls": r,
        "calls_sq": fail_sq + ok_sq,
        "spans": float(len(chosen)),
        "distinct_modes": distinct_modes(per_fp.values()),
        "effective_modes": effective_modes(per_fp.values()),
        "top3_share": top_share(per_fp.values(), 3),
        "novelty_rate": novelty_rate(per_fp, first_seen, window_start),
        "repeatability": repeatability(chosen),
        "drift": drift([c for c in chosen if c.is_failure]),
        "modes": dict(per_fp),
    }
