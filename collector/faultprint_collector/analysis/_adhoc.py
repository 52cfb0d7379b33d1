"""Ad-hoc read-only SQL for incident review, scoped to one project.

Defence in layers, because the text is the caller's:

1. a lexical check: exactly one statement, beginning with SELECT or WITH,
   no ``INTO OUTFILE`` (string literals, quoted names and comments are
   skipped, so a ``;`` inside a string is fine);
2. ClickHouse parses it (``EXPLAIN AST``) and every table it reads must be
   one of faultprint's call, rollup or catalogue tables or views (or a WITH
   name), every table function a harmless generator (``numbers`` …) —
   no system tables, other databases, files, URLs or ``merge()`` — and no
   function reads outside those tables: not a file (``file()``, which the
   embedded engine would read anywhere the collector can, its spool of every
   project's spans included), a dictionary, a Join table, a model file, or
   the server's settings and host;
3. it runs with ``readonly = 1`` (no writes, no setting changes) and with
   ``additional_table_filters`` restricting every project-bearing table to
   the caller's project, which the views inherit;
4. bounds the engine enforces (``SqlLimits``): execution time, memory, and
   the rows of the result. The result is cut in the engine, never after
   decoding it in Python: decoding runs under the interpreter lock, so a
   huge result decoded only to be truncated freezes the whole collector.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address
from typing import Any
from uuid import UUID

from faultprint_collector.store import Store

__all__ = ["ADHOC_TABLES", "AdhocLimitExceeded", "AdhocRefused", "SqlLimits", "run_readonly_sql"]

#: tables with a ``project`` column that ad-hoc SQL may read (filtered per project)
_PROJECT_TABLES = (
    "calls",
    "calls_hourly",
    "input_outcomes_hourly",
    "fingerprint_catalog",
)
#: everything ad-hoc SQL may name: the tables above and the views built on them
ADHOC_TABLES = frozenset(
    {
        *_PROJECT_TABLES,
        "failures_v",
        "fingerprints_v",
        "fingerprint_catalog_v",
        "version_hourly_v",
        "fingerprint_hourly_v",
    }
)
_TABLE_FUNCTIONS = frozenset({"numbers", "numbers_mt", "zeros", "zeros_mt", "values"})
#: functions (lower-cased) that read outside the tables above: files,
#: dictionaries, Join tables, model files, the server's settings and host
_FUNCTIONS_REFUSED = frozenset(
    {
        "file",
        "joinget",
        "joingetornull",
        "catboostevaluate",
        "naivebayesclassifier",
        "evalmlmethod",
        "getsetting",
        "getsettingordefault",
        "getserversetting",
        "getmergetreesetting",
        "getmacro",
        "globalvariable",
        "getclienthttpheader",
        "showcertificate",
        "serveruuid",
        "hostname",
        "fqdn",
        "tcpport",
        "getserverport",
        "filesystemavailable",
        "filesystemcapacity",
        "filesystemfree",
        "filesystemunreserved",
        "getscalar",
        "__getscalar",
    }
)
MAX_ROWS = 10_000
MAX_SQL_CHARS = 20_000
MAX_SECONDS = 30
#: at most this many values (rows × columns) are decoded and returned
MAX_CELLS = 1_000_000
#: ClickHouse error codes of a query stopped by one of its limits
_LIMIT_ERRORS = {
    158: "it reads too many rows",  # TOO_MANY_ROWS
    159: "it ran longer than the time limit",  # TIMEOUT_EXCEEDED
    160: "it is too slow",  # TOO_SLOW
    241: "it needs more memory than allowed",  # MEMORY_LIMIT_EXCEEDED
    307: "it reads too many bytes",  # TOO_MANY_BYTES
    396: "its result is larger than allowed",  # TOO_MANY_ROWS_OR_BYTES
}


@dataclass(frozen=True)
class SqlLimits:
    """What one ad-hoc query may cost; the engine stops it beyond any of these."""

    #: wall-clock seconds (``max_execution_time``)
    seconds: float = MAX_SECONDS
    #: memory of the query (``max_memory_usage``); this also bounds the
    #: bytes of the result (``max_result_bytes`` is not checked within the
    #: one block a small result arrives in)
    memory_bytes: int = 1 << 30


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|\#[^\n]*|/\*.*?\*/)
  | (?P<string>'(?:[^'\\]|\\.|'')*')
  | (?P<quoted>"(?:[^"\\]|\\.|"")*"|`(?:[^`\\]|\\.|``)*`)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<semi>;)
  | (?P<other>.)
    """,
    re.S | re.X,
)
_CTE = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s+AS\s*\(", re.I)


class AdhocRefused(ValueError):
    """The SQL is not allowed (or not valid); the message says why."""


class AdhocLimitExceeded(AdhocRefused):
    """The query was stopped by one of its limits (time, memory, result size)."""


def _words(sql: str) -> list[str]:
    """Upper-cased keywords/identifiers outside strings and comments; checks ``;``."""
    words: list[str] = []
    pos = 0
    seen_end = False
    while pos < len(sql):
        match = _TOKEN.match(sql, pos)
        if match is None:  # an unterminated string or comment
            raise AdhocRefused("unterminated string, quoted name or comment")
        kind = match.lastgroup
        pos = match.end()
        if kind in ("ws", "comment"):
            continue
        if seen_end:
            raise AdhocRefused("only one statement is allowed")
        if kind == "semi":
            seen_end = True
        elif kind == "word":
            words.append(match.group().upper())
    return words


def _check_text(sql: str) -> str:
    if len(sql) > MAX_SQL_CHARS:
        raise AdhocRefused(f"SQL longer than {MAX_SQL_CHARS} characters")
    words = _words(sql)
    if not words or words[0] not in ("SELECT", "WITH"):
        raise AdhocRefused("only read-only SELECT (or WITH … SELECT) queries are allowed")
    for a, b in itertools.pairwise(words):
        if (a, b) == ("INTO", "OUTFILE"):
            raise AdhocRefused("INTO OUTFILE is not allowed")
    if "FORMAT" in words:
        raise AdhocRefused("FORMAT is chosen by faultprint; leave it out")
    if "SETTINGS" in words:
        # the query's limits are settings; a clause of the caller's own could
        # only try to change them
        raise AdhocRefused("SETTINGS are chosen by faultprint; leave them out")
    return sql.strip().rstrip(";").strip()


def _check_tables(store: Store, sql: str) -> None:
    try:
        lines = [
            row[0]
            for row in store.query("EXPLAIN AST " + sql, settings={"readonly": 1}).result_rows
        ]
    except Exception as exc:
        raise AdhocRefused(f"invalid SQL: {_reason(exc)}") from exc
    ctes = {name.lower() for name in _CTE.findall(sql)}
    databases = {store.database or "default"}
    for line in lines:
        kind, _, rest = line.strip().partition(" ")
        if kind == "Function":
            _check_function(rest.split(" ", 1)[0])
    for i, line in enumerate(lines[:-1]):
        if line.strip() != "TableExpression" and not line.strip().startswith("TableExpression "):
            continue
        child = lines[i + 1].strip()
        kind, _, rest = child.partition(" ")
        name = rest.split(" ", 1)[0]
        if kind == "TableIdentifier":
            db, _, table = name.rpartition(".")
            if db and db not in databases:
                raise AdhocRefused(f"table {name} is not readable here")
            if table not in ADHOC_TABLES and not (not db and table.lower() in ctes):
                allowed = ", ".join(sorted(ADHOC_TABLES))
                raise AdhocRefused(f"table {name} is not readable here; readable: {allowed}")
        elif kind == "Function":
            if name not in _TABLE_FUNCTIONS:
                raise AdhocRefused(f"table function {name}() is not allowed")
        elif kind not in ("Subquery",):
            raise AdhocRefused(f"unsupported table expression {child[:60]!r}")


def _check_function(name: str) -> None:
    """Refuse a function that reads outside faultprint's tables (see _FUNCTIONS_REFUSED)."""
    folded = name.lower()
    if folded in _FUNCTIONS_REFUSED or folded.startswith("dict"):
        raise AdhocRefused(
            f"function {name}() is not allowed: it reads outside faultprint's tables"
        )


def _reason(exc: Exception) -> str:
    text = str(exc)
    match = re.search(r"DB::Exception: (.*?)(?: \(version [\d.]+\))?(?: \([A-Z_]+\))?$", text, re.S)
    text = match[1] if match else text
    return text.replace("DB::Exception: ", "").strip()[:500]


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        # JSON has no NaN or infinity (an average over no rows, 1/0): the
        # engine's own spelling of them, as clickhouse-client prints them
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Decimal | UUID | IPv4Address | IPv6Address):
        return str(value)
    return str(value)


