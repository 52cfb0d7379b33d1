"""ClickHouse storage: one client for the embedded engine (chDB) and servers."""

from faultprint_collector.store._client import (
    Store,
    StoreError,
    StoreLockedError,
    check_store,
    is_faultprint_store,
    open_store,
)
from faultprint_collector.store._migrations import (
    MIGRATIONS_TABLE,
    apply_migrations,
    apply_retention,
    render_ddl,
)
from faultprint_collector.store._writer import CALL_COLUMNS, CallWriter

__all__ = [
    "CALL_COLUMNS",
    "MIGRATIONS_TABLE",
    "CallWriter",
    "Store",
    "StoreError",
    "StoreLockedError",
    "apply_migrations",
    "apply_retention",
    "check_store",
    "is_faultprint_store",
    "open_store",
    "render_ddl",
]
