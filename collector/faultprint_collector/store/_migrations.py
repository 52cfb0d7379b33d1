"""Versioned schema migrations, one numbered .sql file each.

Files live in ``faultprint_collector/migrations`` as ``NNNN_name.sql``;
statements are separated by a line ending in ``;``. Placeholders:
``{db}`` (database prefix), ``{on_cluster}``, ``{engine:ENGINE(args)}``
(becomes the Replicated variant on a cluster) and ``{retention_days}``.
A table records which migrations have run, so start-up is idempotent.

On a single server the statements run as written. On a cluster
(:func:`render_ddl` with ``cluster=``) every table with a MergeTree-family
engine becomes a replicated ``NAME_local`` table on each shard plus a
``Distributed`` table ``NAME`` over them, so readers and writers keep using
the plain names:

- ``calls`` is sharded by ``cityHash64(trace_id, span_id)`` (:data:`SHARD_KEYS`):
  the identity of a span, so a retried span always reaches the shard that
  already holds it (insert deduplication and ReplacingMergeTree stay exact),
  and rows spread evenly. Sharding by fingerprint was rejected: every
  successful call has fingerprint 0 and would land on one shard, and an
  incident would pile its storm onto one shard when load peaks.
- materialized views are rewired to read and write the ``_local`` tables, so
  each shard aggregates exactly the calls it stores. Every rollup column is a
  mergeable aggregate (sum, min, max, any of a value fixed per key, and
  ``-State`` functions), so a per-fingerprint figure is the merge of
  per-shard partials; reading through the ``Distributed`` table with GROUP BY
  (as every faultprint query does) merges them exactly.
- rollup tables get a ``Distributed`` table without a sharding key: it is
  for reading only; an insert through it fails instead of scattering rows
  that the views already wrote on the right shard.
- plain views stay global: they read the ``Distributed`` tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from faultprint_collector.store._client import MIGRATIONS_TABLE, Store

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "LOCAL_SUFFIX",
    "MIGRATIONS_TABLE",
    "SHARD_KEYS",
    "Migration",
    "apply_migrations",
    "apply_retention",
    "engine_tables",
    "load_migrations",
    "render_ddl",
    "render_schema",
]

DEFAULT_RETENTION_DAYS = 90
#: suffix of the per-shard tables behind the Distributed tables on a cluster
LOCAL_SUFFIX = "_local"
#: sharding keys of the tables the collector writes to (see the module docstring)
SHARD_KEYS: dict[str, str] = {"calls": "cityHash64(trace_id, span_id)"}

_ENGINE = re.compile(r"\{engine:([A-Za-z]+)(?:\(([^{}]*)\))?\}")
# A MergeTree-family engine written literally (without the placeholder): it is
# replicated on a cluster all the same, or one shard's replicas would diverge.
_LITERAL_ENGINE = re.compile(
    r"\bENGINE\s*=\s*(?!Replicated)(?P<name>[A-Za-z]*MergeTree)\b(?:\((?P<args>[^()]*)\))?"
)
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_CREATE_TABLE = re.compile(r"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?\{db\}(\w+)", re.I)
_CREATE_MV = re.compile(
    r"^\s*CREATE\s+MATERIALIZED\s+VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?\{db\}(\w+)", re.I
)
_CREATE_VIEW = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\b", re.I)
_ALTER = re.compile(r"^\s*ALTER\s+TABLE\s+\{db\}(\w+)", re.I)
_DROP = re.compile(
    r"^\s*DROP\s+(?P<kind>TABLE|VIEW|DICTIONARY)\s+(?:IF\s+EXISTS\s+)?\{db\}(?P<name>\w+)", re.I
)
_OPTIMIZE = re.compile(r"^\s*OPTIMIZE\s+TABLE\s+\{db\}(\w+)", re.I)
_TO_TARGET = re.compile(r"\bTO\s+\{db\}(\w+)", re.I)
_DB_REF = re.compile(r"\{db\}(\w+)")
# ALTERs that change columns apply to the Distributed table too (it carries
# the column list); others (TTL, indexes, projections, settings) only to the
# local tables, which hold the data.
_COLUMN_ALTER = re.compile(r"\b(?:ADD|DROP|MODIFY|RENAME|COMMENT|CLEAR)\s+COLUMN\b", re.I)
_HAS_ENGINE = re.compile(r"\bENGINE\s*=", re.I)
_TTL_LINE = re.compile(r"^\s*TTL\s+(.+?)\s*$", re.M)
_MODIFY_TTL = re.compile(r"\bMODIFY\s+TTL\s+(.+?)\s*$", re.I | re.S)
# how the engine shows a retention in system.tables.engine_full
_TTL_DAYS = re.compile(r"toIntervalDay\((\d+)\)")


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


def _stores_data(stmt: str) -> bool:
    return bool(_ENGINE.search(stmt) or _LITERAL_ENGINE.search(stmt))


def engine_tables(migrations: list[Migration] | None = None) -> frozenset[str]:
    """Names of the tables (and materialized views with their own storage) that
    hold data: on a cluster each becomes ``NAME_local`` + a Distributed ``NAME``."""
    names: set[str] = set()
    for migration in migrations if migrations is not None else load_migrations():
        for stmt in _split(migration.sql):
            match = _CREATE_TABLE.match(stmt) or _CREATE_MV.match(stmt)
            if match and _stores_data(stmt):
                names.add(match[1])
    return frozenset(names)


@cache
def _shipped_engine_tables() -> frozenset[str]:
    return engine_tables()


def _mv_targets(migrations: list[Migration]) -> frozenset[str]:
    targets = set()
    for migration in migrations:
        for stmt in _split(migration.sql):
            if _CREATE_MV.match(stmt):
                target = _TO_TARGET.search(stmt)
                if target:
                    targets.add(target[1])
    return frozenset(targets)


@cache
def _shipped_mv_targets() -> frozenset[str]:
    return _mv_targets(load_migrations())


def _replicated(name: str, args: str | None, database: str, table: str) -> str:
    # One Keeper path per shard and table; the replica macro tells replicas apart.
    path = f"'/clickhouse/tables/{{shard}}/{database}/{table}'"
    inner = ", ".join(a for a in (path, "'{replica}'", (args or "").strip()) if a)
    return f"Replicated{name}({inner})"


def _fill(stmt: str, prefix: str, on_cluster: str, retention_days: int) -> str:
    stmt = stmt.replace("{db}", prefix)
    stmt = stmt.replace("{on_cluster}", on_cluster)
    return stmt.replace("{retention_days}", str(int(retention_days)))


def _local_refs(stmt: str, local: frozenset[str]) -> str:
    """Point every reference to a data-holding table at its local table."""
    return _DB_REF.sub(lambda m: f"{{db}}{m[1]}{LOCAL_SUFFIX}" if m[1] in local else m[0], stmt)


def render_ddl(
    sql: str,
    *,
    database: str = "",
    cluster: str = "",
    retention_days: int = DEFAULT_RETENTION_DAYS,
    local_tables: frozenset[str] | None = None,
    mv_targets: frozenset[str] | None = None,
) -> list[str]:
    """Render one migration's statements for a single server or a cluster.

    ``local_tables`` (tables that hold data) and ``mv_targets`` (tables
    filled by materialized views) default to those of the shipped
    migrations, so a migration can refer to tables an earlier one created.
    """
    prefix = f"{database}." if database else ""
    if not cluster:
        statements = []
        for stmt in _split(sql):

            def engine(match: re.Match[str]) -> str:
                name, args = match[1], match[2]
                return f"{name}({args})" if args is not None else name

            statements.append(_fill(_ENGINE.sub(engine, stmt), prefix, "", retention_days))
        return statements

    local = local_tables if local_tables is not None else _shipped_engine_tables()
    targets = mv_targets if mv_targets is not None else _shipped_mv_targets()
    db_name = database or "default"
    on_cluster = f"ON CLUSTER {cluster}"
    out: list[str] = []
    for stmt in _split(sql):
        out.extend(
            _fill(s, prefix, on_cluster, retention_days)
            for s in _cluster_statement(stmt, cluster, db_name, prefix, local, targets)
        )
    return out


def _cluster_statement(
    stmt: str,
    cluster: str,
    database: str,
    prefix: str,
    local: frozenset[str],
    targets: frozenset[str],
) -> list[str]:
    """One statement of a migration as the statements a cluster needs."""
    if "{on_cluster}" not in stmt and not re.match(r"^\s*(?:INSERT|SELECT|WITH)\b", stmt, re.I):
        # Every DDL statement must run on every node; a migration that forgot
        # the placeholder still gets it.
        stmt = _add_on_cluster(stmt)
    create = _CREATE_TABLE.match(stmt)
    mv = _CREATE_MV.match(stmt)
    if (create or mv) and _stores_data(stmt):
        name = (create or mv)[1]  # type: ignore[index]
        local_name = f"{name}{LOCAL_SUFFIX}"
        body = stmt.replace(f"{{db}}{name}", f"{{db}}{local_name}", 1)
        if mv:
            body = _local_refs(body, local - {name})
        body = _ENGINE.sub(lambda m: _replicated(m[1], m[2], database, local_name), body)
        body = _LITERAL_ENGINE.sub(
            lambda m: "ENGINE = " + _replicated(m["name"], m["args"], database, local_name), body
        )
        key = SHARD_KEYS.get(name)
        if key is None and name not in targets and not mv:
            key = f"cityHash64({_order_key(stmt)})"
        args = f"'{cluster}', '{database}', '{local_name}'" + (f", {key}" if key else "")
        distributed = (
            f"CREATE TABLE IF NOT EXISTS {{db}}{name} {{on_cluster}}\n"
            f"AS {{db}}{local_name}\nENGINE = Distributed({args})"
        )
        return [body, distributed]
    if mv:
        # a view with a TO table: read and write this shard's local tables
        return [_local_refs(stmt, local)]
    if _CREATE_VIEW.match(stmt):
        return [stmt]  # global: reads the Distributed tables
    alter = _ALTER.match(stmt)
    if alter and alter[1] in local:
        name = alter[1]
        local_stmt = stmt.replace(f"{{db}}{name}", f"{{db}}{name}{LOCAL_SUFFIX}", 1)
        if _COLUMN_ALTER.search(stmt):
            return [local_stmt, stmt]
        return [local_stmt]
    if alter:
        return [_local_refs(stmt, local)]  # e.g. MODIFY QUERY of a view
    drop = _DROP.match(stmt)
    if drop and drop["name"] in local:
        local_stmt = stmt.replace(f"{{db}}{drop['name']}", f"{{db}}{drop['name']}{LOCAL_SUFFIX}", 1)
        return [stmt, local_stmt]
    optimize = _OPTIMIZE.match(stmt)
    if optimize and optimize[1] in local:
        return [_local_refs(stmt, local)]
    return [stmt]


def _add_on_cluster(stmt: str) -> str:
    head = re.match(
        r"^\s*(?:CREATE\s+(?:OR\s+REPLACE\s+)?(?:MATERIALIZED\s+)?(?:TABLE|VIEW|DICTIONARY)"
        r"(?:\s+IF\s+NOT\s+EXISTS)?|ALTER\s+TABLE|DROP\s+(?:TABLE|VIEW|DICTIONARY)"
        r"(?:\s+IF\s+EXISTS)?|OPTIMIZE\s+TABLE|TRUNCATE\s+TABLE(?:\s+IF\s+EXISTS)?)"
        r"\s+\{db\}\w+",
        stmt,
        re.I,
    )
    if head is None:
        return stmt
    return f"{stmt[: head.end()]} {{on_cluster}}{stmt[head.end() :]}"


def _order_key(stmt: str) -> str:
    """The ORDER BY expression of a CREATE TABLE: its rows' identity."""
    match = re.search(r"\bORDER\s+BY\s+(\([^()]*\)|[\w.]+)", stmt, re.I)
    if match is None:
        return "rand()"
    key = match[1].strip()
    return key[1:-1] if key.startswith("(") else key