#: a column of unfinished aggregation states (not SimpleAggregateFunction,
#: whose values are plain values): the driver cannot decode one
_AGGREGATE_STATE = re.compile(r"(?<!Simple)AggregateFunction\(")
#: the view that finishes ``fingerprint_catalog``'s states, and its columns
_CATALOG_VIEW = "fingerprint_catalog_v"
_CATALOG_VIEW_COLUMNS = (
    "project, fingerprint, fingerprint_hex, model_version, first_seen, last_seen, "
    "failures, call_site, category, error_type, error_code, template, example_message, "
    "exemplar_trace_ids"
)


def _state_hint(columns: str) -> str:
    """What to do instead of returning aggregation states (COLUMNS: the ones that are)."""
    return (
        f"{columns} holds partial aggregation states (AggregateFunction), which a query "
        f"cannot return; read the view {_CATALOG_VIEW} instead, which finishes them "
        f"(one row per fingerprint and model version: {_CATALOG_VIEW_COLUMNS}), "
        "or finish the column in the query, e.g. "
        "groupUniqArrayMerge(10)(exemplar_trace_ids) with GROUP BY, or "
        "finalizeAggregation(exemplar_trace_ids)"
    )


def _described_columns(store: Store, sql: str) -> tuple[list[str], list[str]]:
    """The names and types of the columns SQL returns (from the analyser; the
    query does not run).

    Refuses a result with a column of aggregation states (``SELECT * FROM
    fingerprint_catalog``): the driver could not decode it, and the engine's
    "deserialization not supported" does not say what to read instead.
    """
    try:
        described = store.query(f"DESCRIBE TABLE ({sql})", settings={"readonly": 1})
    except Exception as exc:
        raise AdhocRefused(f"invalid SQL: {_reason(exc)}") from exc
    states = [str(row[0]) for row in described.result_rows if _AGGREGATE_STATE.search(row[1])]
    if states:
        names = ", ".join(states)
        raise AdhocRefused(_state_hint(f"column{'s' if len(states) > 1 else ''} {names}"))
    return [str(row[0]) for row in described.result_rows], [
        str(row[1]) for row in described.result_rows
    ]


