"""The spool on its own: framing, ordering, recovery, capacity, cursor."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from faultprint_collector.spool import RecordTooLarge, Spool, SpoolError, SpoolFull
from faultprint_collector.spool._segment import HEADER


def read_all(spool: Spool, after: int = 0) -> list[tuple[int, int, bytes]]:
    records = spool.read(after, max_rows=10**9, max_bytes=10**12)
    return [(r.seq, r.rows, r.payload) for r in records]


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


@pytest.mark.parametrize("policy", ["always", "batch", "interval"])
def test_appends_come_back_in_order_under_every_fsync_policy(tmp_path: Path, policy: str) -> None:
    spool = Spool(tmp_path, fsync=policy, fsync_interval_s=0.01)
    seqs = [spool.append(f"payload {i}".encode(), i + 1) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    assert read_all(spool) == [(i + 1, i + 1, f"payload {i}".encode()) for i in range(5)]
    assert read_all(spool, after=3) == [(4, 4, b"payload 3"), (5, 5, b"payload 4")]
    spool.close()
    reopened = Spool(tmp_path, fsync=policy)
    assert [r[0] for r in read_all(reopened)] == [1, 2, 3, 4, 5]
    assert reopened.append(b"next", 1) == 6
    reopened.close()


def test_read_respects_limits_but_returns_at_least_one_record(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for _ in range(4):
        spool.append(b"x" * 100, 10)
    assert [r.seq for r in spool.read(0, max_rows=25, max_bytes=10**6)] == [1, 2]
    assert [r.seq for r in spool.read(2, max_rows=1, max_bytes=10**6)] == [3]
    assert [r.seq for r in spool.read(0, max_rows=10**6, max_bytes=150)] == [1]
    assert [r.seq for r in spool.read(1, max_rows=0, max_bytes=0, through=3)] == [2, 3]
    spool.close()


def test_concurrent_appends_get_unique_contiguous_sequence_numbers(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    got: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(100):
            seq = spool.append(f"{n}-{i}".encode(), 1)
            with lock:
                got.append(seq)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 801))
    payloads = [r[2] for r in read_all(spool)]
    assert sorted(payloads) == sorted(f"{n}-{i}".encode() for n in range(8) for i in range(100))
    spool.close()


def test_torn_tail_is_truncated_and_earlier_records_survive(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for i in range(3):
        spool.append(f"record {i}".encode(), 1)
    spool.close()
    (segment,) = segments(tmp_path)
    data = segment.read_bytes()
    segment.write_bytes(data[:-4])  # the last append was cut short by a crash
    reopened = Spool(tmp_path)
    assert [r[2] for r in read_all(reopened)] == [b"record 0", b"record 1"]
    assert reopened.corrupt_bytes > 0
    assert segment.stat().st_size < len(data) - 4  # the torn record is gone from disk
    reopened.close()


def test_a_corrupted_record_fails_its_checksum(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for i in range(3):
        spool.append(f"record {i}".encode(), 1)
    spool.close()
    (segment,) = segments(tmp_path)
    data = bytearray(segment.read_bytes())
    second = HEADER.size + len(b"record 0") + HEADER.size
    data[second] ^= 0xFF  # flip a payload byte of record 2
    segment.write_bytes(bytes(data))
    reopened = Spool(tmp_path)
    assert [r[2] for r in read_all(reopened)] == [b"record 0"]
    reopened.close()


def test_committed_segments_are_deleted_and_sequence_numbers_never_reused(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path, segment_bytes=64)
    for _ in range(6):
        spool.append(b"y" * 80, 1)  # each record fills a segment
    assert len(segments(tmp_path)) == 6
    spool.commit(4)
    assert len(segments(tmp_path)) == 2
    assert [r[0] for r in read_all(spool, after=4)] == [5, 6]
    spool.commit(6)
    spool.close()
    reopened = Spool(tmp_path, segment_bytes=64)
    assert segments(tmp_path) == []
    assert reopened.append(b"z", 1) == 7  # the cursor remembers the highest seq
    reopened.close()


def test_an_interrupted_insert_is_remembered_across_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for i in range(5):
        spool.append(f"r{i}".encode(), 1)
    spool.commit(1)
    spool.begin(2, 4)
    spool.close()  # as if killed during the insert of 2..4
    reopened = Spool(tmp_path)
    assert reopened.committed == 1
    assert reopened.pending == (2, 4)
    assert [r.seq for r in reopened.read(1, max_rows=0, max_bytes=0, through=4)] == [2, 3, 4]
    reopened.close()


def test_full_spool_refuses_appends_until_records_are_committed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=3 * (HEADER.size + 100), segment_bytes=HEADER.size + 100)
    for _ in range(3):
        spool.append(b"p" * 100, 1)
    with pytest.raises(SpoolFull):
        spool.append(b"p" * 100, 1)
    spool.commit(2)
    assert spool.append(b"p" * 100, 1) == 4
    spool.close()


def test_a_record_larger_than_the_whole_spool_is_refused_as_such(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=HEADER.size + 100)
    # not SpoolFull: waiting for the spool to empty could never help it
    with pytest.raises(RecordTooLarge, match="can never fit"):
        spool.append(b"r" * 101, 1)
    assert spool.size_bytes == 0
    assert spool.append(b"r" * 100, 1) == 1
    spool.close()


def test_an_append_that_times_out_is_never_written(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    # The writer thread takes queued appends under the spool's lock: holding
    # it stalls the writer, as a hung disk would, past the append's timeout.
    with spool._cond, pytest.raises(SpoolError):
        spool.append(b"answered 503", 1, timeout=0.05)
    assert spool.append(b"next", 1) == 1
    assert read_all(spool) == [(1, 1, b"next")]
    spool.close()
    reopened = Spool(tmp_path)
    assert read_all(reopened) == [(1, 1, b"next")]
    reopened.close()


def test_one_process_at_a_time(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    with pytest.raises(SpoolError, match="in use"):
        Spool(tmp_path)
    spool.close()
    Spool(tmp_path).close()


def test_unknown_fsync_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpoolError, match="fsync policy"):
        Spool(tmp_path, fsync="sometimes")


def test_capacity_counts_only_records_not_yet_committed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=3 * (HEADER.size + 100))
    for _ in range(3):
        spool.append(b"q" * 100, 1)
    with pytest.raises(SpoolFull):
        spool.append(b"q" * 100, 1)
    spool.commit(3)  # all in the open segment, which stays on disk
    assert spool.size_bytes == 0
    assert spool.disk_bytes == 3 * (HEADER.size + 100)
    assert spool.append(b"q" * 100, 1) == 4
    spool.close()
    reopened = Spool(tmp_path)
    assert reopened.size_bytes == HEADER.size + 100  # record 4 awaits replay
    reopened.close()
