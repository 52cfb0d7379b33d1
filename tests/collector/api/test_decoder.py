"""The decoder's worker processes dying under real bodies (loopback, real processes).

A worker is killed with SIGKILL, as the OOM killer or a body that crashes
the decoder would: the bodies decoding beside it must still be decoded,
and only a body that kills every process decoding it is refused.
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

from tests.collector.api._otlp import request


@pytest.fixture
def encoder(store: Any) -> RowEncoder:
    """An encoder for the ``calls`` table of a real embedded store."""
    return RowEncoder.for_store(store)


def start_decoder(encoder: RowEncoder, workers: int) -> Decoder:
    return Decoder(
        encoder,
        Scrubber(),
        workers=workers,
        max_decompressed=64 << 20,
        scrub_patterns=[],
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


def kill(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # gone already
            os.kill(pid, signal.SIGKILL)


def decode(decoder: Decoder, body: bytes) -> DecodeResult:
    return asyncio.run(decoder.decode(body, PROTOBUF, "", "default"))


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


def test_a_body_that_kills_every_process_decoding_it_gets_400(encoder: RowEncoder) -> None:
    decoder = start_decoder(encoder, workers=2)
    done = threading.Event()

    def kill_every_decoder_process() -> None:
        while not done.is_set():
            kill(decoder_processes())
            done.wait(0.01)

    killer = threading.Thread(target=kill_every_decoder_process)
    killer.start()
    try:
        refused = decode(decoder, request(2000)[0].SerializeToString())
    finally:
        done.set()
        killer.join()
    try:
        assert refused.status == 400
        assert "could not be decoded" in refused.reason
        # the pool was rebuilt: the next body is decoded as usual
        assert decode(decoder, request(10)[0].SerializeToString()).rows == 10
    finally:
        decoder.close()
