"""One real call travels the whole way: SDK → OTLP/HTTP → collector → ClickHouse → read back."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import faultprint
import httpx
import pytest


def _send_known_traffic(url: str) -> None:
    faultprint.configure(endpoint=url, service="e2e", environment="test", release="r1")

    @faultprint.observe(model="m-large", provider="acme", version="v1")
    def answer(i: int) -> str:
        if i % 4 == 0:  # 0, 4, 8 → 3 failures of one mode, different numbers
            raise ValueError(f"bad score {i * 17} for request req_{i:08x}")
        return "ok"

    @faultprint.observe(model="m-large", provider="acme", version="v2")
    def lookup(i: int) -> str:
        if i in (3, 7):
            raise KeyError(f"user-{i}")
        if i == 5:
            raise RuntimeError("index out of date")
        return "ok"

    for i in range(10):
        with pytest.raises(ValueError) if i % 4 == 0 else _nothing():
            answer(i)
    for i in range(12):
        with pytest.raises((KeyError, RuntimeError)) if i in (3, 5, 7) else _nothing():
            lookup(i)
    assert faultprint.flush(timeout=30)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


def _wait_for(url: str, calls: int) -> list[dict]:
    deadline = time.monotonic() + 30
    while True:
        versions = httpx.get(f"{url}/api/versions", timeout=30).json()["versions"]
        if sum(v["calls"] for v in versions) >= calls or time.monotonic() > deadline:
            return versions
        time.sleep(0.1)


def _rows(url: str, sql: str) -> list[list]:
    """The rows of SQL, read through the collector's /api/sql."""
    return httpx.post(f"{url}/api/sql", json={"sql": sql}, timeout=30).json()["rows"]


def test_calls_of_two_versions_are_counted_exactly(collector) -> None:
    _send_known_traffic(collector.url)
    versions = {v["model_version"]: v for v in _wait_for(collector.url, 22)}
    assert set(versions) == {"v1", "v2"}
    assert (versions["v1"]["calls"], versions["v1"]["failures"]) == (10, 3)
    assert (versions["v2"]["calls"], versions["v2"]["failures"]) == (12, 3)
    assert versions["v1"]["failure_rate"] == pytest.approx(0.3)
    assert versions["v2"]["failure_rate"] == pytest.approx(0.25)

    # the incidents command, as a user runs it, against the running collector
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "faultprint_collector.cli",
            "incidents",
            "--url",
            collector.url,
            "--format",
            "json",
            "--since",
            "1h",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    incidents = json.loads(out.stdout)["incidents"]
    by_type = {}
    for row in incidents:
        by_type.setdefault(row["error_type"].rsplit(".", 1)[-1], []).append(row)
    # one mode per error: ids and numbers in the messages do not split them
    assert [r["failures"] for r in by_type["ValueError"]] == [3]
    assert [r["failures"] for r in by_type["KeyError"]] == [2]
    assert [r["failures"] for r in by_type["RuntimeError"]] == [1]
    assert by_type["ValueError"][0]["model_versions"] == ["v1"]
    assert by_type["ValueError"][0]["call_site"].endswith("answer")
    assert all(len(r["fingerprint"]) == 16 for r in incidents)

    # the same data, as a table for a person
    table = subprocess.run(
        [sys.executable, "-m", "faultprint_collector.cli", "incidents", "--url", collector.url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"COLUMNS": "200", "PATH": ""},
    ).stdout
    assert "ValueError" in table or "exception" in table


