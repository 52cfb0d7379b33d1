"""The decoder's worker processes dying under real bodies (loopback, real processes).

A worker is killed with SIGKILL, as the OOM killer or an operator would:
the bodies decoding beside it must still be decoded, and a body whose every
decoding process is killed so is answered 503 (retried by its client), not
refused. A body that crashes every process decoding it (SIGSEGV, SIGABRT:
signals a process gets from its own code) is refused with 400.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from faultprint_collector.api._decoder import Decoder, DecodeResult
from faultprint_collector.ingest import PROTOBUF, Scrubber
from faultprint_collector.store._writer import RowEncoder

from tests.collector.api._dying import DyingDecoder
from tests.collector.api._otlp import request


@pytest.fixture
def encoder(store: Any) -> RowEncoder:
    """An encoder for the ``calls`` table of a real embedded store."""
    return RowEncoder.for_store(store)


def start_decoder(
    encoder: RowEncoder, workers: int, dying: bool = False, scrub_patterns: list[str] | None = None
) -> Decoder:
    """A decoder; DYING: its workers die of signal N decoding a body for project die-N.

    SCRUB_PATTERNS are given to its workers only (the collector checks them first).
    """
    return (DyingDecoder if dying else Decoder)(
        encoder,
        Scrubber(),
        workers=workers,
        max_decompressed=64 << 20,
        scrub_patterns=scrub_patterns or [],
        scrub=True,
    )


def decoder_processes() -> set[int]:
    """The pids of this test's decoder processes (spawned children)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and b"spawn_main" in cmdline:
            pids.add(int(entry.name))
    return pids


def kill(pids: set[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # gone already
            os.kill(pid, sig)


def decode(decoder: Decoder, body: bytes) -> DecodeResult:
    return asyncio.run(decoder.decode(body, PROTOBUF, "", "default"))


def decode_together(decoder: Decoder, bodies: list[tuple[bytes, str]]) -> list[DecodeResult]:
    """Decode (body, project) pairs concurrently, as requests arriving together."""

    async def together() -> list[DecodeResult]:
        return await asyncio.gather(
            *(decoder.decode(body, PROTOBUF, "", project) for body, project in bodies)
        )

    return asyncio.run(together())


def test_bodies_decoding_when_a_worker_dies_are_decoded_again(encoder: RowEncoder) -> None:
    decoder = start_decoder(encoder, workers=1)
    bodies = [request(2000)[0].SerializeToString() for _ in range(3)]

    async def decode_while_the_worker_dies() -> list[DecodeResult]:
        tasks = [
            asyncio.create_task(decoder.decode(body, PROTOBUF, "", "default")) for body in bodies
        ]
        await asyncio.sleep(0)  # every body is in the pool now, none decoded yet
        kill(decoder_processes())
        return await asyncio.gather(*tasks)

    try:
        assert decode(decoder, request(1)[0].SerializeToString()).rows == 1  # the worker is up
        results = asyncio.run(decode_while_the_worker_dies())
        assert [(r.status, r.reason, r.rows) for r in results] == [(0, "", 2000)] * 3
        assert decode(decoder, bodies[0]).rows == 2000
    finally:
        decoder.close()


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGABRT])
def test_a_body_that_kills_every_process_decoding_it_gets_400(
    encoder: RowEncoder, sig: signal.Signals
) -> None:
    # SIGSEGV / SIGABRT are what a body that crashes the decoder does to it
    decoder = start_decoder(encoder, workers=2, dying=True)
    try:
        beside = [request(2000)[0].SerializeToString() for _ in range(3)]
        refused, *others = decode_together(
            decoder,
            [(request(5)[0].SerializeToString(), f"die-{sig.value}")]
            + [(body, "default") for body in beside],
        )
        assert refused.status == 400
        assert "could not be decoded" in refused.reason
        # the bodies decoding beside it when it broke the pool are decoded
        assert [(r.status, r.rows) for r in others] == [(0, 2000)] * 3
        # the pool was rebuilt: the next body is decoded as usual
        assert decode(decoder, request(10)[0].SerializeToString()).rows == 10
    finally:
        decoder.close()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_body_whose_decoder_is_killed_from_outside_gets_503_not_400(
    encoder: RowEncoder, sig: signal.Signals
) -> None:
    # the OOM killer or an operator killing every process decoding a body
    # alone says nothing against the body: its client must retry it
    decoder = start_decoder(encoder, workers=1, dying=True)
    try:
        (answered,) = decode_together(
            decoder, [(request(5)[0].SerializeToString(), f"die-{sig.value}")]
        )
        assert answered.status == 503
        assert "killed" in answered.reason
        assert decode(decoder, request(10)[0].SerializeToString()).rows == 10
    finally:
        decoder.close()


def test_a_body_whose_decoder_processes_cannot_start_gets_503_not_400(
    encoder: RowEncoder,
) -> None:
    # Workers whose start fails (here a scrub pattern only they are given)
    # end with status 0 before decoding anything: the body is not to blame,
    # and a 400 would make its client drop it.
    decoder = start_decoder(encoder, workers=1, scrub_patterns=["("])
    try:
        answered = decode(decoder, request(5)[0].SerializeToString())
        assert (answered.status, answered.reason) == (
            503,
            "the decoder cannot start its processes, retry later",
        )
    finally:
        decoder.close()


def test_close_returns_while_a_worker_is_stuck(encoder: RowEncoder) -> None:
    decoder = start_decoder(encoder, workers=1)
    assert decode(decoder, request(1)[0].SerializeToString()).rows == 1
    stuck = decoder_processes()
    kill(stuck, signal.SIGSTOP)  # as a worker hung under a body would be
    body = request(10)[0].SerializeToString()
    answers: list[DecodeResult] = []
    request_thread = threading.Thread(
        target=lambda: answers.append(decode(decoder, body)), daemon=True
    )
    closer = threading.Thread(target=decoder.close, daemon=True)
    try:
        request_thread.start()
        request_thread.join(0.2)  # the body waits in the stuck worker
        closer.start()
        closer.join(60)
        assert not closer.is_alive()  # SIGTERM can stop the collector
        assert not decoder_processes() & stuck
        request_thread.join(60)
        assert [a.status for a in answers] == [503]  # retried by its client
    finally:
        kill(stuck, signal.SIGKILL)


def test_exit_codes_wait_for_the_code_the_pools_own_thread_is_storing(encoder: RowEncoder) -> None:
    # After a collapse, the pool's manager thread joins the dead processes
    # while the decoder asks for their exit codes: when the manager reaps a
    # process first, the code appears only once it stores it. A code read
    # too soon reads as none, and a crashing body as "killed from outside".
    decoder = start_decoder(encoder, workers=0)
    pool = decoder._new_pool(1)
    process = pool.processes.Process(target=os._exit, args=(3,))
    process.start()
    try:
        os.waitpid(process.pid, 0)  # reaped by "the manager", code not stored yet
        popen = process._popen  # type: ignore[attr-defined]
        storing = threading.Timer(0.3, setattr, (popen, "returncode", 3))
        storing.start()
        assert pool.exit_codes(timeout=5) == [3]
        storing.join()
    finally:
        pool.shutdown()
        decoder.close()
