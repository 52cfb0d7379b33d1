"""A long read never holds up ingest or the rest of the API, and an ad-hoc
query over its time limit is stopped and answered with a 422 saying why.

Against a real collector with a short ``/api/sql`` time limit. What is
asserted is order and state (the query is still running when the others
have their answers), never a duration.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx

from tests.collector.api._otlp import PROTOBUF, request
from tests.conftest import CollectorProcess

#: an engine-bound query that runs far beyond the test's time limit:
#: counting the rows of a 10¹¹-row cross join
ENDLESS = "SELECT count() FROM numbers(100000) AS a CROSS JOIN numbers(1000000) AS b"


def _post_spans(url: str, spans: int) -> httpx.Response:
    body = request(spans)[0].SerializeToString()
    return httpx.post(f"{url}/v1/traces", content=body, headers=PROTOBUF, timeout=60)


def _reads_in_flight(url: str) -> int:
    return int(httpx.get(f"{url}/api/stats", timeout=60).json()["reads_in_flight"])


def test_ingest_and_api_answer_while_a_long_query_runs_which_is_then_stopped(
    start_collector: Callable[..., CollectorProcess],
) -> None:
    collector = start_collector(env={"FAULTPRINT_SQL_TIMEOUT_S": "6"})
    url = collector.url
    assert _post_spans(url, 5).status_code == 200  # decoders warmed up
    answer: dict[str, httpx.Response] = {}

    def run_query() -> None:
        answer["sql"] = httpx.post(
            f"{url}/api/sql", json={"sql": ENDLESS, "max_rows": 10}, timeout=120
        )

    query = threading.Thread(target=run_query)
    query.start()
    try:
        while _reads_in_flight(url) == 0:
            assert query.is_alive(), f"the query ended before it was seen running: {answer}"
        ack = _post_spans(url, 10)
        stats = httpx.get(f"{url}/api/stats", timeout=60)
        health = httpx.get(f"{url}/healthz", timeout=60)
        versions = httpx.get(f"{url}/api/versions", timeout=60)
        # all answered while the query still holds its read connection
        assert query.is_alive() and "sql" not in answer
        assert _reads_in_flight(url) == 1
    finally:
        query.join(120)
    assert ack.status_code == 200
    assert stats.status_code == 200 and stats.json()["accepted_spans"] == 15
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert versions.status_code == 200
    sql = answer["sql"]
    assert sql.status_code == 422, sql.text
    assert "time limit" in sql.json()["detail"]
    assert _reads_in_flight(url) == 0
    collector.wait_stored()
