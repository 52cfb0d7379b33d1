"""Secrets and personal data never reach storage (unit and end to end)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from faultprint_collector.ingest import Scrubber, decode_body
from faultprint_collector.store import open_store

from tests.collector.api._otlp import PROTOBUF, kv, request
from tests.conftest import CollectorProcess

SECRETS = {
    "openai key": ("Incorrect API key provided: sk-proj-abcDEF1234567890xyz", "sk-proj-abc"),
    "anthropic key": ("auth failed for sk-ant-api03-AbCdEfGhIjKlMnOp-QrSt", "sk-ant-api03"),
    "bearer": ("sent Authorization: Bearer eyJraWQiOiJhYmMifQ.payload", "eyJraWQi"),
    "jwt": ("cookie session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl", "eyJhbGci"),
    "email": ("no account for jane.doe+ai@example.co.uk", "jane.doe"),
    "url password": ("cannot connect to postgres://svc:pa55word@db:5432/x", "pa55word"),
    "assignment": ('config {"api_key": "abc123secretvalue"}', "abc123secret"),
    "aws": ("denied for AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    "github": ("push failed: ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdef"),
    "private key": (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
        "MIIEow",
    ),
}


@pytest.mark.parametrize("name", list(SECRETS))
def test_each_kind_of_secret_is_replaced(name: str) -> None:
    text, secret = SECRETS[name]
    scrubbed = Scrubber().text(text)
    assert secret not in scrubbed
    assert "[redacted:" in scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens=4096 exceeded",
        "KeyError: 'item_42'",
        "Rate limit reached for gpt-4o-mini in organization org-abc on tokens per min",
        "task-abcdefghijklmnop failed",
    ],
)
def test_ordinary_messages_are_left_alone(text: str) -> None:
    assert Scrubber().text(text) == text


def test_extra_patterns_and_the_off_switch() -> None:
    assert Scrubber([r"CUST-\d{6}"]).text("customer CUST-123456 failed") == (
        "customer [redacted:custom] failed"
    )
    assert Scrubber(enabled=False).text("mail a@b.io") == "mail a@b.io"
    with pytest.raises(ValueError, match="invalid scrub pattern"):
        Scrubber(["(unclosed"])


def test_message_template_and_content_are_scrubbed_before_fingerprinting() -> None:
    def record_for(key: str) -> object:
        req, _ = request(1, failures_every=1, message=f"401: invalid key {key} for bob@x.io")
        req.resource_spans[0].scope_spans[0].spans[0].attributes.extend(
            [kv("faultprint.output", f"use {key} please"), kv("faultprint.input", "hi bob@x.io")]
        )
        return decode_body(req.SerializeToString(), "application/x-protobuf", "", "p", Scrubber())

    a = record_for("sk-proj-aaaaaaaaaaaaaaaaaaaa").records[0]  # type: ignore[attr-defined]
    b = record_for("sk-proj-bbbbbbbbbbbbbbbbbbbb").records[0]  # type: ignore[attr-defined]
    for record in (a, b):
        stored = " ".join([record.message, record.template, record.output_text, record.input_text])
        assert "sk-proj-" not in stored and "bob@x.io" not in stored
    assert a.fingerprint == b.fingerprint  # the secret took no part in grouping


def test_collector_stores_no_secret_unless_scrubbing_is_off(
    start_collector: Callable[..., CollectorProcess], tmp_path: Path
) -> None:
    message = "provider said: bad key sk-ant-api03-SECRETSECRETSECRET0 for carol@corp.example"
    stored: dict[str, str] = {}
    for label, env in (("on", {}), ("off", {"FAULTPRINT_SCRUB": "off"})):
        store_dir = str(tmp_path / f"store-{label}")
        collector = start_collector(store_dir, env=env)
        req, _ = request(3, failures_every=1, message=message)
        response = httpx.post(
            f"{collector.url}/v1/traces", content=req.SerializeToString(), headers=PROTOBUF
        )
        assert response.status_code == 200
        assert collector.stop() in (0, -signal.SIGTERM)
        store = open_store(store_dir)
        try:
            rows = store.query(
                "SELECT message, template FROM calls UNION ALL "
                "SELECT example_message, template FROM fingerprint_catalog"
            ).result_rows
        finally:
            store.close()
        stored[label] = " ".join(" ".join(row) for row in rows)
    assert "SECRETSECRET" not in stored["on"] and "carol@corp" not in stored["on"]
    assert "[redacted:api_key]" in stored["on"]
    assert "SECRETSECRET" in stored["off"]
