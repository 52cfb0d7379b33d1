"""Collector settings, from arguments or the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

from faultprint_collector.store._client import DEFAULT_STORE

DEFAULT_PROJECT = "default"


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

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from FAULTPRINT_* variables, then explicit OVERRIDES."""
        settings = cls()
        env = os.environ
        if env.get("FAULTPRINT_STORE"):
            settings.store = env["FAULTPRINT_STORE"]
        if env.get("FAULTPRINT_RETENTION_DAYS"):
            settings.retention_days = int(env["FAULTPRINT_RETENTION_DAYS"])
        if env.get("FAULTPRINT_CLUSTER"):
            settings.cluster = env["FAULTPRINT_CLUSTER"]
        for key, value in overrides.items():
            if value is not None:
                setattr(settings, key, value)
        return settings
