"""Shared fixtures: a real collector on loopback, and an embedded store.

The embedded engine (chDB) can hold only one data directory per process at a
time, so tests that need a collector run it as a real subprocess
(``faultprint serve`` under uvicorn) with its own store, and tests that read
a store in-process use the ``store`` fixture, which closes it afterwards.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class CollectorProcess:
    """A real collector subprocess (``faultprint serve``) on 127.0.0.1."""

    store: str
    port: int
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the collector."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> CollectorProcess:
        """Start the process and wait until /healthz answers."""
        env = {**os.environ, **self.env}
        cmd = [
            sys.executable,
            "-m",
            "faultprint_collector.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--store",
            self.store,
            "--log-level",
            "warning",
            *self.args,
        ]
        assert self.log_path is not None
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"collector exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"collector did not start in {timeout}s:\n{self.log()}")

    def wait_stored(self, timeout: float = 30.0) -> None:
        """Wait until every span the collector acknowledged (spooled) is in ClickHouse."""
        deadline = time.monotonic() + timeout
        while True:
            stats = httpx.get(f"{self.url}/api/stats", timeout=10).json()
            if stats.get("rows_written", 0) >= stats.get("accepted_spans", 0):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"acknowledged spans not stored in {timeout}s: {stats}")
            time.sleep(0.05)

    def log(self) -> str:
        """What the process printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Stop the process with SIG and wait for it."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def kill(self) -> None:
        """SIGKILL the process."""
        self.stop(signal.SIGKILL)


@pytest.fixture
def start_collector(tmp_path: Path) -> Iterator[Callable[..., CollectorProcess]]:
    """Factory: start a real collector subprocess; all are stopped at teardown."""
    started: list[CollectorProcess] = []

    def start(
        store: str | None = None,
        *,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> CollectorProcess:
        n = len(started)
        collector = CollectorProcess(
            store=store or str(tmp_path / f"store{n}"),
            port=port or free_port(),
            args=args or [],
            env=env or {},
            log_path=tmp_path / f"collector{n}.log",
        )
        started.append(collector)
        return collector.start()

    yield start
    for collector in started:
        collector.stop()


@pytest.fixture
def collector(start_collector: Callable[..., CollectorProcess]) -> CollectorProcess:
    """One real collector with a fresh embedded store."""
    return start_collector()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[object]:
    """An in-process embedded store with the schema applied (closed afterwards)."""
    from faultprint_collector.store import apply_migrations, open_store

    opened = open_store(str(tmp_path / "store"))
    apply_migrations(opened)
    yield opened
    opened.close()
