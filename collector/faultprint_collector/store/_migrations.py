"""Versioned schema migrations, one numbered .sql file each.

Files live in ``faultprint_collector/migrations`` as ``NNNN_name.sql``;
statements are separated by a line ending in ``;``. Placeholders:
``{db}`` (database prefix), ``{on_cluster}``, ``{engine:ENGINE(args)}``
(becomes the Replicated variant on a cluster) and ``{retention_days}``.
A table records which migrations have run, so start-up is idempotent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from faultprint_collector.store._client import Store

MIGRATIONS_TABLE = "schema_migrations"
DEFAULT_RETENTION_DAYS = 90

_ENGINE = re.compile(r"\{engine:([A-Za-z]+)(?:\(([^{}]*)\))?\}")
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS \{db\}(\w+)")


@dataclass(frozen=True)
class Migration:
    """One numbered migration file."""

    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """All migrations shipped with the package, in version order."""
    found = []
    for entry in resources.files("faultprint_collector.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


def _split(sql: str) -> list[str]:
    lines = [ln for ln in sql.splitlines() if not ln.lstrip().startswith("--")]
    return [s.strip() for s in re.split(r";\s*$", "\n".join(lines), flags=re.M) if s.strip()]


def render_ddl(
    sql: str,
    *,
    database: str = "",
    cluster: str = "",
    retention_days: int = DEFAULT_RETENTION_DAYS,
) -> list[str]:
    """Render one migration's statements for a single server or a cluster."""
    prefix = f"{database}." if database else ""
    statements = []
    for stmt in _split(sql):
        table = _TABLE.search(stmt)

        def engine(match: re.Match[str], table: re.Match[str] | None = table) -> str:
            name, args = match[1], match[2]
            if not cluster:
                return f"{name}({args})" if args is not None else name
            name_in_path = table[1] if table else "x"
            path = f"'/clickhouse/tables/{{shard}}/{database or 'default'}/{name_in_path}'"
            inner = ", ".join(a for a in (path, "'{replica}'", args) if a)
            return f"Replicated{name}({inner})"

        stmt = _ENGINE.sub(engine, stmt)
        stmt = stmt.replace("{db}", prefix)
        stmt = stmt.replace("{on_cluster}", f"ON CLUSTER {cluster}" if cluster else "")
        stmt = stmt.replace("{retention_days}", str(int(retention_days)))
        statements.append(stmt)
    return statements


def apply_migrations(store: Store, retention_days: int = DEFAULT_RETENTION_DAYS) -> list[int]:
    """Run every migration not yet recorded; return the versions applied."""
    table = store.table(MIGRATIONS_TABLE)
    on_cluster = f"ON CLUSTER {store.cluster}" if store.cluster else ""
    store.command(
        f"CREATE TABLE IF NOT EXISTS {table} {on_cluster} (version UInt32, name String, "
        "applied_at DateTime DEFAULT now()) ENGINE = ReplacingMergeTree ORDER BY version"
    )
    done = {row[0] for row in store.query(f"SELECT version FROM {table}").result_rows}
    applied = []
    for migration in load_migrations():
        if migration.version in done:
            continue
        for stmt in render_ddl(
            migration.sql,
            database=store.database,
            cluster=store.cluster,
            retention_days=retention_days,
        ):
            store.command(stmt)
        store.insert(table, [[migration.version, migration.name]], ["version", "name"])
        applied.append(migration.version)
    return applied
