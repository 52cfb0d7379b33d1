"""``POST /v1/traces``: the OTLP/HTTP trace receiver."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from google.rpc import status_pb2

from faultprint_collector.api._auth import caller_project
from faultprint_collector.ingest import (
    JSON,
    OTLPDecodeError,
    decode_body,
    encode_response,
)

router = APIRouter()


def otlp_error(status: int, reason: str, content_type: str, **headers: str) -> Response:
    """An OTLP error response: a google.rpc.Status in the request's encoding."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == JSON:
        import json

        body, media_type = json.dumps({"code": 3, "message": reason}).encode(), JSON
    else:
        body = status_pb2.Status(code=3, message=reason).SerializeToString()
        media_type = "application/x-protobuf"
    return Response(body, status_code=status, media_type=media_type, headers=headers or None)


async def read_body(request: Request, limit: int) -> bytes:
    """Read the request body, refusing (413) anything larger than LIMIT."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise OTLPDecodeError(f"body of {declared} bytes exceeds the limit of {limit}", 413)
        except ValueError as exc:
            raise OTLPDecodeError("invalid Content-Length header") from exc
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise OTLPDecodeError(f"body exceeds the limit of {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/v1/traces",
    summary="Receive OTLP/HTTP traces (protobuf or JSON, optionally gzip)",
    responses={400: {"description": "undecodable body"}, 413: {}, 415: {}, 503: {}},
)
async def receive_traces(request: Request, project: str = Depends(caller_project)) -> Response:
    """Decode, classify, fingerprint and store one OTLP export request."""
    state = request.app.state.faultprint
    content_type = request.headers.get("content-type", "")
    try:
        body = await read_body(request, state.settings.max_body_bytes)
        batch = await run_in_threadpool(
            decode_body,
            body,
            content_type,
            request.headers.get("content-encoding", ""),
            project,
        )
    except OTLPDecodeError as exc:
        state.stats["rejected_requests"] += 1
        return otlp_error(exc.status, exc.reason, content_type)
    try:
        await run_in_threadpool(state.writer.write, batch.records)
    except Exception as exc:
        state.stats["storage_errors"] += 1
        return otlp_error(
            503,
            f"storage unavailable, retry later: {type(exc).__name__}",
            content_type,
            **{"Retry-After": "5"},
        )
    state.stats["accepted_spans"] += len(batch.records)
    state.stats["rejected_spans"] += batch.rejected
    message = "; ".join(batch.errors)
    body, media_type = encode_response(batch.rejected, message, content_type)
    return Response(body, media_type=media_type)
