"""faultprint: capture how AI model calls fail, for about the cost of one span.

Five lines to start::

    import faultprint

    faultprint.configure(endpoint="http://127.0.0.1:4318", service="shop")

    @faultprint.observe(model="gpt-4o-mini", provider="openai", version="v1")
    def summarise(text: str) -> str: ...

Importing this package is light: OpenTelemetry's API, xxhash, and nothing
of the collector, pydantic, jsonschema or the provider libraries;
OpenTelemetry's SDK is imported by ``configure()``, so that no environment
variable can make ``import faultprint`` fail.
"""

from __future__ import annotations

from typing import Any

from faultprint import attributes
from faultprint._config import ConfigurationError, configure, flush, shutdown, stats
from faultprint._errors import InvalidOutputError
from faultprint._observe import Call, call, current_call, observe, record_failure

__all__ = [
    "Call",
    "ConfigurationError",
    "InvalidOutputError",
    "attributes",
    "call",
    "configure",
    "current_call",
    "flush",
    "instrument_anthropic",
    "instrument_openai",
    "observe",
    "record_failure",
    "shutdown",
    "stats",
]

__version__ = "0.1.0"


def instrument_openai(client: Any, **options: Any) -> Any:
    """Record every ``chat.completions.create`` / ``responses.create`` of ``client``.

    Works on ``OpenAI`` and ``AsyncOpenAI`` clients and the Azure ones
    (streaming included); returns the same client. ``options``: ``version=``,
    ``call_site=``, ``expect=``, ``json=``, ``sample_rate=``,
    ``capture_content=`` as for :func:`observe`, and ``provider=``, the
    ``gen_ai.provider.name`` of the calls when faultprint cannot tell it from
    the client (it names Azure OpenAI, AWS Bedrock and Google Vertex AI by
    the client's class or host). An unknown option raises ``TypeError``, an
    unusable value :class:`ConfigurationError`.
    """
    from faultprint.integrations._openai import instrument

    return instrument(client, **options)


def instrument_anthropic(client: Any, **options: Any) -> Any:
    """Record the model calls of ``client.messages`` and ``client.beta.messages``.

    ``create`` (streaming included), ``parse`` and the ``stream()`` helper, on
    ``Anthropic`` and ``AsyncAnthropic`` clients and the Bedrock and Vertex
    AI ones; returns the same client. ``options`` as for
    :func:`instrument_openai`.
    """
    from faultprint.integrations._anthropic import instrument

    return instrument(client, **options)
