"""The ``faultprint`` command line."""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from faultprint_collector.commands._options import project_option
from faultprint_collector.commands._tables import Column, Kind, print_table, time_cell
from faultprint_collector.reader import Reader, ReadError
from faultprint_collector.settings import DEFAULT_PROJECT, Settings

if TYPE_CHECKING:
    from faultprint_collector.api._auth import KeyRing

app = typer.Typer(
    name="faultprint",
    help="Failure fingerprints and failure-consistency analytics for AI model calls.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)
T = TypeVar("T")

URL_HELP = "Read through the collector at this URL (e.g. http://127.0.0.1:4318)."
STORE_HELP = "Read this store directly: a directory (embedded) or a ClickHouse URL."
#: the exit code of a collector that could not start serving (uvicorn's)
STARTUP_FAILURE = 3
#: uvicorn's levels, checked here: an unknown one fails inside uvicorn after start-up
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print MESSAGE on stderr and exit with CODE."""
    # escaped: a message quotes values ("[::1]", "[/DATABASE]") rich would read as markup
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def reader_for(url: str | None, store: str | None) -> Reader:
    """A Reader for --url or --store (not both)."""
    if url is not None and store is not None:
        fail("give either --url or --store, not both")
    _refuse_empty("--store", store, "give a store directory or a ClickHouse URL")
    try:
        return Reader(url=url, store=store)
    except ReadError as exc:
        fail(str(exc))


def _refuse_empty(option: str, value: str | None, hint: str) -> None:
    """A usage error for an option given as "": it is not the option left out."""
    if value is not None and not value.strip():
        fail(f"{option} must not be empty: {hint}")


def read(
    url: str | None, store: str | None, query: Callable[[Reader], T], project: str | None = None
) -> T:
    """Answer QUERY from --url or --store; a failure is a message and exit 2.

    With PROJECT, a direct store read first checks that the project has
    calls (see ``Reader.check_project``): one that has none while others do
    is an error, not an empty answer.
    """
    reader = reader_for(url, store)
    try:
        if project is not None:
            note = reader.check_project(project)
            if reader.url and project != DEFAULT_PROJECT:
                note = f"--project {project} is not used through a collector: the API key decides"
            if note:
                _note(note)
        answer = query(reader)
        # a collector says why its answer is empty as a direct read does above
        for note in reader.notes:
            _note(note)
        return answer
    except ReadError as exc:
        fail(str(exc))
    finally:
        reader.close()


def _note(text: str) -> None:
    err.print(f"[yellow]note:[/] {escape(text)}", highlight=False, soft_wrap=True)


def _store_origin(store: str | None) -> str:
    """Where serve's store came from, for an error about it (the value may hold a password)."""
    if store is not None:
        return "--store"
    if os.environ.get("FAULTPRINT_STORE"):
        return "FAULTPRINT_STORE"
    return "the default store"


def _log_level(value: str) -> str:
    """Check --log-level before start-up (a usage error, exit 2)."""
    level = value.strip().lower()
    if level not in LOG_LEVELS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


def _listen(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to HOST:PORT as uvicorn binds them; a message and exit 2 when taken.

    Bound before anything is announced or created, and then handed to
    uvicorn, so that the address it serves on is the one checked: no other
    process can take it in between. The options are asyncio's for a server
    (uvicorn's listener): every address HOST resolves to, SO_REUSEADDR (a
    restart need not wait for the old connections' TIME_WAIT), IPv6
    sockets IPv6 only.
    """
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        fail(f"cannot listen on {host}: {exc.strerror}")
    listeners: list[socket.socket] = []
    for family, kind, proto, _, address in dict.fromkeys(infos):
        sock = socket.socket(family, kind, proto)
        listeners.append(sock)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
        except OSError as exc:
            for bound in listeners:
                bound.close()
            if exc.errno == errno.EADDRINUSE:
                fail(
                    f"port {port} on {host} is in use: another process listens there "
                    "(another collector?); stop it or choose another --port"
                )
            fail(f"cannot listen on {host} port {port}: {exc.strerror or exc}")
        sock.set_inheritable(True)
    return listeners


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(4318, min=1, max=65535, help="Port to listen on."),
    store: str = typer.Option(
        None, help="Store: a directory (embedded; default ./.faultprint/data) or a ClickHouse URL."
    ),
    log_level: str = typer.Option(
        "info",
        callback=_log_level,
        help=f"uvicorn log level: {', '.join(LOG_LEVELS)}.",
    ),
    keys: str = typer.Option(
        None, help="API key file (project:sha256 lines; see 'faultprint keys add')."
    ),
    spool: str = typer.Option(None, help="Spool directory (default: next to the store)."),
    fsync: str = typer.Option(None, help="Spool fsync policy: always, batch or interval."),
    insecure: bool = typer.Option(
        False, "--insecure", help="Allow listening beyond loopback without API keys."
    ),
) -> None:
    """Run the collector: OTLP/HTTP on /v1/traces, the read API under /api/."""
    from faultprint_collector.api._auth import KeyConfigError, KeyRing, is_loopback
    from faultprint_collector.ingest import Scrubber
    from faultprint_collector.spool import FSYNC_POLICIES

    _refuse_empty("--host", host, "give an address to listen on, e.g. 127.0.0.1")
    _refuse_empty("--store", store, "give a store directory or a ClickHouse URL")
    _refuse_empty("--keys", keys, "give an API key file (see 'faultprint keys add')")
    _refuse_empty("--spool", spool, "give a directory, or leave it out for one beside the store")
    try:
        settings = Settings.from_env(
            host=host,
            port=port,
            store=store,
            api_keys_file=keys,
            spool_dir=spool,
            spool_fsync=fsync,
            insecure=insecure or None,
        )
        ring = KeyRing.from_settings(settings)
    except (KeyConfigError, ValueError) as exc:
        fail(str(exc))
    try:  # Settings checked each pattern; this is the scrubber's own compilation
        Scrubber(settings.scrub_patterns)
    except ValueError as exc:
        fail(f"FAULTPRINT_SCRUB_PATTERNS: {exc}")
    # every refusal that needs nothing on disk comes first: a refused start
    # leaves no store and no spool directory behind
    if settings.spool_fsync not in FSYNC_POLICIES:
        fail(
            f"--fsync / FAULTPRINT_SPOOL_FSYNC must be one of {', '.join(FSYNC_POLICIES)}, "
            f"got {settings.spool_fsync!r}"
        )
    # an address it cannot listen on is that problem, whatever else is wrong
    listeners = _listen(host, port)
    try:
        if ring.open and not is_loopback(host) and not settings.insecure:
            fail(
                f"refusing to listen on {host} without API keys: anyone could write and "
                "read every project. Create keys with 'faultprint keys add PROJECT' and "
                "pass --keys FILE, or pass --insecure"
            )
        _serve(settings, ring, store, listeners, log_level)
    finally:
        for sock in listeners:
            sock.close()


def _serve(
    settings: Settings,
    ring: KeyRing,
    store: str | None,
    listeners: list[socket.socket],
    log_level: str,
) -> None:
    """``serve`` once its address is bound: check the store and spool, then run."""
    import uvicorn

    from faultprint_collector.api import create_app
    from faultprint_collector.spool import Spool, SpoolError
    from faultprint_collector.spool import refusal as spool_refusal
    from faultprint_collector.store import StoreError, check_store, open_store
    from faultprint_collector.store._client import redacted

    origin = _store_origin(store)
    # Every check that can refuse runs before anything is announced, and
    # those that create nothing first: the store's location, the spool's,
    # then the store itself (a server may be unreachable), then the spool.
    # Each is opened and closed again: the collector below is their one owner.
    try:
        check_store(settings.store, create=True)
    except StoreError as exc:
        fail(f"{exc} ({origin})" if origin != "--store" else str(exc))
    refused = spool_refusal(settings.spool_path())
    if refused:
        fail(refused)
    try:  # a wrong URL or a held directory is a message, not a traceback
        open_store(settings.store, cluster=settings.cluster).close()
    except StoreError as exc:
        fail(f"{exc} ({origin})" if origin != "--store" else str(exc))
    try:  # a clear message now rather than a failed start-up later
        Spool(settings.spool_path(), fsync=settings.spool_fsync).close()
    except SpoolError as exc:
        fail(str(exc))
    if ring.open:
        err.print(
            "[yellow]warning:[/] no API keys configured: the collector is open "
            "(every request is project 'default')",
            highlight=False,
            soft_wrap=True,
        )
    else:
        projects = sorted(set(ring.projects.values()))
        err.print(f"API keys for {len(projects)} project(s): {', '.join(projects)}")
    app_ = create_app(settings)
    err.print(
        f"faultprint collector on http://{settings.host}:{settings.port}  "
        f"store: {redacted(settings.store)}  "
        f"spool: {settings.spool_path()} (fsync {settings.spool_fsync})",
        soft_wrap=True,
        markup=False,
        highlight=False,
    )
    server = uvicorn.Server(
        uvicorn.Config(app_, host=settings.host, port=settings.port, log_level=log_level)
    )
    try:
        server.run(sockets=listeners)
    except StoreError as exc:
        fail(str(exc))
    except KeyboardInterrupt:  # as uvicorn.run: an interrupt is a stop, not an error
        pass
    if not server.started:
        raise typer.Exit(STARTUP_FAILURE)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@app.command()
def incidents(
    since: str = typer.Option(
        "24h", help="Window start: look back this far (30m, 24h, 7d) or an ISO time."
    ),
    until: str = typer.Option(
        None,
        help="Window end (default: now): a duration ago (30m, 24h, 7d) or an ISO time; "
        "later than --since.",
    ),
    limit: int = typer.Option(20, min=1, max=1000, help="How many fingerprints."),
    url: str = typer.Option(None, help=URL_HELP),
    store: str = typer.Option(None, help=STORE_HELP),
    fmt: str = typer.Option("table", "--format", help="table or json."),
    project: str = project_option(),
) -> None:
    """The top failure fingerprints: counts, first/last seen, versions, an example."""
    if fmt not in ("table", "json"):
        fail("--format must be table or json")
    rows = read(url, store, lambda r: r.incidents(since, limit, project, until=until), project)
    if fmt == "json":
        _print_json({"incidents": rows})
        return
    print_table(
        console,
        [
            Column("fingerprint"),
            Column("failures", justify="right"),
            Column("category"),
            Column("call site"),
            Column("versions", Kind.IDS),
            Column("first seen", Kind.IDS),
            Column("last seen", Kind.IDS),
            Column("example", Kind.TEXT),
        ],
        (
            [
                r["fingerprint"],
                str(r["failures"]),
                r["category"],
                r["call_site"],
                ", ".join(r["model_versions"]),
                time_cell(r["first_seen"]),
                time_cell(r["last_seen"]),
                r["example"] or r["template"],
            ]
            for r in rows
        ),
        title=f"Top failure fingerprints (since {since}{f', until {until}' if until else ''})",
    )


def _register_commands() -> None:
    from faultprint_collector.commands import demo, fingerprint

    demo.register(app)
    from faultprint_collector.commands import keys

    keys.register(app)
    fingerprint.register(app)
    from faultprint_collector.commands import analysis

    analysis.register(app)
    from faultprint_collector.commands import schema

    schema.register(app)


_register_commands()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
