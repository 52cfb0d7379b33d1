"""``--fail-on`` rules: when a comparison should fail a CI job.

A rule list is comma separated; each rule is a name, optionally followed by
a comparison (``jsd>0.2``, ``new-modes>=2``). Rules that judge a change
never trip without enough data (see ``not-enough-data`` for that).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


def _rate_increase(r: dict[str, Any]) -> float | None:
    change = r["failure_rate_change"]
    return change["delta"] if change["significant"] and change["delta"] > 0 else None


def _mode_increases(r: dict[str, Any]) -> float:
    return float(sum(1 for m in r["changed_modes"] if (m["rate_ratio"] or 0) > 1))


def _eff_increase(r: dict[str, Any]) -> float:
    return float(r["candidate"]["effective_modes"] - r["baseline"]["effective_modes"])


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
        "must also exceed it (default: >0)",
        (">", 0),
        True,
        _rate_increase,
    ),
    "jsd": _Spec(
        "Jensen–Shannon divergence of the failure mixes, e.g. jsd>0.2",
        None,
        "mix",
        lambda r: r["jsd"],
    ),
    "effective-modes-increase": _Spec(
        "candidate minus baseline effective modes (default: >1)",
        (">", 1.0),
        "mix",
        _eff_increase,
    ),
    "failure-rate": _Spec(
        "the candidate's failure rate, e.g. failure-rate>0.05",
        None,
        True,
        lambda r: r["candidate"]["failure_rate"],
    ),
    "novelty": _Spec(
        "the candidate's novelty rate, e.g. novelty>0.1",
        None,
        "modes",
        lambda r: r["candidate"]["novelty_rate"],
    ),
    "not-enough-data": _Spec(
        "trips when either version has too little data for a verdict",
        (">", 0),
        False,
        lambda r: 0.0 if r["enough_data"] else 1.0,
    ),
}

_RULE = re.compile(r"^\s*([a-z][a-z0-9-]*)\s*(?:(>=|<=|>|<)\s*(-?\d+(?:\.\d+)?))?\s*$")


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
    """Whether a rule tripped on one comparison, and why."""

    rule: Rule
    tripped: bool
    value: float | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "rule": str(self.rule),
            "tripped": self.tripped,
            "value": self.value,
            "reason": self.reason,
        }


def _allowed() -> str:
    return "; ".join(f"{name}: {spec.help}" for name, spec in RULES.items())


def parse_rules(text: str) -> list[Rule]:
    """Parse a comma-separated rule list; RuleError on anything unknown."""
    rules = []
    for part in (text or "").split(","):
        if not part.strip():
            continue
        match = _RULE.match(part)
        if not match:
            raise RuleError(f"cannot parse rule {part.strip()!r}; rules are: {_allowed()}")
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
        rules.append(Rule(name, op, threshold))
    if not rules:
        raise RuleError(f"no rules given; rules are: {_allowed()}")
    return rules


def evaluate_rules(rules: list[Rule], result: dict[str, Any]) -> list[RuleOutcome]:
    """Evaluate RULES on a comparison result (the JSON of ``compare_versions``)."""
    outcomes = []
    for rule in rules:
        spec = RULES[rule.name]
        if spec.needs and not result["enough_data"]:
            outcomes.append(RuleOutcome(rule, False, None, "not evaluated: not enough data"))
            continue
        if spec.needs in ("modes", "mix") and not result.get("modes_judged", True):
            outcomes.append(
                RuleOutcome(
                    rule,
                    False,
                    None,
                    "not evaluated: failures grouped by different fingerprint strategies",
                )
            )
            continue
        if spec.needs == "mix" and not result["mix_judged"]:
            outcomes.append(
                RuleOutcome(rule, False, None, "not evaluated: too few failures to judge the mix")
            )
            continue
        value = spec.value(result)
        if value is None:
            outcomes.append(RuleOutcome(rule, False, None, "no value (nothing to compare)"))
            continue
        tripped = _OPS[rule.op](value, rule.threshold)
        outcomes.append(
            RuleOutcome(rule, tripped, value, f"{rule.name} = {value:.6g} (rule {rule})")
        )
    return outcomes