def render_schema(
    *,
    database: str = "",
    cluster: str = "",
    retention_days: int = DEFAULT_RETENTION_DAYS,
) -> list[tuple[Migration | None, list[str]]]:
    """Every statement of the schema, grouped by migration (None: the migrations table)."""
    migrations = load_migrations()
    local = engine_tables(migrations)
    targets = _mv_targets(migrations)
    rendered: list[tuple[Migration | None, list[str]]] = [
        (None, [migrations_table_ddl(database, cluster)])
    ]
    for migration in migrations:
        rendered.append(
            (
                migration,
                render_ddl(
                    migration.sql,
                    database=database,
                    cluster=cluster,
                    retention_days=retention_days,
                    local_tables=local,
                    mv_targets=targets,
                ),
            )
        )
    return rendered


def migrations_table_ddl(database: str = "", cluster: str = "") -> str:
    """The table recording applied migrations.

    On a cluster it is replicated across *all* nodes (one Keeper path, no
    shard macro): a collector connected to any node must see what another
    collector already applied.
    """
    prefix = f"{database}." if database else ""
    if not cluster:
        engine = "ReplacingMergeTree"
        on_cluster = ""
    else:
        path = f"'/clickhouse/tables/all/{database or 'default'}/{MIGRATIONS_TABLE}'"
        engine = f"ReplicatedReplacingMergeTree({path}, '{{replica}}')"
        on_cluster = f" ON CLUSTER {cluster}"
    return (
        f"CREATE TABLE IF NOT EXISTS {prefix}{MIGRATIONS_TABLE}{on_cluster} (version UInt32, "
        f"name String, applied_at DateTime DEFAULT now()) ENGINE = {engine} ORDER BY version"
    )


