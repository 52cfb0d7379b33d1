"""Scrubbing secrets and personal data from span text before it is stored.

Runs on the decoded span, before classification, so the stored message,
the normalised template, the fingerprint's inputs, the catalogue's example
and captured content never hold the secret. Each pattern is a named unit
with the reason it exists; all are combined into one compiled regex and a
match is replaced by ``[redacted:<name>]``, a fixed text, so two messages
that differ only in the secret still group together.

Only text-bearing attributes are scanned (messages, stack traces, captured
input and output); identifiers such as model names or call sites are not,
which keeps the hot path cheap and avoids false positives there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from faultprint_collector.ingest._spans import SpanView

#: (name, regex, literal triggers, why). A pattern runs only on text that
#: holds one of its triggers (plain substring tests, lower-cased for the
#: ``secret_assignment`` words), which keeps text without secrets cheap.
PATTERNS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    (
        "private_key",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
        ("-----BEGIN",),
        "PEM private keys pasted into errors; matched to the END line (or the end of a "
        "truncated message) so no key material survives",
    ),
    (
        "url_credentials",
        r"(?<=://)[^\s/:@]+:[^\s/@]+(?=@)",
        ("://",),
        "user:password in connection URLs (database DSNs in driver errors); the host stays",
    ),
    (
        "bearer_token",
        r"(?<=[Bb]earer )[A-Za-z0-9\-._~+/]{8,}=*",
        ("earer ",),
        "Authorization header values echoed by HTTP clients; the word Bearer stays so the "
        "template still says what was there",
    ),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        ("eyJ",),
        "JSON web tokens outside a Bearer header (cookies, query strings)",
    ),
    (
        "api_key",
        r"\b(?:sk-ant-|sk-proj-|sk-svcacct-|sk-admin-|sk-|rk-|pk-live-|sk_live_|sk_test_|"
        r"gh[pousr]_|github_pat_|xox[abprs]-|AIza|hf_|glpat-)[A-Za-z0-9_\-]{12,}",
        ("sk-", "sk_", "rk-", "pk-", "gh", "xox", "AIza", "hf_", "glpat-"),
        "provider API keys (OpenAI sk-/sk-proj-, Anthropic sk-ant-, Stripe, GitHub, Slack, "
        "Google, Hugging Face, GitLab); providers echo a wrong key in their 401 messages",
    ),
    (
        "aws_access_key",
        r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
        ("AKIA", "ASIA"),
        "AWS access key ids in boto errors",
    ),
    (
        "secret_assignment",
        r"\b(?i:api[_-]?key|access[_-]?token|secret|password|passwd|token)"
        r"[\"']?\s*[:=]\s*[\"']?(?!\[redacted)[^\s\"',;&}]{6,}",
        ("key", "token", "secret", "passw"),
        'key=value and JSON "key": "value" pairs naming a secret; the name is kept',
    ),
    (
        "email",
        # bounded repetitions: an unbounded local part is quadratic on a long
        # run of letters before a lone "@"
        r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}"
        r"\.[A-Za-z]{2,24}\b",
        ("@",),
        "personal data: end users' email addresses in prompts, outputs and messages",
    ),
)

#: attribute keys whose string values are scrubbed (exact keys)
TEXT_KEYS = frozenset(
    {
        "exception.message",
        "exception.stacktrace",
        "error.message",
        "faultprint.failure.message",
        "faultprint.failure.detail",
        "faultprint.output",
        "faultprint.input",
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "input.value",
        "output.value",
        "traceloop.entity.input",
        "traceloop.entity.output",
    }
)
#: attribute key prefixes whose values are scrubbed (indexed message lists)
TEXT_PREFIXES = (
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "llm.input_messages",
    "llm.output_messages",
    "llm.prompts",
)


class Scrubber:
    """Replaces secrets and personal data in text; ``enabled=False`` is a no-op."""

    def __init__(self, extra_patterns: Iterable[str] = (), *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._rules: list[tuple[re.Pattern[str], tuple[str, ...], bool, str]] = [
            (re.compile(regex), triggers, name == "secret_assignment", name)
            for name, regex, triggers, _ in PATTERNS
        ]
        for pattern in extra_patterns:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid scrub pattern {pattern!r}: {exc}") from exc
            self._rules.append((compiled, (), False, "custom"))

    def text(self, value: str) -> str:
        """VALUE with every secret replaced."""
        if not self.enabled or not value:
            return value
        lowered = ""
        for regex, triggers, case_insensitive, name in self._rules:
            if triggers:
                if case_insensitive:
                    lowered = lowered or value.lower()
                    haystack = lowered
                else:
                    haystack = value
                if not any(t in haystack for t in triggers):
                    continue
            if name == "secret_assignment":
                value = regex.sub(_keep_key_name, value)
            else:
                value = regex.sub(f"[redacted:{name}]", value)
            lowered = ""
        return value

    def value(self, value: Any) -> Any:
        """A scrubbed attribute value (strings, and strings inside lists / maps)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return value

    def span(self, span: SpanView) -> SpanView:
        """Scrub SPAN's text-bearing fields in place; returns it."""
        if not self.enabled:
            return span
        span.status_message = self.text(span.status_message)
        _scrub_attributes(self, span.attributes)
        for event in span.events:
            _scrub_attributes(self, event.attributes)
        return span


def _keep_key_name(match: re.Match[str]) -> str:
    """``api_key=hunter2`` → ``api_key=[redacted:secret]``."""
    text = match.group(0)
    cut = re.search(r"[:=]\s*[\"']?", text)
    return f"{text[: cut.end()]}[redacted:secret]" if cut else "[redacted:secret]"


#: keys seen to be neither a text key nor under a text prefix. Spans repeat
#: the same few dozen keys, so one set lookup replaces the prefix tests; the
#: set is bounded because keys come from outside.
_PLAIN_KEYS: set[str] = set()
_PLAIN_KEYS_MAX = 4096


def _scrub_attributes(scrubber: Scrubber, attrs: dict[str, Any]) -> None:
    for key, value in attrs.items():
        if key in _PLAIN_KEYS:
            continue
        if key in TEXT_KEYS or key.startswith(TEXT_PREFIXES):
            attrs[key] = scrubber.value(value)
        elif len(_PLAIN_KEYS) < _PLAIN_KEYS_MAX:
            _PLAIN_KEYS.add(key)
