"""Opening a store: a directory (embedded chDB) or a ClickHouse server URL."""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_STORE = "./.faultprint/data"
#: connections the read API may use at once (each its own engine handle)
DEFAULT_READ_CONNECTIONS = 4


class StoreError(RuntimeError):
    """The store could not be opened or queried; the message says why."""


class StoreLockedError(StoreError):
    """Another process owns this embedded data directory."""


@dataclass
class Store:
    """A clickhouse-connect client plus what the rest of the code needs to know.

    One lock serialises calls on ``client``: the embedded engine runs
    in-process and its client is not safe to share between threads without
    it. ``client`` serves the write path (spool replay, migrations, health);
    the read API borrows its own connections through :meth:`reading`, so a
    long query never holds the lock the spool's inserts wait on.
    """

    client: Any
    dsn: str
    embedded: bool
    database: str = ""
    cluster: str = ""
    #: on a cluster, tables whose inserts go to this node's shard-local
    #: ``NAME_local`` table instead of the Distributed ``NAME``
    #: (``FAULTPRINT_CLUSTER_WRITES=local``)
    local_writes: frozenset[str] = frozenset()
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: opens one more client on the same store (for the read connections)
    connect: Callable[[], Any] | None = field(default=None, repr=False)
    read_connections: int = DEFAULT_READ_CONNECTIONS
    _idle_readers: queue.LifoQueue[Any] = field(default_factory=queue.LifoQueue, repr=False)
    _readers: list[Any] = field(default_factory=list, repr=False)
    _readers_slots: threading.BoundedSemaphore | None = field(default=None, repr=False)
    _readers_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _closed: bool = field(default=False, repr=False)

    def _write_target(self, table: str) -> str:
        if self.local_writes and table.rsplit(".", 1)[-1] in self.local_writes:
            return f"{table}_local"
        return table

    @property
    def prefix(self) -> str:
        """Database prefix for table names (empty for the default database)."""
        return f"{self.database}." if self.database else ""

    def table(self, name: str) -> str:
        """Qualified name of one of faultprint's tables."""
        return f"{self.prefix}{name}"

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        """Run a statement that returns no rows."""
        with self._lock:
            return self.client.command(sql, parameters=parameters)

    def query(self, sql: str, parameters: dict[str, Any] | None = None, **kw: Any) -> Any:
        """Run a parameterised query and return clickhouse-connect's result."""
        with self._lock:
            return self.client.query(sql, parameters=parameters, **kw)

    def query_dicts(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict]:
        """Run a parameterised query and return its rows as dicts."""
        result = self.query(sql, parameters)
        names = result.column_names
        return [dict(zip(names, row, strict=True)) for row in result.result_rows]

    def insert(
        self,
        table: str,
        rows: Sequence[Sequence[Any]],
        column_names: Sequence[str],
        settings: dict[str, Any] | None = None,
    ) -> None:
        """Insert rows (a list of row sequences) into one table."""
        with self._lock:
            self.client.insert(
                self._write_target(table),
                rows,
                column_names=list(column_names),
                settings=settings or {},
            )

    def insert_raw(
        self,
        table: str,
        data: bytes,
        column_names: Sequence[str],
        fmt: str,
        settings: dict[str, Any] | None = None,
    ) -> None:
        """Insert DATA, already encoded in ClickHouse input format FMT."""
        with self._lock:
            self.client.raw_insert(
                self._write_target(table),
                list(column_names),
                insert_block=data,
                settings=settings or {},
                fmt=fmt,
            )

    @contextlib.contextmanager
    def reading(self) -> Iterator[Store]:
        """A Store on a read connection of its own, for the duration of the block.

        At most ``read_connections`` are open; a caller beyond that waits for
        one to come back. Without ``connect`` (a store built by hand) the
        block reads through this very store.
        """
        if self.connect is None:
            yield self
            return
        slots = self._slots()
        slots.acquire()
        try:
            client = self._borrow()
            try:
                yield replace(
                    self,
                    client=client,
                    connect=None,
                    _lock=threading.Lock(),
                    _idle_readers=queue.LifoQueue(),
                    _readers=[],
                    _readers_slots=None,
                )
            finally:
                self._idle_readers.put(client)
        finally:
            slots.release()

    def _slots(self) -> threading.BoundedSemaphore:
        with self._readers_lock:
            if self._readers_slots is None:
                self._readers_slots = threading.BoundedSemaphore(max(1, self.read_connections))
            return self._readers_slots

    def _borrow(self) -> Any:
        try:
            return self._idle_readers.get_nowait()
        except queue.Empty:
            pass
        assert self.connect is not None
        with self._readers_lock:
            if self._closed:
                raise StoreError("the store is closed")
        try:
            client = self.connect()
        except Exception as exc:
            raise StoreError(f"cannot open a read connection to {self.dsn}: {exc}") from exc
        with self._readers_lock:
            self._readers.append(client)
        return client

    def close(self) -> None:
        """Release the clients (and the embedded data directory's lock)."""
        with self._readers_lock:
            self._closed = True
            readers, self._readers = self._readers, []
        for reader in readers:
            with contextlib.suppress(Exception):  # closing is best effort
                reader.close()
        with self._lock, contextlib.suppress(Exception):
            self.client.close()


