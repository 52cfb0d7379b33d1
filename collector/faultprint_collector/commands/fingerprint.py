"""``faultprint fingerprint``: fingerprint failure records offline (JSON Lines on stdin).

The same engine as the collector's ingest path, so a fingerprint computed
here equals the one the collector stores for the same failure.
"""

from __future__ import annotations

import json
import sys
from typing import IO, Any

import typer

from faultprint_collector.fingerprinting import (
    FailureRecord,
    Fingerprint,
    fingerprint,
    line_fingerprint,
)

__all__ = ["BadRecord", "record_from_json", "register", "run"]

_STR_FIELDS = (
    "category",
    "error_type",
    "message",
    "stacktrace",
    "finish_reason",
    "output",
    "function",
    "provider",
    "model",
    "error_code",
    "caller",
)

HELP = """Fingerprint failure records read from stdin, one per line.

Input: JSON Lines, one failure record (a JSON object) per line. Every field is
optional: category, error_type, message, stacktrace (Python traceback text),
finish_reason, output, function (the call site), provider, model, status_code;
also accepted: error_code, detail (the structured failure detail, an object),
caller (the function that called a provider endpoint named as the call site).
Without a category it is inferred (finish_reason length -> truncation, status
>= 400 -> api_error, a Timeout error type -> timeout, JSON / validation errors
-> invalid_output, ...). The model never affects the fingerprint.

With --lines every input line is a plain message (not JSON), grouped by its
template: a general log-template grouper.

Output: one line per input line, in the same order: the fingerprint as 16
lowercase hex digits. With --explain the line is the fingerprint, a TAB, and a
JSON object with the grouping information: coarse fingerprint, category,
strategy, template and the components that were hashed.

Bad input lines (invalid JSON, not an object, a field of the wrong type,
invalid UTF-8, a blank line in JSON mode) get an error on stderr naming the
line number and an EMPTY output line, so output stays line-aligned with the
input; processing continues, and the exit code is 1 if any line was bad
(0 otherwise).
"""


class BadRecord(ValueError):
    """An input line that is not a usable failure record."""


def record_from_json(obj: Any) -> FailureRecord:
    """A FailureRecord from one decoded JSONL object; raises BadRecord."""
    if not isinstance(obj, dict):
        raise BadRecord(f"expected a JSON object, got {type(obj).__name__}")
    values: dict[str, str | None] = {}
    for name in _STR_FIELDS:
        v = obj.get(name)
        if v is not None and not isinstance(v, str):
            raise BadRecord(f"field {name!r} must be a string, got {type(v).__name__}")
        values[name] = v
    status = obj.get("status_code")
    if status is None or status == "":
        code = 0
    elif isinstance(status, bool):
        raise BadRecord("field 'status_code' must be an integer")
    elif isinstance(status, int):
        code = status
    elif isinstance(status, str) and status.strip().isdigit():
        code = int(status)
    else:
        raise BadRecord(f"field 'status_code' must be an integer, got {status!r:.40}")
    if not 0 <= code <= 999:
        raise BadRecord(f"field 'status_code' out of range: {code}")
    detail = obj.get("detail")
    if isinstance(detail, str):
        try:
            detail = json.loads(detail)
        except ValueError:
            raise BadRecord("field 'detail' is a string but not JSON") from None
    return FailureRecord(
        category=values["category"] or "",
        error_type=values["error_type"] or "",
        message=values["message"] or "",
        stacktrace=values["stacktrace"] or "",
        finish_reason=values["finish_reason"] or "",
        output=values["output"],
        call_site=values["function"] or "",
        provider=values["provider"] or "",
        model=values["model"] or "",
        status_code=code,
        error_code=values["error_code"] or "",
        detail=detail,
        caller=values["caller"] or "",
    )


def _explained(fp: Fingerprint) -> str:
    info = {
        "coarse": fp.coarse_hex,
        "category": fp.category,
        "strategy": fp.strategy,
        "template": fp.template,
        "components": fp.components,
    }
    return f"{fp.hex}\t{json.dumps(info, ensure_ascii=False, sort_keys=False)}"


def run(stdin: IO[bytes], stdout: IO[str], stderr: IO[str], *, explain: bool, lines: bool) -> int:
    """Fingerprint every line of ``stdin``; returns the exit code (1 if any line was bad)."""
    bad = 0
    out: list[str] = []
    for number, raw in enumerate(stdin, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            stderr.write(f"line {number}: invalid UTF-8 at byte {e.start}\n")
            bad += 1
            out.append("")
            continue
        text = text.rstrip("\r\n")
        try:
            if lines:
                fp = line_fingerprint(text)
            else:
                if not text.strip():
                    raise BadRecord("blank line, expected a JSON object")
                try:
                    obj = json.loads(text)
                except (ValueError, RecursionError) as e:
                    raise BadRecord(f"invalid JSON: {e}") from None
                fp = fingerprint(record_from_json(obj))
        except BadRecord as e:
            stderr.write(f"line {number}: {e}\n")
            bad += 1
            out.append("")
        else:
            out.append(_explained(fp) if explain else fp.hex)
        if len(out) >= 4096:
            stdout.write("\n".join(out) + "\n")
            out.clear()
    if out:
        stdout.write("\n".join(out) + "\n")
    stdout.flush()
    if bad:
        stderr.write(f"{bad} bad line(s)\n")
    return 1 if bad else 0


def register(app: typer.Typer) -> None:
    """Add the ``fingerprint`` command to the ``faultprint`` CLI."""

    @app.command("fingerprint", help=HELP)
    def fingerprint_command(
        explain: bool = typer.Option(
            False,
            "--explain",
            help="Append a TAB and a JSON object with the grouping components.",
        ),
        lines: bool = typer.Option(
            False, "--lines", help="Treat every line as a plain message, grouped by template."
        ),
    ) -> None:
        code = run(sys.stdin.buffer, sys.stdout, sys.stderr, explain=explain, lines=lines)
        if code:
            raise typer.Exit(code)
