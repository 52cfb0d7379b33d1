"""``faultprint demo``: real traffic through SDK → collector → ClickHouse → report."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from faultprint_collector.commands._tables import Column, Kind, print_table

console = Console()


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_collector(
    store: Path, port: int, log: Path, *extra_args: str, timeout: float = 60.0
) -> subprocess.Popen[bytes]:
    """Start ``faultprint serve`` on 127.0.0.1:PORT and wait until it answers.

    The collector gets a process group of its own, so stopping it reaches
    nothing else.
    """
    import httpx

    cmd = [
        sys.executable,
        "-m",
        "faultprint_collector.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--store",
        str(store),
        "--log-level",
        "warning",
        *extra_args,
    ]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the collector exited; see {log}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the collector did not start within {timeout:.0f} s; see {log}")


def wait_stored(url: str, expected: int, timeout: float = 60.0) -> int:
    """Wait until the collector has stored EXPECTED calls; return how many it has."""
    import httpx

    deadline = time.monotonic() + timeout
    stored = 0
    while time.monotonic() < deadline:
        versions = httpx.get(f"{url}/api/versions", timeout=30).json()["versions"]
        stored = sum(v["calls"] for v in versions)
        if stored >= expected:
            break
        time.sleep(0.2)
    return stored


def report(store_dir: Path) -> list[dict[str, Any]]:
    """Per-version summary read back from ClickHouse (the store, opened directly)."""
    from faultprint_collector.store import open_store

    store = open_store(str(store_dir))
    try:
        versions = store.query_dicts(
            f"""
            SELECT model_version,
                   sum(sample_weight) AS calls,
                   sumIf(sample_weight, is_failure = 1) AS failures,
                   uniqExactIf(fingerprint, is_failure = 1) AS fingerprints
            FROM {store.table("calls")} FINAL
            WHERE project = {{project:String}}
            GROUP BY model_version ORDER BY model_version
            """,
            {"project": "default"},
        )
        for v in versions:
            v["top"] = store.query_dicts(
                f"""
                SELECT lower(hex(fingerprint)) AS fingerprint, count() AS n,
                       any(category) AS category, any(call_site) AS call_site,
                       any(template) AS template,
                       any(error_type) AS error_type, any(message) AS message
                FROM {store.table("calls")} FINAL
                WHERE project = {{project:String}} AND model_version = {{version:String}}
                  AND is_failure = 1
                GROUP BY fingerprint ORDER BY n DESC, fingerprint LIMIT 3
                """,
                {"project": "default", "version": v["model_version"]},
            )
    finally:
        store.close()
    return versions


def _fresh_store_dir(store: Path | None) -> Path:
    """The demo's store directory, made empty and for this run only.

    Without --store: a new ``./.faultprint/demo-<time>-<random>``, created
    atomically, so two demos started in the same second never share one.
    """
    from faultprint_collector.cli import fail

    if store is None:
        parent = Path(".faultprint")
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        try:
            parent.mkdir(parents=True, exist_ok=True)
            return Path(tempfile.mkdtemp(prefix=f"demo-{stamp}-", dir=parent)).resolve()
        except OSError as exc:
            fail(f"cannot create a demo store under {parent.resolve()}: {exc}")
    store_dir = store.resolve()
    if store_dir.exists() and not store_dir.is_dir():
        fail(f"{store_dir} is not a directory; the demo needs a fresh store directory")
    try:
        if store_dir.exists() and any(store_dir.iterdir()):
            fail(f"{store_dir} is not empty; the demo needs a fresh store")
        store_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create the demo store {store_dir}: {exc}")
    return store_dir


def _start_on_free_port(store_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start the collector; another port when a concurrent process took the first."""
    for _ in range(2):
        port = free_port()
        try:
            return start_collector(store_dir, port, log), port
        except RuntimeError as exc:
            # the port was free when chosen but may be taken before the
            # collector binds it (another demo starting at the same moment)
            if "address already in use" not in str(exc).lower():
                raise
    port = free_port()
    return start_collector(store_dir, port, log), port


