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
from faultprint_collector.ingest import CALL_COLUMNS

__all__ = ["KNOWN_FIELDS", "BadRecord", "record_from_json", "register", "run", "unknown_fields"]

#: the record's text fields, by the names of the ``calls`` / ``failures_v``
#: columns where one holds them (what ``faultprint sql --format jsonl`` emits)
_STR_FIELDS = (
    "category",
    "error_type",
    "message",
    "stacktrace",
    "finish_reason",
    "output",
    "call_site",
    "provider",
    "model",
    "error_code",
    "caller",
)
#: other names of a record field: the stored columns, and ``function``, the
#: call site's name in earlier versions of this command
_ALIASES = {
    "function": "call_site",
    "output_text": "output",
    "http_status": "status_code",
}
#: the model, when the record names none: the stored columns the collector
#: chose it from, in its order (the version tag, else the response's model,
#: else the request's)
_MODEL_COLUMNS = ("model_version", "response_model", "request_model")
#: what the collector stores for a call that named no model; not a model name
_NO_MODEL = "unknown"
#: the ``calls.attributes`` key that holds the caller
_CALLER_ATTRIBUTE = "code.function.name"
#: stored columns that are not inputs of a fingerprint (ids, times, counts,
#: the fingerprint itself): ignored without a note, so that rows of
#: ``calls`` or ``failures_v`` pipe in as they are
_STORED_COLUMNS = frozenset(
    {
        *CALL_COLUMNS,  # every column of calls the collector writes
        "inserted_at",  # and the one the store fills in
        # what failures_v adds: the fingerprint as text, the catalogue's view of it
        "fingerprint_hex",
        "fingerprint_first_seen",
        "fingerprint_last_seen",
        "fingerprint_failures",
        "fingerprint_model_versions",
    }
)
#: every name a record may carry
KNOWN_FIELDS = frozenset({*_STR_FIELDS, *_ALIASES, "status_code", "detail", *_STORED_COLUMNS})

HELP = """Fingerprint failure records read from stdin, one per line.

Input: JSON Lines, one failure record (a JSON object) per line. Every field is
optional and named as the stored columns name it: category, error_type,
message, stacktrace (Python traceback text), finish_reason, output (or
output_text), call_site, provider, model, status_code (or http_status),
error_code, detail (the structured failure detail, an object), caller (the
function that called a provider endpoint named as the call site; or
attributes['code.function.name']). Without model, the model is
model_version, else response_model, else request_model. 'function' is
accepted for call_site. The other columns of calls and failures_v (time,
trace_id, fingerprint_hex, ...) are ignored; any other key is ignored with
a note on stderr.

So rows of the store pipe in as they are and give back their stored
fingerprints:

  faultprint sql "SELECT * FROM failures_v" --format jsonl | faultprint fingerprint

except where the fingerprint used what the store does not keep: the stack
trace's in-app frames and an output check's detail (see the components of
'faultprint show').

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


def unknown_fields(obj: dict[str, Any]) -> list[str]:
    """The keys of OBJ that are no record field and no stored column (ignored)."""
    return [key for key in obj if key not in KNOWN_FIELDS]


def _field(obj: dict[str, Any], name: str) -> tuple[str, Any]:
    """The key OBJ gives field NAME under (its own name or an alias) and its value.

    The key is what a message about the value names: the input's own
    (``http_status``, the stored column), not the field it maps to. Values
    under several of them must agree; (NAME, None) when none is given.
    """
    given = [(key, obj[key]) for key in (name, *_aliases_of(name)) if obj.get(key) is not None]
    if len({json.dumps(v, sort_keys=True, default=str) for _, v in given}) > 1:
        keys = " and ".join(repr(k) for k, _ in given)
        raise BadRecord(f"fields {keys} name the same thing and disagree")
    return given[0] if given else (name, None)


def _aliases_of(name: str) -> tuple[str, ...]:
    return tuple(alias for alias, target in _ALIASES.items() if target == name)


def _text(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise BadRecord(f"field {name!r} must be a string, got {type(value).__name__}")
    return value


def _model(obj: dict[str, Any]) -> str:
    """The record's model: ``model``, else the stored columns the collector chose it from."""
    model = _text("model", obj.get("model"))
    if model is not None:
        return model
    for column in _MODEL_COLUMNS:
        value = _text(column, obj.get(column))
        if value and value != _NO_MODEL:
            return value
    return ""


def _caller(obj: dict[str, Any]) -> str:
    caller = _text("caller", obj.get("caller"))
    if caller is not None:
        return caller
    attributes = obj.get("attributes")
    if isinstance(attributes, dict):
        return _text(f"attributes[{_CALLER_ATTRIBUTE!r}]", attributes.get(_CALLER_ATTRIBUTE)) or ""
    return ""


def record_from_json(obj: Any) -> FailureRecord:
    """A FailureRecord from one decoded JSONL object; raises BadRecord.

    Fields are named as the stored columns name them (see HELP); keys that
    are neither are ignored here (``unknown_fields`` lists them).
    """
    if not isinstance(obj, dict):
        raise BadRecord(f"expected a JSON object, got {type(obj).__name__}")
    values: dict[str, str | None] = {}
    for name in _STR_FIELDS:
        if name in ("model", "caller"):
            continue
        values[name] = _text(*_field(obj, name))
    status_key, status = _field(obj, "status_code")
    if status is None or status == "":
        code = 0
    elif isinstance(status, bool):
        raise BadRecord(f"field {status_key!r} must be an integer")
    elif isinstance(status, int):
        code = status
    elif isinstance(status, str) and status.strip().isdigit():
        code = int(status)
    else:
        raise BadRecord(f"field {status_key!r} must be an integer, got {status!r:.40}")
    if not 0 <= code <= 999:
        raise BadRecord(f"field {status_key!r} out of range: {code}")
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
        call_site=values["call_site"] or "",
        provider=values["provider"] or "",
        model=_model(obj),
        status_code=code,
        error_code=values["error_code"] or "",
        detail=detail,
        caller=_caller(obj),
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
    noted: set[str] = set()  # each unknown key is noted once, not on every line
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
                for key in unknown_fields(obj):
                    if key not in noted:
                        noted.add(key)
                        stderr.write(
                            f"line {number}: note: unknown field {key[:80]!r} ignored "
                            "(the fields: faultprint fingerprint --help)\n"
                        )
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
