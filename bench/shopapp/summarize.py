"""Ticket summaries with the OpenAI chat API."""

from __future__ import annotations

import openai

from .errors import ModelOutputError


def summarize_ticket(client: openai.OpenAI, model: str, ticket: str) -> str:
    """One-paragraph summary of a support ticket."""
    response = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "Summarise the ticket in one paragraph."},
            {"role": "user", "content": ticket},
        ],
        max_tokens=300,
    )
    choice = response.choices[0]
    if choice.finish_reason == "length":
        raise ModelOutputError("truncation", "summary cut off", choice.message.content)
    if choice.finish_reason == "content_filter":
        raise ModelOutputError("content_filter", "summary filtered", choice.message.content)
    return choice.message.content or ""
