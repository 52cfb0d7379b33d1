"""Default scrubbing of secrets and personal data in captured text.

Each pattern is a named unit with the reason it exists; all are combined into
one compiled regex so a captured text is scanned once.
"""

from __future__ import annotations

import re

__all__ = ["default_redactor", "truncate", "utf8_text"]

_PATTERNS: dict[str, str] = {
    # "Authorization: Bearer <token>" and bare "Bearer <token>": the token is
    # a credential whatever its format, so everything after Bearer goes.
    "bearer": r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}",
    # Provider API keys (sk-..., sk-proj-..., sk-ant-...): recognisable by
    # prefix; the length floor avoids eating words such as "sk-learn".
    "sk_key": r"\bsk-[A-Za-z0-9_-]{16,}",
    # Cloud access key ids (AKIA...) and Google API keys (AIza...).
    "aws_key": r"\bAKIA[0-9A-Z]{16}\b",
    "google_key": r"\bAIza[0-9A-Za-z_-]{35}\b",
    # key=value style secrets in query strings / config dumps; the value is
    # replaced, the key kept so the text still reads.
    "kv_secret": r"(?i:(?<=api_key=)|(?<=apikey=)|(?<=token=)|(?<=password=)|(?<=secret=))"
    r"[^\s&\"']+",
    # E-mail addresses: personal data; the domain is not kept either.
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
}

_COMBINED = re.compile("|".join(f"(?P<{name}>{rx})" for name, rx in _PATTERNS.items()))

_REPLACEMENT = {
    "bearer": "Bearer [REDACTED]",
    "sk_key": "[REDACTED_KEY]",
    "aws_key": "[REDACTED_KEY]",
    "google_key": "[REDACTED_KEY]",
    "kv_secret": "[REDACTED]",
    "email": "[REDACTED_EMAIL]",
}


def _replace(match: re.Match[str]) -> str:
    return _REPLACEMENT[match.lastgroup or "kv_secret"]


def default_redactor(text: str) -> str:
    """Scrub API keys, bearer tokens, key=value secrets and e-mail addresses."""
    return _COMBINED.sub(_replace, text)


def truncate(text: str, limit: int) -> str:
    """Bound ``text`` to ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"…[truncated {len(text) - limit} chars]"


def utf8_text(text: str) -> str:
    """``text`` as OTLP can carry it: lone surrogates written as ``\\udcff``.

    Text decoded with ``surrogateescape`` (file names, ``sys.argv``, a
    subprocess's output) or a JSON body holding half an emoji (``"\\ud83d"``)
    has code points UTF-8 cannot encode. One of them in a span's status
    would make the whole export batch fail to encode, the other calls'
    spans with it. Any other text is returned as it is (the same object).
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
