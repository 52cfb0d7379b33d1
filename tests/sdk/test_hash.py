"""The input hash: canonical JSON text, stable across releases, never raising."""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any

from faultprint._hash import _default, canonical, input_hash
from hypothesis import given
from hypothesis import strategies as st

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.lists(json_values, max_size=3), st.dictionaries(st.text(), json_values, max_size=3))
def test_canonical_text_is_sorted_compact_json(args: list[Any], kwargs: dict[str, Any]) -> None:
    expected = json.dumps(
        [tuple(args), kwargs] if kwargs else tuple(args),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=_default,
    )
    assert canonical(tuple(args), kwargs) == expected


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
