"""Decoding OTLP/HTTP trace bodies (protobuf or JSON, optionally gzip)."""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtoDecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

#: decompressed bodies larger than this are refused (decompression bombs)
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
#: gzip members in one body; more is no encoder's output, only work for the decoder
MAX_GZIP_MEMBERS = 10_000
#: a gzip member starts with these two bytes (RFC 1952 2.3.1)
_GZIP_MAGIC = b"\x1f\x8b"
#: longest JSON integer literal: a sign and the 20 digits of a 64-bit value
MAX_JSON_INT_CHARS = 21
#: JSON nesting deeper than this is refused
MAX_JSON_DEPTH = 64
#: spans in one request; a flood of tiny spans would hold a decoder for long
MAX_SPANS_PER_REQUEST = 100_000

#: the id fields of spans and links, hex in OTLP/JSON
_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId"})
#: an OTLP/JSON id's digits
_HEX = re.compile(r"[0-9A-Fa-f]*")
#: the base64 digits of either alphabet (standard or URL-safe), unpadded
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*")


class OTLPDecodeError(ValueError):
    """The body cannot be decoded; ``status`` is the HTTP status to answer."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def decompress(body: bytes, encoding: str, limit: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """Undo Content-Encoding (gzip, deflate or identity), capped at LIMIT bytes.

    A gzip body may hold several members, one after the other (RFC 1952
    2.2); every one is decoded and LIMIT applies to their sum. Anything after
    the last member other than NUL padding is refused, as is anything after
    a deflate (zlib) stream: silently dropping it would acknowledge spans
    that are never stored.
    """
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate", "x-gzip"):
        raise OTLPDecodeError(f"unsupported Content-Encoding {encoding!r}", 415)
    gzipped = encoding in ("gzip", "x-gzip")
    wbits = 16 + zlib.MAX_WBITS if gzipped else zlib.MAX_WBITS
    view = memoryview(body)
    out: list[bytes] = []
    pos = members = size = 0
    while True:
        members += 1
        if members > MAX_GZIP_MEMBERS:
            raise OTLPDecodeError(f"body has more than {MAX_GZIP_MEMBERS} gzip members")
        pos, size = _inflate_member(view, pos, wbits, out, size, limit, encoding)
        if pos == len(view):
            return b"".join(out)
        if not gzipped:
            raise OTLPDecodeError(f"body has {len(view) - pos} bytes after the {encoding} data")
        if view[pos : pos + 2] != _GZIP_MAGIC:
            if not view[pos:].tobytes().strip(b"\0"):
                return b"".join(out)  # NUL padding after the last member, as gzip(1) allows
            raise OTLPDecodeError(
                f"body has {len(view) - pos} bytes of trailing garbage after the gzip data"
            )


def _inflate_member(
    view: memoryview, pos: int, wbits: int, out: list[bytes], size: int, limit: int, encoding: str
) -> tuple[int, int]:
    """Inflate the stream starting at POS onto OUT (SIZE bytes so far).

    Returns the offset after the stream and the new size.
    """
    inflater = zlib.decompressobj(wbits)
    # Input is fed in growing chunks: what follows the stream's end comes
    # back as a copy (``unused_data``), so a small first chunk keeps many
    # small members cheap and doubling keeps a large one to few calls.
    chunk = 1024
    while not inflater.eof:
        if pos >= len(view):
            raise OTLPDecodeError(f"body is truncated {encoding} data")
        data = view[pos : pos + chunk]
        pos += len(data)
        chunk = min(chunk * 2, 1 << 20)
        try:
            # at most one byte beyond the limit: enough to know it is exceeded
            piece = inflater.decompress(data, limit - size + 1)
        except zlib.error as exc:
            raise OTLPDecodeError(f"body is not valid {encoding}: {exc}") from exc
        size += len(piece)
        if size > limit or inflater.unconsumed_tail:
            raise OTLPDecodeError(f"decompressed body exceeds the limit of {limit} bytes", 413)
        out.append(piece)
    return pos - len(inflater.unused_data), size


def _prepare_bytes_fields(node: Any) -> None:
    """Convert OTLP/JSON ids from hex to base64 and check every bytesValue.

    OTLP/JSON carries ids as hex; protobuf's JSON parser expects base64 and
    silently decodes hex text as base64, storing wrong ids, so every id field
    is converted first. A bad id costs its span only, as in protobuf: hex of
    the wrong length becomes those bytes (the span is then rejected, through
    partial success, for the same reason as the same id sent as protobuf),
    and text that is no hex becomes an empty id (likewise rejected, or for a
    parent id, a span without a parent). The parser also reads invalid
    base64 in a ``bytesValue`` (``"!!!"``) as empty bytes without a word;
    such a body is refused.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                if value:
                    node[key] = _id_as_base64(value)
            elif key == "bytesValue" and isinstance(value, str):
                if not _is_base64(value):
                    raise OTLPDecodeError(f"bytesValue is not base64: {value[:40]!r}")
            else:
                _prepare_bytes_fields(value)
    elif isinstance(node, list):
        for item in node:
            _prepare_bytes_fields(item)


