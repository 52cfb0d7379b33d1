"""Which store locations ``check_store`` refuses before anything is opened or created."""

from __future__ import annotations

from pathlib import Path

import pytest
from faultprint_collector.store import StoreError, check_store
from faultprint_collector.store._client import redacted


@pytest.mark.parametrize(
    ("store", "problem"),
    [
        ("http://127.0.0.1:99999/db", "port is not a number in 1-65535"),
        ("http://127.0.0.1:0/db", "port 0 is not in 1-65535"),
        ("https://user:secret@[::1/db", "Invalid IPv6 URL"),
        ("http://user:secret@host:abc/db", "port is not a number"),
        ("http://", "names no host"),
        ("http:///db", "names no host"),
        ("http://host:8123/db?secure=1", "a query or fragment"),
        ("http://host name:8123/db", "a space or a control character"),
        ("http://host:8123/db-1", "invalid database name 'db-1'"),
        ("chdb://", "names no directory"),
    ],
)
def test_a_malformed_location_is_refused_with_what_is_wrong(store: str, problem: str) -> None:
    for create in (True, False):
        with pytest.raises(StoreError) as info:
            check_store(store, create=create)
        assert problem in str(info.value)
        assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    "store",
    [
        "http://127.0.0.1:8123/faultprint",
        "https://user:pw@clickhouse.internal/db_1",
        "clickhouse://[::1]:9000",
        "http://host:65535/",
    ],
)
def test_a_well_formed_server_url_passes(store: str) -> None:
    check_store(store, create=True)  # no request: only the form is checked


def test_a_new_embedded_store_passes_and_nothing_is_created(tmp_path: Path) -> None:
    check_store(f"chdb://{tmp_path / 'new'}", create=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("store", "shown"),
    [
        ("http://user:secret@host:8123/db", "http://user:***@host:8123/db"),
        ("http://user:se/cret@host/db", "http://user:***@host/db"),
        ("http://host:8123/db", "http://host:8123/db"),
    ],
)
def test_a_password_is_hidden_from_messages(store: str, shown: str) -> None:
    assert redacted(store) == shown
