"""Schemathesis against the collector's own OpenAPI document (read API).

Generated requests (parameters that fit the schema and parameters that do
not, all with a valid key) hit a
real collector holding a little data; none may get a 5xx. Bounded in
examples per operation so the whole run stays short.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode

from tests.collector.api._otlp import PROTOBUF, request
from tests.conftest import CollectorProcess, free_port

KEY = "schemathesis-key-0123456789abcdef"


@pytest.fixture(scope="module")
def fuzzed_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    tmp: Path = tmp_path_factory.mktemp("openapi")
    proc = CollectorProcess(
        store=str(tmp / "store"),
        port=free_port(),
        env={"FAULTPRINT_API_KEYS": f"fuzz:{KEY}"},
        log_path=tmp / "collector.log",
    )
    proc.start()
    for model in ("v1", "v2"):
        req, _ = request(50, failures_every=3, model=model)
        response = httpx.post(
            f"{proc.url}/v1/traces",
            content=req.SerializeToString(),
            headers={**PROTOBUF, "x-api-key": KEY},
        )
        assert response.status_code == 200
    yield proc
    proc.stop()


def test_read_api_never_answers_5xx(fuzzed_collector: CollectorProcess) -> None:
    api = schemathesis.openapi.from_url(f"{fuzzed_collector.url}/openapi.json")
    operations = [
        result.ok()
        for result in api.include(path_regex="^/api/", method="GET").get_all_operations()
    ]
    assert len(operations) >= 2
    cases = [
        (operation.as_strategy(mode), mode)
        for operation in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]
    for strategy, mode in cases:

        @given(case=strategy)
        @settings(
            max_examples=15,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def probe(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=fuzzed_collector.url,
                headers={"x-api-key": KEY},
                checks=[not_a_server_error],
                timeout=60,
            )

        try:
            probe()
        except Unsatisfiable:
            # no parameter to make invalid (e.g. /api/stats)
            assert mode is GenerationMode.NEGATIVE
