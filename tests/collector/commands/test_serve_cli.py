"""``faultprint serve`` refuses a store it cannot use with a message, not a traceback."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import free_port


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "faultprint_collector.cli",
            "serve",
            "--port",
            str(free_port()),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_unreachable_clickhouse_server_is_a_clear_error() -> None:
    done = _serve("--store", f"http://user:secret@127.0.0.1:{free_port()}/faultprint")
    assert done.returncode == 2
    assert "cannot connect to ClickHouse" in done.stderr
    assert "secret" not in done.stderr  # the password is not echoed
    assert "Traceback" not in done.stderr + done.stdout


def test_a_store_owned_by_a_running_collector_is_a_clear_error(collector) -> None:
    done = _serve("--store", collector.store)
    assert done.returncode == 2
    assert "in use by another" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
