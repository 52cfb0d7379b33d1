"""Default scrubbing of secrets and personal data (``faultprint._redact``)."""

from __future__ import annotations

import pytest
from faultprint._redact import default_redactor, utf8_text
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc", "Authorization: Bearer [REDACTED]"),
        ("bearer tok_abcdefgh12345 rest", "Bearer [REDACTED] rest"),
        ("key sk-ant-api03-abcdefghijklmnopqrstu", "key [REDACTED_KEY]"),
        ("id AKIAIOSFODNN7EXAMPLE used", "id [REDACTED_KEY] used"),
        ("g AIzaSyA1234567890abcdefghijklmnopqrstuv", "g [REDACTED_KEY]"),
        ("https://h/x?api_key=XYZ123&page=2", "https://h/x?api_key=[REDACTED]&page=2"),
        ("password=hunter2 token=abc", "password=[REDACTED] token=[REDACTED]"),
        ("mail Foo.Bar+x@sub.example.co.uk now", "mail [REDACTED_EMAIL] now"),
    ],
)
def test_secrets_and_emails_are_scrubbed(text: str, expected: str) -> None:
    assert default_redactor(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "import sk-learn",  # a word, not a key
        "the bearer of bad news",
        "AKIA is a prefix",
        "token = value with spaces",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert default_redactor(text) == text


#: any code point, lone surrogates included (st.text() leaves them out)
_ANY_CHAR = st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr))


@given(st.text(_ANY_CHAR))
def test_any_text_becomes_utf8_and_encodable_text_is_kept(text: str) -> None:
    out = utf8_text(text)
    out.encode("utf-8")  # never raises
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        assert out != text
    else:
        assert out is text


def test_lone_surrogates_are_written_as_escapes() -> None:
    assert utf8_text("report-\udcff.pdf") == "report-\\udcff.pdf"
    assert utf8_text("half \ud83d emoji, é kept") == "half \\ud83d emoji, é kept"
