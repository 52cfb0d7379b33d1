"""Calls to a provider's API served by a cloud name that cloud, as other
instrumentations name it: ``gen_ai.provider.name`` and the call site
``{provider}.{operation}`` (so that one failure recorded by faultprint and by
another instrumentation has one fingerprint; see the interop tests).

Real clients of the provider libraries (``AzureOpenAI``, ``AnthropicBedrock``,
``AnthropicVertex``) on mock transports, no network.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faultprint
import pytest
from faultprint import attributes as A

from tests.sdk.providers import ANTHROPIC_KW, CHAT, MESSAGE, OPENAI_KW, mock_http, responder

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")
httpx2 = pytest.importorskip("httpx2")


def _azure(handler: Any, is_async: bool = False) -> Any:
    return (openai.AsyncAzureOpenAI if is_async else openai.AzureOpenAI)(
        api_key="azure-test-key",
        azure_endpoint="https://shop-eastus.openai.azure.com",
        api_version="2024-10-21",
        max_retries=0,
        http_client=mock_http(handler, is_async),
    )


def _openai_at(base_url: str, handler: Any) -> Any:
    return openai.OpenAI(
        api_key="sk-test",
        base_url=base_url,
        max_retries=0,
        http_client=mock_http(handler),
    )


def _named(span: Any) -> tuple[str, str, str]:
    attributes = span.attributes
    return (
        attributes[A.GEN_AI_PROVIDER_NAME],
        attributes[A.FP_CALL_SITE],
        attributes[A.SERVER_ADDRESS],
    )


def test_an_azure_openai_client_names_azure(spans):
    client = faultprint.instrument_openai(_azure(responder(200, CHAT)))
    client.chat.completions.create(**OPENAI_KW)
    assert _named(spans.one()) == (
        "azure.ai.openai",
        "azure.ai.openai.chat",
        "shop-eastus.openai.azure.com",
    )


def test_an_async_azure_client_and_its_copies_name_azure(spans):
    client = faultprint.instrument_openai(_azure(responder(200, CHAT), is_async=True))

    async def main() -> None:
        await client.chat.completions.create(**OPENAI_KW)
        await client.with_options(timeout=5).chat.completions.create(**OPENAI_KW)

    asyncio.run(main())
    assert {_named(s)[:2] for s in spans.all()} == {("azure.ai.openai", "azure.ai.openai.chat")}


@pytest.mark.parametrize(
    ("base_url", "provider"),
    [
        # Azure OpenAI's v1 API, through the plain OpenAI client
        ("https://shop-eastus.openai.azure.com/openai/v1/", "azure.ai.openai"),
        ("https://shop.cognitiveservices.azure.com/openai/v1/", "azure.ai.openai"),
        # Bedrock's and Vertex AI's endpoints speaking OpenAI's API
        ("https://bedrock-runtime.us-west-2.amazonaws.com/openai/v1", "aws.bedrock"),
        (
            "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/"
            "us-central1/endpoints/openapi",
            "gcp.vertex_ai",
        ),
        ("https://api.openai.com/v1", "openai"),
        # a host faultprint does not know keeps the library's name, as the
        # GenAI conventions ask (provider= names it)
        ("https://llm.internal.example/v1", "openai"),
        ("https://notopenai.azure.com.example/v1", "openai"),
    ],
)
def test_an_openai_client_names_the_cloud_its_host_belongs_to(spans, base_url, provider):
    client = faultprint.instrument_openai(_openai_at(base_url, responder(200, CHAT)))
    client.chat.completions.create(**OPENAI_KW)
    assert _named(spans.one())[:2] == (provider, f"{provider}.chat")


def test_provider_names_what_faultprint_cannot_tell(spans):
    client = faultprint.instrument_openai(
        _openai_at("https://api.groq.com/openai/v1", responder(200, CHAT)), provider="groq"
    )
    client.chat.completions.create(**OPENAI_KW)
    assert _named(spans.one()) == ("groq", "groq.chat", "api.groq.com")


def test_an_anthropic_vertex_client_names_vertex_ai(spans):
    client = anthropic.AnthropicVertex(
        region="us-east5",
        project_id="shop-prod",
        access_token="ya29.test",
        max_retries=0,
        http_client=mock_http(responder(200, MESSAGE)),
    )
    faultprint.instrument_anthropic(client)
    client.messages.create(**ANTHROPIC_KW)
    assert _named(spans.one()) == (
        "gcp.vertex_ai",
        "gcp.vertex_ai.chat",
        "us-east5-aiplatform.googleapis.com",
    )


def _bedrock(handler: Any) -> Any:
    pytest.importorskip("botocore")  # the library signs Bedrock requests with it
    return anthropic.AnthropicBedrock(
        aws_access_key="AKIATESTTESTTESTTEST",
        aws_secret_key="test-secret",
        aws_region="us-east-1",
        max_retries=0,
        http_client=mock_http(handler),
    )


def test_an_anthropic_bedrock_client_names_bedrock(spans):
    client = faultprint.instrument_anthropic(_bedrock(responder(200, MESSAGE)))
    client.messages.create(**{**ANTHROPIC_KW, "model": "anthropic.claude-haiku-4-5-v1:0"})
    assert _named(spans.one()) == (
        "aws.bedrock",
        "aws.bedrock.chat",
        "bedrock-runtime.us-east-1.amazonaws.com",
    )


def test_a_bedrock_throttling_error_is_an_api_error_of_bedrock(spans):
    # What Bedrock answers when throttled: its own body, not Anthropic's.
    def throttled(request: Any) -> Any:
        return httpx2.Response(
            429,
            json={"message": "Too many requests, please wait before trying again."},
            headers={"x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/"},
        )

    client = faultprint.instrument_anthropic(_bedrock(throttled))
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(**{**ANTHROPIC_KW, "model": "anthropic.claude-haiku-4-5-v1:0"})
    attributes = spans.one().attributes
    assert attributes[A.GEN_AI_PROVIDER_NAME] == "aws.bedrock"
    assert attributes[A.FP_FAILURE_CATEGORY] == "api_error"
    assert attributes[A.FP_HTTP_STATUS] == 429


def test_an_anthropic_client_of_anthropic_names_anthropic(spans):
    client = anthropic.Anthropic(
        api_key="sk-ant-test",
        max_retries=0,
        http_client=mock_http(responder(200, MESSAGE)),
    )
    faultprint.instrument_anthropic(client)
    client.messages.create(**ANTHROPIC_KW)
    assert _named(spans.one()) == ("anthropic", "anthropic.chat", "api.anthropic.com")
