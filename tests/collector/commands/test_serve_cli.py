"""``faultprint serve`` refuses a store it cannot use with a message, not a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port


def _serve(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
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
        env={**os.environ, **(env or {})},
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


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FAULTPRINT_RETENTION_DAYS", "0"),
        ("FAULTPRINT_RETENTION_DAYS", "-1"),
        ("FAULTPRINT_RATE_LIMIT_SPANS_PER_S", "nan"),
        ("FAULTPRINT_CLUSTER_WRITES", "bogus"),
        ("FAULTPRINT_MAX_INFLIGHT_REQUESTS", "0"),
        ("FAULTPRINT_SPOOL_MAX_BYTES", "-5"),
        ("FAULTPRINT_MAX_BODY_BYTES", "abc"),
        ("FAULTPRINT_DECODE_WORKERS", "abc"),
        ("FAULTPRINT_SPOOL_FSYNC", "sometimes"),
        ("FAULTPRINT_SCRUB", "maybe"),
    ],
)
def test_a_bad_environment_value_stops_serve_before_it_claims_to_be_up(
    tmp_path: Path, name: str, value: str
) -> None:
    store = tmp_path / "store"
    done = _serve("--store", str(store), env={name: value})
    assert done.returncode == 2
    assert name in done.stderr and "must be" in done.stderr
    assert "faultprint collector on" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr + done.stdout
    assert not store.exists()  # nothing was created with the bad value


def test_an_unknown_log_level_is_a_usage_error(tmp_path: Path) -> None:
    store = tmp_path / "store"
    done = _serve("--store", str(store), "--log-level", "bogus")
    assert done.returncode == 2
    assert "--log-level" in done.stderr
    assert "faultprint collector on" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr + done.stdout


def test_a_bad_scrub_pattern_is_named_by_its_variable(tmp_path: Path) -> None:
    store = tmp_path / "store"
    done = _serve("--store", str(store), env={"FAULTPRINT_SCRUB_PATTERNS": "secret-\\d+;;("})
    assert done.returncode == 2
    assert "FAULTPRINT_SCRUB_PATTERNS" in done.stderr and "'('" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert list(tmp_path.iterdir()) == []


def test_a_refused_open_listener_leaves_nothing_behind(tmp_path: Path) -> None:
    # refused for want of keys: no store, and no empty <store>.spool beside it
    done = _serve("--host", "0.0.0.0", "--store", str(tmp_path / "s0"))
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0 without API keys" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_bad_store_from_the_environment_is_named_by_its_variable(tmp_path: Path) -> None:
    done = _serve(cwd=tmp_path, env={"FAULTPRINT_STORE": "ftp://x/y"})
    assert done.returncode == 2
    assert "FAULTPRINT_STORE" in done.stderr
    for scheme in ("chdb://", "http://", "https://", "clickhouse://", "directory"):
        assert scheme in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_port_in_use_is_a_clear_error_before_anything_is_created(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = _serve("--port", str(port), "--store", str(tmp_path / "store"))
    assert done.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr
    assert "faultprint collector on" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr + done.stdout
    assert list(tmp_path.iterdir()) == []  # no store, no spool beside it


def _nothing_announced(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "warning:" not in done.stderr and "API keys for" not in done.stderr
    assert "faultprint collector on" not in done.stderr + done.stdout


def test_an_unreachable_store_server_refuses_before_anything_is_created(tmp_path: Path) -> None:
    # the default spool of a server store is ./.faultprint/spool: not made for a refusal
    done = _serve(cwd=tmp_path, env={"FAULTPRINT_STORE": f"http://127.0.0.1:{free_port()}/db"})
    _nothing_announced(done)
    assert "cannot connect to ClickHouse" in done.stderr and "FAULTPRINT_STORE" in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "store", ["http://user:secret@127.0.0.1:99999/db", "http://[::1", "http://", "chdb://"]
)
def test_a_malformed_store_url_stops_serve_naming_its_variable(tmp_path: Path, store: str) -> None:
    done = _serve(cwd=tmp_path, env={"FAULTPRINT_STORE": store})
    _nothing_announced(done)
    assert "FAULTPRINT_STORE" in done.stderr and "secret" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_held_spool_refuses_before_a_new_store_is_made(tmp_path: Path) -> None:
    import fcntl

    spool = tmp_path / "spool"
    spool.mkdir()
    with (spool / "lock").open("a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        done = _serve("--store", str(tmp_path / "store"), "--spool", str(spool))
    _nothing_announced(done)
    assert "in use by another collector" in done.stderr
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("content", ["", "# no keys yet\n\n"])
def test_a_key_file_without_keys_is_refused(tmp_path: Path, content: str) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(content)
    for args, env in (
        (["--keys", str(keys)], {}),
        ([], {"FAULTPRINT_API_KEYS_FILE": str(keys)}),
    ):
        done = _serve("--store", str(tmp_path / "store"), *args, env=env)
        _nothing_announced(done)
        assert "holds no API keys" in done.stderr and "faultprint keys add" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.txt"]


def test_inline_keys_without_a_key_are_refused(tmp_path: Path) -> None:
    done = _serve("--store", str(tmp_path / "store"), env={"FAULTPRINT_API_KEYS": " , "})
    _nothing_announced(done)
    assert "FAULTPRINT_API_KEYS holds no API keys" in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["--keys", "--spool", "--host"])
@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_option_is_a_usage_error(tmp_path: Path, option: str, value: str) -> None:
    # in tmp_path: read as given, "--spool ' '" would be a directory ' ' in the cwd
    done = _serve("--store", str(tmp_path / "store"), option, value, cwd=tmp_path)
    _nothing_announced(done)
    assert f"{option} must not be empty" in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("host", ["not a host", "192.0.2.1"])
def test_an_address_it_cannot_listen_on_is_reported_before_the_missing_keys(
    tmp_path: Path, host: str
) -> None:
    done = _serve("--host", host, "--store", str(tmp_path / "store"))
    _nothing_announced(done)
    assert f"cannot listen on {host}" in done.stderr
    assert "refusing to listen" not in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["٣", "1_0"])
def test_a_number_only_python_reads_stops_serve(tmp_path: Path, value: str) -> None:
    done = _serve("--store", str(tmp_path / "store"), env={"FAULTPRINT_RETENTION_DAYS": value})
    _nothing_announced(done)
    assert "FAULTPRINT_RETENTION_DAYS must be an integer" in done.stderr
    assert list(tmp_path.iterdir()) == []
