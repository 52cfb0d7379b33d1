"""Output checks declared with ``@observe(expect=..., json=True)``.

A check returns ``None`` when the output passes, else a ``CheckFailure``
whose ``detail(capture)`` is the agreed JSON shape::

    {"validator": "pydantic" | "jsonschema" | "json" | "callable",
     "errors": [{"kind": "missing", "path": "items.*.price", "message": "Field required"}]}

``kind`` is the validator's own error kind (pydantic error ``type``,
jsonschema keyword, ``json_decode``), or ``no_output`` for a call that
returned None; list indices in paths become ``*`` so that the same mistake
at a different position is the same failure mode (so do the keys of an
object a JSON schema does not name: the output chose them). Type expressions
(``list[Item]``, ``dict[str, int]``, ``Literal[...]``) are validated by
pydantic, as models are, and reported as ``pydantic``.
Validators' messages may quote the value that failed ("'jane@corp.com' is
not of type 'integer'"): they are recorded only when content capture is on
(redacted and bounded); with it off an error keeps its kind and path, and a
message only when faultprint words it from the schema or the parser, never
from the value. pydantic and jsonschema are imported only when such a check
is declared.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from faultprint._capture import captured
from faultprint.json_shape import NotJSONConstant, OutputShape, json_shape, loads

__all__ = [
    "Check",
    "CheckError",
    "CheckFailure",
    "build_checks",
    "generalise_path",
    "no_output",
    "pydantic_errors",
    "run_checks",
    "schema_named_loc",
    "schema_named_path",
]

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


class Check(NamedTuple):
    """One declared output check: the validator it names and the function running it."""

    validator: str
    #: the output -> None when it passes, else the failure
    run: Callable[[Any], CheckFailure | None]


#: a check's function, before build_checks names its validator
_CheckFn = Callable[[Any], "CheckFailure | None"]


def generalise_path(parts: Iterable[Any]) -> str:
    """``("items", 3, "price")`` → ``"items.*.price"``."""
    return ".".join("*" if isinstance(p, int) else str(p) for p in parts)


def schema_named_path(path: Iterable[Any], schema_path: Iterable[Any]) -> list[Any]:
    """A jsonschema error's instance path with only the keys its schema names.

    ``path`` and ``schema_path`` are the error's (both absolute or both
    relative). A key the schema names under ``properties`` is the schema's;
    any other (one ``additionalProperties`` or ``patternProperties`` matched)
    was chosen by the output, and is replaced by ``*`` as list indices are:
    it may be the output's content ({"jane@corp.com": ...}), and the same
    mistake under another key is the same failure mode.
    """
    steps = list(schema_path)
    named = {steps[i + 1] for i, step in enumerate(steps[:-1]) if step == "properties"}
    return [p if isinstance(p, str) and p in named else "*" for p in path]


#: how an output that is not the JSON document it should be reads, by its shape
#: (the collector describes these modes in the same words)
_SHAPE_WORDS = {
    OutputShape.TRUNCATED_JSON: "JSON output cut off before its end",
    OutputShape.WRAPPED_JSON: "JSON output wrapped in other text",
    OutputShape.PROSE: "prose where JSON was expected",
    OutputShape.MALFORMED_JSON: "malformed JSON",
}


def _shape_error(text: str, message: str, plain: str | None) -> CheckError:
    """The error of ``text``, which should be a JSON document and is not.

    Its kind is the text's shape (``truncated_json``, ``wrapped_json``,
    ``prose``, ``malformed_json``: each a failure mode of its own), named
    without recording the text; ``message`` is the parser's, ``plain`` the
    part of it that quotes nothing of the text.
    """
    shape = json_shape(text)
    words = _SHAPE_WORDS.get(shape)
    if words is None:
        return CheckError("json_decode", "", message, plain)
    return CheckError(shape, "", f"{words}: {message}", f"{words}: {plain}" if plain else words)


def _json_failure(exc: ValueError, text: str) -> CheckFailure:
    # The parser's message names the syntax error and where, never the text;
    # NotJSONConstant's names the constant (NaN, Infinity, -Infinity).
    return CheckFailure("json", [_shape_error(text, str(exc), str(exc))])


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
        loads(text)
    except (json.JSONDecodeError, NotJSONConstant) as exc:
        return _json_failure(exc, text)
    return None


#: pydantic core schemas that wrap one inner schema under ``schema`` and add
#: nothing to an error's location
_PYDANTIC_WRAPPERS = frozenset(
    {"nullable", "default", "function-before", "function-after", "function-wrap", "model"}
)
#: the most schemas a location is walked through (a recursive model's error
#: is as deep as the output)
_MAX_SCHEMA_STEPS = 256


def _field_named(fields: Iterable[tuple[str, Any]], part: Any) -> Any:
    """The field schema whose name or validation alias is ``part``; None if none is."""
    for name, field in fields:
        alias = field.get("validation_alias")
        if part in (name, alias):
            return field.get("schema")
        if isinstance(alias, list) and any(
            isinstance(path, list) and path and path[0] == part for path in alias
        ):
            return field.get("schema")
    return None


def _union_choice(choices: list[Any], label: Any, definitions: dict[str, Any]) -> Any:
    """The union choice pydantic labels ``label`` in a location; None when not known."""
    for choice in choices:
        if isinstance(choice, tuple):
            if choice[1] == label:
                return choice[0]
            continue
        if choice.get("type") == "definition-ref":
            choice = definitions.get(choice.get("schema_ref")) or {}
        if choice.get("type") in ("model", "dataclass", "typed-dict"):
            cls = choice.get("cls")
            if getattr(cls, "__name__", None) == label:
                return choice
        elif choice.get("type") == label:  # a scalar: "int", "str", "bool"...
            return choice
    return None


def schema_named_loc(schema: Any, loc: Iterable[Any]) -> list[Any]:
    """A pydantic error's location with only the names the core schema gives it.

    Walks ``loc`` down ``schema`` (a ``__pydantic_core_schema__``): field
    names and aliases, union labels and discriminator tags are the schema's
    and stay; a dict's key, an undeclared extra field's name and a list
    index were chosen by the output and become ``*`` (a key may be the
    output's content, ``{"jane@corp.com": ...}``, and the same mistake under
    another key is the same failure mode). Where the schema is not one this
    walk knows, the rest of the location becomes ``*``.
    """
    parts = list(loc)
    out: list[Any] = []
    definitions: dict[str, Any] = {}
    node = schema
    i = steps = 0
    while i < len(parts):
        steps += 1
        kind = node.get("type") if isinstance(node, dict) and steps < _MAX_SCHEMA_STEPS else None
        part = parts[i]
        if kind == "definitions":
            for definition in node.get("definitions", ()):
                definitions[definition.get("ref")] = definition
            node = node.get("schema")
        elif kind == "definition-ref":
            node = definitions.get(node.get("schema_ref"))
        elif kind in _PYDANTIC_WRAPPERS or kind == "dataclass":
            node = node.get("schema")
        elif kind == "lax-or-strict":
            node = node.get("lax_schema")
        elif kind == "json-or-python":
            node = node.get("python_schema")
        elif kind in ("model-fields", "typed-dict", "dataclass-args"):
            fields = node.get("fields") or {}
            named = fields.items() if isinstance(fields, dict) else [(f["name"], f) for f in fields]
            inner = _field_named(named, part)
            out.append(part if inner is not None else "*")
            node = inner if inner is not None else node.get("extras_schema")
            i += 1
        elif kind in ("list", "set", "frozenset", "generator"):
            out.append("*")
            node = node.get("items_schema")
            i += 1
        elif kind == "tuple":
            items = node.get("items_schema") or []
            index = part if isinstance(part, int) else 0
            variadic = node.get("variadic_item_index")
            if variadic is not None and index >= variadic:
                index = variadic
            out.append("*")
            node = items[index] if 0 <= index < len(items) else None
            i += 1
        elif kind == "dict":
            if i + 1 < len(parts) and parts[i + 1] == "[key]":
                out += ["*", "[key]"]
                node = node.get("keys_schema")
                i += 2
            else:
                out.append("*")
                node = node.get("values_schema")
                i += 1
        elif kind == "union":
            out.append(part)  # a label pydantic makes from the schema
            node = _union_choice(node.get("choices") or [], part, definitions)
            i += 1
        elif kind == "tagged-union":
            choices = node.get("choices") or {}
            out.append(part if part in choices else "*")  # a discriminator's tag
            node = choices.get(part)
            i += 1
        else:  # a schema this walk does not know, or none: nothing more is named
            out += ["*"] * (len(parts) - i)
            break
    return out


def _not_json(exc: Any) -> str | None:
    """pydantic's message when ``exc`` says only that a text is not JSON at all."""
    errors = exc.errors(include_url=False, include_input=False)
    if len(errors) == 1 and errors[0].get("type") == "json_invalid" and not errors[0].get("loc"):
        return str(errors[0].get("msg", ""))
    return None