def test_environment_and_release_are_stored_on_the_applications_provider(collector) -> None:
    """With the application's own TracerProvider, whose resource names another
    service and no environment or release, the calls still carry what
    faultprint was configured with: the README's before/after-deploy query
    filters on them."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(resource=Resource.create({"service.name": "myapp"}))
    faultprint.configure(
        endpoint=collector.url,
        tracer_provider=provider,
        service="shop",
        environment="prod",
        release="9.9",
    )

    @faultprint.observe(model="m", provider="acme", version="v1")
    def answer() -> str:
        return "ok"

    answer()
    assert faultprint.flush(timeout=30)
    _wait_for(collector.url, 1)
    rows = _rows(collector.url, "SELECT service, environment, release FROM calls")
    assert rows == [["shop", "prod", "9.9"]]


def test_a_streams_chunks_and_early_close_are_stored(collector) -> None:
    """What the SDK records of a stream reaches ``calls.attributes``."""
    faultprint.configure(endpoint=collector.url)

    @faultprint.observe(model="m", provider="acme", version="v1")
    def tokens():
        yield from ("a", "b", "c", "d")

    assert list(tokens()) == ["a", "b", "c", "d"]
    stream = tokens()
    next(stream)
    stream.close()
    assert faultprint.flush(timeout=30)
    _wait_for(collector.url, 2)
    rows = _rows(
        collector.url,
        "SELECT attributes['faultprint.stream.chunks'], "
        "attributes['faultprint.stream.closed_early'], "
        "toFloat64OrNull(attributes['faultprint.stream.time_to_first_chunk_ms']) >= 0 "
        "FROM calls ORDER BY time",
    )
    assert rows == [["4", "", True], ["1", "true", True]]


def test_incidents_reads_the_store_directly_once_the_collector_is_gone(start_collector) -> None:
    collector = start_collector()
    _send_known_traffic(collector.url)
    _wait_for(collector.url, 22)
    # while the collector owns the embedded store, a direct read is refused clearly
    locked = subprocess.run(
        [
            sys.executable,
            "-m",
            "faultprint_collector.cli",
            "incidents",
            "--store",
            collector.store,
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert locked.returncode == 2
    assert "in use by another process" in locked.stderr
    assert "Traceback" not in locked.stderr
    collector.stop()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "faultprint_collector.cli",
            "incidents",
            "--store",
            collector.store,
            "--format",
            "json",
            "--since",
            "1h",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    counts = sorted(r["failures"] for r in json.loads(out.stdout)["incidents"])
    assert counts == [1, 2, 3]


def test_bad_cli_arguments_exit_non_zero_with_a_message() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "faultprint_collector.cli",
            "incidents",
            "--since",
            "yesterday",
            "--url",
            "http://127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "faultprint_collector.cli",
            "incidents",
            "--url",
            "http://127.0.0.1:9",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "cannot reach the collector" in out.stderr


def test_outputs_that_are_no_json_are_one_mode_per_shape(collector) -> None:
    """With json=True and content capture off, a cut-off answer, a wrapped one
    and prose are three failure modes, each described, none quoting the output."""
    faultprint.configure(endpoint=collector.url)
    outputs = [
        '{"total": [1, 2',
        '{"total": [3, 4, 5',
        'Here it is: {"total": 1}',
        '{"total": 2} Hope this helps!',
        "The total is one.",
        "I think the total is two.",
    ]

    @faultprint.observe(model="m", provider="acme", version="v1", json=True)
    def extract(i: int) -> str:
        return outputs[i]

    for i in range(len(outputs)):
        extract(i)
    assert faultprint.flush(timeout=30)
    _wait_for(collector.url, len(outputs))
    rows = _rows(
        collector.url,
        "SELECT template, count(), uniqExact(fingerprint), any(message) "
        "FROM failures_v GROUP BY template ORDER BY template",
    )
    assert [row[:3] for row in rows] == [
        ["JSON output cut off before its end", 2, 1],
        ["JSON output wrapped in other text", 2, 1],
        ["prose where JSON was expected", 2, 1],
    ]
    assert not any("total" in row[3] for row in rows)


def test_a_script_deployed_in_two_directories_fails_with_one_fingerprint(
    collector, tmp_path
) -> None:
    """The same worker.py in an image's /app and in a CI checkout named after
    its repository: a baseline and a candidate compared after a swap see one
    failure mode, not a mode gone and a new one."""
    script = (
        "import sys, faultprint\n"
        "faultprint.configure(endpoint=sys.argv[1], service='worker')\n"
        "@faultprint.observe(model='m', provider='acme', version=sys.argv[2])\n"
        "def summarise(i):\n"
        "    raise ValueError(f'bad score {i}')\n"
        "for i in range(3):\n"
        "    try:\n"
        "        summarise(i)\n"
        "    except ValueError:\n"
        "        pass\n"
        "assert faultprint.flush(timeout=30)\n"
    )
    for directory, version in (("app", "baseline"), ("shop", "candidate")):
        (tmp_path / directory).mkdir()
        (tmp_path / directory / "worker.py").write_text(script)
        subprocess.run(
            [sys.executable, "worker.py", collector.url, version],
            cwd=tmp_path / directory,
            check=True,
            timeout=120,
        )
    _wait_for(collector.url, 6)
    rows = _rows(
        collector.url,
        "SELECT model_version, uniqExact(fingerprint), any(fingerprint_hex) "
        "FROM failures_v GROUP BY model_version ORDER BY model_version",
    )
    (baseline, one_mode, fp), (candidate, also_one, same_fp) = rows
    assert (baseline, candidate) == ("baseline", "candidate")
    assert one_mode == also_one == 1
    assert fp == same_fp
