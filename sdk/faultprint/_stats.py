"""The counters of ``faultprint.stats()``, and what each one counts.

Kept apart from the export queue so that ``stats()`` answers, with every
counter at 0, without importing OpenTelemetry's SDK (see ``faultprint._config``).

Every faultprint call is counted once: a call its provider's sampler did not
record in ``not_recorded``; a recorded call, once its span has ended, in
exactly one of ``queued``, ``exporting``, ``exported``, ``export_failed``,
``dropped`` and ``sampled_out`` (``finishing`` holds the integration calls
whose span the export thread has yet to end). The counts are read while the
export thread works, so a span moving from one to the next may be missed, or
counted twice, for that instant.
"""

from __future__ import annotations

#: every counter ``stats()`` reports, in the order of its docstring
STATS_KEYS = (
    "exported",
    "export_failed",
    "dropped",
    "dropped_queue_full",
    "dropped_after_shutdown",
    "sampled_out",
    "not_recorded",
    "duplicates_dropped",
    "queued",
    "exporting",
    "finishing",
    "export_batches",
)


def empty_stats() -> dict[str, int]:
    """Every export counter, at zero (also what ``stats()`` shows before ``configure``)."""
    return dict.fromkeys(STATS_KEYS, 0)
