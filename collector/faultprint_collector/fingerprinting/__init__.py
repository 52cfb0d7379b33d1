"""Failure fingerprinting: one failure mode, one fingerprint.

Public interface used by the collector's ingest path, the CLI and the
benchmarks. Pure functions, no I/O; a fingerprint is a deterministic function
of the failed call, identical on every collector replica and independent of
arrival order.

- ``fingerprint(FailureRecord(...)) -> Fingerprint``: fine and coarse hashes,
  the message template, the components behind them, the refined category;
- ``explain(fp)``: the grouping information as text;
- ``template_of(message)``: the normalised template of one message;
- ``line_fingerprint(line)``: a plain log line grouped by its template;
- ``category_from_fields(...)``: the failure category implied by raw fields.
"""

from ._category import CATEGORIES, category_from_fields, normalise_finish_reason
from ._engine import (
    STRATEGY,
    FailureRecord,
    Fingerprint,
    explain,
    fingerprint,
    line_fingerprint,
)
from ._frames import in_app_frames
from ._template import template_of
from ._validation import generalise_path, inspect_output

__all__ = [
    "CATEGORIES",
    "STRATEGY",
    "FailureRecord",
    "Fingerprint",
    "category_from_fields",
    "explain",
    "fingerprint",
    "generalise_path",
    "in_app_frames",
    "inspect_output",
    "line_fingerprint",
    "normalise_finish_reason",
    "template_of",
]
