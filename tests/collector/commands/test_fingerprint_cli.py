"""``faultprint fingerprint``: JSON Lines in, one fingerprint per line out."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest
import typer
from faultprint_collector.commands import fingerprint as command
from typer.testing import CliRunner

from tests.collector.analysis.otlp_calls import MODES, send, version_spans, wait_for_calls
from tests.conftest import CollectorProcess

HEX = re.compile(r"^[0-9a-f]{16}$")

RATE_LIMIT = (
    "Error code: 429 - {{'error': {{'message': 'Rate limit reached for gpt-4o in organization "
    "org-{org} on tokens per min (TPM): Limit 30000, Used {used}.', 'type': 'tokens', "
    "'param': None, 'code': 'rate_limit_exceeded'}}}}"
)


def app() -> typer.Typer:
    a = typer.Typer()

    @a.callback()
    def main() -> None:
        """Test CLI."""

    command.register(a)
    return a


def invoke(stdin: bytes | str, *args: str):
    return CliRunner().invoke(app(), ["fingerprint", *args], input=stdin)


def records() -> list[dict]:
    return [
        {"message": RATE_LIMIT.format(org="abc1", used=1), "function": "shop.summarize"},
        {
            "message": RATE_LIMIT.format(org="zzz9", used=77),
            "function": "shop.summarize",
            "model": "gpt-4o-mini",
        },
        {"finish_reason": "length", "function": "shop.summarize", "model": "gpt-4o"},
        {
            "category": "invalid_output",
            "error_type": "JSONDecodeError",
            "message": "Expecting value: line 1 column 1 (char 0)",
            "output": "```json\n{}\n```",
            "function": "shop.extract",
        },
        {
            "category": "invalid_output",
            "error_type": "JSONDecodeError",
            "message": "Expecting value: line 1 column 1 (char 0)",
            "output": "I'm sorry, I can't help with that.",
            "function": "shop.extract",
        },
    ]


def test_one_fingerprint_per_line_in_order() -> None:
    lines = "".join(json.dumps(r) + "\n" for r in records())
    result = invoke(lines)
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert len(out) == 5 and all(HEX.match(x) for x in out)
    assert out[0] == out[1]  # same mode, other ids, numbers and model
    assert len({out[1], out[2], out[3], out[4]}) == 4
    # same input, reversed order: same fingerprints, reversed
    rev = invoke("".join(json.dumps(r) + "\n" for r in reversed(records())))
    assert rev.stdout.splitlines() == out[::-1]


def test_explain_adds_components_as_json() -> None:
    result = invoke(json.dumps(records()[0]) + "\n", "--explain")
    assert result.exit_code == 0
    fp, info = result.stdout.rstrip("\n").split("\t")
    assert HEX.match(fp)
    data = json.loads(info)
    assert data["category"] == "api_error"
    assert data["components"]["error_code"] == "rate_limit_exceeded"
    assert data["components"]["call_site"] == "shop.summarize"
    assert HEX.match(data["coarse"])


def test_bad_lines_are_reported_and_output_stays_aligned() -> None:
    good = json.dumps(records()[2])
    stdin = "\n".join([good, "{not json", "[1, 2]", '{"status_code": "many"}', "", good]) + "\n"
    result = invoke(stdin)
    assert result.exit_code == 1
    out = result.stdout.split("\n")[:-1]
    assert len(out) == 6
    assert out[0] == out[5] and HEX.match(out[0])
    assert out[1:5] == ["", "", "", ""]
    for n in (2, 3, 4, 5):
        assert f"line {n}:" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_utf8_is_a_bad_line() -> None:
    result = invoke(b'{"message": "ok"}\n\xff\xfe\n')
    assert result.exit_code == 1
    assert "line 2: invalid UTF-8" in result.stderr
    assert result.stdout.split("\n")[1] == ""


def test_lines_mode_groups_log_lines_by_template() -> None:
    stdin = (
        "Failed password for invalid user admin from 10.0.0.1 port 22 ssh2\n"
        "Failed password for invalid user bob from 172.16.4.9 port 5122 ssh2\n"
        "Connection closed by 10.0.0.1 [preauth]\n"
        "\n"
    )
    result = invoke(stdin, "--lines", "--explain")
    assert result.exit_code == 0
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert len(rows) == 4
    assert rows[0][0] == rows[1][0] != rows[2][0]
    assert json.loads(rows[0][1])["template"] == (
        "Failed password for invalid user <*> from <*> port <*>"
    )


def test_help_documents_the_formats() -> None:
    result = CliRunner().invoke(app(), ["fingerprint", "--help"])
    assert result.exit_code == 0
    for word in ("--explain", "--lines", "TAB", "EMPTY", "exit code"):
        assert word in result.stdout


def test_real_subprocess() -> None:
    stdin = "".join(json.dumps(r) + "\n" for r in records()) + "oops\n"
    proc = subprocess.run(
        [sys.executable, "-m", "faultprint_collector.cli", "fingerprint"],
        input=stdin.encode(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    out = proc.stdout.decode().split("\n")[:-1]
    assert len(out) == 6 and out[5] == ""
    assert out[0] == out[1] and all(HEX.match(x) for x in out[:5])
    assert b"line 6: invalid JSON" in proc.stderr
    # in-process and subprocess agree
    assert invoke("".join(json.dumps(r) + "\n" for r in records())).stdout.splitlines() == out[:5]


def test_the_call_site_is_read_under_its_stored_name() -> None:
    failure = {
        "category": "timeout",
        "error_type": "TimeoutError",
        "message": "timed out after 35 s",
    }
    by_column = {**failure, "call_site": "shop.summarise"}
    by_old_name = {**failure, "function": "shop.summarise"}
    elsewhere = {**failure, "call_site": "shop.translate"}
    stdin = "".join(json.dumps(r) + "\n" for r in (by_column, by_old_name, elsewhere, failure))
    result = invoke(stdin)
    assert result.exit_code == 0, result.output
    column, old_name, other_site, no_site = result.stdout.splitlines()
    assert column == old_name
    assert len({column, other_site, no_site}) == 3  # the call site is part of it
    assert result.stderr == ""


def test_stored_column_names_fill_the_record() -> None:
    # http_status is status_code, output_text is output, model_version the model
    stored = {
        "error_type": "openai.RateLimitError",
        "message": RATE_LIMIT.format(org="abc1", used=1),
        "http_status": 429,
        "model_version": "gpt-4o",
        "call_site": "shop.summarise",
    }
    record = {**stored, "status_code": 429, "model": "gpt-4o"}
    del record["http_status"], record["model_version"]
    result = invoke(json.dumps(stored) + "\n" + json.dumps(record) + "\n", "--explain")
    assert result.exit_code == 0, result.output
    first, second = (line.split("\t") for line in result.stdout.splitlines())
    assert first[0] == second[0]
    assert json.loads(first[1])["category"] == "api_error"


def test_unknown_fields_are_noted_once_and_stored_columns_pass_quietly() -> None:
    row = {
        "message": "boom",
        "call_site": "shop.summarise",
        "trace_id": "0" * 32,
        "fingerprint_hex": "0123456789abcdef",
        "latency_ms": 12.5,
    }
    stdin = "".join(json.dumps({**row, "bogus": i}) + "\n" for i in range(3))
    result = invoke(stdin)
    assert result.exit_code == 0  # a note, not a failure
    assert len(result.stdout.splitlines()) == 3
    notes = result.stderr.splitlines()
    assert notes == [
        "line 1: note: unknown field 'bogus' ignored (the fields: faultprint fingerprint --help)"
    ]


def test_two_names_of_one_field_must_agree() -> None:
    result = invoke(json.dumps({"call_site": "shop.a", "function": "shop.b"}) + "\n")
    assert result.exit_code == 1
    assert "line 1: fields 'call_site' and 'function' name the same thing" in result.stderr


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"http_status": "abc"}, "field 'http_status' must be an integer, got 'abc'"),
        ({"http_status": True}, "field 'http_status' must be an integer"),
        ({"http_status": 1000}, "field 'http_status' out of range: 1000"),
        ({"output_text": 5}, "field 'output_text' must be a string, got int"),
        ({"function": ["a"]}, "field 'function' must be a string, got list"),
    ],
)
def test_a_bad_value_is_named_by_the_field_the_input_gives(
    record: dict[str, object], message: str
) -> None:
    # an input field named as the stored column is named so back, not as the
    # record field it fills
    result = invoke(json.dumps({"category": "api_error", **record}) + "\n")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == f"line 1: {message}"


def test_help_names_the_fields() -> None:
    result = CliRunner().invoke(app(), ["fingerprint", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for field in (
        "call_site",
        "error_type",
        "status_code",
        "http_status",
        "model_version",
        "failures_v",
        "--format jsonl",
    ):
        assert field in result.stdout, field


def _span(attrs: dict[str, object], status: dict[str, object]) -> dict[str, object]:
    """An OTLP/JSON span of a model call with ATTRS and STATUS, five minutes old."""

    def value(v: object) -> dict[str, object]:
        return {"intValue": str(v)} if isinstance(v, int) else {"stringValue": str(v)}

    start = time.time_ns() - 300 * 10**9
    return {
        "traceId": os.urandom(16).hex(),
        "spanId": os.urandom(8).hex(),
        "name": "chat gpt-4o-mini",
        "kind": 3,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 10**8),
        "attributes": [{"key": k, "value": value(v)} for k, v in attrs.items()],
        "status": status,
    }


def test_stored_rows_give_back_their_stored_fingerprints(collector: CollectorProcess) -> None:
    """Failures sent to a real collector, read back as rows of failures_v and
    piped to the command, fingerprint as the collector fingerprinted them."""
    call = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.provider.name": "openai",
        "faultprint.call_site": "shop.answer",
    }
    failed = {"code": 2}
    spans = version_spans("v1", 12, {mode: 2 for mode in MODES}, seed=4)
    spans += [
        _span(
            {**call, "http.response.status_code": 429, "error.type": "openai.RateLimitError"},
            {**failed, "message": RATE_LIMIT.format(org="abc1", used=7)},
        ),
        _span({**call, "gen_ai.response.finish_reasons": '["length"]'}, {"code": 1}),
        _span({**call, "gen_ai.response.finish_reasons": '["content_filter"]'}, {"code": 1}),
        _span(
            {**call, "error.type": "httpx.ReadTimeout"},
            {**failed, "message": "timed out talking to gpt-4o-mini after 30 s"},
        ),
        _span(
            {**call, "faultprint.model_version": "v9", "http.response.status_code": 500},
            {**failed, "message": "Error code: 500 - gpt-4o-mini failed on request req_abc123"},
        ),
    ]
    send(collector.url, spans)
    failures = 2 * len(MODES) + 5
    wait_for_calls(collector.url, len(spans))

    cli = [sys.executable, "-m", "faultprint_collector.cli"]
    rows = subprocess.run(
        [*cli, "sql", "SELECT * FROM failures_v", "--format", "jsonl", "--url", collector.url],
        capture_output=True,
        timeout=120,
        check=True,
    ).stdout
    stored = [json.loads(line)["fingerprint_hex"] for line in rows.splitlines()]
    assert len(stored) == failures and len(set(stored)) == len(MODES) + 5
    again = subprocess.run(
        [*cli, "fingerprint"], input=rows, capture_output=True, timeout=120, check=False
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.decode().split() == stored
    assert again.stderr == b""  # every column of failures_v is known
