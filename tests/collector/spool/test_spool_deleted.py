"""The spool's directory (or its files) deleted or unusable under a running collector.

Records acknowledged before the deletion and only in the deleted files are
gone; everything appended after the spool could notice must be kept, or
refused (never acknowledged into a deleted file), and the replay thread
must survive and resume by itself.
"""

from __future__ import annotations

import errno
import logging
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from faultprint_collector.spool import Replayer, Spool, SpoolError
from faultprint_collector.spool import _spool as spool_module

from tests.collector.spool.test_spool import read_all, segments


def test_appends_after_the_directory_is_deleted_go_to_a_recreated_directory(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "spool"
    spool = Spool(directory)
    for i in range(3):
        spool.append(f"before {i}".encode(), 1)
    spool.commit(1)
    spool_id = spool.spool_id
    shutil.rmtree(directory)

    assert spool.append(b"after", 1) == 4
    # records 2 and 3 were only in the deleted segment: counted, not waited for
    assert spool.lost_records == 2
    assert spool.committed == 3
    assert "deleted" in spool.last_error
    assert read_all(spool, after=spool.committed) == [(4, 1, b"after")]
    spool.close()

    reopened = Spool(directory)  # what a restart finds: the record acknowledged after
    assert reopened.spool_id == spool_id  # replay tokens stay this spool's
    assert read_all(reopened, after=reopened.committed) == [(4, 1, b"after")]
    reopened.close()


def test_appends_are_refused_while_the_directory_cannot_be_recreated(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    spool = Spool(directory)
    spool.append(b"before", 1)
    shutil.rmtree(directory)
    directory.write_text("not a directory")  # mkdir fails, as on a read-only disk

    with pytest.raises(SpoolError, match="deleted"):
        spool.append(b"refused", 1)
    assert spool.fault

    directory.unlink()
    assert spool.append(b"accepted", 1) == 2  # the refused record never got a seq
    assert not spool.fault
    spool.close()
    reopened = Spool(directory)
    assert read_all(reopened) == [(2, 1, b"accepted")]
    reopened.close()


def test_deleted_segments_are_skipped_by_the_replayer(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=64)
    for i in range(4):
        spool.append(b"x" * 80 + bytes([i]), 1)  # one segment each
    for path in segments(tmp_path)[:2]:
        path.unlink()
    inserted: list[bytes] = []
    replayer = Replayer(spool, lambda payloads, _: inserted.extend(payloads), linger_s=0)
    try:
        assert replayer.drain(30)
        assert inserted == [b"x" * 80 + bytes([2]), b"x" * 80 + bytes([3])]
        assert spool.lost_records == 2
        assert replayer.running
    finally:
        replayer.close(5)
        spool.close()


def test_the_replay_thread_survives_a_cursor_it_cannot_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path)
    full = threading.Event()
    full.set()
    real_write = spool_module._atomic_write

    def atomic_write(path: Path, data: bytes) -> None:
        if full.is_set():
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, data)

    monkeypatch.setattr(spool_module, "_atomic_write", atomic_write)
    inserted: list[bytes] = []
    caplog.set_level(logging.ERROR, logger="faultprint.spool")
    replayer = Replayer(
        spool, lambda payloads, _: inserted.extend(payloads), linger_s=0, max_backoff_s=0.05
    )
    try:
        spool.append(b"acknowledged", 1)
        assert not replayer.drain(1)  # bounded: the cursor cannot be saved
        assert replayer.running
        assert "No space left" in replayer.stalled
        assert "No space left" in replayer.last_error
        # replay cannot progress: the spool stops acknowledging
        with pytest.raises(SpoolError, match="cursor"):
            spool.append(b"refused", 1)
        full.clear()
        assert replayer.drain(30)
        assert inserted == [b"acknowledged"]
        assert replayer.stalled == ""
        assert spool.append(b"accepted again", 1) == 2
        assert replayer.drain(30)
        assert inserted == [b"acknowledged", b"accepted again"]
    finally:
        replayer.close(5)
        spool.close()
    failures = [r for r in caplog.records if "replaying the spool failed" in r.getMessage()]
    assert len(failures) == 1  # logged once, not once per retry


def test_the_replay_thread_survives_its_directory_being_deleted(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    spool = Spool(directory)
    inserted: list[bytes] = []
    inserting, gate = threading.Event(), threading.Event()

    def insert(payloads: list[bytes], _: Any) -> None:
        inserting.set()
        gate.wait(30)
        inserted.extend(payloads)

    replayer = Replayer(spool, insert, linger_s=0, max_backoff_s=0.05)
    try:
        spool.append(b"first", 1)
        assert inserting.wait(30)
        shutil.rmtree(directory)  # under the insert of "first": its commit fails
        gate.set()
        assert replayer.drain(30)
        assert replayer.running
        assert spool.append(b"second", 1) == 2
        assert replayer.drain(30)
        assert inserted[-1] == b"second"
        assert b"first" in inserted
        assert directory.is_dir()
    finally:
        gate.set()
        replayer.close(5)
        spool.close()