def _refusal(exc: Exception, limits: SqlLimits) -> AdhocRefused:
    """The refusal for a query the engine stopped or rejected."""
    code = getattr(exc, "code", None)
    why = _LIMIT_ERRORS.get(code) if isinstance(code, int) else None
    if why is None:
        reason = _reason(exc)
        if "deserialization not supported" in reason and "AggregateFunction" in reason:
            # a state the column check above did not see (inside a tuple, say)
            return AdhocRefused(f"query failed: {reason}: {_state_hint('a column')}")
        return AdhocRefused(f"query failed: {reason}")
    return AdhocLimitExceeded(
        f"query stopped because {why} (limits: {limits.seconds:g} s, "
        f"{limits.memory_bytes >> 20} MiB of memory); narrow it with WHERE, LIMIT "
        f"or fewer columns: {_reason(exc)}"
    )


def run_readonly_sql(
    store: Store,
    project: str,
    sql: str,
    max_rows: int = 1000,
    limits: SqlLimits | None = None,
) -> dict[str, Any]:
    """Run one read-only query against PROJECT's data; columns, rows, truncated flag.

    Raises AdhocRefused for SQL that is not allowed or not valid, and
    AdhocLimitExceeded when the engine stopped the query at one of LIMITS.
    Fewer than MAX_ROWS rows come back (``truncated``) when the result is
    wide: at most MAX_CELLS values are returned.
    """
    limits = limits or SqlLimits()
    if not 1 <= max_rows <= MAX_ROWS:
        raise AdhocRefused(f"max_rows must be between 1 and {MAX_ROWS}")
    statement = _check_text(sql or "")
    _check_tables(store, statement)
    names, types = _described_columns(store, statement)
    rows_cap = max(1, min(max_rows, MAX_CELLS // max(1, len(names))))
    filters = {}
    for table in _PROJECT_TABLES:
        condition = f"project = {_quote(project)}"
        filters[table] = condition
        filters[store.table(table)] = condition
        filters[f"{store.database or 'default'}.{table}"] = condition
    settings = {
        "readonly": 1,
        "additional_table_filters": filters,
        # ``limit`` cuts the result in the engine, whatever its blocks:
        # max_result_rows with overflow mode "break" stops only between
        # blocks, and one arrayJoin can make a block of a hundred million rows
        "limit": rows_cap + 1,
        "max_execution_time": limits.seconds,
        "timeout_overflow_mode": "throw",
        "max_memory_usage": limits.memory_bytes,
    }
    try:
        result = store.query(statement, settings=settings)
    except Exception as exc:
        raise _refusal(exc, limits) from exc
    rows = result.result_rows
    truncated = len(rows) > rows_cap
    if result.column_names:
        names = list(result.column_names)
        types = [t.name for t in result.column_types]
    # else no rows: the engine sends no block, so no names or types, over
    # HTTP or embedded; the analyser's are the same, and a header still shows
    return {
        "columns": names,
        "types": types,
        "rows": [[_json_value(v) for v in row] for row in rows[:rows_cap]],
        "truncated": truncated,
    }
