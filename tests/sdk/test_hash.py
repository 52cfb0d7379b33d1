"""The input hash: canonical JSON text, stable across releases, never raising."""

from __future__ import annotations

import json
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
