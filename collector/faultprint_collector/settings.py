"""Collector settings, from arguments or the environment."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from faultprint_collector.store._client import DEFAULT_READ_CONNECTIONS, DEFAULT_STORE

DEFAULT_PROJECT = "default"
#: the retention ``faultprint schema --retention-days`` accepts too
RETENTION_DAYS_RANGE = (1, 36500)
#: byte limits beyond 1 TiB are a typo, not a configuration
MAX_BYTES = 1 << 40
MAX_DECODE_WORKERS = 256
MAX_INFLIGHT = 100_000
MAX_READ_CONNECTIONS = 64
MAX_SQL_TIMEOUT_S = 3600.0
CLUSTER_WRITES = ("distributed", "local")


T = TypeVar("T")


class SettingsError(ValueError):
    """A setting is malformed or out of range; the message names the variable."""


def _env_number(name: str, parse: Callable[[str], T], what: str) -> T:
    text = os.environ[name].strip()
    # int() and float() also read digits of other scripts ('٣' is 3) and
    # underscores ('1_0' is 10): a value only Python reads as a number is a
    # typo or a paste, and another reader of the same variable would refuse it
    plain = text.isascii() and "_" not in text
    if plain:
        try:
            return parse(text)
        except ValueError:
            pass
    hint = "" if plain else " (in plain ASCII digits, without '_')"
    raise SettingsError(f"{name} must be {what}{hint}, got {text[:40]!r}")


#: what a yes/no variable accepts (compared lower-cased, without surrounding spaces)
_TRUE = ("1", "true", "on", "yes")
_FALSE = ("0", "false", "off", "no")


def _env_bool(name: str) -> bool:
    text = os.environ[name].strip()
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    # a silent default would leave scrubbing on (or off) against the intent
    raise SettingsError(
        f"{name} must be on or off ({'/'.join(_TRUE)} or {'/'.join(_FALSE)}), got {text[:40]!r}"
    )


def _env_int(name: str) -> int:
    return _env_number(name, int, "an integer")


def _env_float(name: str) -> float:
    return _env_number(name, float, "a number")


@dataclass
class Settings:
    """Everything the collector needs to start."""

    store: str = DEFAULT_STORE
    host: str = "127.0.0.1"
    port: int = 4318
    #: largest accepted request body (compressed), bytes
    max_body_bytes: int = 16 * 1024 * 1024
    #: largest accepted body after decompression, bytes
    max_decompressed_bytes: int = 64 * 1024 * 1024
    retention_days: int = 90
    cluster: str = ""
    #: on a cluster: ``distributed`` (insert into the Distributed tables, which
    #: shard by span identity) or ``local`` (into the shard-local tables of the
    #: node the store URL names)
    cluster_writes: str = "distributed"
    #: durable spool of accepted batches; empty: next to an embedded store
    #: (``<store>.spool``), else ``./.faultprint/spool``
    spool_dir: str = ""
    #: spool capacity; beyond it /v1/traces answers 503 with Retry-After
    spool_max_bytes: int = 1 << 30
    #: always | batch (one fsync per group commit, before acknowledging) |
    #: interval (fsync every spool_fsync_interval_s; survives a process crash,
    #: not a power loss within the interval)
    spool_fsync: str = "batch"
    spool_fsync_interval_s: float = 0.2
    #: API keys: a file of ``project:sha256-hex`` lines (see ``faultprint keys``)
    api_keys_file: str = ""
    #: API keys inline, ``project:key,project:key`` (plain keys; hashed on load)
    api_keys: str = ""
    #: allow running without API keys on a non-loopback address
    insecure: bool = False
    #: processes decoding bodies (-1: one per core, 0: threads of the main process)
    decode_workers: int = -1
    #: requests to /v1/traces being handled at once; beyond it 503
    max_inflight_requests: int = 32
    #: per-project ingest limit in spans per second (0: unlimited); beyond it 429
    rate_limit_spans_per_s: float = 0.0
    #: scrub secrets and personal data (API keys, bearer tokens, emails) from
    #: messages and content before storage
    scrub: bool = True
    #: extra regular expressions to scrub, ``;;``-separated in the environment
    scrub_patterns: list[str] = field(default_factory=list)
    #: read queries (API and UI) running at once, each on its own connection
    read_connections: int = DEFAULT_READ_CONNECTIONS
    #: time limit of one ad-hoc ``/api/sql`` query, seconds
    sql_timeout_s: float = 30.0
    #: memory limit of one ad-hoc ``/api/sql`` query, bytes
    sql_max_memory_bytes: int = 1 << 30

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from FAULTPRINT_* variables, then explicit OVERRIDES.

        Raises SettingsError, naming the variable and its allowed range, for
        a value that is not a number or outside what the collector can use:
        a nonsensical limit would otherwise fail every request (or, for
        retention, drop every row) long after start-up claimed success.
        """
        settings = cls()
        env = os.environ
        if env.get("FAULTPRINT_STORE"):
            settings.store = env["FAULTPRINT_STORE"]
        if env.get("FAULTPRINT_RETENTION_DAYS"):
            settings.retention_days = _env_int("FAULTPRINT_RETENTION_DAYS")
        if env.get("FAULTPRINT_CLUSTER"):
            settings.cluster = env["FAULTPRINT_CLUSTER"]
        if env.get("FAULTPRINT_CLUSTER_WRITES"):
            settings.cluster_writes = env["FAULTPRINT_CLUSTER_WRITES"].strip().lower()
        if env.get("FAULTPRINT_MAX_BODY_BYTES"):
            settings.max_body_bytes = _env_int("FAULTPRINT_MAX_BODY_BYTES")
        if env.get("FAULTPRINT_MAX_DECOMPRESSED_BYTES"):
            settings.max_decompressed_bytes = _env_int("FAULTPRINT_MAX_DECOMPRESSED_BYTES")
        if env.get("FAULTPRINT_SPOOL_DIR"):
            settings.spool_dir = env["FAULTPRINT_SPOOL_DIR"]
        if env.get("FAULTPRINT_SPOOL_MAX_BYTES"):
            settings.spool_max_bytes = _env_int("FAULTPRINT_SPOOL_MAX_BYTES")
        if env.get("FAULTPRINT_SPOOL_FSYNC"):
            settings.spool_fsync = env["FAULTPRINT_SPOOL_FSYNC"]
        if env.get("FAULTPRINT_API_KEYS_FILE"):
            settings.api_keys_file = env["FAULTPRINT_API_KEYS_FILE"]
        if env.get("FAULTPRINT_API_KEYS"):
            settings.api_keys = env["FAULTPRINT_API_KEYS"]
        if env.get("FAULTPRINT_DECODE_WORKERS"):
            settings.decode_workers = _env_int("FAULTPRINT_DECODE_WORKERS")
        if env.get("FAULTPRINT_MAX_INFLIGHT_REQUESTS"):
            settings.max_inflight_requests = _env_int("FAULTPRINT_MAX_INFLIGHT_REQUESTS")
        if env.get("FAULTPRINT_RATE_LIMIT_SPANS_PER_S"):
            settings.rate_limit_spans_per_s = _env_float("FAULTPRINT_RATE_LIMIT_SPANS_PER_S")
        if env.get("FAULTPRINT_SCRUB", "").strip():
            settings.scrub = _env_bool("FAULTPRINT_SCRUB")
        if env.get("FAULTPRINT_SCRUB_PATTERNS"):
            settings.scrub_patterns = [
                p for p in env["FAULTPRINT_SCRUB_PATTERNS"].split(";;") if p.strip()
            ]
        if env.get("FAULTPRINT_READ_CONNECTIONS"):
            settings.read_connections = _env_int("FAULTPRINT_READ_CONNECTIONS")
        if env.get("FAULTPRINT_SQL_TIMEOUT_S"):
            settings.sql_timeout_s = _env_float("FAULTPRINT_SQL_TIMEOUT_S")
        if env.get("FAULTPRINT_SQL_MAX_MEMORY_BYTES"):
            settings.sql_max_memory_bytes = _env_int("FAULTPRINT_SQL_MAX_MEMORY_BYTES")
        for key, value in overrides.items():
            if value is not None:
                setattr(settings, key, value)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise SettingsError when a value is outside its allowed range."""
        for name, value, low, high in (
            ("FAULTPRINT_RETENTION_DAYS", self.retention_days, *RETENTION_DAYS_RANGE),
            ("FAULTPRINT_MAX_BODY_BYTES", self.max_body_bytes, 1, MAX_BYTES),
            ("FAULTPRINT_MAX_DECOMPRESSED_BYTES", self.max_decompressed_bytes, 1, MAX_BYTES),
            ("FAULTPRINT_SPOOL_MAX_BYTES", self.spool_max_bytes, 1, MAX_BYTES),
            ("FAULTPRINT_DECODE_WORKERS", self.decode_workers, -1, MAX_DECODE_WORKERS),
            ("FAULTPRINT_MAX_INFLIGHT_REQUESTS", self.max_inflight_requests, 1, MAX_INFLIGHT),
            ("FAULTPRINT_READ_CONNECTIONS", self.read_connections, 1, MAX_READ_CONNECTIONS),
            ("FAULTPRINT_SQL_MAX_MEMORY_BYTES", self.sql_max_memory_bytes, 1 << 20, MAX_BYTES),
        ):
            if not low <= value <= high:
                raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
        timeout = self.sql_timeout_s
        if not (math.isfinite(timeout) and 0 < timeout <= MAX_SQL_TIMEOUT_S):
            raise SettingsError(
                f"FAULTPRINT_SQL_TIMEOUT_S must be more than 0 and at most "
                f"{MAX_SQL_TIMEOUT_S:g} seconds, got {timeout}"
            )
        rate = self.rate_limit_spans_per_s
        if not (math.isfinite(rate) and rate >= 0):
            raise SettingsError(
                "FAULTPRINT_RATE_LIMIT_SPANS_PER_S must be a finite number of spans "
                f"per second, 0 (unlimited) or more, got {rate}"
            )
        for pattern in self.scrub_patterns:
            # checked here, where the variable is known: the scrubber that
            # compiles them only knows the pattern
            try:
                re.compile(pattern)
            except re.error as exc:
                raise SettingsError(
                    f"FAULTPRINT_SCRUB_PATTERNS holds an invalid regular expression "
                    f"{pattern[:80]!r}: {exc} (patterns are separated by ';;')"
                ) from None
        if self.cluster_writes not in CLUSTER_WRITES:
            raise SettingsError(
                f"FAULTPRINT_CLUSTER_WRITES must be {' or '.join(CLUSTER_WRITES)}, "
                f"got {self.cluster_writes!r}"
            )

    def spool_path(self) -> str:
        """Where the spool lives (see ``spool_dir``)."""
        if self.spool_dir:
            return self.spool_dir
        from faultprint_collector.store._client import is_url

        if self.store.startswith("chdb://") or not is_url(self.store):
            path = self.store.removeprefix("chdb://").rstrip("/") or "."
            return f"{path}.spool"
        return "./.faultprint/spool"
