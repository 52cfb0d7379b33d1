"""Output checks declared with ``@observe(expect=..., json=True)``.

A check returns ``None`` when the output passes, else a ``CheckFailure``
whose ``detail(capture)`` is the agreed JSON shape::

    {"validator": "pydantic" | "jsonschema" | "json" | "callable",
     "errors": [{"kind": "missing", "path": "items.*.price", "message": "Field required"}]}

``kind`` is the validator's own error kind (pydantic error ``type``,
jsonschema keyword, ``json_decode``); list indices in paths become ``*`` so
that the same mistake at a different position is the same failure mode.
Validators' messages may quote the value that failed ("'jane@corp.com' is
not of type 'integer'"): they are recorded only when content capture is on
(redacted and bounded); with it off an error keeps its kind and path, and a
message only when faultprint words it from the schema or the parser, never
from the value. pydantic and jsonschema are imported only when such a check
is declared.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from faultprint._capture import captured

__all__ = ["CheckError", "CheckFailure", "build_checks", "generalise_path"]

_MAX_ERRORS = 20
#: a validator's message is cut to this many characters (content capture on)
_MAX_MESSAGE = 300


class CheckError(NamedTuple):
    """One error of a failed check."""

    kind: str
    path: str
    #: the validator's own message; may quote the value that failed
    message: str
    #: a message that quotes nothing of the value (None: there is none)
    plain: str | None = None


class CheckFailure:
    """A failed output check: its errors, described with or without content."""

    __slots__ = ("errors", "validator")

    def __init__(self, validator: str, errors: list[CheckError]) -> None:
        self.validator = validator
        self.errors = errors[:_MAX_ERRORS]

    def detail(self, capture: bool) -> dict[str, Any]:
        """The JSON detail: kinds and paths, messages only as ``capture`` allows."""
        return {"validator": self.validator, "errors": error_dicts(self.errors, capture)}

    def message(self, capture: bool) -> str:
        """One line naming the first error (and how many more)."""
        errors = self.errors
        if not errors:
            return f"{self.validator} check failed"
        first = errors[0]
        where = f"{first.path}: " if first.path else ""
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        return f"{self.validator} check failed: {where}{describe(first, capture)}{more}"


def describe(error: CheckError, capture: bool) -> str:
    """The error's message when ``capture`` allows it, else one quoting no value."""
    if capture:
        return captured(error.message, _MAX_MESSAGE)
    return error.plain if error.plain is not None else error.kind


def error_dicts(errors: list[CheckError], capture: bool) -> list[dict[str, str]]:
    """``errors`` as detail entries: ``kind``, ``path`` and, when allowed, ``message``."""
    out = []
    for e in errors:
        entry = {"kind": e.kind, "path": e.path}
        if capture:
            entry["message"] = captured(e.message, _MAX_MESSAGE)
        elif e.plain is not None:
            entry["message"] = e.plain
        out.append(entry)
    return out


Check = Callable[[Any], "CheckFailure | None"]


def generalise_path(parts: Iterable[Any]) -> str:
    """``("items", 3, "price")`` → ``"items.*.price"``."""
    return ".".join("*" if isinstance(p, int) else str(p) for p in parts)


def _json_failure(exc: json.JSONDecodeError) -> CheckFailure:
    # The parser's message names the syntax error, never the document's text.
    return CheckFailure("json", [CheckError("json_decode", "", exc.msg, exc.msg)])


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return None


def _json_check(value: Any) -> CheckFailure | None:
    text = _as_text(value)
    if text is None:
        return None  # already structured data
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return _json_failure(exc)
    return None


def _pydantic_check(model: Any) -> Check:
    from pydantic import ValidationError

    def check(value: Any) -> CheckFailure | None:
        if isinstance(value, model):
            return None
        try:
            text = _as_text(value)
            if text is not None:
                model.model_validate_json(text)
            else:
                model.model_validate(value)
        except ValidationError as exc:
            # pydantic's messages can quote the input (custom validators'
            # "Value error, ...", union tags): none is taken as plain.
            errors = [
                CheckError(
                    str(err.get("type", "invalid")),
                    generalise_path(err.get("loc", ())),
                    str(err.get("msg", "")),
                )
                for err in exc.errors(include_url=False)
            ]
            return CheckFailure("pydantic", errors)
        return None

    return check


def _schema_check(schema: dict[str, Any]) -> Check:
    try:
        from jsonschema.validators import validator_for
    except ImportError as exc:  # raised at decoration time, never per call
        raise ImportError(
            "expect=<JSON schema> needs the 'jsonschema' package: pip install jsonschema"
        ) from exc
    cls = validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema)

    def check(value: Any) -> CheckFailure | None:
        text = _as_text(value)
        if text is not None:
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                return _json_failure(exc)
        errors = []
        for err in validator.iter_errors(value):
            path = list(err.absolute_path)
            if err.validator == "required" and isinstance(err.instance, dict):
                # Name the missing property in the path, as pydantic does,
                # so both validators describe the mistake the same way.
                missing = [p for p in (err.validator_value or ()) if p not in err.instance]
                for prop in missing or [""]:
                    # The property's name comes from the schema, not the value.
                    named = f"{prop!r} is a required property" if prop else None
                    errors.append(
                        CheckError(
                            "required",
                            generalise_path([*path, prop] if prop else path),
                            named or err.message,
                            named,
                        )
                    )
                continue
            # jsonschema's messages quote the instance ("'cheap' is not of type
            # 'number'"): only the keyword and the path are plain.
            errors.append(CheckError(str(err.validator), generalise_path(path), err.message))
        if not errors:
            return None
        # Deduplicate: the same required property missing in every list item
        # is one mistake once indices are generalised.
        unique = list({(e.kind, e.path): e for e in errors}.values())
        unique.sort(key=lambda e: (e.path, e.kind))
        return CheckFailure("jsonschema", unique)

    return check


def _callable_check(fn: Callable[[Any], Any]) -> Check:
    name = getattr(fn, "__qualname__", type(fn).__name__)

    # The application's own words (an error string, an exception message) may
    # quote the output; the plain message says only which check said no.
    def check(value: Any) -> CheckFailure | None:
        try:
            verdict = fn(value)
        except Exception as exc:
            kind = type(exc).__name__
            return CheckFailure(
                "callable", [CheckError(kind, "", _exc_text(exc), f"{name} raised {kind}")]
            )
        if verdict is False:
            returned = f"{name} returned False"
            return CheckFailure("callable", [CheckError("rejected", "", returned, returned)])
        if isinstance(verdict, str) and verdict:
            return CheckFailure(
                "callable", [CheckError("rejected", "", verdict, f"{name} rejected the output")]
            )
        return None

    return check


def _exc_text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return type(exc).__name__


def build_checks(expect: Any, json_required: bool) -> list[Check]:
    """Checks for ``expect`` / ``json``; raises ``TypeError`` on an unusable ``expect``."""
    checks: list[Check] = []
    if json_required:
        checks.append(_json_check)
    if expect is None:
        return checks
    if isinstance(expect, type) and hasattr(expect, "model_validate_json"):
        checks.append(_pydantic_check(expect))
    elif isinstance(expect, dict):
        checks.append(_schema_check(expect))
    elif callable(expect):
        checks.append(_callable_check(expect))
    else:
        raise TypeError(
            "expect= takes a pydantic model class, a JSON schema dict or a callable, "
            f"got {type(expect).__name__}"
        )
    return checks


def run_checks(checks: list[Check], value: Any) -> CheckFailure | None:
    """First failing check's result, or None."""
    for check in checks:
        failure = check(value)
        if failure is not None:
            return failure
    return None