def apply_migrations(store: Store, retention_days: int = DEFAULT_RETENTION_DAYS) -> list[int]:
    """Run every migration not yet recorded; return the versions applied."""
    table = store.table(MIGRATIONS_TABLE)
    store.command(migrations_table_ddl(store.database, store.cluster))
    done = {row[0] for row in store.query(f"SELECT version FROM {table}").result_rows}
    applied = []
    migrations = load_migrations()
    local = engine_tables(migrations)
    targets = _mv_targets(migrations)
    for migration in migrations:
        if migration.version in done:
            continue
        for stmt in render_ddl(
            migration.sql,
            database=store.database,
            cluster=store.cluster,
            retention_days=retention_days,
            local_tables=local,
            mv_targets=targets,
        ):
            backfill = _backfill(store, stmt)
            store.command(stmt)
            if backfill:
                store.command(*backfill)
        store.insert(table, [[migration.version, migration.name]], ["version", "name"])
        applied.append(migration.version)
    return applied


_NEW_CALLS_VIEW = re.compile(
    r"^\s*CREATE\s+MATERIALIZED\s+VIEW\s+IF\s+NOT\s+EXISTS\s+(?P<name>[\w.]+)\s+"
    r"TO\s+(?P<target>[\w.]+)\s+AS\s+(?P<select>SELECT\b.*)$",
    re.I | re.S,
)


