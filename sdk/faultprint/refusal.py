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
    r"|(?P<verb>help|assist|comply|provide|fulfill?|answer|create|generate|support|engage|"
    r"continue|write|share)"
    # The declining verb must end the clause or take the request as its
    # object: "I can't help but notice ..." and "I cannot answer faster than
    # this, but ..." go on to answer, and are not refusals.
    r"(?:\s*(?:[.,;:!?—–]|$)"
    r"|\s+(?P<object>with|that|this|it|you|your|the|such|any|anything|these|those|them|here)\b))",
    re.IGNORECASE,
)
#: the end of the declining clause
_CLAUSE_END = re.compile(r"[.!?;:\n]")
#: what makes the inability depend on something the user can give or wait
#: for, or on a fact: "I cannot answer that without the order number", "I
#: can't answer that yet", "I cannot generate the report because the data
#: for May is missing" are answers, not refusals
_CONDITION = re.compile(
    r"\b(?:without|yet|until|unless|because|since|before|after|if|once|when|while|due\s+to"
    r"|right\s+now|at\s+the\s+moment|for\s+now|currently)\b",
    re.IGNORECASE,
)
#: ...unless the reason given is the request itself
_POLICY = re.compile(
    r"\b(?:polic(?:y|ies)|guidelines?|harmful|illegal|unsafe|inappropriate|(?:un)?ethical"
    r"|against\s+(?:my|the|our))\b",
    re.IGNORECASE,
)
#: a reply that asks for what it needs is a question back, not a refusal
_ASKS_BACK = re.compile(
    r"\b(?:(?:could|can|would)\s+you\s+(?:please\s+)?|please\s+)"
    r"(?:share|provide|tell|give|send|clarify|confirm|specify|let\s+me\s+know)\b",
    re.IGNORECASE,
)


def looks_like_refusal(text: str) -> bool:
    """Whether ``text`` is a short reply that opens by declining the request.

    Not when the inability is conditional ("without the order number",
    "yet", "because the data is missing") unless the reason is a policy,
    when the reply asks back for what it needs, or when it promises not to
    share the user's own data.
    """
    if len(text) > MAX_CHARS:
        return False
    match = _PATTERN.match(text)
    if match is None:
        return False
    verb, obj = (match.group("verb") or "").lower(), (match.group("object") or "").lower()
    if verb == "share" and obj == "your":  # "I won't share your data with anyone"
        return False
    rest = text[match.end() :]
    end = _CLAUSE_END.search(rest)
    clause = rest[: end.start()] if end else rest
    if _CONDITION.search(clause) and not _POLICY.search(clause):
        return False
    return _ASKS_BACK.search(rest) is None
