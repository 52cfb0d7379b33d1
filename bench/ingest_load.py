"""End-to-end ingest load against a real collector, vs a raw insert baseline.

1. Baseline (separate process, separate embedded store, same schema): the
   rows the collector would store for the benchmark's spans, inserted with
   a plain clickhouse-connect ``insert`` in 50,000-row batches; measured
   before and after the collector run and averaged (shared machines).
2. A real collector subprocess (``faultprint serve`` on 127.0.0.1, fresh
   store, default settings: spool with fsync per group commit).
3. Load-generator processes post OTLP protobuf batches of realistic GenAI
   spans (about 10% failures of many modes; ids fresh for every request)
   for ``--duration`` seconds, closed-loop, several connections each.
   Sustained rate = acknowledged spans / time until they were all stored
   (spool drained). Acknowledgement latency p50 / p99 per request.
   Collector memory (RSS) is sampled every second.
4. Overload (``--overload``): an open-loop load at twice the sustained rate
   for ``--overload-duration`` seconds, with a spool capped so that it
   fills; reports status codes and Retry-After, then checks that every
   acknowledged span is stored exactly once.

Targets: >= 20,000 spans/s and >= 0.3 of the raw insert rate, flat memory.
Run: ``/work/venv/bin/python bench/ingest_load.py [--duration 120]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _genai_spans import build_request

ROOT = Path(__file__).resolve().parent.parent


# -- load bodies with fresh ids ----------------------------------------------


class BodyFactory:
    """Serialized requests whose trace and span ids are replaced per use.

    Building protobuf messages in Python is slower than the collector
    decodes them, so each template is serialized once and its id bytes are
    overwritten in place with fresh random ids for every request.
    """

    def __init__(self, seed: int, spans: int, templates: int = 6) -> None:
        rng = random.Random(seed)
        self.templates: list[tuple[bytearray, list[tuple[int, int]]]] = []
        for _ in range(templates):
            req = build_request(rng, spans)
            body = bytes(req.SerializeToString())
            slots = []
            for span in req.resource_spans[0].scope_spans[0].spans:
                for ident in (span.trace_id, span.span_id):
                    at = body.find(ident)
                    assert at >= 0 and body.find(ident, at + 1) < 0
                    slots.append((at, len(ident)))
            self.templates.append((bytearray(body), slots))
        self.spans = spans
        self._next = 0

    def body(self) -> bytes:
        """A request body with ids never sent before."""
        body, slots = self.templates[self._next % len(self.templates)]
        self._next += 1
        fresh = os.urandom(sum(n for _, n in slots))
        offset = 0
        for at, n in slots:
            body[at : at + n] = fresh[offset : offset + n]
            offset += n
        return bytes(body)


# -- baseline ----------------------------------------------------------------


def raw_insert_rate(store_dir: str, rows_total: int, spans: int, out: Any) -> None:
    """Child process: rows/s of a plain clickhouse-connect insert."""
    from faultprint_collector.ingest import decode_body
    from faultprint_collector.store import CALL_COLUMNS, apply_migrations, open_store

    factory = BodyFactory(1, spans)
    rows: list[list[Any]] = []
    while len(rows) < rows_total:
        batch = decode_body(factory.body(), "application/x-protobuf", "", "bench")
        rows.extend(record.row() for record in batch.records)
    rows = rows[:rows_total]
    store = open_store(store_dir)
    apply_migrations(store)
    store.insert("calls", rows[:1000], CALL_COLUMNS)  # warm-up
    started = time.perf_counter()
    for i in range(0, len(rows), 50_000):
        store.insert("calls", rows[i : i + 50_000], CALL_COLUMNS)
    elapsed = time.perf_counter() - started
    store.close()
    out.put(len(rows) / elapsed)


# -- load generator ----------------------------------------------------------


def sender(
    url: str,
    seed: int,
    spans: int,
    connections: int,
    start_at: float,
    duration: float,
    rate: float,
    out: Any,
) -> None:
    """Child process: post bodies for DURATION s; put (latencies, statuses, acked)."""
    import http.client
    from urllib.parse import urlsplit

    host = urlsplit(url)
    factory = BodyFactory(seed, spans)
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    acked = [0]
    retry_after: set[str] = set()
    interval = connections * spans / rate if rate else 0.0

    def run(n: int) -> None:
        # the standard library's client: a lighter load generator leaves more
        # of the shared cores to the collector under test
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
        headers = {"Content-Type": "application/x-protobuf"}
        next_at = start_at + n * interval / max(1, connections)
        while time.time() < start_at:
            time.sleep(0.001)
        while time.time() < start_at + duration:
            if interval:
                delay = next_at - time.time()
                if delay > 0:
                    time.sleep(delay)
                next_at += interval
            with lock:
                body = factory.body()
            t0 = time.perf_counter()
            retry = None
            try:
                conn.request("POST", "/v1/traces", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                code = str(response.status)
                retry = response.getheader("Retry-After")
            except (OSError, http.client.HTTPException) as exc:
                code = type(exc).__name__
                conn.close()
                conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
            took = time.perf_counter() - t0
            with lock:
                statuses[code] = statuses.get(code, 0) + 1
                if code == "200":
                    latencies.append(took)
                    acked[0] += spans
                elif retry is not None:
                    retry_after.add(retry)
        conn.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((latencies, statuses, acked[0], sorted(retry_after)))


def run_load(
    url: str,
    processes: int,
    connections: int,
    spans: int,
    duration: float,
    rate: float,
    seed: int,
) -> tuple[list[float], dict[str, int], int, list[str], float]:
    """Run the senders; returns latencies, statuses, acked spans, Retry-After values, start."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 4.0  # senders build their templates meanwhile
    procs = [
        ctx.Process(
            target=sender,
            args=(url, seed + p, spans, connections, start_at, duration, rate / processes, out),
        )
        for p in range(processes)
    ]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    latencies = [x for r in results for x in r[0]]
    statuses: dict[str, int] = {}
    for r in results:
        for k, v in r[1].items():
            statuses[k] = statuses.get(k, 0) + v
    retry = sorted({x for r in results for x in r[3]})
    return latencies, statuses, sum(r[2] for r in results), retry, start_at


