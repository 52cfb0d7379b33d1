"""The faultprint call in progress in this context (thread or task).

Its own module so that the span processors can read it without importing
the decorator's machinery.
"""

from __future__ import annotations

import contextvars
from typing import Any

__all__ = ["CURRENT_CALL"]

#: the ``faultprint._observe.Call`` whose span is current, None outside calls
CURRENT_CALL: contextvars.ContextVar[Any] = contextvars.ContextVar("faultprint_call", default=None)