def _backfill(store: Store, stmt: str) -> tuple[str, dict[str, Any]] | None:
    """The insert that gives a materialized view STMT is about to create the calls
    stored before it existed, or None.

    A materialized view sees only the inserts made after it; without this an
    older store upgraded to a migration adding a rollup would show its past
    calls in ``calls`` but not in the rollup. Calls are read with FINAL (each
    once) and only those inserted before the view was created, so inserts
    made meanwhile by another collector are not counted twice. On a cluster
    each shard's rollup must be filled from its own calls, which one
    connection cannot do; there the past stays out of the new rollup.
    """
    match = _NEW_CALLS_VIEW.match(stmt)
    calls = store.table("calls")
    source = re.compile(rf"\bFROM\s+{re.escape(calls)}\b")
    if store.cluster or match is None or not source.search(match["select"]):
        return None
    if store.command(f"EXISTS TABLE {match['name']}") or not store.command(f"EXISTS TABLE {calls}"):
        return None
    before = store.command("SELECT toString(now64(3, 'UTC'))")
    select = source.sub(
        f"FROM (SELECT * FROM {calls} FINAL WHERE inserted_at < {{before:DateTime64(3, 'UTC')}})",
        match["select"],
        count=1,
    )
    return f"INSERT INTO {match['target']} {select}", {"before": before}


def retention_ttls(migrations: list[Migration] | None = None) -> dict[str, str]:
    """The TTL expression (with ``{retention_days}``) of every table that has one,
    as the latest migration that sets it wrote it."""
    ttls: dict[str, str] = {}
    for migration in migrations if migrations is not None else load_migrations():
        for stmt in _split(migration.sql):
            create = _CREATE_TABLE.match(stmt)
            line = _TTL_LINE.search(stmt) if create else None
            if create and line and "{retention_days}" in line[1]:
                ttls[create[1]] = line[1]
            alter = _ALTER.match(stmt)
            modify = _MODIFY_TTL.search(stmt) if alter else None
            if alter and modify and "{retention_days}" in modify[1]:
                ttls[alter[1]] = modify[1]
    return ttls


def apply_retention(store: Store, retention_days: int = DEFAULT_RETENTION_DAYS) -> list[str]:
    """Make every table's TTL keep RETENTION_DAYS; return the tables changed.

    The migrations write the retention of the day a table was created; a
    collector restarted with another ``FAULTPRINT_RETENTION_DAYS`` would
    otherwise keep the old one without a word. A table already at the
    retention is left alone (changing a TTL rewrites the table's parts).
    """
    migrations = load_migrations()
    local = engine_tables(migrations)
    ttls = retention_ttls(migrations)
    suffix = LOCAL_SUFFIX if store.cluster else ""
    rows = store.query(
        "SELECT name, engine_full FROM system.tables "
        "WHERE database = if({db:String} = '', currentDatabase(), {db:String}) "
        "AND name IN {names:Array(String)}",
        parameters={"db": store.database, "names": [f"{name}{suffix}" for name in ttls]},
    ).result_rows
    current = {name.removesuffix(suffix): _TTL_DAYS.findall(engine) for name, engine in rows}
    changed = []
    for name, ttl in ttls.items():
        if name not in current or current[name] == [str(int(retention_days))]:
            continue
        for stmt in render_ddl(
            f"ALTER TABLE {{db}}{name} {{on_cluster}} MODIFY TTL {ttl}",
            database=store.database,
            cluster=store.cluster,
            retention_days=retention_days,
            local_tables=local,
        ):
            store.command(stmt)
        changed.append(name)
    return changed
