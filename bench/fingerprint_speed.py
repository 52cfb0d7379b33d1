"""Fingerprinting throughput on one core, against Drain3 on the same messages.

Records are the failure corpus of ``fingerprint_corpus.py`` (real library
messages, ids and numbers varying per record), enlarged with ``--scale``.
Three workloads are timed for our engine, all through ``fingerprint()``:

- message path: exceptions, API errors and timeouts given as category, error
  type, message, call site and model -- the fingerprint is the message's
  template (or the provider error's structure);
- all messages: every record that has a message, with the same fields,
  including validation errors (pydantic / jsonschema text parsed) and records
  without a category (inferred);
- full records: every field of the corpus record (tracebacks, outputs).

Baseline: Drain3 ``TemplateMiner`` with masking enabled (the masking rules of
Drain3's own example configuration) fed the same messages. Each measurement
is repeated ``--runs`` times with cold caches (our template caches cleared, a
fresh Drain3 miner), and the median is printed with the ratio.

    python bench/fingerprint_speed.py [--scale 4] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig
from faultprint_collector.commands.fingerprint import record_from_json
from faultprint_collector.fingerprinting import (
    FailureRecord,
    _engine,
    _template,
    fingerprint,
)
from fingerprint_corpus import generate

# Drain3's example drain3.ini masking rules
_DRAIN_MASKING = [
    (r"((?<=[^A-Za-z0-9])|^)(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))((?=[^A-Za-z0-9])|$)", "ID"),
    (r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9a-f]{6,} ?){3,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9A-F]{4} ?){4,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)", "HEX"),
    (r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
    (r"(?<=executed cmd )(\".+?\")", "CMD"),
]


def drain_miner() -> TemplateMiner:
    """A fresh Drain3 miner with masking enabled."""
    config = TemplateMinerConfig()
    config.masking_instructions = [MaskingInstruction(p, m) for p, m in _DRAIN_MASKING]
    config.profiling_enabled = False
    return TemplateMiner(config=config)


def pin_one_core() -> str:
    """Run on one core (the benchmark's unit); returns a note for the report."""
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to cpu {cpu}"
    except (AttributeError, OSError):
        return "not pinned"


def clear_caches() -> None:
    """Cold start for our engine: no memoised templates, tokens or hashes."""
    _template.clear_caches()
    _engine.clear_caches()


def time_ours_messages(records: list[FailureRecord]) -> float:
    """Records per second through fingerprint() on the message path."""
    clear_caches()
    start = time.process_time()
    for r in records:
        fingerprint(r)
    return len(records) / (time.process_time() - start)


def time_drain(lines: list[str]) -> float:
    """Lines per second through a fresh Drain3 miner (masking on)."""
    miner = drain_miner()
    start = time.process_time()
    for line in lines:
        miner.add_log_message(line)
    return len(lines) / (time.process_time() - start)


def main() -> None:
    """Measure and print medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=4.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    note = pin_one_core()

    corpus = [r for r in generate(seed=3, scale=args.scale) if r.get("message")]
    message_records = [
        FailureRecord(
            category=r.get("category", ""),
            error_type=r.get("error_type", ""),
            message=r["message"],
            call_site=r.get("function", ""),
            model=r.get("model", ""),
            status_code=r.get("status_code", 0),
        )
        for r in corpus
    ]
    template_records = [
        rec for rec in message_records if rec.category in ("exception", "api_error", "timeout")
    ]
    full_records = [record_from_json(r) for r in corpus]
    # Drain3 gets the same text our template sees: the message's first line
    lines = [r["message"].strip().splitlines()[0] if r["message"].strip() else "" for r in corpus]
    unique = len(set(r["message"] for r in corpus))

    ours, allm, full, drain = [], [], [], []
    for _ in range(args.runs):
        ours.append(time_ours_messages(template_records))
        allm.append(time_ours_messages(message_records))
        full.append(time_ours_messages(full_records))
        drain.append(time_drain(lines))
    m_ours, m_all, m_full, m_drain = (statistics.median(x) for x in (ours, allm, full, drain))
    print(
        f"records: {len(corpus)} failed calls with a message ({unique} distinct messages); "
        f"{args.runs} runs, medians, one core ({note}), cold caches per run"
    )
    print(
        f"  faultprint, message path : {m_ours:>10,.0f} records/s "
        f"({len(template_records)} exceptions, API errors, timeouts)"
    )
    print(f"  faultprint, all messages : {m_all:>10,.0f} records/s (incl. validation errors)")
    print(f"  faultprint, full records : {m_full:>10,.0f} records/s (tracebacks, outputs)")
    print(f"  Drain3 with masking      : {m_drain:>10,.0f} lines/s (all messages)")
    print(f"  ratio message path / Drain3: {m_ours / m_drain:.1f}x")
    print(f"  ratio all messages / Drain3: {m_all / m_drain:.1f}x")
    print(f"  ratio full records / Drain3: {m_full / m_drain:.1f}x")


if __name__ == "__main__":
    main()
