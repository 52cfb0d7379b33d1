"""A decoder worker that dies while decoding a body that asks it to.

A body sent for project ``die-N`` makes the process decoding it get signal
N from itself, as a body that crashes the decoder would (SIGSEGV, SIGABRT),
or the signals a process gets from outside (SIGKILL, SIGTERM), at the very
moment it decodes that body: every process that decodes it dies, and no
other. It reaches worker processes by name, so it lives in a module of its
own, light to import.
"""

from __future__ import annotations

import os
import time

from faultprint_collector.api._decoder import Decoder, DecodeResult, _decode_in_worker


def decode_or_die(body: bytes, content_type: str, encoding: str, project: str) -> DecodeResult:
    """Decode as a worker does, unless PROJECT is ``die-N``: then die of signal N."""
    if project.startswith("die-"):
        os.kill(os.getpid(), int(project.removeprefix("die-")))
        time.sleep(60)  # (the signal ends the process first)
    return _decode_in_worker(body, content_type, encoding, project)


class DyingDecoder(Decoder):
    """The decoder, its workers dying for ``die-N`` bodies."""

    work = staticmethod(decode_or_die)
