"""Input hash: xxh3-64 of a canonical form of a call's arguments.

The canonical form is compact JSON with sorted keys. Values JSON cannot
encode are reduced to something stable: pydantic models and dataclasses to
their fields, bytes to their own hash, sets to sorted lists, UUIDs to their
text, and any other object to its type name only, because reprs carry memory
addresses and would make every call look new (``self`` of a method is such
an object).

orjson writes it: a fifth of the json module's cost, on the calling thread
of every model call. Its text is the json module's (``json.dumps`` with
sorted keys, compact separators, ``ensure_ascii=False``), and so are the
hashes of earlier releases, except for floats below 1e-4 in magnitude,
which it writes in its own notation (``1e-05`` as ``0.00001``, ``1e-07`` as
``1e-7``), and NaN and the infinities, which it writes as ``null``. What
orjson refuses (integers beyond 64 bits, keys that are not strings, lone
surrogates, nesting deeper than 254) the json module writes.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import uuid
from json.encoder import encode_basestring
from typing import Any

import orjson
import xxhash

__all__ = ["canonical", "input_hash"]

_xxh = xxhash.xxh3_64_hexdigest


def _default(obj: Any) -> Any:
    dump = getattr(obj, "model_dump", None)
    if dump is not None and callable(dump):
        try:
            return dump(mode="json")
        except Exception:
            pass
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        # Its fields as they are, not dataclasses.asdict(): that deep-copies
        # every value, which fails on a field holding a lock or a client and
        # costs a copy of all the data a method's ``self`` holds. The encoder
        # reaches nested dataclasses through this function again, so the
        # text is the same as asdict's.
        return {field.name: getattr(obj, field.name) for field in dataclasses.fields(obj)}
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"$bytes": _xxh(bytes(obj))}
    if isinstance(obj, (set, frozenset)):
        return sorted(_ENCODER.encode(x) for x in obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, uuid.UUID):
        return str(obj)  # as orjson writes it
    isoformat = getattr(obj, "isoformat", None)
    if isoformat is not None and callable(isoformat):
        return isoformat()
    return _type_name(obj)


def _type_name(obj: Any) -> str:
    cls = type(obj)
    return f"<{cls.__module__}.{cls.__qualname__}>"


_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
)
# The C encoder that _ENCODER.encode() builds on every call, built once: the
# same text (check_circular off: a cycle raises RecursionError, which
# _canonical_bytes() handles) at less than half the cost per call.
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_c_encode = (
    _c_make_encoder(None, _default, encode_basestring, None, ":", ",", True, False, True)
    if _c_make_encoder is not None
    else None
)


def _encode(obj: Any) -> str:
    if _c_encode is not None:
        return "".join(_c_encode(obj, 0))
    return _ENCODER.encode(obj)  # an interpreter without the C accelerator


#: sorted keys; dataclasses and datetimes reduced by ``_default``, as the
#: json module has them reduced
_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
)


def _orjson_default(obj: Any) -> Any:
    """``_default`` for orjson, which leaves two more kinds to it than json does."""
    if isinstance(obj, tuple):
        return list(obj)  # a named tuple: json writes it as a list
    if isinstance(obj, float):
        return float(obj)  # a float subclass (numpy.float64): json writes its value
    return _default(obj)


def _canonical_bytes(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    """The canonical form of positional and keyword arguments, UTF-8 encoded."""
    value = [args, kwargs] if kwargs else args
    try:
        return orjson.dumps(value, default=_orjson_default, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: a value orjson refuses
        pass
    try:
        return _encode(value).encode("utf-8", "surrogatepass")
    except Exception:
        # Unsortable mixed-type keys, circular structures, failing dumps:
        # fall back to type names so hashing never fails.
        reduced = ",".join(_reduced(a) for a in args)
        return f"[[{reduced}],{_ENCODER.encode(sorted(kwargs))}]".encode("utf-8", "surrogatepass")


def canonical(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """Canonical text of positional and keyword arguments."""
    return _canonical_bytes(args, kwargs).decode("utf-8", "surrogatepass")


def _reduced(arg: Any) -> str:
    """The text of what ``_default`` makes of an argument, or of its type
    name when that cannot be encoded either."""
    try:
        # check_circular on: a cycle (a dataclass holding itself) is found at
        # its first repeat instead of at the recursion limit.
        return _ENCODER.encode(_default(arg))
    except Exception:
        return _ENCODER.encode(_type_name(arg))


def input_hash(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """16 hex digits identifying the arguments (same input → same hash)."""
    if not kwargs and len(args) == 1 and type(args[0]) is str:
        # The commonest model-call shape, one prompt string: skip JSON.
        # The \x00 prefix keeps this form apart from any JSON text.
        return _xxh(b"\x00" + args[0].encode("utf-8", "surrogatepass"))
    return _xxh(_canonical_bytes(args, kwargs))


def hash_and_text(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str]:
    """``(input_hash(args, kwargs), canonical(args, kwargs))``, the arguments encoded once.

    For a call whose input is captured as well as hashed.
    """
    if not kwargs and len(args) == 1 and type(args[0]) is str:
        return input_hash(args, kwargs), canonical(args, kwargs)  # one prompt: hashed as text
    data = _canonical_bytes(args, kwargs)
    return _xxh(data), data.decode("utf-8", "surrogatepass")
