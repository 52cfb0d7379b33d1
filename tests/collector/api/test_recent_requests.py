"""The memory of acknowledged request bodies: bounded, and kept across restarts
in a journal that a torn write or an unreadable file cannot break."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

from faultprint_collector.api._decoder import DecodeResult
from faultprint_collector.api._ingest import RateLimiter, RecentRequests, _spool_request
from faultprint_collector.settings import Settings
from faultprint_collector.spool import Spool


def digest(i: int) -> bytes:
    return RecentRequests.digest("default", "application/x-protobuf", f"body {i}".encode())


def acknowledge(recent: RecentRequests, i: int) -> None:
    async def claim_and_ack() -> None:
        assert await recent.claim(digest(i))
        recent.release(digest(i), acknowledged=True)

    asyncio.run(claim_and_ack())


def test_acknowledged_digests_outlive_a_restart_and_refused_ones_do_not(tmp_path: Path) -> None:
    journal = tmp_path / "recent"
    recent = RecentRequests(journal=journal)
    acknowledge(recent, 1)

    async def refused() -> None:
        assert await recent.claim(digest(2))
        recent.release(digest(2), acknowledged=False)

    asyncio.run(refused())
    recent.close()
    again = RecentRequests(journal=journal)
    assert again.seen(digest(1))
    assert not again.seen(digest(2))


def test_the_journal_keeps_the_latest_digests_within_its_bound(tmp_path: Path) -> None:
    journal = tmp_path / "recent"
    recent = RecentRequests(size=10, journal=journal)
    for i in range(55):
        acknowledge(recent, i)
    # compacted whenever it holds twice the bound: never more than that
    assert journal.stat().st_size <= 2 * 10 * RecentRequests.DIGEST_BYTES
    recent.close()
    again = RecentRequests(size=10, journal=journal)
    assert [i for i in range(55) if again.seen(digest(i))] == list(range(45, 55))


def test_a_torn_last_write_is_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    journal = tmp_path / "recent"
    recent = RecentRequests(journal=journal)
    acknowledge(recent, 1)
    acknowledge(recent, 2)
    recent.close()
    with journal.open("ab") as handle:
        handle.write(digest(3)[:7])  # the crash cut the third write short
    again = RecentRequests(journal=journal)
    assert again.seen(digest(1)) and again.seen(digest(2)) and not again.seen(digest(3))
    acknowledge(again, 4)
    again.close()
    assert RecentRequests(journal=journal).seen(digest(4))


def test_an_unusable_journal_leaves_the_memory_working(tmp_path: Path) -> None:
    # a directory where the file should be: unreadable and not writable
    journal = tmp_path / "recent"
    journal.mkdir()
    recent = RecentRequests(journal=journal)
    acknowledge(recent, 1)
    assert recent.seen(digest(1))
    recent.close()


def test_a_body_is_journaled_as_soon_as_it_is_spooled(tmp_path: Path) -> None:
    """A collector killed between spooling a body and answering it must know
    the body when its client resends it: the digest is journaled right after
    the append, on the spool's writing thread, not once the answer is sent
    (the gap in which a resent body was spooled and counted twice)."""

    class Decoder:
        async def decode(self, *_: object) -> DecodeResult:
            return DecodeResult(payload=b"encoded rows", rows=10)

    spool = Spool(tmp_path / "spool")
    journal = tmp_path / "recent"
    state = SimpleNamespace(
        stats=Counter(),
        settings=Settings(),
        limiter=RateLimiter(0),
        decoder=Decoder(),
        writer=SimpleNamespace(write_encoded=spool.append),
        recent=RecentRequests(journal=journal),
    )
    request = SimpleNamespace(
        app=SimpleNamespace(state=SimpleNamespace(faultprint=state)), headers={}
    )
    body_digest = digest(7)
    answer, acknowledged = asyncio.run(
        _spool_request(request, "default", b"body 7", "application/x-protobuf", body_digest)  # type: ignore[arg-type]
    )
    assert (answer.status_code, acknowledged) == (200, True)
    # killed now, before the request's claim is released: the journal knows it
    assert RecentRequests(journal=journal).seen(body_digest)
    spool.close()
