"""Expand a Grafana ClickHouse panel query the way Grafana and the plugin do.

A panel's ``rawSql`` goes through three steps before ClickHouse sees it, and
this module repeats each of them so the dashboards' SQL can be run against
the real engine in tests:

1. ``$__conditionalAll(condition, $var)`` (plugin front end): replaced by
   ``1=1`` when the variable is set to *All* (or empty), else by the condition.
2. Template variables (Grafana's template service, with the plugin's format
   function): ``$var``, ``${var}``, ``${var:format}`` and ``[[var]]``. A
   multi-value variable becomes ``'a','b'``; a single value is inserted as
   is (so the SQL quotes it itself); *All* becomes the variable's custom
   ``allValue`` verbatim, or else every option's value, formatted as a list.
   ``:percentencode`` is Grafana's: each byte of the UTF-8 value outside
   ``A-Za-z0-9-_.~`` as ``%XX``, a list first joined as ``{a,b}``.
   Global variables ``$__from`` / ``$__to`` (epoch ms), ``$__interval`` and
   ``$__interval_ms`` are filled from the time range and interval.
3. Macros (plugin back end): ``$__timeFilter(col)``, ``$__timeFilter_ms``,
   ``$__dateFilter``, ``$__dateTimeFilter`` / ``$__dt``,
   ``$__timeInterval(col)``, ``$__timeInterval_ms``, ``$__interval_s``,
   ``$__fromTime`` / ``$__toTime`` and their ``_ms`` forms. An unknown macro
   is an error, as in the plugin.

The interval follows Grafana: the time range divided by the panel's maximum
number of data points, never below the panel's minimum interval (``interval``
on the panel, e.g. ``1h`` for panels that read hourly rollups), never below
one second for the second-granular macros.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

ALL = "$__all"

__all__ = [
    "ALL",
    "MacroError",
    "QueryContext",
    "Variable",
    "expand",
    "interval_for",
    "parse_duration",
]


class MacroError(ValueError):
    """A macro is unknown or has the wrong number of arguments."""


@dataclass
class Variable:
    """A dashboard variable's current state.

    VALUE is a string for single-value variables and a list for multi-value
    ones; ``[ALL]`` (or ``ALL``) selects *All*. OPTIONS are every value the
    variable offers (what *All* expands to without a custom ALL_VALUE).
    """

    name: str
    value: str | list[str]
    options: list[str] = field(default_factory=list)
    multi: bool = False
    all_value: str | None = None

    @property
    def is_all(self) -> bool:
        """True when *All* is selected."""
        v = self.value
        return v == ALL or (isinstance(v, list) and ALL in v)

    def current_text(self) -> str:
        """The value as the plugin's ``$__conditionalAll`` reads it (JS toString)."""
        return ",".join(self.value) if isinstance(self.value, list) else self.value


@dataclass
class QueryContext:
    """Time range, interval and variables of one panel query."""

    time_from: datetime
    time_to: datetime
    interval_s: float
    variables: Mapping[str, Variable] = field(default_factory=dict)


_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w|y)$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(text: str) -> float:
    """Seconds in a Grafana duration such as ``1h``, ``30s``, ``7d``."""
    match = _DURATION.match(text.strip())
    if not match:
        raise MacroError(f"invalid duration {text!r}")
    return int(match[1]) * _UNIT_S[match[2]]


# Grafana's roundInterval(): (upper bound in ms, interval in ms), first match wins
_ROUNDING = (
    (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500),
    (1_500, 1_000), (3_500, 2_000), (7_500, 5_000), (12_500, 10_000),
    (17_500, 15_000), (25_000, 20_000), (45_000, 30_000), (90_000, 60_000),
    (210_000, 120_000), (450_000, 300_000), (750_000, 600_000), (1_050_000, 900_000),
    (1_500_000, 1_200_000), (2_700_000, 1_800_000), (5_400_000, 3_600_000),
    (9_000_000, 7_200_000), (16_200_000, 10_800_000), (32_400_000, 21_600_000),
    (86_400_000, 43_200_000), (604_800_000, 86_400_000), (1_814_400_000, 604_800_000),
    (3_628_800_000, 2_592_000_000),
)  # fmt: skip