@contextlib.contextmanager
def _driver_warnings_muted() -> Iterator[None]:
    """Keep the driver from logging a failed first connection on its own.

    Without logging configured, its warning would reach stderr as a bare line
    ahead of the StoreError that says the same thing with the store named.
    """
    driver = logging.getLogger("clickhouse_connect.driver")
    before = driver.level
    driver.setLevel(logging.ERROR)
    try:
        yield
    finally:
        driver.setLevel(before)


def _locked_by_another_process(data_dir: Path) -> bool:
    """True when another process holds the engine's lock on DATA_DIR/status.

    Checked before opening, because the engine reports a held lock only as a
    generic initialisation error (after printing its own message to stderr).
    """
    return lock_held(data_dir / "status")


def lock_held(path: Path) -> bool:
    """True when a process holds an exclusive ``flock`` on the existing file PATH.

    Probed without creating PATH: the engine's ``status`` file and the
    spool's lock file are both taken this way by their one owner.
    """
    import fcntl

    if not path.exists():
        return False
    try:
        with path.open("rb") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    except OSError:
        return False
    return False


#: URL schemes a store may have; anything else with ``://`` is refused, not
#: taken for a relative directory named ``ftp:`` (say)
SCHEMES = ("http", "https", "clickhouse", "chdb")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
#: the table the migrations create first: its presence marks a faultprint store
MIGRATIONS_TABLE = "schema_migrations"


def is_url(store: str) -> bool:
    """True when STORE names a server (http/https/clickhouse URL or chdb DSN)."""
    return store.split("://", 1)[0] in SCHEMES and "://" in store


def _scheme_checked(store: str) -> None:
    if not store.strip():
        raise StoreError("the store must not be empty: give a directory or a ClickHouse URL")
    match = _SCHEME.match(store)
    if match and match[1].lower() not in SCHEMES:
        raise StoreError(
            f"unsupported store URL scheme {match[1]!r}: give a directory path, "
            "chdb://DIR, or a ClickHouse URL (http://, https:// or clickhouse://)"
        )
    if store.startswith("chdb://") and not store[len("chdb://") :].strip():
        # an empty path would be the current directory, whatever it holds
        raise StoreError("the store chdb:// names no directory: give chdb://DIR")
    if is_url(store) and not store.startswith("chdb://"):
        problem = _server_url_problem(store)
        if problem:
            raise StoreError(
                f"invalid store URL {redacted(store)!r}: {problem}; expected "
                "http(s)://[USER[:PASSWORD]@]HOST[:PORT][/DATABASE] or clickhouse://…"
            )


#: a password in a store URL, hidden from messages: ``//user:secret@`` -> ``//user:***@``
#: (up to the first ``@``: a password may hold a ``/``)
_PASSWORD = re.compile(r"(//[^/@:]*):[^@]*@")


def redacted(store: str) -> str:
    """STORE with the password of a server URL hidden, for messages."""
    return _PASSWORD.sub(r"\1:***@", store)


def _server_url_problem(store: str) -> str | None:
    """What makes a server URL unusable (None: nothing).

    Each would otherwise surface later: a bad port or bracket as a
    ValueError from urlsplit, a missing host as a connection to
    localhost:8123 the user never asked for.
    """
    if any(c.isspace() or not c.isprintable() for c in store):
        return "it holds a space or a control character"
    try:
        parts = urlsplit(store)
        port = parts.port
    except ValueError as exc:
        if "port" in str(exc).lower():
            # urlsplit's own text ("could not be cast ... as 'pw'") may quote a password
            return "its port is not a number in 1-65535"
        return str(exc)  # "Invalid IPv6 URL"
    if not parts.hostname:
        return "it names no host"
    if port is not None and not 1 <= port <= 65535:
        return f"port {port} is not in 1-65535"
    if parts.query or parts.fragment:
        return "a query or fragment is not part of it"
    database = parts.path.strip("/")
    if database and not database.replace("_", "").isalnum():
        return f"invalid database name {database!r}: use letters, digits and _"
    return None


def is_faultprint_store(data_dir: Path) -> bool:
    """True when DATA_DIR holds an embedded faultprint store (its schema was created)."""
    return (data_dir / "metadata" / "default" / f"{MIGRATIONS_TABLE}.sql").is_file()