def _pydantic_failure(exc: Any, schema: Any, text: str | None) -> CheckFailure:
    """The failure of a pydantic check: a text that is no JSON by its shape,
    anything else by pydantic's errors."""
    message = _not_json(exc) if text is not None else None
    if text is not None and message is not None:
        return CheckFailure("pydantic", [_shape_error(text, message, None)])
    return CheckFailure("pydantic", pydantic_errors(exc, schema))


#: pydantic error kinds of a type that wants a structure, not a word
_STRUCTURE_KINDS = frozenset(
    {
        "model_type",
        "model_attributes_type",
        "dict_type",
        "list_type",
        "tuple_type",
        "set_type",
        "frozen_set_type",
        "dataclass_type",
        "iterable_type",
    }
)


def pydantic_errors(exc: Any, schema: Any = None) -> list[CheckError]:
    """A pydantic ``ValidationError``'s errors: kind, generalised path, message.

    With ``schema`` (the validated type's core schema), a path keeps only
    the names the schema gives it (:func:`schema_named_loc`); without,
    list indices become ``*``. Read with ``include_input=False``: the input
    is never copied out. The messages themselves may still quote it (a
    custom validator's "Value error, ...", a union tag): none is taken as plain.
    """
    errors = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = err.get("loc", ())
        if schema is not None:
            try:
                loc = schema_named_loc(schema, loc)
            except Exception:  # a schema of a shape not foreseen: nothing is named
                loc = ["*"] * len(loc)
        kind = str(err.get("type", "invalid"))
        errors.append(CheckError(kind, generalise_path(loc), str(err.get("msg", ""))))
    return errors


