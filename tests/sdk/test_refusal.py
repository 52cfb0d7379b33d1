"""The conservative refusal-text detector (``faultprint.refusal``)."""

from __future__ import annotations

import pytest
from faultprint.refusal import MAX_CHARS, looks_like_refusal
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't help with that.",
        "  i am sorry, I cannot assist with this request.",
        "Sorry! I won't provide that.",
        "I apologise, but I cannot answer that.",
        "As an AI language model, I am not able to generate that.",
        "Unfortunately, I am unable to comply.",
        "I will not write that.",
    ],
)
def test_short_replies_that_open_by_declining_are_refusals(text: str) -> None:
    assert looks_like_refusal(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Here is the summary you asked for.",
        "I can't guarantee it, but the answer is 42.",
        "The answer is 42. I'm sorry, but I can't help with the rest.",
        "Sorry for the delay, here are the results.",
        "I cannot stress enough how good this is.",
        # a declining verb that goes on to answer
        "I can't help but notice the bug is on line 3: you forgot to close the file.",
        "Unfortunately, I cannot answer faster than this, but the capital of France is Paris.",
        "I can't answer for certain, but it is probably the cache.",
        # an inability that depends on what the user can give, on time or on a fact
        "Unfortunately, I cannot answer that without the order number. Could you share it?",
        "I can't answer that yet: the store opens at 9am.",
        "I cannot generate the report because the data for May is missing.",
        "I'm unable to help with that until the invoice is paid.",
        # a question back for what the reply needs
        "I can't answer that. Could you tell me which order you mean?",
        "Sorry, I can't do that. Please provide the order id first.",
        # a promise about the user's own data
        "I won't share your data with third parties.",
    ],
)
def test_answers_are_not_refusals(text: str) -> None:
    assert not looks_like_refusal(text)


@pytest.mark.parametrize(
    "text",
    [
        "I can't help with that because it goes against my guidelines.",
        "I cannot assist with that, since it would be unsafe.",
        "I'm sorry, but I can't help with that. Is there anything else I can help you with?",
        "I cannot help with that, as it could be used to cause harm.",
        "I can't share that.",
    ],
)
def test_refusals_giving_a_reason_or_offering_other_help_are_refusals(text: str) -> None:
    assert looks_like_refusal(text)


def test_long_texts_are_answers_even_when_they_open_with_a_refusal() -> None:
    opening = "I'm sorry, but I can't help with that. "
    assert looks_like_refusal(opening.ljust(MAX_CHARS, "x"))
    assert not looks_like_refusal(opening.ljust(MAX_CHARS + 1, "x"))


@given(st.text(max_size=MAX_CHARS * 2))
def test_any_text_gets_an_answer(text: str) -> None:
    result = looks_like_refusal(text)
    assert isinstance(result, bool)
    if len(text) > MAX_CHARS:
        assert not result


@pytest.mark.parametrize(
    "text",
    [
        "I’m sorry, but I can’t help with that.",
        "I'm unable to help with that request.",
        "I am not able to provide that information.",
        "Sorry, I must decline to answer.",
        "I'm sorry, I can't do that for you.",
        "I cannot fulfill this request.",
        "I can't help",
    ],
)
def test_typographic_apostrophes_and_infinitives(text: str) -> None:
    assert looks_like_refusal(text)
