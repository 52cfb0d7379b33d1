"""Content capture: whether a call may record content, and the form it records.

Content is what the application and the model exchanged: the prompt, the
output text, a provider's refusal text, values quoted by a validator from
the output or from tool arguments. It reaches a span (as an attribute, in a
failure message or detail, in the status description) only when capture is
enabled for the call, and then only through :func:`captured`: redacted,
then bounded. With capture off, failures are described by what kind of
failure they are and where (validator kind, generalised path, refusal
source), never by the content.
"""

from __future__ import annotations

from typing import Any

from faultprint._config import STATE
from faultprint._redact import utf8_text

__all__ = ["REDACTION_FAILED", "capture_enabled", "captured"]

#: what is recorded instead of a text whose redaction raised
REDACTION_FAILED = "[redaction failed]"

# Redaction runs before the cut, so that a secret straddling the limit is
# still recognised whole (cut first, "Bearer abcd" no longer looks like a
# token and would be kept). It runs over the limit plus this margin rather
# than the whole text: no secret pattern spans more than a few hundred
# characters, and a megabyte of output then costs what a short one does.
_REDACT_MARGIN = 1024


def capture_enabled(spec: Any) -> bool:
    """Whether the call described by ``spec`` records content.

    The decorator's ``capture_content=`` wins; ``None`` defers to ``configure()``.
    """
    capture = spec.capture_content
    return bool(capture) if capture is not None else STATE.capture_content


def captured(text: str, limit: int | None = None) -> str:
    """``text`` as it may be recorded: redacted, cut to ``limit`` characters, UTF-8.

    ``limit`` defaults to ``configure(max_content_chars=...)`` and never
    exceeds it. A redaction hook that raises, or returns something other
    than text, yields ``"[redaction failed]"``, never the unredacted text.
    """
    bound = STATE.max_content_chars if limit is None else min(limit, STATE.max_content_chars)
    end = bound + _REDACT_MARGIN
    window = text[:end]
    redact = STATE.redact
    if redact is not None:
        try:
            window = redact(window)
        except Exception:
            return REDACTION_FAILED
        if not isinstance(window, str):  # None, bytes: not a redacted text
            return REDACTION_FAILED
    dropped = len(window) - bound + max(0, len(text) - end)
    if dropped > 0:
        window = window[:bound] + f"…[truncated {dropped} chars]"
    # Half an emoji cut from a model's output would otherwise cost the whole
    # attribute (and an error in the application's logs): see utf8_text.
    return utf8_text(window)
