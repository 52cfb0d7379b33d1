"""Project isolation through API keys, against a real collector.

Keys for projects ``alpha`` and ``beta`` are created with ``faultprint keys
add`` (only hashes reach the file); ``gamma`` comes inline from the
environment. Each project writes calls with a marker model version; every
read endpoint of the OpenAPI document is then probed with key A, including
injection attempts in every parameter, and must never show project B's
data nor answer 5xx.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.collector.api._otlp import PROTOBUF, request
from tests.conftest import CollectorProcess, free_port

GAMMA_KEY = "gamma-inline-key-0123456789"
INJECTIONS = [
    "' OR '1'='1",
    "alpha' OR project = 'beta",
    "x'; DROP TABLE calls; --",
    "1) OR 1=1 UNION ALL SELECT model_version FROM calls --",
    "{project:String}",
    "\\' OR 1=1 --",
    "model-beta",
    "%' OR project LIKE '%",
    "0x1 OR 1",
    "'\"`;--/*",
]


def add_key(keys_file: Path, project: str) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "faultprint_collector.cli",
            "keys",
            "add",
            project,
            "--file",
            str(keys_file),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("auth")
    keys_file = tmp / "keys"
    alpha, beta = add_key(keys_file, "alpha"), add_key(keys_file, "beta")
    proc = CollectorProcess(
        store=str(tmp / "store"),
        port=free_port(),
        args=["--keys", str(keys_file)],
        env={"FAULTPRINT_API_KEYS": f"gamma:{GAMMA_KEY}"},
        log_path=tmp / "collector.log",
    )
    proc.start()
    for key, model in ((alpha, "model-alpha"), (beta, "model-beta")):
        # The payload claims another project: the key decides, not the payload.
        req, _ = request(
            30,
            model=model,
            call_site=f"site-{model}-private",
            resource={"faultprint.project": "gamma"},
        )
        response = httpx.post(
            f"{proc.url}/v1/traces",
            content=req.SerializeToString(),
            headers={**PROTOBUF, "authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200
    # reads see writes once replayed from the spool
    for key in (alpha, beta):
        for _ in range(100):
            seen = httpx.get(f"{proc.url}/api/versions", headers=bearer(key)).json()
            if seen.get("versions"):
                break
    yield {"collector": proc, "alpha": alpha, "beta": beta, "keys_file": keys_file}
    proc.stop()


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def versions(env: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{env['collector'].url}/api/versions", headers=headers, timeout=30)


def test_the_key_file_holds_only_hashes(env: dict[str, Any]) -> None:
    text = env["keys_file"].read_text()
    assert env["alpha"] not in text and env["beta"] not in text
    assert [line.split(":")[0] for line in text.splitlines()] == ["alpha", "beta"]


def test_each_key_reads_only_its_own_project(env: dict[str, Any]) -> None:
    alpha = versions(env, bearer(env["alpha"])).json()["versions"]
    beta = versions(env, {"x-api-key": env["beta"]}).json()["versions"]
    gamma = versions(env, bearer(GAMMA_KEY)).json()["versions"]
    assert [v["model_version"] for v in alpha] == ["model-alpha"]
    assert [v["model_version"] for v in beta] == ["model-beta"]
    assert gamma == []  # the payload's claim of project gamma was ignored


@pytest.mark.parametrize("path", ["/api/versions", "/v1/traces"])
def test_missing_or_wrong_key_is_401(env: dict[str, Any], path: str) -> None:
    url = f"{env['collector'].url}{path}"
    body = request(1)[0].SerializeToString()
    for headers in ({}, bearer("fpk_not-a-key-at-all-000000"), {"x-api-key": "nope"}):
        if path == "/v1/traces":
            response = httpx.post(url, content=body, headers={**PROTOBUF, **headers})
        else:
            response = httpx.get(url, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"


def test_health_needs_no_key(env: dict[str, Any]) -> None:
    assert httpx.get(f"{env['collector'].url}/healthz").status_code == 200


def read_endpoints(env: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    schema = httpx.get(f"{env['collector'].url}/openapi.json").json()
    return [
        (path, ops["get"].get("parameters", []))
        for path, ops in schema["paths"].items()
        if path.startswith("/api/") and "get" in ops
    ]


def test_injection_in_every_read_parameter_never_crosses_projects(env: dict[str, Any]) -> None:
    url, headers = env["collector"].url, bearer(env["alpha"])
    endpoints = read_endpoints(env)
    assert len(endpoints) >= 2
    probes = 0
    for path, params in endpoints:
        for param in params:
            for attempt in INJECTIONS:
                target = path
                query: dict[str, str] = {}
                for other in params:
                    if other["in"] == "path":
                        value = attempt if other is param else "0123456789abcdef"
                        target = target.replace("{" + other["name"] + "}", value)
                if param["in"] == "query":
                    query[param["name"]] = attempt
                response = httpx.get(f"{url}{target}", params=query, headers=headers, timeout=30)
                probes += 1
                assert response.status_code < 500, (target, query, response.text[:300])
                # parameters may be echoed in an error; B's data never is
                assert "site-model-beta-private" not in response.text, (target, query)
    assert probes > 20
    beta = versions(env, bearer(env["beta"])).json()["versions"]
    assert [v["model_version"] for v in beta] == ["model-beta"]  # nothing was dropped


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT DISTINCT model_version FROM calls",
        "SELECT model_version FROM calls WHERE project = 'beta'",
        "SELECT model_version FROM calls WHERE 1 OR project != 'alpha'",
        "SELECT * FROM fingerprint_catalog",
        "SELECT name FROM system.tables",
        "SELECT model_version FROM calls; DROP TABLE calls",
    ],
)
def test_ad_hoc_sql_stays_in_the_callers_project(env: dict[str, Any], sql: str) -> None:
    response = httpx.post(
        f"{env['collector'].url}/api/sql",
        json={"sql": sql},
        headers=bearer(env["alpha"]),
        timeout=30,
    )
    if response.status_code == 404:
        pytest.skip("no ad-hoc SQL endpoint")
    assert response.status_code < 500, response.text[:300]
    assert "model-beta" not in response.text.replace(sql, "")


def test_refuses_to_listen_beyond_loopback_without_keys(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "faultprint_collector.cli",
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            str(free_port()),
            "--store",
            str(tmp_path / "store"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "without API keys" in done.stderr
    assert "Traceback" not in done.stderr
