"""The conservative refusal-text detector, shared by the SDK and the collector.

The SDK runs it on a call's output (unless ``configure(refusal_detector=False)``);
the collector runs the same detector on spans from other instrumentations,
so a refusal is recognised the same way whichever side sees it first.
"""

from __future__ import annotations

import re

__all__ = ["MAX_CHARS", "looks_like_refusal"]

#: Texts longer than this are answers, even if they open with an apology.
MAX_CHARS = 400

# Only short texts that *open* with a first-person apology plus inability.
# Phrases inside longer answers ("I can't guarantee ...") are deliberately not
# matched: a false refusal would invent a failure mode.
_PATTERN = re.compile(
    r"^\s*(?:(?:i['’]?m|i am) sorry|sorry|i apologi[sz]e|unfortunately)?[,.!]?\s*"
    r"(?:but\s+)?(?:as an ai[^,.]*,\s*)?"
    r"(?:i\s+(?:can(?:no|['’])?t|cannot|won['’]?t|will\s+not|must\s+decline)"
    r"|i(?:['’]m|\s+am)\s+(?:not\s+able|unable))"
    r"\s+(?:to\s+)?"
    r"(?:do\s+(?:that|this|it)\b"
    r"|(?:help|assist|comply|provide|fulfill?|answer|create|generate|support|engage|continue|"
    r"write|share)"
    # The declining verb must end the clause or take the request as its
    # object: "I can't help but notice ..." and "I cannot answer faster than
    # this, but ..." go on to answer, and are not refusals.
    r"(?:\s*(?:[.,;:!?—–]|$)"
    r"|\s+(?:with|that|this|it|you|your|the|such|any|anything|these|those|them|here)\b))",
    re.IGNORECASE,
)


def looks_like_refusal(text: str) -> bool:
    """Whether ``text`` is a short reply that opens by declining the request."""
    return len(text) <= MAX_CHARS and _PATTERN.match(text) is not None
