"""Hypothesis strategies shared by the property tests of the SDK and the collector."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def json_values(
    *, text: int = 40, size: int = 4, leaves: int = 20, nan: bool = True
) -> st.SearchStrategy[Any]:
    """Any JSON-like value: scalars (NaN only when ``nan``), lists and dicts of them."""
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=nan)
    return st.recursive(
        scalars | st.text(max_size=text),
        lambda children: (
            st.lists(children, max_size=size)
            | st.dictionaries(st.text(max_size=10), children, max_size=size)
        ),
        max_leaves=leaves,
    )
