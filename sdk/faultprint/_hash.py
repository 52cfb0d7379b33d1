"""Input hash: xxh3-64 of a canonical form of a call's arguments.

The canonical form is compact JSON with sorted keys. Values JSON cannot
encode are reduced to something stable: pydantic models and dataclasses to
their fields, bytes to their own hash, sets to sorted lists, and any other
object to its type name only, because reprs carry memory addresses and would
make every call look new (``self`` of a method is such an object).
"""

from __future__ import annotations

import dataclasses
import enum
import json
from json.encoder import encode_basestring
from typing import Any

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
# canonical() handles) at less than half the cost per call.
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


def canonical(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """Canonical text of positional and keyword arguments."""
    try:
        return _encode([args, kwargs] if kwargs else args)
    except Exception:
        # Unsortable mixed-type keys, circular structures, failing dumps:
        # fall back to type names so hashing never fails.
        reduced = ",".join(_reduced(a) for a in args)
        return f"[[{reduced}],{_ENCODER.encode(sorted(kwargs))}]"


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
    return _xxh(canonical(args, kwargs).encode("utf-8", "surrogatepass"))
