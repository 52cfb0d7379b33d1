"""``--fail-on`` rules: when a comparison should fail a CI job.

A rule list is comma separated; each rule is a name, optionally followed by
a comparison (``jsd>0.2``, ``new-modes>=2``). Rules that judge a change
never trip without enough data (see ``not-enough-data`` for that), and the
rules on a change of a noisy estimate (``rate-increase``,
``effective-modes-increase``) trip only when the change is also significant
at the comparison's alpha. A threshold outside the values a rule's metric
can take is refused: ``failure-rate>4`` (meant as 4%) would never trip, and
a gate that cannot fail passes every rollout; so is one that trips on every
comparison (``new-modes>=0``), a gate that fails every rollout whatever it
does. A rule that was not evaluated (not enough data, modes not comparable,
too few failures for the mix, no value) is *skipped*, never passed:
``RuleOutcome.evaluated`` is False and the renderings say "skipped".
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from faultprint_collector.analysis._compare import p_text

__all__ = ["RULES", "Rule", "RuleError", "RuleOutcome", "evaluate_rules", "parse_rules"]


class RuleError(ValueError):
    """A --fail-on rule cannot be parsed; the message lists what is allowed."""


_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True)
class _Spec:
    help: str
    #: default comparison when only the name is given (None: one is required)
    default: tuple[str, float] | None
    #: needs enough calls (True) / and failure modes grouped alike ("modes") /
    #: and enough failures for the mix ("mix") / nothing
    needs: bool | str
    value: Callable[[dict[str, Any]], float | None]
    #: the values the metric can take: thresholds outside are refused
    bounds: tuple[float, float] = (0.0, math.inf)
    #: a rate or share, written as a fraction (0.04 for 4%)
    fraction: bool = False
    #: why a value past the threshold is not enough to trip (None: it is)
    unsupported: Callable[[dict[str, Any]], str | None] | None = None


def _not_significant(change: dict[str, Any], r: dict[str, Any]) -> str:
    return f"the increase is not significant ({p_text(change['p_value'])}, alpha {r['alpha']:g})"


def _rate_increase(r: dict[str, Any]) -> float:
    return float(r["failure_rate_change"]["delta"])


def _rate_unsupported(r: dict[str, Any]) -> str | None:
    change = r["failure_rate_change"]
    if change["delta"] <= 0:
        return "the failure rate did not increase"
    if not change["significant"]:
        return _not_significant(change, r)
    return None


def _mode_increases(r: dict[str, Any]) -> float:
    return float(sum(1 for m in r["changed_modes"] if (m["rate_ratio"] or 0) > 1))


def _eff_increase(r: dict[str, Any]) -> float | None:
    # None (no value) when either version has no failures: no effective modes
    change = r.get("effective_modes_change")
    if change is not None:
        return None if change["delta"] is None else float(change["delta"])
    base, cand = r["baseline"]["effective_modes"], r["candidate"]["effective_modes"]
    return None if base is None or cand is None else float(cand - base)


def _eff_unsupported(r: dict[str, Any]) -> str | None:
    # the difference of two effective-mode counts moves by one or two between
    # identical versions of a few dozen failures each: a threshold on it alone
    # failed one A/A gate in eight
    change = r.get("effective_modes_change")
    if change is None or change.get("p_value") is None:
        return "the comparison has no significance test of effective modes"
    if change["delta"] <= 0:
        return "effective modes did not increase"
    if not change["significant"]:
        return _not_significant(change, r)
    return None


RULES: dict[str, _Spec] = {
    "new-modes": _Spec(
        "number of new failure modes (default: >0)",
        (">", 0),
        "modes",
        lambda r: float(len(r["new_modes"])),
    ),
    "vanished-modes": _Spec(
        "number of vanished failure modes (default: >0)",
        (">", 0),
        "modes",
        lambda r: float(len(r["vanished_modes"])),
    ),
    "changed-modes": _Spec(
        "number of modes whose rate changed significantly (default: >0)",
        (">", 0),
        "modes",
        lambda r: float(len(r["changed_modes"])),
    ),
    "mode-increase": _Spec(
        "number of modes that became significantly more frequent (default: >0)",
        (">", 0),
        "modes",
        _mode_increases,
    ),
    "rate-increase": _Spec(
        "significant failure-rate increase; with a number, the absolute increase "
        "(a fraction: 0.01 for 1 point) must also exceed it (default: >0)",
        (">", 0),
        True,
        _rate_increase,
        # the candidate's rate minus the baseline's: negative when it fell
        bounds=(-1.0, 1.0),
        fraction=True,
        unsupported=_rate_unsupported,
    ),
    "jsd": _Spec(
        "Jensen–Shannon divergence of the failure mixes, 0 to 1, e.g. jsd>0.2",
        None,
        "mix",
        lambda r: r["jsd"],
        bounds=(0.0, 1.0),
        fraction=True,
    ),
    "effective-modes-increase": _Spec(
        "significant increase of effective modes (candidate minus baseline); "
        "the increase must also exceed the number (default: >1)",
        (">", 1.0),
        "mix",
        _eff_increase,
        bounds=(-math.inf, math.inf),
        unsupported=_eff_unsupported,
    ),
    "failure-rate": _Spec(
        "the candidate's failure rate, a fraction, e.g. failure-rate>0.05 for 5%",
        None,
        True,
        lambda r: r["candidate"]["failure_rate"],
        bounds=(0.0, 1.0),
        fraction=True,
    ),
    "novelty": _Spec(
        "the candidate's novelty rate, a fraction, e.g. novelty>0.1",
        None,
        "modes",
        lambda r: r["candidate"]["novelty_rate"],
        bounds=(0.0, 1.0),
        fraction=True,
    ),
    "not-enough-data": _Spec(
        "trips when either version has too little data for a verdict",
        (">", 0),
        False,
        lambda r: 0.0 if r["enough_data"] else 1.0,
        bounds=(0.0, 1.0),
    ),
}

_NUMBER = r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_RULE = re.compile(rf"^\s*([a-z][a-z0-9-]*)\s*(?:(>=|<=|>|<)\s*({_NUMBER}))?\s*$")
_FRACTION_HINT = "rates and shares are fractions: write 0.04 for 4%"


@dataclass(frozen=True)
class Rule:
    """One parsed rule: metric name, comparison, threshold."""

    name: str
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.threshold:g}"


@dataclass(frozen=True)
class RuleOutcome:
    """Whether a rule tripped on one comparison, and why.

    EVALUATED is False for a rule that was skipped (not enough data, modes
    not comparable, too few failures for the mix, no value): it did not
    trip, but it did not pass either, and its REASON starts "skipped: ".
    """

    rule: Rule
    tripped: bool
    value: float | None
    reason: str
    evaluated: bool = True

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "rule": str(self.rule),
            "tripped": self.tripped,
            "evaluated": self.evaluated,
            "value": self.value,
            "reason": self.reason,
        }

    @property
    def status(self) -> str:
        """``tripped``, ``skipped`` or ``passed``."""
        if self.tripped:
            return "tripped"
        return "passed" if self.evaluated else "skipped"


def _allowed() -> str:
    return "; ".join(f"{name}: {spec.help}" for name, spec in RULES.items())


def parse_rules(text: str) -> list[Rule]:
    """Parse a comma-separated rule list; RuleError on anything unknown, and on
    a threshold outside the values the rule's metric can take."""
    rules = []
    for part in (text or "").split(","):
        if not part.strip():
            continue
        match = _RULE.match(part)
        if not match:
            hint = f" ({_FRACTION_HINT})" if "%" in part else ""
            raise RuleError(f"cannot parse rule {part.strip()!r}{hint}; rules are: {_allowed()}")
        name, op, number = match[1], match[2], match[3]
        spec = RULES.get(name)
        if spec is None:
            raise RuleError(f"unknown rule {name!r}; rules are: {_allowed()}")
        if op is None:
            if spec.default is None:
                raise RuleError(f"rule {name!r} needs a threshold, e.g. {name}>0.2")
            op, threshold = spec.default
        else:
            threshold = float(number)
            _check_threshold(part.strip(), name, spec, op, threshold)
        rules.append(Rule(name, op, threshold))
    if not rules:
        raise RuleError(f"no rules given; rules are: {_allowed()}")
    return rules


