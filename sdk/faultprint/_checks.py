"""Output checks declared with ``@observe(expect=..., json=True)``.

A check returns ``None`` when the output passes, else a ``CheckFailure``
whose ``detail`` is the agreed JSON shape::

    {"validator": "pydantic" | "jsonschema" | "json" | "callable",
     "errors": [{"kind": "missing", "path": "items.*.price", "message": "Field required"}]}

``kind`` is the validator's own error kind (pydantic error ``type``,
jsonschema keyword, ``json_decode``); list indices in paths become ``*`` so
that the same mistake at a different position is the same failure mode.
pydantic and jsonschema are imported only when such a check is declared.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["CheckFailure", "build_checks", "generalise_path"]

_MAX_ERRORS = 20


class CheckFailure:
    """A failed output check: structured detail plus a short message."""

    __slots__ = ("detail", "message")

    def __init__(self, validator: str, errors: list[dict[str, str]]) -> None:
        errors = errors[:_MAX_ERRORS]
        self.detail: dict[str, Any] = {"validator": validator, "errors": errors}
        first = errors[0] if errors else {"kind": "invalid", "path": "", "message": "invalid"}
        where = f"{first['path']}: " if first["path"] else ""
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        self.message = f"{validator} check failed: {where}{first['message']}{more}"


Check = Callable[[Any], "CheckFailure | None"]


def generalise_path(parts: Iterable[Any]) -> str:
    """``("items", 3, "price")`` → ``"items.*.price"``."""
    return ".".join("*" if isinstance(p, int) else str(p) for p in parts)


def _json_failure(exc: json.JSONDecodeError) -> CheckFailure:
    return CheckFailure("json", [{"kind": "json_decode", "path": "", "message": exc.msg}])


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
            errors = [
                {
                    "kind": str(err.get("type", "invalid")),
                    "path": generalise_path(err.get("loc", ())),
                    "message": str(err.get("msg", "")),
                }
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
                    errors.append(
                        {
                            "kind": "required",
                            "path": generalise_path([*path, prop] if prop else path),
                            "message": f"{prop!r} is a required property" if prop else err.message,
                        }
                    )
                continue
            errors.append(
                {
                    "kind": str(err.validator),
                    "path": generalise_path(path),
                    "message": err.message[:300],
                }
            )
        if not errors:
            return None
        # Deduplicate: the same required property missing in every list item
        # is one mistake once indices are generalised.
        unique = list({(e["kind"], e["path"]): e for e in errors}.values())
        unique.sort(key=lambda e: (e["path"], e["kind"]))
        return CheckFailure("jsonschema", unique)

    return check


def _callable_check(fn: Callable[[Any], Any]) -> Check:
    name = getattr(fn, "__qualname__", type(fn).__name__)

    def check(value: Any) -> CheckFailure | None:
        try:
            verdict = fn(value)
        except Exception as exc:
            kind = type(exc).__name__
            return CheckFailure("callable", [{"kind": kind, "path": "", "message": str(exc)}])
        if verdict is False:
            return CheckFailure(
                "callable", [{"kind": "rejected", "path": "", "message": f"{name} returned False"}]
            )
        if isinstance(verdict, str) and verdict:
            return CheckFailure("callable", [{"kind": "rejected", "path": "", "message": verdict}])
        return None

    return check


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
