"""Read queries shared by the HTTP API and the CLI (all parameterised)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from faultprint_collector.store import Store

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class QueryError(ValueError):
    """A query parameter is invalid; the message says which and why."""


def parse_since(value: str | None) -> datetime | None:
    """Parse ``24h`` / ``7d`` / ``30m`` or an ISO timestamp into a UTC datetime."""
    if value is None or value == "":
        return None
    match = _DURATION.match(value)
    if match:
        amount = int(match[1])
        if amount > 100_000:
            raise QueryError(f"duration {value!r} is too large")
        return datetime.now(UTC) - timedelta(**{_UNITS[match[2]]: amount})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise QueryError(
            f"invalid time {value!r}: use a duration like 24h, 7d, 30m or an ISO timestamp"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def list_versions(
    store: Store, project: str, since: datetime | None = None
) -> list[dict[str, Any]]:
    """Calls, failures and failure rate per model version, each call counted once."""
    rows = store.query_dicts(
        f"""
        SELECT model_version,
               sum(sample_weight) AS calls,
               sumIf(sample_weight, is_failure = 1) AS failures,
               uniqExactIf(fingerprint, is_failure = 1) AS distinct_fingerprints,
               min(time) AS first_seen,
               max(time) AS last_seen
        FROM {store.table("calls")} FINAL
        WHERE project = {{project:String}}
          AND time >= {{since:DateTime64(6, 'UTC')}}
        GROUP BY model_version
        ORDER BY model_version
        """,
        {"project": project, "since": since or datetime(1970, 1, 1, tzinfo=UTC)},
    )
    return [
        {
            "model_version": r["model_version"],
            "calls": round(r["calls"]),
            "failures": round(r["failures"]),
            "failure_rate": (r["failures"] / r["calls"]) if r["calls"] else 0.0,
            "distinct_fingerprints": r["distinct_fingerprints"],
            "first_seen": r["first_seen"].isoformat(),
            "last_seen": r["last_seen"].isoformat(),
        }
        for r in rows
    ]


def list_incidents(
    store: Store, project: str, since: datetime | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """Top failure fingerprints by count since SINCE, with an example each."""
    if not 1 <= limit <= 1000:
        raise QueryError("limit must be between 1 and 1000")
    rows = store.query_dicts(
        f"""
        SELECT lower(hex(fingerprint)) AS fingerprint,
               sum(sample_weight) AS failures,
               min(time) AS first_seen,
               max(time) AS last_seen,
               arraySort(groupUniqArray(model_version)) AS model_versions,
               any(category) AS category,
               any(error_type) AS error_type,
               any(call_site) AS call_site,
               any(template) AS template,
               any(message) AS example
        FROM {store.table("calls")} FINAL
        WHERE project = {{project:String}} AND is_failure = 1
          AND time >= {{since:DateTime64(6, 'UTC')}}
        GROUP BY fingerprint
        ORDER BY failures DESC, fingerprint
        LIMIT {{limit:UInt32}}
        """,
        {"project": project, "since": since or datetime(1970, 1, 1, tzinfo=UTC), "limit": limit},
    )
    for r in rows:
        r["fingerprint"] = r["fingerprint"].rjust(16, "0")
        r["failures"] = round(r["failures"])
        r["first_seen"] = r["first_seen"].isoformat()
        r["last_seen"] = r["last_seen"].isoformat()
    return rows
