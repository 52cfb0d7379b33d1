"""What the read commands accept as --url, --store and --project: a bad value is
a message and exit 2, never a traceback, and never a store created on the spot;
and ``faultprint incidents``'s table keeps identifiers whole at common widths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.collector.analysis.otlp_calls import send, version_spans, wait_for_calls
from tests.collector.conftest import CALL_SITE, FAILURES, OTHER_PROJECT, VERSION_A, VERSION_B
from tests.conftest import CollectorProcess, free_port


def faultprint(
    *args: str,
    cwd: Path | None = None,
    columns: int | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(env or {}), **({"COLUMNS": str(columns)} if columns else {})}
    return subprocess.run(
        [sys.executable, "-m", "faultprint_collector.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
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
        (["--url", "http://127.0.0.1:4318/api"], ["a path (/api)", "http://HOST[:PORT]"]),
        (["--url", "http://127.0.0.1:4318/api/"], ["a path", "http://HOST[:PORT]"]),
        (["--url", "http://127.0.0.1:4318?project=x"], ["a query", "http://HOST[:PORT]"]),
        (["--url", "http://127.0.0.1:4318#top"], ["a fragment"]),
        (["--url", "http://127.0.0.1:99999"], ["port 99999 is not in 1-65535"]),
        (["--url", "http://127.0.0.1:0"], ["port 0 is not in 1-65535"]),
        (["--url", "http://me:hunter2@127.0.0.1:4318"], ["FAULTPRINT_API_KEY"]),
        (["--url", "http://127.0.0.1:1", "--store", "x"], ["not both"]),
    ],
)
def test_bad_locations_are_usage_errors(tmp_path: Path, args: list[str], words: list[str]) -> None:
    done = faultprint("incidents", *args, cwd=tmp_path)
    _refused(done, *words)
    assert "hunter2" not in done.stderr  # a password in a URL is not echoed
    assert "cannot reach" not in done.stderr  # refused before any request
    assert list(tmp_path.iterdir()) == []  # no ./ftp:/x/y, no ./.faultprint/data


def test_out_of_range_durations_are_usage_errors(real_store: Path) -> None:
    for args in (["--until", "99999w"], ["--since", "100000w"]):
        _refused(faultprint("versions", "--store", str(real_store), *args), "before 1970")
    _refused(faultprint("incidents", "--store", str(real_store), "--since", "99999w"), "1970")


def test_an_unreachable_clickhouse_server_prints_only_the_error() -> None:
    done = faultprint("incidents", "--store", "http://127.0.0.1:1/db")
    _refused(done, "cannot connect to ClickHouse")
    assert "Unexpected Http Driver Exception" not in done.stdout + done.stderr


READS = [["incidents"], ["versions"], ["sql", "SELECT 1"], ["show", "0a"], ["compare", "a", "b"]]


@pytest.mark.parametrize("command", READS)
@pytest.mark.parametrize("project", ["bad name'", "", "-x", "a" * 65, "shop\n", "ünïcode"])
def test_a_malformed_project_is_a_usage_error(
    failure_store: Path, command: list[str], project: str
) -> None:
    # wide: typer boxes a usage error, wrapping it at the console's width
    done = faultprint(*command, "--store", str(failure_store), "--project", project, columns=300)
    _refused(done, "--project", "is not a project name: letters, digits")


@pytest.mark.parametrize("command", READS)
def test_a_project_without_calls_is_an_error_naming_the_projects_with_data(
    failure_store: Path, command: list[str]
) -> None:
    done = faultprint(*command, "--store", str(failure_store), "--project", "shpo")
    _refused(done, "no calls stored for project 'shpo'", f"default, {OTHER_PROJECT}")
    assert done.stdout == ""  # no empty table that reads as "no incidents"


def test_a_project_with_calls_is_read(failure_store: Path) -> None:
    done = faultprint("versions", "--store", str(failure_store), "--project", OTHER_PROJECT)
    assert done.returncode == 0, done.stderr
    assert VERSION_A in done.stdout and done.stderr == ""
    as_json = faultprint("incidents", "--store", str(failure_store), "--format", "json")
    assert len(json.loads(as_json.stdout)["incidents"]) == len(FAILURES)


def test_a_project_through_a_collector_is_said_to_be_unused() -> None:
    # the note comes before the request; nothing listens on port 1
    done = faultprint("incidents", "--url", "http://127.0.0.1:1", "--project", "shop")
    _refused(done, "--project shop is not used through a collector", "cannot reach")
    quiet = faultprint("incidents", "--url", "http://127.0.0.1:1")
    assert "note" not in quiet.stderr


def test_a_store_without_any_calls_answers_empty_and_says_why(real_store: Path) -> None:
    done = faultprint("incidents", "--store", str(real_store), "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"incidents": []}
    assert "the store holds no calls yet" in done.stderr


@pytest.mark.parametrize("columns", [80, 120])
def test_incidents_keep_identifiers_whole_at_common_widths(
    failure_store: Path, columns: int
) -> None:
    done = faultprint("incidents", "--store", str(failure_store), columns=columns)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for fp, (version, category, failures, message) in FAILURES.items():
        # the row's first line holds each identifier whole, ready to copy
        (row,) = [line for line in lines if f"{fp:016x}" in line]
        for value in (CALL_SITE, version, category, f" {failures} "):
            assert value in row
        # free text gives way: one line, shortened
        assert message not in done.stdout
    assert all(VERSION_B[:-1] + "…" not in line for line in lines)


def test_a_bad_store_from_the_environment_is_named_and_the_schemes_listed(tmp_path: Path) -> None:
    done = faultprint("versions", cwd=tmp_path, env={"FAULTPRINT_STORE": "ftp://x/y"})
    _refused(done, "FAULTPRINT_STORE", "unsupported store URL scheme 'ftp'")
    for scheme in ("a directory path", "chdb://DIR", "http://", "https://", "clickhouse://"):
        assert scheme in done.stderr
    assert "the default store" not in done.stderr  # it is not the default: it was set
    assert list(tmp_path.iterdir()) == []


def test_incidents_take_a_window_end(failure_store: Path) -> None:
    def incidents(*window: str) -> list[dict]:
        done = faultprint("incidents", "--store", str(failure_store), "--format", "json", *window)
        assert done.returncode == 0, done.stderr
        return list(json.loads(done.stdout)["incidents"])

    # the calls are minutes old: a window ending 3 hours ago holds none of them
    assert incidents("--since", "30d", "--until", "3h") == []
    assert len(incidents("--since", "30d", "--until", "1m")) == len(FAILURES)
    assert len(incidents("--since", "30d")) == len(FAILURES)


@pytest.mark.parametrize(
    ("window", "words"),
    [
        (["--since", "1h", "--until", "2h"], ["since must be earlier than until"]),
        (["--since", "2h", "--until", "2000-01-01"], ["since must be earlier than until"]),
        (["--until", "99999w"], ["before 1970"]),
        (["--until", "tomorrow"], ["invalid time 'tomorrow'"]),
    ],
)
def test_a_bad_incident_window_is_a_usage_error(
    failure_store: Path, window: list[str], words: list[str]
) -> None:
    _refused(faultprint("incidents", "--store", str(failure_store), *window), *words)


def test_version_counts_are_integers_in_json(failure_store: Path) -> None:
    # the other project's three calls all succeeded: 0 failures, not 0.0
    done = faultprint(
        "versions", "--store", str(failure_store), "--project", OTHER_PROJECT, "--format", "json"
    )
    assert done.returncode == 0, done.stderr
    (version,) = json.loads(done.stdout)["versions"]
    assert type(version["calls"]) is int and type(version["failures"]) is int
    assert (version["calls"], version["failures"]) == (3, 0)
    assert '"failures": 0,' in done.stdout


@pytest.mark.parametrize("command", [["incidents"], ["versions"]])
def test_an_empty_collector_says_why_its_answer_is_empty(
    collector: CollectorProcess, command: list[str]
) -> None:
    done = faultprint(*command, "--url", collector.url)
    assert done.returncode == 0, done.stderr
    assert "note: the store holds no calls yet (of project 'default')" in done.stderr
    as_json = faultprint(*command, "--url", collector.url, "--format", "json")
    assert json.loads(as_json.stdout) == {command[0]: []}  # the note is not data
    assert "note: the store holds no calls yet" in as_json.stderr


def test_a_key_whose_project_has_no_calls_gets_the_note(
    start_collector: Callable[..., CollectorProcess],
) -> None:
    keys = {"shop": "key-of-shop-0123456789", "empty": "key-of-empty-0123456789"}
    collector = start_collector(
        env={"FAULTPRINT_API_KEYS": ",".join(f"{p}:{k}" for p, k in keys.items())}
    )
    send(collector.url, version_spans("v1", 40, {"parse": 4}, seed=7), api_key=keys["shop"])
    wait_for_calls(collector.url, 40, api_key=keys["shop"])
    for command in ("incidents", "versions"):
        empty = faultprint(
            command, "--url", collector.url, env={"FAULTPRINT_API_KEY": keys["empty"]}
        )
        assert empty.returncode == 0, empty.stderr
        assert "note: the store holds no calls yet (of project 'empty')" in empty.stderr
        assert "shop" not in empty.stderr  # nothing of another key's project
        full = faultprint(command, "--url", collector.url, env={"FAULTPRINT_API_KEY": keys["shop"]})
        assert full.returncode == 0 and "v1" in full.stdout
        assert "note" not in full.stderr


# --- store URLs and the API key: refused before any request ----------------------


@pytest.mark.parametrize(
    ("store", "problem"),
    [
        ("http://127.0.0.1:99999/db", "port is not a number in 1-65535"),
        ("http://user:secret@127.0.0.1:99999/db", "port is not a number in 1-65535"),
        ("http://user:secret@127.0.0.1:port/db", "port is not a number in 1-65535"),
        ("http://[::1", "Invalid IPv6 URL"),
        ("http://", "names no host"),
        ("clickhouse://:8123/db", "names no host"),
        ("http://user:secret@127.0.0.1:8123/no-such-db", "invalid database name"),
        ("chdb://", "names no directory"),
    ],
)
def test_a_malformed_store_url_is_a_usage_error_before_any_request(
    store: str, problem: str
) -> None:
    done = faultprint("incidents", "--store", store)
    _refused(done, problem)
    assert "secret" not in done.stderr  # a password is never echoed
    assert "cannot connect" not in done.stderr  # refused, not tried (localhost:8123)


def test_a_malformed_store_url_from_the_environment_is_named_by_its_variable(
    tmp_path: Path,
) -> None:
    done = faultprint(
        "versions", cwd=tmp_path, env={"FAULTPRINT_STORE": "http://u:secret@127.0.0.1:99999/x"}
    )
    _refused(done, "invalid store URL", "FAULTPRINT_STORE", "u:***@127.0.0.1:99999")
    assert "secret" not in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "key",
    ["fpk_secret with spaces", "fpk_secret\x7finside", "ключ-secret", "fpk_secret\ninside"],
)
def test_a_malformed_api_key_is_refused_without_showing_it(key: str) -> None:
    # nothing listens there: a refusal before any request cannot say "cannot reach"
    done = faultprint(
        "versions", "--url", f"http://127.0.0.1:{free_port()}", env={"FAULTPRINT_API_KEY": key}
    )
    _refused(done, "FAULTPRINT_API_KEY", "not shown")
    assert "secret" not in done.stdout + done.stderr
    assert "cannot reach" not in done.stderr


def test_the_api_key_is_read_without_surrounding_whitespace(
    start_collector: Callable[..., CollectorProcess],
) -> None:
    key = "key-of-shop-0123456789"
    collector = start_collector(env={"FAULTPRINT_API_KEYS": f"shop:{key}"})
    for pasted in (f" {key} ", f"{key}\n"):
        done = faultprint("versions", "--url", collector.url, env={"FAULTPRINT_API_KEY": pasted})
        assert done.returncode == 0, done.stderr
        assert key not in done.stderr
    # a blank key is no key: the collector answers 401, and says so
    blank = faultprint("versions", "--url", collector.url, env={"FAULTPRINT_API_KEY": "  "})
    assert blank.returncode == 2 and "401" in blank.stderr