def _round_interval(ms: float) -> float:
    for bound, rounded in _ROUNDING:
        if ms < bound:
            return rounded
    return 31_536_000_000


def interval_for(
    time_from: datetime, time_to: datetime, max_data_points: int, min_interval: str | None
) -> float:
    """The interval Grafana gives a panel, in seconds.

    The range divided by the panel's data points, rounded to one of Grafana's
    steps (10ms … 1h … 1y), and raised to the panel's minimum interval.
    """
    span_ms = (time_to - time_from).total_seconds() * 1000
    interval_ms = _round_interval(span_ms / max(1, max_data_points))
    if min_interval:
        interval_ms = max(interval_ms, parse_duration(min_interval) * 1000)
    return interval_ms / 1000


# --- step 1: $__conditionalAll ---------------------------------------------------

_CONDITIONAL = "$__conditionalAll("
_VAR_IN_ARG = re.compile(r"(?<=\$\{)\w+(?=\})|(?<=\$)\w+")


def _macro_args(sql: str, open_paren: int) -> tuple[list[str], int] | None:
    """Arguments of the call whose '(' is at OPEN_PAREN, and the index after ')'."""
    depth, start, args = 0, open_paren + 1, []
    for i in range(open_paren, len(sql)):
        ch = sql[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[start:i])
                return args, i + 1
        elif ch == "," and depth == 1:
            args.append(sql[start:i])
            start = i + 1
    return None


def apply_conditional_all(sql: str, variables: Mapping[str, Variable]) -> str:
    """Resolve every ``$__conditionalAll`` (last first, as the plugin does)."""
    index = sql.rfind(_CONDITIONAL)
    while index != -1:
        parsed = _macro_args(sql, index + len(_CONDITIONAL) - 1)
        if parsed is None or len(parsed[0]) != 2:
            raise MacroError(f"$__conditionalAll needs 2 arguments at {sql[index : index + 60]!r}")
        (condition, var_arg), end = parsed
        phrase = condition
        found = _VAR_IN_ARG.search(var_arg.strip())
        if found:
            var = variables.get(found[0])
            if var is None:
                raise MacroError(f"$__conditionalAll refers to undefined ${found[0]}")
            if var.current_text() in ("", ALL):
                phrase = "1=1"
        sql = sql[:index] + phrase + sql[end:]
        index = sql.rfind(_CONDITIONAL)
    return sql


# --- step 2: template variables --------------------------------------------------

_TEMPLATE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}"
)


def _format(value: str | list[str], fmt: str | None) -> str:
    if fmt in (None, "", "raw", "text"):
        if fmt in ("raw", "text"):
            return ",".join(value) if isinstance(value, list) else value
        # the plugin's own format function
        return "'" + "','".join(value) + "'" if isinstance(value, list) else value
    if fmt == "singlequote":
        items = value if isinstance(value, list) else [value]
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in items)
    if fmt == "csv":
        return ",".join(value) if isinstance(value, list) else value
    if fmt == "percentencode":
        # encodeURIComponent, and also !'()* (Grafana's encodeURIComponentStrict)
        text = "{" + ",".join(value) + "}" if isinstance(value, list) else value
        return quote(text, safe="")
    raise MacroError(f"variable format {fmt!r} is not supported by this expander")


def _globals(ctx: QueryContext) -> dict[str, str]:
    ms = max(1, round(ctx.interval_s * 1000))
    return {
        "__from": str(int(ctx.time_from.timestamp() * 1000)),
        "__to": str(int(ctx.time_to.timestamp() * 1000)),
        "__interval_ms": str(ms),
        "__interval": _interval_text(ms),
    }


