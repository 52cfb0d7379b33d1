"""How fast is the built-in web UI over millions of calls?

Loads N calls into a fresh embedded store with the generator of
``bench/query_speed.py`` (``INSERT … SELECT … FROM numbers(N)``: the rollup
materialized views fire exactly as for ingested calls), starts a real
collector on it (``faultprint_collector.cli serve`` on 127.0.0.1), and times
over one keep-alive HTTP connection, median of several runs after a warm-up:

- the pages: ``/`` (overview), ``/compare?baseline=v1&candidate=v2`` and
  ``/fingerprint/<fp>`` for the most frequent fingerprint;
- the API calls behind each page: ``/api/versions``, ``/api/compare`` and
  ``/api/fingerprints/<fp>``;
- a baseline: ``SELECT count() FROM calls`` through ``POST /api/sql`` (one
  HTTP round trip plus the cheapest query over the same data).

Each page is printed with its median and its ratio to the ``count()``
baseline and to its API call (the ratio to the API call is what rendering
the page costs on top of its data).

    python bench/ui_speed.py                     # 10M calls (load ~1-2 min)
    python bench/ui_speed.py --calls 1000000 --runs 9
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from faultprint_collector.commands.demo import free_port, start_collector
from query_speed import load_calls

# the collector runs without API keys, so every request is this project
PROJECT = "default"
BASELINE, CANDIDATE = "v1", "v2"
#: the baseline: one HTTP round trip and the cheapest query over the same calls
COUNT_SQL = {"sql": "SELECT count() FROM calls"}
#: the whole run (load + timings) stops after this, whatever happens
DEADLINE_S = 1800


def load_store(store_dir: str, n: int) -> float:
    """Load N generated calls into STORE_DIR (this process); return the load seconds."""
    from faultprint_collector.store import apply_migrations, open_store

    store = open_store(store_dir)
    try:
        apply_migrations(store)
        return load_calls(store, n, PROJECT)
    finally:
        store.close()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _median_ms(fn: Callable[[], httpx.Response], runs: int) -> float:
    fn()  # warm-up: first-use costs are not what a user waits for on every view
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _checked(response: httpx.Response, must_contain: str = "") -> httpx.Response:
    """RESPONSE, if it is a 200 (and holds MUST_CONTAIN): a fast error page proves nothing."""
    if response.status_code != 200:
        raise SystemExit(
            f"{response.request.method} {response.request.url} -> "
            f"{response.status_code}: {response.text[:500]}"
        )
    if must_contain and must_contain not in response.text:
        raise SystemExit(f"{response.request.url}: response lacks {must_contain!r}")
    return response


def measure(client: httpx.Client, n: int, runs: int) -> dict[str, float]:
    """Time the pages, their API calls and the count() baseline against a running collector."""
    count = _checked(client.post("/api/sql", json=COUNT_SQL)).json()
    if count["rows"][0][0] != n:
        raise SystemExit(f"store holds {count['rows'][0][0]} calls, expected {n}")
    top = _checked(client.get("/api/fingerprints", params={"limit": 1})).json()["fingerprints"]
    if not top:
        raise SystemExit("no fingerprints in the store")
    fp = top[0]["fingerprint"]
    pair = {"baseline": BASELINE, "candidate": CANDIDATE}

    def get(path: str, params: dict[str, str | int] | None = None, text: str = "") -> Callable:
        return lambda: _checked(client.get(path, params=params), text)

    timed = {
        "count": lambda: _checked(client.post("/api/sql", json=COUNT_SQL)),
        "overview": get("/", text=CANDIDATE),
        "api_versions": get("/api/versions"),
        "compare": get("/compare", pair, text=CANDIDATE),
        "api_compare": get("/api/compare", pair),
        "fingerprint": get(f"/fingerprint/{fp}", text=fp),
        "api_fingerprint": get(f"/api/fingerprints/{fp}"),
    }
    result: dict[str, float] = {name: _median_ms(fn, runs) for name, fn in timed.items()}
    result["fp_failures"] = float(top[0].get("failures", 0))
    return result


def _print(n: int, load_s: float, runs: int, r: dict[str, float]) -> None:
    print(f"{n:,} calls  load {load_s:.1f} s  median of {runs} runs after one warm-up (ms)")
    print(f"  baseline  POST /api/sql count()      {r['count']:8.1f}")
    print(f"  {'page':<34}{'ms':>8}  {'API call':<24}{'ms':>8}  {'/count()':>8}  {'/API':>6}")
    for page, label, api, api_label in (
        ("overview", "/ (overview, 7d)", "api_versions", "/api/versions"),
        ("compare", f"/compare {BASELINE} vs {CANDIDATE}", "api_compare", "/api/compare"),
        ("fingerprint", "/fingerprint/<top fp>*", "api_fingerprint", "/api/fingerprints/<fp>"),
    ):
        print(
            f"  {label:<34}{r[page]:8.1f}  {api_label:<24}{r[api]:8.1f}  "
            f"{r[page] / r['count']:7.1f}x  {r[page] / r[api]:5.2f}x"
        )
    print(f"  * the most frequent fingerprint: {r['fp_failures']:,.0f} failures")


def main() -> None:
    """Load, serve, time, stop; print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000_000, help="calls to load")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per URL (at least 7)")
    parser.add_argument("--load-only", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.calls < 1000:
        parser.error("--calls must be at least 1000")
    if args.runs < 7:
        parser.error("--runs must be at least 7")
    if args.load_only:
        print(f"{load_store(args.load_only, args.calls):.3f}")
        return
    tmp = tempfile.mkdtemp(prefix="faultprint-uibench-")
    proc = None
    try:
        store_dir = str(Path(tmp) / "store")
        # the load runs in its own process: one process owns an embedded
        # data directory at a time, and the collector must own it next
        out = subprocess.run(
            [sys.executable, __file__, "--calls", str(args.calls), "--load-only", store_dir],
            check=True,
            capture_output=True,
            text=True,
            timeout=DEADLINE_S,
        ).stdout
        load_s = float(out.strip().splitlines()[-1])
        port = free_port()
        log = Path(tmp) / "collector.log"
        spool = str(Path(tmp) / "spool")
        proc = start_collector(Path(store_dir), port, log, "--spool", spool, timeout=120)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
            result = measure(client, args.calls, args.runs)
        _print(args.calls, load_s, args.runs, result)
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
