"""Message templates: values masked, structure kept, no dependence on other messages."""

from __future__ import annotations

import pytest
from faultprint_collector.fingerprinting import template_of
from faultprint_collector.fingerprinting._patterns import MASK_NAMED, PATTERNS
from faultprint_collector.fingerprinting._template import MAX_TOKENS, clear_caches, masked_values

SAME = [
    # numbers, durations, ids with provider prefixes, URLs
    (
        "Rate limit reached for gpt-4o in organization org-AbC123xyz on tokens per min (TPM): "
        "Limit 30000, Used 29000, Requested 1500. Please try again in 2.5s.",
        "Rate limit reached for o3-mini in organization org-ZZZ987qqq on tokens per min (TPM): "
        "Limit 450000, Used 449999, Requested 12. Please try again in 980ms.",
    ),
    ("request req_abc123def456 failed", "request req_ZZZ999yyy000 failed"),
    ("chatcmpl-9xYzAbC123 not found", "chatcmpl-AAAbbb777 not found"),
    ("see https://a.example.com/x?id=1", "see http://b.example.org/y/z"),
    # uuids, hex, IPs, hosts, emails, paths, timestamps
    (
        "trace 123e4567-e89b-12d3-a456-426614174000 at 0x7ffe12",
        "trace 00000000-0000-0000-0000-000000000000 at 0xdeadbeef",
    ),
    ("connect to 10.0.0.1:5432 refused", "connect to 192.168.1.77:6543 refused"),
    ("could not resolve api.openai.com", "could not resolve db.internal"),
    ("mail to bob@example.com bounced", "mail to alice.smith+x@corp.co.uk bounced"),
    ("open /srv/app/data/x.json failed", "open /home/ci/tmp/y.json failed"),
    ("at 2024-01-02T03:04:05.123Z retry", "at 2026-11-27 13:06:50 retry"),
    ("Nov 27 13:06:50 host x", "Jan  3 01:02:03 host x"),
    # quoted and back-quoted values, key=value values
    ("KeyError: 'price'", "KeyError: 'name'"),
    ('field "first name" missing', 'field "x" missing'),
    ("column `user_42` unknown", "column `orders` unknown"),
    ("request_id=abc status=500", "request_id=zzz-9 status=404"),
    # token shape: digits inside a token, long random tokens
    ("node node7 down", "node abc123 down"),
    ("token aGVsbG8gV29ybGQhIHRoaXMkZXhh done", "token QWxhZGRpbjpvcGVuIHNlc2FtZQzz done"),
    # position: the value after a naming keyword, multi-word capitalised values
    ("user alice not found", "user bob not found"),
    ("No customer named John Smith exists", "No customer named Eve exists"),
    ("model claude-x is unavailable", "model sonnet is unavailable"),
    ("API key sk-proj-AbCd****wXyZ rejected", "API key sk-proj-1234****9876 rejected"),
]

DIFFERENT = [
    ("user not found", "user alice not found"),
    ("Connection refused", "Connection reset"),
    ("Expecting value: line 1 column 1 (char 0)", "Extra data: line 1 column 9 (char 8)"),
    ("tokens per min (TPM)", "requests per min (RPM)"),
    ("ServiceUnavailableError", "InternalServerError"),
    ("file_search failed", "code_interpreter failed"),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_messages_differing_only_in_values_share_a_template(a: str, b: str) -> None:
    assert template_of(a) == template_of(b)
    assert "<*>" in template_of(a)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_messages_differing_in_structure_keep_distinct_templates(a: str, b: str) -> None:
    assert template_of(a) != template_of(b)


def test_function_words_after_keywords_stay() -> None:
    assert template_of("user not found") == "user not found"
    assert template_of("model is overloaded") == "model is overloaded"


def test_apostrophes_are_not_quotes() -> None:
    text = "I'm sorry, but I can't help with that"
    assert template_of(text) == text


def test_only_first_line_and_bounded_tokens() -> None:
    assert template_of("boom 1\nsecret user content 2") == "boom <*>"
    long = " ".join(f"w{i}x" if i % 2 else "word" for i in range(200))
    assert len(template_of(long).split()) <= MAX_TOKENS
    # a longer value early in the message must not move the cut
    a = "id " + "a1" * 5 + " " + " ".join(["word"] * 100)
    b = "id " + "b2" * 50 + " " + " ".join(["word"] * 100)
    assert template_of(a) == template_of(b)


def test_glued_model_version_is_one_value() -> None:
    assert template_of("bad model: gpt-4o-mini-2024-07-18; retry") == "bad model: <*>; retry"


def test_patterns_are_named_and_documented() -> None:
    names = [n for n, _, _ in PATTERNS]
    assert len(names) == len(set(names))
    assert all(why for _, _, why in PATTERNS)
    found = dict(masked_values("x 10.0.0.1 and 'q' and org-abc123def"))
    assert set(found) >= {"ipv4", "single_quoted", "prefixed_id"}
    assert MASK_NAMED.groupindex  # one named group per pattern


def test_template_is_cached_but_pure() -> None:
    clear_caches()
    cold = template_of("order 42 failed for user 7")
    warm = template_of("order 42 failed for user 7")
    other_numbers = template_of("order 913 failed for user 12")
    clear_caches()
    assert cold == warm == other_numbers == template_of("order 42 failed for user 7")


def test_digit_zeroing_keeps_non_ascii_text_and_lone_surrogates() -> None:
    clear_caches()
    assert template_of("café 12 naïve 日本") == "café <*> naïve 日本"
    assert template_of("bad \ud800 byte 7") == "bad \ud800 byte <*>"
    assert template_of("bad \ud800 byte 7") == template_of("bad \ud800 byte 8")
