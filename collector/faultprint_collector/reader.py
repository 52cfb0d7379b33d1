"""Where the CLI reads from: a collector's query API, or a store opened directly.

In embedded mode the running collector owns the data directory, so reads go
through its HTTP API; the CLI opens the directory itself only when no
collector holds it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from faultprint_collector import queries
from faultprint_collector.analysis._adhoc import AdhocRefused, run_readonly_sql
from faultprint_collector.store import (
    Store,
    StoreError,
    StoreLockedError,
    apply_migrations,
    open_store,
)

#: how many projects a "no calls stored for project" message lists
_PROJECTS_SHOWN = 20


class ReadError(RuntimeError):
    """Reading failed (connection, HTTP error, store problem): message says why."""


class Reader:
    """Answers read queries either over HTTP or straight from a store."""

    def __init__(self, url: str | None = None, store: str | None = None) -> None:
        self.url = check_url(url) if url is not None else ""
        self._store_path = store
        self._store: Store | None = None
        # only a read through a collector sends the key: a direct read needs none
        self._api_key = api_key_from_env() if self.url else ""
        #: notes a collector answered beside its data (``note``), for the CLI to print
        self.notes: list[str] = []

    @property
    def store(self) -> Store:
        """The directly opened store (only without --url)."""
        if self._store is None:
            try:
                # reads never create a store: a mistyped path is an error, not
                # an empty answer from a store made on the spot
                self._store = open_store(self._store_path or queries_default_store(), create=False)
                apply_migrations(self._store)
            except StoreError as exc:
                hint = ""
                if not self._store_path and not isinstance(exc, StoreLockedError):
                    # the value is not echoed: a server URL may hold a password
                    origin = (
                        "FAULTPRINT_STORE"
                        if os.environ.get("FAULTPRINT_STORE")
                        else "the default store"
                    )
                    hint = (
                        f" ({origin}); read through a running collector with --url, or give --store"
                    )
                raise ReadError(f"{exc}{hint}") from exc
        return self._store

    def get(self, path: str, params: dict[str, Any]) -> Any:
        """GET a read-API path from the collector at --url."""
        clean = {k: v for k, v in params.items() if v is not None}
        return self._request("GET", path, params=clean, timeout=60)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST a JSON body to a read-API path of the collector at --url."""
        return self._request("POST", path, json=body, timeout=120)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        try:
            response = httpx.request(method, f"{self.url}{path}", headers=headers, **kwargs)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise ReadError(f"cannot reach the collector at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise ReadError(f"collector answered {response.status_code}: {_reason(response)}")
        return response.json()

    def run(self, path: str, params: dict[str, Any], local: Callable[[Store], Any]) -> Any:
        """Answer over HTTP when a URL is set, else with LOCAL on the store.

        A collector's answer may carry a ``note`` (why it is empty: the
        caller's project has no calls), kept in ``notes`` for the CLI to
        print as a direct store read prints ``check_project``'s.
        """
        if self.url:
            answer = self.get(path, params)
            if isinstance(answer, dict) and isinstance(answer.get("note"), str):
                self.notes.append(answer["note"])
            return answer
        try:
            return local(self.store)
        except (queries.QueryError, queries.NotFound, AdhocRefused) as exc:
            raise ReadError(str(exc)) from exc

    def versions(
        self,
        since: str | None,
        project: str,
        until: str | None = None,
        call_site: str | None = None,
    ) -> list[dict[str, Any]]:
        """Model versions with their consistency metrics."""
        return self.run(
            "/api/versions",
            {"since": since, "until": until, "call_site": call_site},
            lambda s: {
                "versions": queries.list_versions(
                    s, project, *queries.parse_window(since, until), call_site
                )
            },
        )["versions"]

    def fingerprints(self, project: str, **filters: Any) -> list[dict[str, Any]]:
        """Failure fingerprints (filters: version, call_site, category, since, until, limit)."""

        def local(s: Store) -> dict[str, Any]:
            args = dict(filters)
            args["since"], args["until"] = queries.parse_window(
                args.get("since"), args.get("until")
            )
            return {"fingerprints": queries.list_fingerprints(s, project, **args)}

        return self.run("/api/fingerprints", filters, local)["fingerprints"]

    def fingerprint(
        self,
        fp: str,
        project: str,
        since: str | None = None,
        until: str | None = None,
        exemplars: int = 10,
    ) -> dict[str, Any]:
        """One fingerprint: components, per-version timeline, exemplar calls; the
        window [SINCE, UNTIL) limits the counts, the timeline and the exemplars."""
        try:
            value = queries.parse_fingerprint(fp)
        except queries.QueryError as exc:
            raise ReadError(str(exc)) from exc

        def local(s: Store) -> dict[str, Any]:
            now = datetime.now(UTC)
            start, end = queries.parse_window(since, until, now)
            return queries.fingerprint_detail(
                s, project, value, since=start, until=end, exemplars=exemplars, now=now
            )

        return self.run(
            f"/api/fingerprints/{value:016x}",
            {"since": since, "until": until, "exemplars": exemplars},
            local,
        )

    def compare(
        self,
        baseline: str,
        candidate: str,
        project: str,
        *,
        call_site: str | None = None,
        since: str | None = None,
        until: str | None = None,
        alpha: float | None = None,
    ) -> dict[str, Any]:
        """The comparison JSON of CANDIDATE against BASELINE."""
        params = {
            "baseline": baseline,
            "candidate": candidate,
            "call_site": call_site,
            "since": since,
            "until": until,
            "alpha": alpha,
        }

        def local(s: Store) -> dict[str, Any]:
            start, end = queries.parse_window(since, until)
            return queries.compare(
                s,
                project,
                baseline,
                candidate,
                call_site=call_site,
                since=start,
                until=end,
                alpha=alpha if alpha is not None else queries.DEFAULT_ALPHA,
            )

        return self.run("/api/compare", params, local)

    def sql(self, statement: str, project: str, max_rows: int = 1000) -> dict[str, Any]:
        """Read-only SQL against the project's tables and views."""
        if self.url:
            return self.post("/api/sql", {"sql": statement, "max_rows": max_rows})
        return self.run("/api/sql", {}, lambda s: run_readonly_sql(s, project, statement, max_rows))

    def incidents(
        self, since: str | None, limit: int, project: str, until: str | None = None
    ) -> list[dict[str, Any]]:
        """Top failure fingerprints in the window."""

        def local(s: Store) -> dict[str, Any]:
            start, end = queries.parse_window(since, until)
            return {"incidents": queries.list_incidents(s, project, start, limit, end)}

        params = {"since": since, "until": until, "limit": limit}
        return self.run("/api/incidents", params, local)["incidents"]

    def check_project(self, project: str) -> str | None:
        """For a direct store read, whether PROJECT has calls: None when it has.

        Raises ReadError, listing the projects that have calls, when PROJECT
        has none but others do: a mistyped ``--project`` would otherwise read
        as "no incidents". Returns a note when the store holds no calls at all
        (nothing to mistype against: an empty answer is the truth). Through a
        collector the caller's API key decides the project: nothing to check.
        """
        if self.url:
            return None
        store = self.store
        if queries.has_calls(store, project):
            return None
        # the rollup the read commands answer from, ordered by project first
        table = store.table("calls_hourly")
        known = [
            r[0]
            for r in store.query(
                f"SELECT DISTINCT project FROM {table} ORDER BY project LIMIT {{n:UInt32}}",
                {"n": _PROJECTS_SHOWN + 1},
            ).result_rows
        ]
        if not known:
            return f"the store holds no calls yet (of project {project!r} or any other)"
        more = ", …" if len(known) > _PROJECTS_SHOWN else ""
        raise ReadError(
            f"no calls stored for project {project!r}; projects with data: "
            f"{', '.join(known[:_PROJECTS_SHOWN])}{more}"
        )

    def close(self) -> None:
        """Release the store if it was opened."""
        if self._store is not None:
            self._store.close()


def check_url(url: str) -> str:
    """URL without a trailing slash, or ReadError when it is not ``http(s)://HOST[:PORT]``.

    The read API's paths are appended to it, so a path, a query or a
    fragment would only reach a 404 (or another server's page); a port
    outside 1-65535 would only fail to connect.
    """
    import httpx

    if not url.strip():
        raise ReadError(
            "--url must not be empty: give the collector's URL, e.g. http://127.0.0.1:4318"
        )
    expected = "expected http://HOST[:PORT] or https://HOST[:PORT], e.g. http://127.0.0.1:4318"
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise ReadError(f"invalid --url {url!r}: {exc}; {expected}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ReadError(f"invalid --url {url!r}: {expected}")
    if parsed.userinfo:  # not echoed: it may hold a password
        raise ReadError(
            f"invalid --url: a user or password is not part of it ({expected}); "
            "give the API key in FAULTPRINT_API_KEY"
        )
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise ReadError(f"invalid --url {url!r}: port {parsed.port} is not in 1-65535; {expected}")
    extra = [
        what
        for what, present in (
            (f"a path ({parsed.path})", parsed.path not in ("", "/")),
            ("a query", bool(parsed.query) or "?" in url),
            ("a fragment", bool(parsed.fragment) or "#" in url),
        )
        if present
    ]
    if extra:
        raise ReadError(f"invalid --url {url!r}: {' and '.join(extra)}; {expected}")
    return url.rstrip("/")


#: what an API key may hold: it travels in an HTTP header, and keys made by
#: ``faultprint keys add`` are printable ASCII without spaces
_API_KEY = re.compile(r"[!-~]+")


def api_key_from_env() -> str:
    """FAULTPRINT_API_KEY without surrounding whitespace ("" when unset or blank).

    Raises ReadError for a key with a space, a control or a non-ASCII
    character inside: the HTTP client would refuse the header (a line break
    would end it) with an error that quotes the whole key. The key is never
    shown: errors reach logs and CI output.
    """
    key = os.environ.get("FAULTPRINT_API_KEY", "").strip()
    if key and not _API_KEY.fullmatch(key):
        raise ReadError(
            "FAULTPRINT_API_KEY must be a key without spaces, control or non-ASCII "
            "characters, as 'faultprint keys add' prints it (the value is not shown)"
        )
    return key


def _reason(response: Any) -> str:
    """The error a collector answered, with the parameters its validation named."""
    try:
        body = response.json()
    except ValueError:
        return str(response.text)[:500]
    if not isinstance(body, dict):
        return str(body)[:500]
    detail = body.get("detail", response.text)
    problems = []
    for error in body.get("errors") or []:
        if not isinstance(error, dict):
            continue
        # loc is ["query", "baseline"] or ["body", "sql"]: the parameter is what helps
        loc = [str(p) for p in error.get("loc", []) if p not in ("query", "body", "path")]
        problems.append(f"{'.'.join(loc) or 'request'}: {error.get('msg', '')}")
    if problems:
        return f"{detail}: " + "; ".join(problems)
    return str(detail)


def queries_default_store() -> str:
    """The default embedded store location (FAULTPRINT_STORE overrides)."""
    from faultprint_collector.store._client import DEFAULT_STORE

    return os.environ.get("FAULTPRINT_STORE") or DEFAULT_STORE