def demo(
    calls: int = typer.Option(12_000, min=100, max=1_000_000, help="How many model calls."),
    seed: int = typer.Option(7, help="Random seed (the run is deterministic)."),
    store: str = typer.Option(
        None,
        help="Where to keep the data: a new or empty directory "
        "(default: a new ./.faultprint/demo-<time>-<random>).",
    ),
) -> None:
    """Run a simulated application against two model versions and report how they fail."""
    import faultprint

    from faultprint_collector.cli import _refuse_empty, fail
    from faultprint_collector.demo import shop

    # "" is not --store left out (as a Path it was the current directory)
    _refuse_empty("--store", store, "give a new or empty directory, or leave --store out")
    store_dir = _fresh_store_dir(None if store is None else Path(store))
    log = store_dir.parent / f"{store_dir.name}.collector.log"
    # one line whatever the width: the path is copied from it (into --store)
    console.print(
        f"Starting the collector with a fresh embedded store {store_dir}",
        soft_wrap=True,
        markup=False,
        highlight=False,
    )
    try:
        proc, port = _start_on_free_port(store_dir, log)
    except RuntimeError as exc:
        fail(f"the demo could not start its collector: {exc}", code=1)
    url = f"http://127.0.0.1:{port}"
    console.print(f"The collector listens on {url}", soft_wrap=True, highlight=False)
    started = time.monotonic()
    try:
        faultprint.configure(
            endpoint=url,
            service="demo-shop",
            environment="demo",
            release="1.0",
            capture_content=True,
        )
        with Progress(
            TextColumn("[bold]model calls"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("calls", total=calls)

            def tick(done: int) -> None:
                if done % 500 == 0 or done == calls:
                    progress.update(task, completed=done)
                    faultprint.flush()

            shop.run_traffic(calls, seed=seed, progress=tick)
        faultprint.flush()
        stats = faultprint.stats()
        stored = wait_stored(url, calls)
        if stored < calls:
            console.print(f"[yellow]warning:[/] {stored} of {calls} calls stored; SDK: {stats}")
    finally:
        faultprint.shutdown()
        proc.terminate()
        proc.wait(60)
    elapsed = time.monotonic() - started
    summary = report(store_dir)
    _print_summary(summary, calls, elapsed, store_dir)


def _print_summary(
    summary: list[dict[str, Any]], calls: int, elapsed: float, store_dir: Path
) -> None:
    print_table(
        console,
        [
            Column("model version"),
            Column("calls", justify="right"),
            Column("failures", justify="right"),
            Column("failure rate", justify="right"),
            Column("distinct fingerprints", justify="right"),
        ],
        (
            [
                v["model_version"],
                f"{round(v['calls']):,}",
                f"{round(v['failures']):,}",
                f"{v['failures'] / v['calls']:.1%}" if v["calls"] else "–",
                str(v["fingerprints"]),
            ]
            for v in summary
        ),
        title=f"{calls:,} model calls in {elapsed:.1f} s, read back from ClickHouse",
    )
    for v in summary:
        print_table(
            console,
            [
                Column("fingerprint"),
                Column("failures", justify="right"),
                Column("category · call site", Kind.IDS),
                Column("example", Kind.TEXT),
            ],
            (
                [
                    t["fingerprint"].rjust(16, "0"),
                    str(t["n"]),
                    f"{t['category']} · {t['call_site'].rsplit('.', 1)[-1]}",
                    _example(t),
                ]
                for t in v["top"]
            ),
            title=f"Top failure fingerprints of {v['model_version']}",
        )
    rel = os.path.relpath(store_dir)
    console.print(
        f"\nThe data lives in [bold]{rel}[/] (embedded ClickHouse). Look closer with:\n"
        f"  faultprint incidents --store {rel} --since 1d\n"
        f"  faultprint versions --store {rel}\n"
        f"  faultprint compare {shop_versions()} --store {rel}\n"
        f"  faultprint serve --store {rel}\n"
        f'  faultprint sql "SELECT * FROM fingerprints_v" --store {rel}\n'
        "(ClickHouse SQL over its tables and views: calls, failures_v, fingerprints_v, "
        "fingerprint_catalog_v).",
        soft_wrap=True,
    )


def shop_versions() -> str:
    """The demo's two versions, baseline first."""
    from faultprint_collector.demo import shop

    return f"{shop.VERSION_A} {shop.VERSION_B}"


def _example(row: dict[str, Any]) -> str:
    """One line a person can read: short error type and the first message line."""
    kind = row["error_type"].rsplit(".", 1)[-1]
    text = (row["message"] or row["template"]).strip().splitlines()
    first = text[0] if text else ""
    return (f"{kind}: {first}" if kind else first)[:90]


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to the CLI."""
    app.command(name="demo")(demo)