def _pydantic_check(model: Any) -> _CheckFn:
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
            return _pydantic_failure(exc, model.__pydantic_core_schema__, text)
        return None

    return check


def _is_type_form(expect: Any) -> bool:
    """A type expression that is not a class: ``list[Item]``, ``typing.List[Item]``,
    ``int | None``, ``Optional[...]``, ``Literal[...]``, ``Annotated[...]``, a
    ``NewType``, a ``type X = ...`` alias.

    Several are callable (``list[Item]("text")`` builds a list, a ``NewType``
    returns its argument): taken for callables, they would pass every output.
    """
    if typing.get_origin(expect) is not None:
        return True
    alias = getattr(typing, "TypeAliasType", None)  # Python 3.12+
    return isinstance(expect, typing.NewType) or (alias is not None and isinstance(expect, alias))


def _type_adapter(expect: Any) -> Any:
    """pydantic's ``TypeAdapter`` for ``expect`` when it is a type pydantic validates.

    None when ``expect`` is no type expression, or a class pydantic knows no
    schema for (its constructor is then the check: a callable, as before
    type expressions were read). A type expression pydantic cannot use
    raises ``TypeError`` with pydantic's reason, and, without pydantic, any
    type expression but such a class raises ``ImportError``.
    """
    is_class = isinstance(expect, type)
    if not is_class and not _is_type_form(expect):
        return None
    callable_class = is_class and expect.__module__ != "builtins" and not _declares_data(expect)
    try:
        from pydantic import PydanticSchemaGenerationError, TypeAdapter
    except ImportError as exc:
        if callable_class:
            return None
        raise ImportError(
            f"expect={expect!r} (a type) needs the 'pydantic' package: pip install pydantic"
        ) from exc
    try:
        return TypeAdapter(expect)
    except PydanticSchemaGenerationError as exc:
        if callable_class:
            return None
        reason = str(exc).split(". ", 1)[0]
        raise TypeError(f"expect={expect!r}: pydantic cannot validate it ({reason})") from exc
    except Exception as exc:  # a TypedDict of the wrong module, an unresolved name, ...
        reason = str(exc).split("\n", 1)[0]
        raise TypeError(f"expect={expect!r}: pydantic cannot validate it ({reason})") from exc


def _declares_data(cls: type) -> bool:
    """A class that only declares the shape of data: its constructor checks nothing."""
    import dataclasses

    return (
        typing.is_typeddict(cls)
        or dataclasses.is_dataclass(cls)
        or (issubclass(cls, tuple) and hasattr(cls, "_fields"))  # a NamedTuple
    )


