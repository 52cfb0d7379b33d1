"""``faultprint schema``: print the ClickHouse DDL, for one server or a cluster.

The statements are exactly those the collector runs at start-up (its
migrations, rendered), so a team can review them, apply them by hand, or
hand them to whoever owns the ClickHouse cluster.
"""

from __future__ import annotations

import re
import sys

import typer

from faultprint_collector.store._migrations import (
    DEFAULT_RETENTION_DAYS,
    SHARD_KEYS,
    render_schema,
)

__all__ = ["register", "schema_text"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class SchemaOptionError(ValueError):
    """An option value cannot be used in DDL; the message says why."""


def schema_text(
    *, cluster: str = "", database: str = "", retention_days: int = DEFAULT_RETENTION_DAYS
) -> str:
    """The whole schema as SQL text, one statement per ``;``."""
    for label, value in (("cluster", cluster), ("database", database)):
        if value and not _IDENTIFIER.match(value):
            raise SchemaOptionError(
                f"--{label} must be a plain identifier (letters, digits, _), got {value!r}"
            )
    if not 1 <= retention_days <= 36500:
        raise SchemaOptionError("--retention-days must be between 1 and 36500")
    if cluster and not database:
        # Distributed tables name their database explicitly; say which.
        database = "default"
    lines = ["-- faultprint schema"]
    if cluster:
        keys = ", ".join(f"{table}: {key}" for table, key in SHARD_KEYS.items())
        lines += [
            f"-- cluster {cluster}: Replicated*MergeTree tables NAME_local on every shard,",
            "-- Distributed tables NAME over them, materialized views on the local tables.",
            f"-- Sharding keys: {keys} (a span's identity: retries reach the shard",
            "-- that holds the span; rollups are merged across shards at read time).",
            "-- The server needs the {shard} and {replica} macros and ClickHouse Keeper.",
        ]
    for migration, statements in render_schema(
        database=database, cluster=cluster, retention_days=retention_days
    ):
        lines.append("")
        lines.append(
            f"-- {migration.version:04d}_{migration.name}" if migration else "-- migrations table"
        )
        lines.extend(f"{stmt};" for stmt in statements)
    return "\n".join(lines) + "\n"


def register(app: typer.Typer) -> None:
    """Add the ``schema`` command to APP."""

    @app.command()
    def schema(
        cluster: str = typer.Option(
            "", "--cluster", help="Emit ON CLUSTER DDL for this ClickHouse cluster."
        ),
        database: str = typer.Option(
            "", "--database", help="Qualify names with this database (default on a cluster)."
        ),
        retention_days: int = typer.Option(
            DEFAULT_RETENTION_DAYS, "--retention-days", help="TTL of the calls table, in days."
        ),
    ) -> None:
        """Print the ClickHouse DDL of the store (with --cluster: replicated and sharded)."""
        try:
            text = schema_text(cluster=cluster, database=database, retention_days=retention_days)
        except SchemaOptionError as exc:
            sys.stderr.write(f"error: {exc}\n")
            raise typer.Exit(2) from exc
        sys.stdout.write(text)
