"""A real collector whose spool directory is deleted (or unusable) while it runs.

Nothing acknowledged after the deletion may be lost: the collector recreates
the directory and keeps storing, or answers 503 while it cannot, and says
what happened in /healthz.
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.collector.api._otlp import PROTOBUF, request
from tests.conftest import CollectorProcess


def post(collector: CollectorProcess, spans: int) -> httpx.Response:
    body = request(spans)[0].SerializeToString()
    return httpx.post(f"{collector.url}/v1/traces", content=body, headers=PROTOBUF, timeout=60)


def stored(collector: CollectorProcess) -> int:
    return int(httpx.get(f"{collector.url}/api/stats", timeout=10).json()["rows_written"])


def health(collector: CollectorProcess) -> httpx.Response:
    return httpx.get(f"{collector.url}/healthz", timeout=10)


def test_spans_acknowledged_after_the_spool_is_deleted_are_stored(
    start_collector: Callable[..., CollectorProcess], tmp_path: Path
) -> None:
    collector = start_collector(str(tmp_path / "st1"))
    spool = Path(f"{collector.store}.spool")
    assert [post(collector, 100).status_code for _ in range(3)] == [200] * 3
    collector.wait_stored()
    shutil.rmtree(spool)

    assert [post(collector, 100).status_code for _ in range(5)] == [200] * 5
    collector.wait_stored()
    assert stored(collector) == 800
    assert spool.is_dir()
    answer = health(collector)
    assert answer.status_code == 200
    assert "deleted" in answer.json()["spool"]["last_error"]
    # SIGTERM does not wait for records that are gone
    assert collector.stop(timeout=20) in (0, -signal.SIGTERM)


def test_the_collector_refuses_spans_while_its_spool_cannot_be_recreated(
    start_collector: Callable[..., CollectorProcess], tmp_path: Path
) -> None:
    collector = start_collector(str(tmp_path / "st2"))
    spool = Path(f"{collector.store}.spool")
    assert post(collector, 50).status_code == 200
    collector.wait_stored()
    shutil.rmtree(spool)
    spool.write_text("in the way")  # the directory cannot be recreated

    refused = post(collector, 50)
    assert refused.status_code == 503  # the client keeps the spans and retries
    assert "retry-after" in refused.headers
    answer = health(collector)
    assert answer.status_code == 503
    assert answer.json()["status"] == "failing"
    assert "deleted" in answer.json()["spool"]["last_error"]

    spool.unlink()
    assert post(collector, 50).status_code == 200
    collector.wait_stored()
    assert stored(collector) == 100
    assert health(collector).json()["status"] == "ok"
    assert collector.stop(timeout=20) in (0, -signal.SIGTERM)
