"""``faultprint serve`` refuses a store it cannot use with a message, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port


def _serve(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
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
        cwd=cwd,
    )


def test_an_unreachable_clickhouse_server_is_a_clear_error() -> None:
    done = _serve("--store", f"http://user:secret@127.0.0.1:{free_port()}/faultprint")
    assert done.returncode == 2
    assert "cannot connect to ClickHouse" in done.stderr
    assert "secret" not in done.stderr  # the password is not echoed
    assert "Traceback" not in done.stderr + done.stdout
    # the driver's own warning does not precede faultprint's message
    assert "Unexpected Http Driver Exception" not in done.stderr + done.stdout


def test_a_store_owned_by_a_running_collector_is_a_clear_error(collector) -> None:
    done = _serve("--store", collector.store)
    assert done.returncode == 2
    assert "in use by another" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_an_unrelated_directory_is_not_turned_into_a_store(tmp_path: Path) -> None:
    (tmp_path / "report.txt").write_text("mine")
    done = _serve("--store", str(tmp_path))
    assert done.returncode == 2
    assert "not empty and holds no faultprint store" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.txt"]
    as_file = _serve("--store", str(tmp_path / "report.txt"))
    assert as_file.returncode == 2 and "is not a directory" in as_file.stderr


def test_an_unknown_scheme_or_empty_store_creates_nothing(tmp_path: Path) -> None:
    done = _serve("--store", "ftp://x/y", cwd=tmp_path)
    assert done.returncode == 2 and "unsupported store URL scheme 'ftp'" in done.stderr
    empty = _serve("--store", "", cwd=tmp_path)
    assert empty.returncode == 2 and "--store must not be empty" in empty.stderr
    assert list(tmp_path.iterdir()) == []  # no ./ftp:/x/y, no ftp:/x/y.spool
