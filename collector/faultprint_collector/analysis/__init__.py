"""Failure-consistency analytics and the model-version comparison.

- ``version_metrics(store, Selection(...))``: per-version metrics from the
  rollups (failure rate with Wilson interval, distinct and effective modes,
  top-3 share, novelty, repeatability, drift);
- ``compare_versions(store, project, baseline, candidate, ...)``: the fixed
  JSON comparison (``compare_metrics`` is its pure core);
- ``parse_rules`` / ``evaluate_rules``: the ``--fail-on`` CI gate;
- ``render_table`` / ``render_markdown``: the comparison for people;
- ``_reference``: pure-Python definitions of every metric and test.
"""

from faultprint_collector.analysis._compare import (
    DEFAULT_ALPHA,
    MIN_CALLS,
    MIN_FAILURES,
    compare_metrics,
    compare_versions,
    concerns,
    fingerprint_hex,
    p_number,
    p_text,
)
from faultprint_collector.analysis._render import render_markdown, render_table
from faultprint_collector.analysis._rules import (
    RULES,
    Rule,
    RuleError,
    RuleOutcome,
    evaluate_rules,
    parse_rules,
)
from faultprint_collector.analysis._sql import (
    Selection,
    error_types,
    fingerprint_info,
    mode_counts,
    mode_exposure,
    name_error_types,
    version_metrics,
)

__all__ = [
    "DEFAULT_ALPHA",
    "MIN_CALLS",
    "MIN_FAILURES",
    "RULES",
    "Rule",
    "RuleError",
    "RuleOutcome",
    "Selection",
    "compare_metrics",
    "compare_versions",
    "concerns",
    "error_types",
    "evaluate_rules",
    "fingerprint_hex",
    "fingerprint_info",
    "mode_counts",
    "mode_exposure",
    "name_error_types",
    "p_number",
    "p_text",
    "parse_rules",
    "render_markdown",
    "render_table",
    "version_metrics",
]