def _adapter_check(adapter: Any) -> _CheckFn:
    from pydantic import ValidationError

    def check(value: Any) -> CheckFailure | None:
        text = _as_text(value)
        try:
            if text is None:
                adapter.validate_python(value)
            else:
                adapter.validate_json(text)
        except ValidationError as exc:
            if text is not None:
                # A text that is the value's own text form passes too: an
                # enum's value ("positive"), a Literal's word, a UUID, a date,
                # any text for ``str``, none of which a model writes as JSON.
                # Containers and models have no text form: their text must
                # be JSON, and its errors are the ones recorded.
                try:
                    adapter.validate_strings(text)
                except ValidationError as as_text:
                    if _not_json(exc) is not None and not any(
                        e.get("type") in _STRUCTURE_KINDS
                        for e in as_text.errors(include_url=False, include_input=False)
                    ):
                        # Not JSON, and the type wants a word: the word was wrong
                        # ("maybe" for Literal["yes", "no"]), not its JSON.
                        return CheckFailure(
                            "pydantic", pydantic_errors(as_text, adapter.core_schema)
                        )
                    return _pydantic_failure(exc, adapter.core_schema, text)
                return None
            return _pydantic_failure(exc, adapter.core_schema, text)
        return None

    return check


def _schema_check(schema: dict[str, Any]) -> _CheckFn:
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
                value = loads(text)
            except (json.JSONDecodeError, NotJSONConstant) as exc:
                return _json_failure(exc, text)
        errors = []
        for err in validator.iter_errors(value):
            path = schema_named_path(err.absolute_path, err.absolute_schema_path)
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


def _callable_check(fn: Callable[[Any], Any]) -> _CheckFn:
    name = getattr(fn, "__qualname__", type(fn).__name__)

    # The contract: raising, or returning False, says the output is invalid;
    # any other return value says it is valid. A validator that returns the
    # value it validated or cleaned (``json.loads``, ``str.strip``, a
    # parser) is then a check as it stands, whatever that value is.
    # An exception's message may quote the output; the plain message says
    # only which check said no.
    def check(value: Any) -> CheckFailure | None:
        try:
            verdict = fn(value)
        except Exception as exc:
            kind = type(exc).__name__
            return CheckFailure(
                "callable", [CheckError(kind, "", _exc_text(exc), f"{name} raised {kind}")]
            )
        if verdict is False or _numpy_false(verdict):
            returned = f"{name} returned False"
            return CheckFailure("callable", [CheckError("rejected", "", returned, returned)])
        return None

    return check


def _numpy_false(verdict: Any) -> bool:
    # A predicate written with numpy (``np.all(...)``) returns numpy's bool,
    # which is not ``False``; recognised by name so that numpy is not imported.
    return type(verdict).__name__ == "bool_" and not verdict


def _exc_text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return type(exc).__name__


def build_checks(expect: Any, json_required: bool) -> list[Check]:
    """Checks for ``expect`` / ``json``; raises ``TypeError`` on an unusable ``expect``.

    ``expect`` is a pydantic model class, a JSON schema (dict), a type
    expression pydantic validates (``list[Item]``, ``dict[str, int]``,
    ``int``, ``Literal["yes", "no"]``, a TypedDict, a dataclass, an enum...),
    or a callable (invalid when it raises or returns False).
    """
    checks: list[Check] = []
    if json_required:
        checks.append(Check("json", _json_check))
    if expect is None:
        return checks
    if isinstance(expect, type) and hasattr(expect, "model_validate_json"):
        checks.append(Check("pydantic", _pydantic_check(expect)))
    elif isinstance(expect, dict):
        checks.append(Check("jsonschema", _schema_check(expect)))
    elif (adapter := _type_adapter(expect)) is not None:
        checks.append(Check("pydantic", _adapter_check(adapter)))
    elif callable(expect):
        checks.append(Check("callable", _callable_check(expect)))
    else:
        raise TypeError(
            "expect= takes a pydantic model class, a JSON schema dict, a type "
            f"(list[Item], dict[str, int], ...) or a callable, got {type(expect).__name__}"
        )
    return checks


def run_checks(checks: list[Check], value: Any) -> CheckFailure | None:
    """First failing check's result, or None."""
    for check in checks:
        failure = check.run(value)
        if failure is not None:
            return failure
    return None


#: the one error of a call that returned nothing to check
_NO_OUTPUT = CheckError("no_output", "", "no output", "no output")


def no_output(checks: list[Check]) -> CheckFailure:
    """The failure of a call that returned None where a check expected an output.

    A chat completion's ``message.content`` is None for a refusal or a reply
    that only calls tools: an application returning it has no output to
    show for the call. Named after the first check declared.
    """
    return CheckFailure(checks[0].validator, [_NO_OUTPUT])
