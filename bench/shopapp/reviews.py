"""Review classification with the OpenAI chat API and a JSON schema."""

from __future__ import annotations

import json

import jsonschema
import openai

from .errors import ModelOutputError

REVIEW_SCHEMA = {
    "type": "object",
    "required": ["sentiment", "score", "topics"],
    "additionalProperties": False,
    "properties": {
        "sentiment": {"enum": ["positive", "neutral", "negative"]},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "topics": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    },
}


def classify_review(client: openai.OpenAI, model: str, review: str) -> dict:
    """Sentiment, score and topics of a product review."""
    response = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": f"Classify as JSON: {review}"}],
        response_format={"type": "json_object"},
    )
    message = response.choices[0].message
    if message.refusal:
        raise ModelOutputError("refusal", "model refused", message.refusal)
    if not message.content:
        raise ModelOutputError("empty_output", "empty answer", "")
    data = json.loads(message.content)
    jsonschema.validate(data, REVIEW_SCHEMA)
    return data
