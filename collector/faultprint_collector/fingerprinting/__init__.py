"""Failure fingerprinting: one failure mode, one fingerprint.

Public interface used by the collector's ingest path, the CLI and the
benchmarks. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import xxhash

__all__ = ["STRATEGY", "FailureRecord", "Fingerprint", "fingerprint"]

#: name of the grouping strategy; a change of algorithm is a new strategy
STRATEGY = "v1"


@dataclass(slots=True)
class FailureRecord:
    """Everything the engine may look at for one failed call."""

    category: str = "exception"
    error_type: str = ""
    message: str = ""
    stacktrace: str = ""
    finish_reason: str = ""
    output: str = ""
    call_site: str = ""
    provider: str = ""
    model: str = ""
    status_code: int = 0
    error_code: str = ""
    #: structured detail from the SDK (e.g. validation errors), parsed JSON
    detail: Any = None


@dataclass(slots=True)
class Fingerprint:
    """The result: fine and coarse hashes, the template, and why."""

    fine: int
    coarse: int
    template: str
    strategy: str = STRATEGY
    components: dict[str, Any] = field(default_factory=dict)

    @property
    def hex(self) -> str:
        """The fine fingerprint as 16 hex digits."""
        return f"{self.fine:016x}"


_MASK = re.compile(r"'[^']*'|\"[^\"]*\"|0x[0-9a-fA-F]+|[0-9a-fA-F]{8,}|\d+(?:\.\d+)?")


def _hash(parts: list[str]) -> int:
    return xxhash.xxh3_64_intdigest("\x1f".join(parts).encode())


def fingerprint(record: FailureRecord) -> Fingerprint:
    """Compute the fingerprint of one failed call."""
    template = _MASK.sub("<*>", record.message)[:500]
    coarse_parts = [
        STRATEGY,
        record.call_site,
        record.category,
        record.error_type or record.error_code,
    ]
    fine_parts = coarse_parts + [template]
    return Fingerprint(
        fine=_hash(fine_parts),
        coarse=_hash(coarse_parts),
        template=template,
        components={
            "call_site": record.call_site,
            "category": record.category,
            "error_type": record.error_type,
            "template": template,
        },
    )
