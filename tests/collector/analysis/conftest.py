"""Helpers for the analysis tests: seeded synthetic calls, stored directly.

Calls are written with the real write path's ``insert_rows`` (so the
materialized views fire exactly as they do for the collector) and kept as
``Call`` values for the pure reference metrics.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from faultprint_collector.analysis import compare_metrics
from faultprint_collector.analysis._reference import Call, reference_metrics
from faultprint_collector.ingest import CallRecord
from faultprint_collector.store import Store
from faultprint_collector.store._writer import insert_rows

T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)


def synth_calls(
    version: str,
    n: int,
    modes: Mapping[int, float],
    *,
    seed: int,
    call_site: str = "app.summarise",
    start: datetime = T0,
    span: timedelta = timedelta(hours=6),
    sample_rate: float = 1.0,
    inputs: int = 0,
) -> list[Call]:
    """N calls of VERSION; each fails with fingerprint fp at probability MODES[fp].

    With SAMPLE_RATE < 1, successes are kept with that probability and carry
    weight 1/SAMPLE_RATE (failures always kept, weight 1). INPUTS > 0 draws
    an input hash from that many distinct inputs.
    """
    rng = random.Random(seed)
    fps = list(modes)
    cumulative, acc = [], 0.0
    for fp in fps:
        acc += modes[fp]
        cumulative.append(acc)
    out = []
    seconds = span.total_seconds()
    for _ in range(n):
        u = rng.random()
        fp = next((f for f, c in zip(fps, cumulative, strict=True) if u < c), 0)
        when = start + timedelta(seconds=rng.random() * seconds)
        input_hash = rng.randrange(1, inputs + 1) if inputs else 0
        if fp == 0 and sample_rate < 1.0:
            if rng.random() >= sample_rate:
                continue
            out.append(Call(version, call_site, when, False, 0, 1.0 / sample_rate, input_hash))
            continue
        out.append(Call(version, call_site, when, fp != 0, fp, 1.0, input_hash))
    return out


def underflowing_comparison() -> dict[str, Any]:
    """A comparison of a million calls per version, 7.8% against 5.2% failing:
    the exact tests' p-values fall below the smallest float (0.0)."""
    calls = synth_calls("old", 4000, {1: 0.05, 2: 0.03}, seed=1)
    calls += synth_calls("new", 4000, {1: 0.03, 4: 0.02}, seed=2)
    b, c = reference_metrics(calls, "old"), reference_metrics(calls, "new")
    counts = ("calls", "failures", "effective_calls", "rate_equivalent_calls", "calls_sq", "spans")
    big = [{**m, **{k: m[k] * 250 for k in counts}} for m in (b, c)]
    modes = [{fp: n * 250 for fp, n in m["modes"].items()} for m in (b, c)]
    return compare_metrics("old", "new", big[0], big[1], modes[0], modes[1])


def steady_across_midnight(midnight: datetime) -> list[Call]:
    """Failures of version "v" in two modes, one of each in every hour of the two
    days before MIDNIGHT, then one (mode 1) 30 s after it."""
    calls = []
    for k in range(1, 49):
        hour = midnight - timedelta(hours=k)
        calls.append(Call("v", "s", hour + timedelta(minutes=10), True, 1))
        calls.append(Call("v", "s", hour + timedelta(minutes=20), True, 2))
    return [*calls, Call("v", "s", midnight + timedelta(seconds=30), True, 1)]


def store_calls(
    store: Store, calls: Sequence[Call], project: str = "default", strategy: str = ""
) -> None:
    """Insert CALLS into STORE through the write path's ``insert_rows``; their
    failures grouped by fingerprint STRATEGY ("": none named)."""
    rows = []
    for i, c in enumerate(calls):
        record = CallRecord(
            project=project,
            time=c.time,
            trace_id=f"{random.getrandbits(128):032x}",
            span_id=f"{i + 1:016x}",
            model_version=c.model_version,
            call_site=c.call_site,
            status="error" if c.is_failure else "ok",
            is_failure=int(c.is_failure),
            category="exception" if c.is_failure else "",
            error_type="ValueError" if c.is_failure else "",
            message=f"failure mode {c.fingerprint:x} for call {i}" if c.is_failure else "",
            template=f"failure mode {c.fingerprint:x} for call <num>" if c.is_failure else "",
            fingerprint=c.fingerprint if c.is_failure else 0,
            strategy=strategy if c.is_failure else "",
            sample_weight=c.sample_weight,
            input_hash=c.input_hash,
            components=json.dumps({"call_site": c.call_site}) if c.is_failure else "",
        )
        rows.append(record.row())
    for start in range(0, len(rows), 100_000):
        insert_rows(store, rows[start : start + 100_000])


def truncate(store: Store) -> None:
    """Empty every table that holds calls or rollups (between hypothesis examples)."""
    for table in (
        "calls",
        "calls_hourly",
        "input_outcomes_hourly",
        "fingerprint_catalog",
    ):
        store.command(f"TRUNCATE TABLE {store.table(table)}")
