"""Span attribute names: the contract between the SDK and the collector.

OpenTelemetry GenAI semantic conventions where they exist (current names),
``faultprint.*`` for what those conventions do not cover. The collector reads
these names (and older / foreign dialects, see the collector's decoder); they
are a public interface and change only with a new contract version.
"""

from __future__ import annotations

__all__ = [
    "CATEGORIES",
    "CONTRACT_VERSION",
    "ERROR_TYPE",
    "FP_CALL_SITE",
    "FP_CANCELLED",
    "FP_CONTRACT",
    "FP_ERROR_CODE",
    "FP_EXCEPTION_MODULES",
    "FP_FAILURE_CATEGORY",
    "FP_FAILURE_DETAIL",
    "FP_FAILURE_MESSAGE",
    "FP_HTTP_STATUS",
    "FP_INPUT_HASH",
    "FP_INPUT_TEXT",
    "FP_MODEL_VERSION",
    "FP_OUTPUT_TEXT",
    "FP_SAMPLE_WEIGHT",
    "FP_STREAM_CHUNKS",
    "FP_STREAM_CLOSED_EARLY",
    "FP_STREAM_TTFC_MS",
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_PROVIDER_NAME",
    "GEN_AI_REQUEST_MODEL",
    "GEN_AI_RESPONSE_FINISH_REASONS",
    "GEN_AI_RESPONSE_ID",
    "GEN_AI_RESPONSE_MODEL",
    "GEN_AI_USAGE_INPUT_TOKENS",
    "GEN_AI_USAGE_OUTPUT_TOKENS",
    "SERVER_ADDRESS",
]

CONTRACT_VERSION = "1"

# --- OpenTelemetry GenAI semantic conventions -----------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"

# --- faultprint's own ------------------------------------------------------
FP_CONTRACT = "faultprint.contract"
#: module-qualified name of the decorated function / instrumented endpoint
FP_CALL_SITE = "faultprint.call_site"
#: the version under comparison (explicit tag; the collector falls back to
#: response model, then request model)
FP_MODEL_VERSION = "faultprint.model_version"
#: xxh3-64 (16 hex digits) of a canonical form of the call's arguments
FP_INPUT_HASH = "faultprint.input_hash"
#: 1/r when successes are sampled at rate r; failures always carry 1.0
FP_SAMPLE_WEIGHT = "faultprint.sample_weight"
#: one of CATEGORIES, set when the SDK detected a failure that did not raise
FP_FAILURE_CATEGORY = "faultprint.failure.category"
#: JSON text with structured detail (validation errors with kinds and
#: generalised paths, refusal source, tool name, …)
FP_FAILURE_DETAIL = "faultprint.failure.detail"
#: a human-readable failure message when there is no exception event
FP_FAILURE_MESSAGE = "faultprint.failure.message"
#: provider error code (rate_limit_exceeded, overloaded_error, …)
FP_ERROR_CODE = "faultprint.error.code"
#: provider HTTP status code of a failed call
FP_HTTP_STATUS = "http.response.status_code"
#: bounded, redacted content, only when content capture is enabled
FP_OUTPUT_TEXT = "faultprint.output"
FP_INPUT_TEXT = "faultprint.input"
FP_STREAM_CHUNKS = "faultprint.stream.chunks"
FP_STREAM_TTFC_MS = "faultprint.stream.time_to_first_chunk_ms"
#: true when the consumer closed or abandoned a stream before its end
FP_STREAM_CLOSED_EARLY = "faultprint.stream.closed_early"
#: what ended a call the caller abandoned, no verdict on the model: the
#: exception's type (asyncio.exceptions.CancelledError, KeyboardInterrupt)
FP_CANCELLED = "faultprint.cancelled"
#: on an ``exception`` event: ``"module path"`` for each file of the raised
#: exception's traceback, the module its code runs as (a script run as
#: ``__main__``: its file's stem), so that the collector names in-app frames
#: by module wherever the code is deployed
FP_EXCEPTION_MODULES = "faultprint.exception.modules"

CATEGORIES = (
    "exception",
    "api_error",
    "timeout",
    "invalid_output",
    "refusal",
    "truncation",
    "empty_output",
    "content_filter",
    "tool_error",
)
