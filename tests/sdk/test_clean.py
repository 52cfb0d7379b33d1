"""``faultprint._clean.all_clean`` against OpenTelemetry's own attribute cleaning."""

from __future__ import annotations

import logging
from typing import Any

from faultprint._clean import all_clean
from faultprint._observe import CallSpec
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.attributes import BoundedAttributes

_values = st.one_of(
    st.text(max_size=12),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.binary(max_size=4),
    st.tuples(st.text(max_size=12)),
    st.tuples(st.text(max_size=4), st.integers()),
    st.lists(st.text(max_size=4), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_keys = st.one_of(st.text(max_size=6), st.integers(), st.none())


@settings(max_examples=300, deadline=None)
@given(
    attributes=st.dictionaries(_keys, _values, max_size=5),
    max_len=st.one_of(st.none(), st.integers(min_value=0, max_value=10)),
)
def test_what_it_calls_clean_opentelemetry_stores_as_given(
    attributes: dict[Any, Any], max_len: int | None
) -> None:
    logging.getLogger("opentelemetry.attributes").disabled = True
    try:
        stored = dict(BoundedAttributes(None, attributes, max_value_len=max_len))
    finally:
        logging.getLogger("opentelemetry.attributes").disabled = False
    if all_clean(attributes, max_len):
        assert stored.keys() == attributes.keys()
        for key, value in attributes.items():
            assert stored[key] == value and type(stored[key]) is type(value)


def test_each_rule() -> None:
    assert all_clean({"a": "x", "b": 1, "c": 1.5, "d": True, "e": ("stop",)}, None)
    assert all_clean({}, 3)
    assert not all_clean({"": "x"}, None)  # an empty key is dropped
    assert not all_clean({1: "x"}, None)  # type: ignore[dict-item]
    assert not all_clean({"a": "long"}, 3) and all_clean({"a": "abc"}, 3)
    assert not all_clean({"a": ("stop", "long")}, 3)
    assert not all_clean({"a": ("stop", 1)}, None)
    assert not all_clean({"a": ["stop"]}, None)  # a list is stored as a tuple
    assert not all_clean({"a": None}, None)
    assert not all_clean({"a": b"x"}, None)


def test_a_call_spec_knows_whether_its_attributes_need_a_check() -> None:
    spec = CallSpec(call_site="s", model="m", provider="openai", version="v1", operation="chat")
    assert spec.base_attrs_clean
    odd: Any = ["m"]  # a list: stored as a tuple, so checked as each span starts
    spec = CallSpec(call_site="s", model=odd, provider=None, version=None, operation="chat")
    assert not spec.base_attrs_clean