def check_store(store: str, *, create: bool) -> None:
    """Refuse a STORE location before anything is created there.

    Every store needs a known URL scheme, and a server URL a host, a port in
    1-65535 and a database name. A directory held by another process is
    refused. A directory must be a faultprint store; with CREATE it may
    instead be missing or empty (a new store), but never a file or a
    directory holding anything else, so the engine does not scatter its
    files among someone's own.
    """
    _scheme_checked(store)
    if is_url(store) and not store.startswith("chdb://"):
        return
    data_dir = _data_dir(store)
    if _locked_by_another_process(data_dir):
        raise StoreLockedError(
            f"the store {data_dir} is in use by another process (a running collector "
            "owns it); read through that collector with --url instead"
        )
    if is_faultprint_store(data_dir):
        return
    if not create:
        if not data_dir.exists():
            raise StoreError(f"no faultprint store at {data_dir}: the directory does not exist")
        raise StoreError(f"{data_dir} is not a faultprint store")
    if data_dir.exists() and not data_dir.is_dir():
        raise StoreError(f"the store {data_dir} is not a directory")
    if not _holds_no_files(data_dir):
        raise StoreError(
            f"{data_dir} is not empty and holds no faultprint store: "
            "give a new or empty directory, or an existing store"
        )


def _holds_no_files(directory: Path) -> bool:
    """True when DIRECTORY is missing, empty or holds nothing but empty directories.

    Empty directories are what the engine leaves in a directory it opened
    before any schema was created (``tmp/``), so such a store may still be
    set up; a single file means the directory belongs to someone else.
    """
    if not directory.exists():
        return True
    for root, dirs, files in os.walk(directory, onerror=_raise):
        if files or any((Path(root) / d).is_symlink() for d in dirs):
            return False
    return True


def _raise(exc: OSError) -> None:
    raise StoreError(f"cannot read store directory {exc.filename}: {exc.strerror}")


def _data_dir(store: str) -> Path:
    path = store[len("chdb://") :] if store.startswith("chdb://") else store
    return Path(path).expanduser().resolve()


def open_store(
    store: str = DEFAULT_STORE,
    *,
    cluster: str = "",
    local_writes: bool = False,
    create: bool = True,
) -> Store:
    """Open STORE: a directory (embedded) or a server URL.

    With CREATE (the collector) a missing or empty directory becomes a new
    store and a server database is created when missing; without it (the
    CLI's reads) STORE must already be a faultprint store. Either way
    :func:`check_store` refuses what is not a store before anything is made.

    ``http(s)://user:pass@host:8123/db`` connects to a ClickHouse server and
    uses database ``db`` (created when missing). With ``cluster``, the schema
    is the sharded one and inserts go to the Distributed tables, or with
    ``local_writes`` to the local tables of the node STORE points at.
    """
    import clickhouse_connect

    if cluster and not cluster.replace("_", "").isalnum():
        raise StoreError(f"invalid cluster name {cluster!r}: use letters, digits and _")
    check_store(store, create=create)
    if not is_url(store) or store.startswith("chdb://"):
        data_dir = _data_dir(store)
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create store directory {data_dir}: {exc}") from exc
        dsn = f"chdb://{data_dir}"
        try:
            client = clickhouse_connect.get_client(dsn=dsn)
        except Exception as exc:
            text = str(exc)
            if "Cannot lock file" in text or "lock" in text.lower():
                raise StoreLockedError(
                    f"the store {data_dir} is in use by another process (a running "
                    "collector owns it); use --url to go through that collector"
                ) from exc
            raise StoreError(f"cannot open embedded store {data_dir}: {text}") from exc
        # chDB serves any number of handles on the one engine of a process;
        # each has its own lock, so reads run beside the write path
        return Store(
            client=client,
            dsn=dsn,
            embedded=True,
            cluster=cluster,
            connect=lambda: clickhouse_connect.get_client(dsn=dsn),
        )

    # check_store has refused what urlsplit cannot read, a missing host and a bad port
    parts = urlsplit(store)
    database = parts.path.strip("/") or "default"
    host = parts.hostname or ""
    port = parts.port or (8443 if parts.scheme == "https" else 8123)

    def connect() -> Any:
        return clickhouse_connect.get_client(
            host=host,
            port=port,
            username=parts.username or "default",
            password=parts.password or "",
            secure=parts.scheme == "https",
            connect_timeout=5,
        )

    safe = f"{parts.scheme}://{f'[{host}]' if ':' in host else host}:{port}/{database}"
    try:
        with _driver_warnings_muted():
            client = connect()
            if create:
                # on a cluster every node needs the database before ON CLUSTER DDL runs
                on_cluster = f" ON CLUSTER {cluster}" if cluster else ""
                client.command(f"CREATE DATABASE IF NOT EXISTS {database}{on_cluster}")
                exists = True
            else:
                exists = bool(
                    client.command(
                        "SELECT count() FROM system.tables "
                        "WHERE database = {db:String} AND name = {name:String}",
                        parameters={"db": database, "name": MIGRATIONS_TABLE},
                    )
                )
    except Exception as exc:
        raise StoreError(f"cannot connect to ClickHouse at {safe}: {exc}") from exc
    if not exists:
        client.close()
        raise StoreError(f"database {database} at {safe} holds no faultprint store")
    local: frozenset[str] = frozenset()
    if cluster and local_writes:
        from faultprint_collector.store._migrations import engine_tables

        local = engine_tables()
    return Store(
        client=client,
        dsn=store,
        embedded=False,
        database=database,
        cluster=cluster,
        local_writes=local,
        connect=connect,
    )
