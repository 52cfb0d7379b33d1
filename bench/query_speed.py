"""How fast are ``compare`` and ``versions`` over millions of calls?

Loads N calls into a fresh embedded store with ClickHouse's own generator
(``INSERT … SELECT … FROM numbers(N)``: the rollup materialized views fire
exactly as for ingested calls), then times, median of several runs:

- ``compare``  — ``compare_versions`` of two versions (every metric, per-mode
  exact tests), reading the rollups;
- ``versions`` — ``list_versions`` (all versions with all metrics);
- baselines over the same ``calls`` table: a plain ``count()`` of the
  project and a one-column scan (``countIf(is_failure = 1)``), and the naive
  way (per-version counts straight from ``calls FINAL``).

Each size runs in its own process (one embedded data directory per process).

    python bench/query_speed.py                 # 1M and 10M calls
    python bench/query_speed.py --sizes 1000000 --runs 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROJECT = "bench"

# 4 versions × 8 call sites over 7 days, 5% failures in ~30 modes per
# version (v2 adds modes), inputs drawn from 20k per call site (hashed, as
# the SDK hashes them) so repeatability has repeats to find.
LOAD = """
INSERT INTO calls (project, time, trace_id, span_id, model_version, call_site, status,
                   is_failure, category, error_type, message, template, fingerprint,
                   coarse_fingerprint, input_hash, sample_weight)
SELECT
    {project:String} AS project,
    toDateTime64(now() - (number % 604800), 6, 'UTC') AS time,
    leftPad(lower(hex(cityHash64(number, 1))), 32, '0') AS trace_id,
    leftPad(lower(hex(number + 1)), 16, '0') AS span_id,
    ['v1', 'v2', 'v3', 'v4'][number % 4 + 1] AS model_version,
    concat('app.site', toString(intDiv(number, 4) % 8)) AS call_site,
    if(failed, 'error', 'ok') AS status,
    toUInt8(failed) AS is_failure,
    if(failed, 'exception', '') AS category,
    if(failed, 'ValueError', '') AS error_type,
    if(failed, concat('failure mode ', toString(fp), ' at item ', toString(number % 97)), '')
        AS message,
    if(failed, concat('failure mode ', toString(fp), ' at item <num>'), '') AS template,
    if(failed, fp, 0) AS fingerprint,
    if(failed, intDiv(fp, 10), 0) AS coarse_fingerprint,
    cityHash64(intDiv(number, 4) % 8, cityHash64(number, 3) % 20000) AS input_hash,
    1.0 AS sample_weight
FROM (
    SELECT number,
           cityHash64(number, 2) % 1000 < 50 AS failed,
           toUInt64(1000 + (cityHash64(number, 4) % 30)
                    + if(number % 4 = 1 AND cityHash64(number, 5) % 5 = 0, 500, 0)) AS fp
    FROM numbers({n:UInt64})
)
"""


def load_calls(store: Any, n: int, project: str = PROJECT) -> float:
    """Insert N generated calls into STORE, wait for its merges; return the insert seconds."""
    start = time.perf_counter()
    store.command(LOAD, {"project": project, "n": n})
    load_s = time.perf_counter() - start
    # time the steady state: let the background merges of the load finish
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if not store.query("SELECT count() FROM system.merges").result_rows[0][0]:
            break
        time.sleep(0.5)
    return load_s


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up: first-use costs are not what a user waits for on every query
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(n: int, runs: int) -> dict[str, float]:
    """Load N calls into a temporary store and time the queries (this process)."""
    from faultprint_collector.analysis import compare_versions
    from faultprint_collector.queries import list_versions
    from faultprint_collector.store import apply_migrations, open_store

    with tempfile.TemporaryDirectory(prefix="faultprint-bench-") as tmp:
        store = open_store(str(Path(tmp) / "store"))
        apply_migrations(store)
        load_s = load_calls(store, n)
        calls_table = store.table("calls")
        rollup_rows = store.query(f"SELECT count() FROM {store.table('calls_hourly')}").result_rows[
            0
        ][0]
        input_rows = store.query(
            f"SELECT count() FROM {store.table('input_outcomes_hourly')}"
        ).result_rows[0][0]
        p = {"project": PROJECT}
        result = {
            "calls": n,
            "load_s": load_s,
            "calls_hourly_rows": rollup_rows,
            "input_rows": input_rows,
            "compare_ms": _median_ms(lambda: compare_versions(store, PROJECT, "v1", "v2"), runs),
            "versions_ms": _median_ms(lambda: list_versions(store, PROJECT), runs),
            "count_ms": _median_ms(
                lambda: store.query(
                    f"SELECT count() FROM {calls_table} WHERE project = {{project:String}}", p
                ),
                runs,
            ),
            "scan_ms": _median_ms(
                lambda: store.query(
                    f"SELECT countIf(is_failure = 1) FROM {calls_table} "
                    "WHERE project = {project:String}",
                    p,
                ),
                runs,
            ),
            "naive_versions_ms": _median_ms(
                lambda: store.query(
                    f"SELECT model_version, sum(sample_weight), sumIf(sample_weight, is_failure)"
                    f" FROM {calls_table} FINAL WHERE project = {{project:String}}"
                    " GROUP BY model_version",
                    p,
                ),
                runs,
            ),
        }
        check = compare_versions(store, PROJECT, "v1", "v2")
        result["check_calls"] = check["baseline"]["calls"] + check["candidate"]["calls"]
        store.close()
    return result


def main() -> None:
    """Run each size in a child process and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated call counts")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per query")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.runs)))
        return
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(size), "--runs", str(args.runs)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    for r in results:
        print(
            f"{r['calls']:>11,} calls  load {r['load_s']:.1f} s  "
            f"(rollup rows: hourly {r['calls_hourly_rows']:,}, inputs × hours {r['input_rows']:,})"
        )
        print(
            f"    compare {r['compare_ms']:7.1f} ms   versions {r['versions_ms']:7.1f} ms   "
            f"count() {r['count_ms']:6.1f} ms   one-column scan {r['scan_ms']:6.1f} ms   "
            f"naive versions (calls FINAL) {r['naive_versions_ms']:7.1f} ms"
        )
        print(
            f"    ratios: compare/count() {r['compare_ms'] / r['count_ms']:.1f}x, "
            f"compare/scan {r['compare_ms'] / r['scan_ms']:.2f}x, "
            f"naive/versions {r['naive_versions_ms'] / r['versions_ms']:.1f}x"
        )
        assert r["check_calls"] == r["calls"] // 2, "compare did not count each call once"
    if len(results) >= 2:
        small, large = results[0], results[-1]
        growth = large["calls"] / small["calls"]
        print(
            f"growth over {growth:.0f}x more calls: compare "
            f"{large['compare_ms'] / small['compare_ms']:.2f}x, versions "
            f"{large['versions_ms'] / small['versions_ms']:.2f}x, one-column scan "
            f"{large['scan_ms'] / small['scan_ms']:.2f}x"
        )
    target = results[-1]
    verdict = "meets" if target["compare_ms"] < 1000 else "misses"
    print(
        f"target: compare over {target['calls']:,} calls < 1 s median: {verdict} "
        f"({target['compare_ms']:.0f} ms)"
    )


if __name__ == "__main__":
    main()