def _check_threshold(text: str, name: str, spec: _Spec, op: str, threshold: float) -> None:
    """RuleError when THRESHOLD lies outside the values NAME can take, when the
    comparison could never hold there (``jsd>1``: such a gate never trips),
    and when it always holds (``new-modes>=0``: such a gate fails every
    comparison it judges). A rule that also needs a significant increase
    (``rate-increase>=0``) can hold without tripping, so it is never refused
    as always tripping; it trips only on a value above 0, so a ``<`` or
    ``<=`` at 0 or below never trips (``rate-increase<-0.1``)."""
    lo, hi = spec.bounds
    increase_only = spec.unsupported is not None
    below_increase = increase_only and op in ("<", "<=") and threshold <= 0
    never = below_increase or (
        (op == ">" and threshold >= hi)
        or (op == ">=" and threshold > hi)
        or (op == "<" and threshold <= lo)
        or (op == "<=" and threshold < lo)
    )
    always = not increase_only and (
        (op == ">=" and threshold <= lo)
        or (op == ">" and threshold < lo)
        or (op == "<=" and threshold >= hi)
        or (op == "<" and threshold > hi)
    )
    if not never and not always and lo <= threshold <= hi:
        return
    if never:
        effect = "would never trip"
    elif always:
        effect = "would trip on every comparison"
    else:  # below the range of a rule that needs an increase: it can still trip
        effect = "sets a threshold outside the values it judges"
    if below_increase:
        where = "trips only on a significant increase, a value above 0"
    elif hi == math.inf:
        where = f"is at least {lo:g}"
    else:
        where = f"lies between {lo:g} and {hi:g}"
    hint = f"; {_FRACTION_HINT}" if spec.fraction else ""
    raise RuleError(f"rule {text!r} {effect}: {name} {where}{hint}")


def evaluate_rules(rules: list[Rule], result: dict[str, Any]) -> list[RuleOutcome]:
    """Evaluate RULES on a comparison result (the JSON of ``compare_versions``)."""
    outcomes = []
    for rule in rules:
        spec = RULES[rule.name]
        skipped = _skipped(spec, result)
        value = spec.value(result) if skipped is None else None
        if value is None:
            why = skipped or "no value (nothing to compare)"
            outcomes.append(RuleOutcome(rule, False, None, f"skipped: {why}", evaluated=False))
            continue
        tripped = _OPS[rule.op](value, rule.threshold)
        reason = f"{rule.name} = {value:.6g} (rule {rule})"
        why_not = spec.unsupported(result) if tripped and spec.unsupported else None
        if why_not:
            tripped = False
            reason += f", not tripped: {why_not}"
        outcomes.append(RuleOutcome(rule, tripped, value, reason))
    return outcomes


def _skipped(spec: _Spec, result: dict[str, Any]) -> str | None:
    """Why a rule with SPEC cannot judge RESULT (None: it can)."""
    if spec.needs and not result["enough_data"]:
        return "not enough data"
    if spec.needs in ("modes", "mix") and not result.get("modes_judged", True):
        return "failures grouped by different fingerprint strategies"
    if spec.needs == "mix" and not result["mix_judged"]:
        return "too few failures to judge the mix"
    return None