# -- collector -------------------------------------------------------------


class Collector:
    """A real ``faultprint serve`` subprocess."""

    def __init__(self, store: str, port: int, env: dict[str, str]) -> None:
        self.store, self.port = store, port
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(f"{store}.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "faultprint_collector.cli",
                "serve",
                "--port",
                str(port),
                "--store",
                store,
                "--log-level",
                "warning",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
        import httpx

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("collector did not start")

    def health(self) -> dict[str, Any]:
        import httpx

        return httpx.get(f"{self.url}/healthz", timeout=60).json()

    def rss_mb(self) -> float:
        """Resident memory of the collector and its decoder processes."""
        pids = [self.proc.pid]
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        total = 0.0
        for pid in pids:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        return total

    def wait_drained(self, timeout: float = 600) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.health()["spool"]["backlog_records"] == 0:
                return time.time()
            time.sleep(0.05)
        raise RuntimeError("spool did not drain")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)
        self.log.close()


def stored_calls(store: str) -> tuple[int, int]:
    """(rows with FINAL, rows without FINAL) in a stopped collector's store."""
    code = (
        "import sys, json; from faultprint_collector.store import open_store;"
        "s = open_store(sys.argv[1]);"
        "a = s.query('SELECT count() FROM calls FINAL').result_rows[0][0];"
        "b = s.query('SELECT count() FROM calls').result_rows[0][0];"
        "print(json.dumps([a, b])); s.close()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, store], capture_output=True, text=True, check=True
    )
    final, raw = json.loads(done.stdout)
    return int(final), int(raw)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=30, help="seconds of load")
    parser.add_argument("--spans", type=int, default=500, help="spans per request")
    parser.add_argument("--processes", type=int, default=2, help="load-generator processes")
    parser.add_argument("--connections", type=int, default=3, help="connections per process")
    parser.add_argument("--baseline-rows", type=int, default=200_000)
    parser.add_argument("--overload", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--overload-duration", type=float, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="faultprint-bench-"))
    report: dict[str, Any] = {"duration_s": args.duration, "spans_per_request": args.spans}
    try:
        ctx = mp.get_context("spawn")

        def measure_raw(name: str) -> float:
            q = ctx.Queue()
            baseline = ctx.Process(
                target=raw_insert_rate, args=(str(tmp / name), args.baseline_rows, args.spans, q)
            )
            baseline.start()
            rate = float(q.get())
            baseline.join()
            print(f"raw clickhouse-connect insert ({name}): {rate:,.0f} rows/s", flush=True)
            return rate

        # measured before and after the collector run: the machine may be shared
        raw_before = measure_raw("raw-before")

        store = str(tmp / "store")
        collector = Collector(store, free_port(), {})
        rss: list[tuple[float, float]] = []
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                rss.append((time.time(), collector.rss_mb()))
                time.sleep(1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        latencies, statuses, acked, _, started = run_load(
            collector.url, args.processes, args.connections, args.spans, args.duration, 0, 10
        )
        load_end = time.time()
        backlog = collector.health()["spool"]["backlog_records"]
        drained = collector.wait_drained()
        sampling.set()
        rate = acked / (drained - started)
        report["ack_rate_spans_per_s"] = round(acked / (load_end - started))
        report["drain_after_load_s"] = round(drained - load_end, 2)
        report["backlog_records_at_load_end"] = backlog
        print(
            f"acknowledged at {acked / (load_end - started):,.0f} spans/s; backlog at load end "
            f"{backlog} records, drained {drained - load_end:.2f} s later",
            flush=True,
        )
        during = [mb for t, mb in rss if started + min(10, args.duration / 3) <= t <= drained]
        collector.stop()
        raw_after = measure_raw("raw-after")
        raw_rate = (raw_before + raw_after) / 2
        report["raw_insert_rows_per_s_before_after"] = [round(raw_before), round(raw_after)]
        report.update(
            {
                "acked_spans": acked,
                "statuses": statuses,
                "sustained_spans_per_s": round(rate),
                "ratio_to_raw_insert": round(rate / raw_rate, 3),
                "ack_latency_p50_ms": round(pct(latencies, 0.5) * 1000, 1),
                "ack_latency_p99_ms": round(pct(latencies, 0.99) * 1000, 1),
                "rss_mb_first_last_max": [
                    round(during[0]) if during else None,
                    round(during[-1]) if during else None,
                    round(max(during)) if during else None,
                ],
            }
        )
        print(
            f"collector: {acked:,} spans acknowledged, sustained {rate:,.0f} spans/s "
            f"(ratio {rate / raw_rate:.2f} of raw insert), ack p50 "
            f"{report['ack_latency_p50_ms']} ms p99 {report['ack_latency_p99_ms']} ms, "
            f"statuses {statuses}, RSS MB first/last/max {report['rss_mb_first_last_max']}",
            flush=True,
        )
        final, raw_rows = stored_calls(store)
        report["stored_final_vs_acked"] = [final, acked]
        report["duplicate_rows"] = raw_rows - final
        print(f"stored {final:,} of {acked:,} acknowledged, duplicates {raw_rows - final}")

        if args.overload:
            store2 = str(tmp / "store-overload")
            collector = Collector(
                store2, free_port(), {"FAULTPRINT_SPOOL_MAX_BYTES": str(64 << 20)}
            )
            latencies, statuses, acked, retry, started = run_load(
                collector.url,
                args.processes,
                args.connections * 8,
                args.spans,
                args.overload_duration,
                2 * rate,
                20,
            )
            offered = 2 * rate
            collector.wait_drained()
            collector.stop()
            final, raw_rows = stored_calls(store2)
            report["overload"] = {
                "offered_spans_per_s": round(offered),
                "statuses": statuses,
                "retry_after_values": retry,
                "acked_spans": acked,
                "stored_final": final,
                "duplicate_rows": raw_rows - final,
                "ack_latency_p99_ms": round(pct(latencies, 0.99) * 1000, 1),
            }
            print(
                f"overload at {offered:,.0f} spans/s offered: statuses {statuses}, Retry-After "
                f"{retry}; stored {final:,} of {acked:,} acknowledged, duplicates "
                f"{raw_rows - final}",
                flush=True,
            )
        print(json.dumps(report, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