def _interval_text(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def replace_variables(sql: str, ctx: QueryContext) -> str:
    """Grafana's template service replace() with the plugin's format function."""
    builtins = _globals(ctx)

    def sub(match: re.Match[str]) -> str:
        name = match[1] or match[2] or match[4]
        fmt = match[3] or match[6]
        if name in builtins:
            return builtins[name]
        var = ctx.variables.get(name)
        if var is None:
            return match[0]  # not a variable: macros and unknown names stay
        if var.is_all:
            if var.all_value is not None:
                return var.all_value
            return _format(list(var.options), fmt)
        value: str | list[str] = var.value
        if var.multi and isinstance(value, str):
            value = [value]
        return _format(value, fmt)

    return _TEMPLATE.sub(sub, sql)


# --- step 3: back-end macros -----------------------------------------------------

_MACRO = re.compile(r"\$__(\w+)")


def _dt(t: datetime) -> str:
    return f"toDateTime({int(t.timestamp())})"


def _dt64(t: datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(t.timestamp() * 1000)})"


def _date(t: datetime) -> str:
    return f"toDate('{t.astimezone(UTC).strftime('%Y-%m-%d')}')"


def _expand_macro(name: str, args: Sequence[str], ctx: QueryContext) -> str:
    f, t = ctx.time_from, ctx.time_to

    def need(n: int) -> None:
        if len(args) != n:
            raise MacroError(f"$__{name} expects {n} argument(s), got {len(args)}")

    if name in ("fromTime", "toTime"):
        return _dt(f if name == "fromTime" else t)
    if name in ("fromTime_ms", "toTime_ms"):
        return _dt64(f if name == "fromTime_ms" else t)
    if name == "timeFilter":
        need(1)
        return f"{args[0]} >= {_dt(f)} AND {args[0]} <= {_dt(t)}"
    if name == "timeFilter_ms":
        need(1)
        return f"{args[0]} >= {_dt64(f)} AND {args[0]} <= {_dt64(t)}"
    if name == "dateFilter":
        need(1)
        return f"{args[0]} >= {_date(f)} AND {args[0]} <= {_date(t)}"
    if name in ("dateTimeFilter", "dt"):
        need(2)
        return (
            f"({args[0]} >= {_date(f)} AND {args[0]} <= {_date(t)}) AND "
            f"({args[1]} >= {_dt(f)} AND {args[1]} <= {_dt(t)})"
        )
    if name == "timeInterval":
        need(1)
        seconds = int(max(ctx.interval_s, 1))
        return f"toStartOfInterval(toDateTime({args[0]}), INTERVAL {seconds} second)"
    if name == "timeInterval_ms":
        need(1)
        ms = int(max(ctx.interval_s * 1000, 1))
        return f"toStartOfInterval(toDateTime64({args[0]}, 3), INTERVAL {ms} millisecond)"
    if name == "interval_s":
        return str(int(max(ctx.interval_s, 1)))
    raise MacroError(f"unknown macro $__{name}")


def apply_macros(sql: str, ctx: QueryContext) -> str:
    """Expand the plugin's back-end macros (arguments may nest parentheses)."""
    out, pos = [], 0
    for match in _MACRO.finditer(sql):
        if match.start() < pos:
            continue
        out.append(sql[pos : match.start()])
        name, end = match[1], match.end()
        args: list[str] = []
        if end < len(sql) and sql[end] == "(":
            parsed = _macro_args(sql, end)
            if parsed is None:
                raise MacroError(f"unbalanced parentheses after $__{name}")
            raw_args, end = parsed
            args = [a.strip() for a in raw_args if a.strip()]
        out.append(_expand_macro(name, args, ctx))
        pos = end
    out.append(sql[pos:])
    return "".join(out)


def expand(sql: str, ctx: QueryContext) -> str:
    """The SQL that ClickHouse receives for SQL, in CTX."""
    sql = apply_conditional_all(sql, ctx.variables)
    sql = replace_variables(sql, ctx)
    return apply_macros(sql, ctx)
