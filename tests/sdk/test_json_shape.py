"""The shape of a text that should be JSON, as the SDK and the collector name it."""

from __future__ import annotations

import json

import pytest
from faultprint.json_shape import NOT_JSON, NotJSONConstant, OutputShape, json_shape, loads
from hypothesis import given
from hypothesis import strategies as st

DOCUMENTS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
OBJECTS = st.dictionaries(st.text(max_size=8), DOCUMENTS, min_size=1, max_size=4)


@given(st.text(max_size=300))
def test_any_text_has_a_shape(text):
    assert json_shape(text) in {*NOT_JSON, OutputShape.VALID_JSON, OutputShape.EMPTY}


@given(OBJECTS)
def test_a_json_object_is_valid_and_its_cut_is_truncated(doc):
    text = json.dumps(doc)
    assert json_shape(text) == OutputShape.VALID_JSON
    assert json_shape(text[:-1]) == OutputShape.TRUNCATED_JSON
    assert json_shape(f"```json\n{text}\n```") == OutputShape.WRAPPED_JSON


@given(OBJECTS, st.sampled_from(["Here it is: ", "Sure! "]), st.sampled_from(["", " Thanks."]))
def test_a_json_object_in_prose_is_wrapped(doc, before, after):
    text = json.dumps(doc)
    assert json_shape(f"{before}{text}{after}") == OutputShape.WRAPPED_JSON
    assert json_shape(f"{text} Hope this helps!") == OutputShape.WRAPPED_JSON


def test_the_shapes_of_common_failures():
    assert json_shape("  ") == OutputShape.EMPTY
    assert json_shape("The order total is 12 dollars.") == OutputShape.PROSE
    assert json_shape('{"a": 1,, "b": 2}') == OutputShape.MALFORMED_JSON
    assert json_shape('```json\n{"a": [1, 2') == OutputShape.TRUNCATED_JSON
    assert json_shape('Here you go: {"a": [1, 2') == OutputShape.TRUNCATED_JSON


@given(OBJECTS, st.sampled_from([float("nan"), float("inf"), float("-inf")]))
def test_nan_and_infinity_make_malformed_json(doc, constant):
    """Python's json writes and reads them; JSON has none (strict parsers refuse them)."""
    text = json.dumps({**doc, "value": constant})
    assert json_shape(text) == OutputShape.MALFORMED_JSON
    with pytest.raises(NotJSONConstant):
        loads(text)
    assert loads(json.dumps(doc)) == doc
