"""The model-call record: one row of the ``calls`` table."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

#: raw messages are bounded before storage; the template keeps the shape
MAX_MESSAGE_CHARS = 4096
MAX_CONTENT_CHARS = 16384
#: model versions are cut to this length: the read API, the CLI and the UI
#: accept version names up to it, so every stored version can be queried
#: and compared
MAX_VERSION_CHARS = 256
#: call sites are cut to this length, which the read API accepts too
MAX_CALL_SITE_CHARS = 256
#: the version of a call that names no model and no version
UNKNOWN_VERSION = "unknown"


@dataclass(slots=True)
class CallRecord:
    """One model call as stored; field order is the column order of ``calls``."""

    project: str
    time: datetime
    trace_id: str
    span_id: str
    parent_span_id: str = ""
    service: str = ""
    environment: str = ""
    release: str = ""
    operation: str = ""
    span_name: str = ""
    provider: str = ""
    request_model: str = ""
    response_model: str = ""
    model_version: str = ""
    call_site: str = ""
    status: str = "ok"
    is_failure: int = 0
    category: str = ""
    error_type: str = ""
    error_code: str = ""
    http_status: int = 0
    message: str = ""
    template: str = ""
    fingerprint: int = 0
    coarse_fingerprint: int = 0
    strategy: str = ""
    latency_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str = ""
    input_hash: int = 0
    sample_weight: float = 1.0
    input_text: str = ""
    output_text: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    #: the fingerprint's grouping components, JSON (failures only)
    components: str = ""

    def row(self) -> list[Any]:
        """The record as a row in CALL_COLUMNS order."""
        return [getattr(self, name) for name in CALL_COLUMNS]


CALL_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(CallRecord))
