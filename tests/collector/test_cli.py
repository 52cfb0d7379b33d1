"""What the read commands accept as --url and --store: a bad value is a message
and exit 2, never a traceback, and never a store created on the spot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def faultprint(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faultprint_collector.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def _refused(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    for word in words:
        assert word in done.stderr


@pytest.fixture(scope="module")
def real_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A faultprint store with its schema and no calls, made by another process."""
    path = tmp_path_factory.mktemp("cli") / "store"
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from faultprint_collector.store import open_store, apply_migrations;"
            "s = open_store(sys.argv[1]); apply_migrations(s); s.close()",
            str(path),
        ],
        check=True,
        timeout=120,
    )
    return path


@pytest.mark.parametrize(
    "command",
    [["incidents"], ["versions"], ["sql", "SELECT 1"], ["show", "0a"], ["compare", "a", "b"]],
)
def test_reads_refuse_a_missing_store_and_create_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    missing = tmp_path / "no" / "such" / "store"
    _refused(faultprint(*command, "--store", str(missing)), "no faultprint store")
    assert not (tmp_path / "no").exists()


def test_reads_refuse_a_directory_that_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    _refused(faultprint("versions", "--store", str(tmp_path)), "is not a faultprint store")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    _refused(faultprint("incidents", "--store", str(tmp_path / "notes.txt")), "not a faultprint")
    empty = tmp_path / "empty"
    empty.mkdir()
    _refused(faultprint("compare", "a", "b", "--store", str(empty)), "is not a faultprint store")
    assert list(empty.iterdir()) == []


def test_reads_without_url_or_store_refuse_a_missing_default_store(tmp_path: Path) -> None:
    _refused(faultprint("incidents", cwd=tmp_path), "no faultprint store", "--url")
    assert list(tmp_path.iterdir()) == []


def test_reads_open_an_existing_store(real_store: Path) -> None:
    done = faultprint("versions", "--store", str(real_store), "--format", "json")
    assert done.returncode == 0, done.stderr
    assert '"versions": []' in done.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--store", "ftp://x/y"], ["unsupported store URL scheme 'ftp'"]),
        (["--store", ""], ["--store must not be empty"]),
        (["--url", ""], ["--url must not be empty"]),
        (["--url", "   "], ["--url must not be empty"]),
        (["--url", "http://[::1"], ["invalid --url"]),
        (["--url", "http://"], ["invalid --url"]),
        (["--url", "ftp://127.0.0.1:4318"], ["invalid --url"]),
        (["--url", "127.0.0.1:4318"], ["invalid --url"]),
        (["--url", "http://127.0.0.1:1", "--store", "x"], ["not both"]),
    ],
)
def test_bad_locations_are_usage_errors(tmp_path: Path, args: list[str], words: list[str]) -> None:
    _refused(faultprint("incidents", *args, cwd=tmp_path), *words)
    assert list(tmp_path.iterdir()) == []  # no ./ftp:/x/y, no ./.faultprint/data


def test_out_of_range_durations_are_usage_errors(real_store: Path) -> None:
    for args in (["--until", "99999w"], ["--since", "100000w"]):
        _refused(faultprint("versions", "--store", str(real_store), *args), "before 1970")
    _refused(faultprint("incidents", "--store", str(real_store), "--since", "99999w"), "1970")


def test_an_unreachable_clickhouse_server_prints_only_the_error() -> None:
    done = faultprint("incidents", "--store", "http://127.0.0.1:1/db")
    _refused(done, "cannot connect to ClickHouse")
    assert "Unexpected Http Driver Exception" not in done.stdout + done.stderr
