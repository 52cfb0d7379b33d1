"""The input hash: canonical JSON text, stable across releases, never raising."""

from __future__ import annotations

import collections
import dataclasses
import enum
import json
import threading
import uuid
from typing import Any

import xxhash
from faultprint._hash import _default, canonical, hash_and_text, input_hash
from hypothesis import given
from hypothesis import strategies as st


def _json_float(value: float) -> bool:
    """Floats whose canonical text is the json module's (see faultprint._hash)."""
    return value == 0 or abs(value) >= 1e-4


class _Color(enum.Enum):
    RED = "red"


class _Level(enum.IntEnum):
    HIGH = 3


class _Score(float):
    """A float subclass, as numpy.float64 is."""


_Pair = collections.namedtuple("_Pair", "left right")

floats = st.floats(allow_nan=False, allow_infinity=False).filter(_json_float)
#: values beyond JSON's own that arguments hold, each reduced by a rule of its own
odd_values = (
    st.datetimes()
    | st.dates()
    | st.uuids()
    | st.sampled_from([_Color.RED, _Level.HIGH])
    | floats.map(_Score)
    | st.binary(max_size=8)
    | st.frozensets(st.integers(), max_size=3)
    | st.integers(min_value=2**63, max_value=2**80)  # beyond orjson: written by json
)
argument_values = st.recursive(
    st.none() | st.booleans() | st.integers() | floats | st.text() | odd_values,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.tuples(inner, inner).map(lambda t: _Pair(*t))
        | st.dictionaries(st.text(), inner, max_size=4)
        | st.dictionaries(st.integers(), inner, min_size=1, max_size=2)
    ),  # json writes these
    max_leaves=20,
)


@given(
    st.lists(argument_values, max_size=3), st.dictionaries(st.text(), argument_values, max_size=3)
)
def test_canonical_text_is_the_json_modules_sorted_compact_text(
    args: list[Any], kwargs: dict[str, Any]
) -> None:
    """The text (and so the hash) of earlier releases, whichever encoder writes it."""
    expected = json.dumps(
        [tuple(args), kwargs] if kwargs else tuple(args),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=_default,
    )
    assert canonical(tuple(args), kwargs) == expected
    # encoded once for a call whose input is captured too: the same two answers
    both = (input_hash(tuple(args), kwargs), expected)
    assert hash_and_text(tuple(args), kwargs) == both
    if kwargs or len(args) != 1 or type(args[0]) is not str:  # one prompt: hashed as text
        assert input_hash(tuple(args), kwargs) == xxhash.xxh3_64_hexdigest(
            expected.encode("utf-8", "surrogatepass")
        )


@given(st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: not _json_float(v)))
def test_tiny_floats_keep_their_value_in_their_own_notation(value: float) -> None:
    """Below 1e-4 the text is orjson's notation (1e-05 as 0.00001): the same value."""
    text = canonical((value,), {"k": [value]})
    assert json.loads(text) == [[value], {"k": [value]}]
    assert input_hash((value,), {"k": [value]}) == input_hash((value,), {"k": [value]})


def test_uuids_are_hashed_by_value() -> None:
    first, second = uuid.UUID(int=1), uuid.UUID(int=2)
    assert canonical((first,), {}) == '["00000000-0000-0000-0000-000000000001"]'
    assert input_hash((first,), {}) != input_hash((second,), {})


def test_lone_surrogates_and_deep_nesting_are_hashed() -> None:
    """What orjson refuses, the json module writes."""
    assert canonical(("\ud800",), {}) == '["\ud800"]'
    deep: Any = "x"
    for _ in range(300):
        deep = [deep]
    assert canonical((deep,), {}) == json.dumps([deep], separators=(",", ":"))
    assert input_hash(("\ud800", 1), {}) != input_hash(("\ud801", 1), {})


def test_hash_values_are_pinned() -> None:
    """Changing these changes every stored input hash: repeats across releases break."""
    messages = [{"role": "user", "content": "Say hello"}]
    assert input_hash(({"messages": messages},), {}) == input_hash(
        ({"messages": [{"content": "Say hello", "role": "user"}]},), {}
    )
    assert input_hash(("Say hello",), {}) == "a6bc3554ff23c352"
    assert input_hash(({"messages": messages},), {}) == "081a80b5bcb65f9f"


def test_cycles_and_odd_objects_do_not_raise() -> None:
    loop: list[Any] = []
    loop.append(loop)
    mapping: dict[str, Any] = {"a": 1}
    mapping["self"] = mapping
    assert len(input_hash((loop,), {})) == 16
    assert len(input_hash((mapping,), {"k": {1, 2}})) == 16
    assert input_hash((object(),), {}) == input_hash((object(),), {})
    for args, kwargs in (((loop,), {}), ((mapping,), {"k": {1, 2}}), (("one prompt",), {})):
        assert hash_and_text(args, kwargs) == (input_hash(args, kwargs), canonical(args, kwargs))


@dataclasses.dataclass
class _Document:
    id: int
    tags: tuple[str, ...]


class _Client:
    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        raise TypeError("cannot copy a client")


@dataclasses.dataclass
class _Retriever:
    """A method's ``self``: data beside a lock and a client nothing can copy."""

    docs: list[_Document]
    lock: Any = dataclasses.field(default_factory=threading.Lock)
    client: Any = None


def test_dataclass_fields_are_read_not_copied() -> None:
    retriever = _Retriever([_Document(1, ("a",))], client=_Client())
    assert canonical((retriever, "q"), {}) == (
        '[{"client":"<tests.sdk.test_hash._Client>","docs":[{"id":1,"tags":["a"]}],'
        '"lock":"<_thread.lock>"},"q"]'
    )
    # Same data, another lock and client: the same input.
    same = _Retriever([_Document(1, ("a",))], client=_Client())
    other = _Retriever([_Document(2, ("a",))], client=_Client())
    assert input_hash((retriever, "q"), {}) == input_hash((same, "q"), {})
    assert input_hash((retriever, "q"), {}) != input_hash((other, "q"), {})


def test_nested_dataclasses_read_as_asdict_reads_them() -> None:
    """Stored hashes of dataclass arguments keep their meaning."""
    value = _Retriever([_Document(1, ("a", "b")), _Document(2, ())], lock=None)
    expected = json.dumps(
        [[dataclasses.asdict(value)], {"k": dataclasses.asdict(_Document(3, ("c",)))}],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert canonical((value,), {"k": _Document(3, ("c",))}) == expected


@dataclasses.dataclass
class _Node:
    children: list[Any]


def test_a_dataclass_holding_itself_hashes_by_type_name() -> None:
    node = _Node([])
    node.children.append(node)
    expected = '[["<tests.sdk.test_hash._Node>","<builtins.str>"],["k"]]'
    assert canonical((node, "q"), {"k": 1}) == expected
    assert len(input_hash((node, "q"), {"k": 1})) == 16
