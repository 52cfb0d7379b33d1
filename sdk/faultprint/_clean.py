"""Which span attributes OpenTelemetry stores exactly as they are given.

Shared by faultprint's span class, which checks what it is handed, and by the
code that builds a call's attributes once and can say then that its spans
need no check. Light: importing it loads nothing of OpenTelemetry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["all_clean"]

#: value types stored as they are, besides text (which a length limit may cut)
_SCALARS = frozenset({bool, int, float})


def all_clean(attributes: Mapping[str, Any], max_len: int | None) -> bool:
    """True when every key and value is stored as given (the common case, checked fast).

    ``max_len`` is the span limits' attribute length (None: no limit).
    """
    for key, value in attributes.items():
        if type(key) is not str or not key:
            return False
        kind = type(value)
        if kind is str:
            if max_len is not None and len(value) > max_len:
                return False
        elif kind is tuple:  # finish reasons: a tuple of str
            for item in value:
                if type(item) is not str or (max_len is not None and len(item) > max_len):
                    return False
        elif kind not in _SCALARS:
            return False
    return True