def _id_as_base64(value: str) -> str:
    """An OTLP/JSON id (hex) as the base64 the protobuf JSON parser reads.

    Whatever its length: ``classify`` judges ids, so a wrong one is rejected
    by the same rule, with the same reason, whichever the encoding. Text that
    is no hex (``"abc"``, ``"zz…"``) has no bytes to stand for: it becomes an
    empty id, which is invalid for a trace or span id as well.
    """
    if len(value) % 2 or _HEX.fullmatch(value) is None:
        return ""
    return base64.b64encode(bytes.fromhex(value)).decode()


def _is_base64(text: str) -> bool:
    """Base64 as proto3 JSON accepts it: either alphabet, padding optional."""
    data = text.rstrip("=")
    padding = len(text) - len(data)
    return (
        padding <= 2
        and _BASE64.fullmatch(data) is not None
        and len(data) % 4 != 1
        and (padding == 0 or len(text) % 4 == 0)
    )


def _check_span_count(request: ExportTraceServiceRequest) -> None:
    """Refuse (413) requests with more spans than one request may carry."""
    count = 0
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            count += len(scope_spans.spans)
    if count > MAX_SPANS_PER_REQUEST:
        raise OTLPDecodeError(
            f"request holds {count} spans, more than {MAX_SPANS_PER_REQUEST}; split it", 413
        )


def _parse_int(text: str) -> int:
    """A JSON integer; one longer than any OTLP field can hold is refused.

    OTLP integers are at most 64 bits (20 digits); converting a longer one
    only costs time, and past Python's digit limit it raises a ValueError
    that names no JSON at all.
    """
    if len(text) > MAX_JSON_INT_CHARS:
        raise OTLPDecodeError(
            f"JSON body holds an integer of {len(text)} digits; "
            f"OTLP integers have at most {MAX_JSON_INT_CHARS - 1}"
        )
    return int(text)


def parse_request(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    """Parse an already-decompressed body as an ExportTraceServiceRequest."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    request = ExportTraceServiceRequest()
    if media == PROTOBUF:
        try:
            request.ParseFromString(body)
        except (ProtoDecodeError, RuntimeError, ValueError) as exc:
            raise OTLPDecodeError(f"body is not a valid OTLP protobuf message: {exc}") from exc
        _check_span_count(request)
        return request
    if media == JSON:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise OTLPDecodeError(f"JSON body is not valid UTF-8: {exc}") from exc
        try:
            data = json.loads(text, parse_int=_parse_int)
        except json.JSONDecodeError as exc:
            raise OTLPDecodeError(f"body is not valid JSON: {exc}") from exc
        except RecursionError as exc:
            raise OTLPDecodeError("JSON nesting is too deep") from exc
        except OTLPDecodeError:
            raise
        except ValueError as exc:  # a value the parser cannot convert
            raise OTLPDecodeError(f"body is not valid JSON: {exc!s:.200}") from exc
        if not isinstance(data, dict):
            raise OTLPDecodeError("JSON body must be an object with resourceSpans")
        try:
            _prepare_bytes_fields(data)
            json_format.ParseDict(
                data, request, ignore_unknown_fields=True, max_recursion_depth=MAX_JSON_DEPTH
            )
        except RecursionError as exc:
            raise OTLPDecodeError(f"JSON nesting is deeper than {MAX_JSON_DEPTH} levels") from exc
        except (
            json_format.ParseError,
            binascii.Error,
            ValueError,
            TypeError,
            AttributeError,
            KeyError,
        ) as exc:
            raise OTLPDecodeError(f"JSON body is not a valid OTLP request: {exc!s:.300}") from exc
        _check_span_count(request)
        return request
    raise OTLPDecodeError(
        f"unsupported Content-Type {content_type!r}; use {PROTOBUF} or {JSON}", 415
    )


def encode_response(rejected: int, message: str, content_type: str) -> tuple[bytes, str]:
    """Build an ExportTraceServiceResponse in the request's encoding."""
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == JSON:
        return json_format.MessageToJson(response).encode(), JSON
    return response.SerializeToString(), PROTOBUF
