"""The collector's self-metric counters, as ``/api/stats`` reports them.

Every counter is listed here, so the stats answer has a stable schema: a
counter that has not counted yet is reported as 0, not left out (an alert on
``rejected_requests`` must read 0 on a healthy collector, not a missing key).
A new counter is added here as well as where it counts.
"""

from __future__ import annotations

__all__ = ["COUNTERS"]

#: counter name -> what it counts
COUNTERS: dict[str, str] = {
    "accepted_spans": "spans acknowledged (spooled) from accepted requests",
    "rejected_spans": "spans rejected alone within an accepted request (partial_success)",
    "repeated_spans": "spans stored once as the same call as their parent",
    "rejected_requests": "requests answered 4xx (or 503 by the decoder) and not stored",
    "duplicate_requests": "identical requests that arrived while the first was handled",
    "rate_limited_requests": "requests answered 429: the project exceeded its rate limit",
    "spool_full_responses": "requests answered 503 because the spool was full",
    "spool_errors": "requests answered 503 because the spool could not be written",
    "busy_responses": "requests answered 503: too many requests in flight",
}
