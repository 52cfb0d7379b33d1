"""``faultprint fingerprint``: JSON Lines in, one fingerprint per line out."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import typer
from faultprint_collector.commands import fingerprint as command
from typer.testing import CliRunner

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
