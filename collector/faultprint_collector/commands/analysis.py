"""``faultprint compare | versions | show | sql``: the analysis commands.

Each reads through a collector (``--url``) or a store opened directly
(``--store``; the default embedded store when neither is given). Exit codes
of ``compare``: 0 when no ``--fail-on`` rule tripped, 1 when one did, 2 on a
usage, connection or query error (a version without calls and the same
version twice included), so CI can gate a rollout on it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand

from faultprint_collector.analysis import (
    RuleError,
    evaluate_rules,
    parse_rules,
    render_markdown,
    render_table,
)
from faultprint_collector.commands._options import project_option
from faultprint_collector.commands._tables import Column, Kind, print_table, time_cell
from faultprint_collector.ingest._records import MAX_CALL_SITE_CHARS, MAX_VERSION_CHARS

TIME_HELP = "a duration ago (30m, 24h, 7d) or an ISO time"
#: the longest identifier a query can return whole (a version, a call site)
_ID_MAX_CHARS = max(MAX_VERSION_CHARS, MAX_CALL_SITE_CHARS)
FAIL_ON_HELP = (
    "Comma-separated rules that make the command exit 1: new-modes, vanished-modes, "
    "changed-modes, mode-increase, rate-increase[>X], jsd>X, effective-modes-increase[>X], "
    "failure-rate>X, novelty>X, not-enough-data. Rates, shares and JSD are fractions "
    "(failure-rate>0.04 for 4%); rate-increase and effective-modes-increase trip only on "
    "a significant increase (at --alpha). A rule without the data to judge is skipped, "
    "which does not fail the gate: add not-enough-data for that."
)


def _json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _fixed(value: float | None) -> str:
    """Two decimals; "–" for no value (effective modes of no failures)."""
    return "–" if value is None else f"{value:.2f}"


def _rate(rate: float, ci: list[float]) -> str:
    """``8.00% [6.73–9.88]``: a narrow column wraps between the rate and its interval."""
    lo, hi = ci
    return f"{rate * 100:.2f}% [{lo * 100:.2f}–{hi * 100:.2f}]"


def compare(
    baseline: str = typer.Argument(..., help="Baseline model version."),
    candidate: str = typer.Argument(..., help="Candidate model version."),
    url: str = typer.Option(None, help="Read through the collector at this URL."),
    store: str = typer.Option(None, help="Read this store directly (directory or URL)."),
    call_site: str = typer.Option(None, "--call-site", help="Only this call site."),
    since: str = typer.Option(None, help=f"Window start: {TIME_HELP}."),
    until: str = typer.Option(None, help=f"Window end: {TIME_HELP}."),
    fmt: str = typer.Option("table", "--format", help="table, json or markdown."),
    fail_on: str = typer.Option(None, "--fail-on", help=FAIL_ON_HELP),
    alpha: float = typer.Option(None, help="Significance level (default 0.01)."),
    project: str = project_option(),
) -> None:
    """Compare CANDIDATE with BASELINE: fewer failures? the same kinds? new kinds?

    Exits 0 when no --fail-on rule tripped, 1 when one did, and 2 on a usage,
    connection or query error, including a version with no calls at all
    (see 'faultprint versions') and the same version given twice.
    """
    from faultprint_collector.cli import fail, read

    if fmt not in ("table", "json", "markdown"):
        fail("--format must be table, json or markdown")
    if alpha is not None and not 0 < alpha < 0.5:
        fail("--alpha must be between 0 and 0.5")
    try:
        rules = parse_rules(fail_on) if fail_on is not None else []
    except RuleError as exc:
        fail(f"--fail-on: {exc}")
    result = read(
        url,
        store,
        lambda r: r.compare(
            baseline,
            candidate,
            project,
            call_site=call_site,
            since=since,
            until=until,
            alpha=alpha,
        ),
        project,
    )
    outcomes = evaluate_rules(rules, result) if rules else []
    if fmt == "json":
        if rules:
            result["gate"] = {
                "tripped": any(o.tripped for o in outcomes),
                "rules": [o.as_dict() for o in outcomes],
            }
        _json(result)
    elif fmt == "markdown":
        sys.stdout.write(render_markdown(result, outcomes))
    else:
        sys.stdout.write(render_table(result, outcomes))
    tripped = [o for o in outcomes if o.tripped]
    if tripped:
        from faultprint_collector.cli import err

        # one line, however narrow the console: CI logs are grepped for it
        err.print(
            "gate failed: " + "; ".join(o.reason for o in tripped),
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)


def versions(
    since: str = typer.Option(None, help=f"Window start: {TIME_HELP}."),
    until: str = typer.Option(None, help=f"Window end: {TIME_HELP}."),
    call_site: str = typer.Option(None, "--call-site", help="Only this call site."),
    url: str = typer.Option(None, help="Read through the collector at this URL."),
    store: str = typer.Option(None, help="Read this store directly (directory or URL)."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
    project: str = project_option(),
) -> None:
    """Model versions with their failure-consistency metrics."""
    from faultprint_collector.cli import console, fail, read
    from faultprint_collector.queries import grouping_note

    if fmt not in ("table", "json"):
        fail("--format must be table or json")
    rows = read(
        url, store, lambda r: r.versions(since, project, until=until, call_site=call_site), project
    )
    if fmt == "json":
        _json({"versions": rows})
        return
    print_table(
        console,
        [
            Column("model version"),
            Column("calls", justify="right"),
            Column("failures", justify="right"),
            Column("failure rate (95% CI)", Kind.IDS, justify="right"),
            Column("modes", justify="right"),
            Column("effective", justify="right"),
            Column("top-3", justify="right"),
            Column("novelty", justify="right"),
            Column("repeatable", justify="right"),
            Column("drift", justify="right"),
        ],
        (
            [
                r["model_version"],
                f"{r['calls']:,}",
                f"{r['failures']:,}",
                _rate(r["failure_rate"], r["failure_rate_ci"]),
                str(r["distinct_modes"]),
                _fixed(r["effective_modes"]),
                _pct(r["top3_share"]),
                _pct(r["novelty_rate"]),
                _pct(r["repeatability"]),
                "–" if r["drift"] is None else f"{r['drift']:.3f}",
            ]
            for r in rows
        ),
        title="Model versions",
    )
    note = grouping_note(rows)
    if note:
        console.print(f"[yellow]{note}[/]")


def _headline(d: dict[str, Any]) -> list[str]:
    """The parts of ``show``'s first line: category, error type or code, call site.

    Only the parts that say something: an error type that repeats the
    category (``invalid_output · invalid_output``) or is empty is left out.
    The error type is the most frequent one, with how many others the
    fingerprint's failures have (``RateLimitError (+1 other)``).
    """
    from faultprint_collector.queries import error_type_label

    types = [str(k.get("error_type", "")) for k in d.get("error_types") or []]
    kind = error_type_label([t for t in types if t]) or d["error_type"] or d["error_code"]
    parts = [d["category"], kind if kind != d["category"] else "", d["call_site"]]
    return [part for part in parts if part]


def show(
    fp: str = typer.Argument(..., help="Fingerprint (16 hex digits)."),
    url: str = typer.Option(None, help="Read through the collector at this URL."),
    store: str = typer.Option(None, help="Read this store directly (directory or URL)."),
    since: str = typer.Option(
        None, help=f"Window start (failures, timeline and exemplars): {TIME_HELP}."
    ),
    until: str = typer.Option(
        None, help=f"Window end (failures, timeline and exemplars): {TIME_HELP}."
    ),
    exemplars: int = typer.Option(5, min=1, max=100, help="How many example calls."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
    project: str = project_option(),
) -> None:
    """One fingerprint: why calls share it, when it happened per version, examples."""
    from faultprint_collector.cli import console, fail, read

    if fmt not in ("table", "json"):
        fail("--format must be table or json")
    d = read(
        url,
        store,
        lambda r: r.fingerprint(fp, project, since=since, until=until, exemplars=exemplars),
        project,
    )
    if fmt == "json":
        _json(d)
        return

    def out(text: str, markup: bool = False) -> None:
        # soft wrap: a terminal may wrap a long line, but no call site,
        # frame or fingerprint in it is broken onto two lines of output
        console.print(text, markup=markup, highlight=False, soft_wrap=True)

    out(f"[bold]fingerprint {d['fingerprint']}[/]  (coarse {d['coarse_fingerprint']})", True)
    out(" · ".join(_headline(d)))
    out(f"template: {d['template']}")
    window = d.get("window") or {}
    counted = "failures in the window" if window.get("since") or window.get("until") else "failures"
    out(f"{counted}: {d['failures']:,}   first seen {d['first_seen']}   last seen {d['last_seen']}")
    out("")
    out(f"[bold]grouping components[/] (strategy {d['strategy'] or '?'}):", True)
    for key, value in (d["components"] or {}).items():
        text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        if text:  # a component the strategy leaves empty for this failure says nothing
            out(f"  {key}: {text}")
    print_table(
        console,
        [
            Column("model version"),
            Column("failures", justify="right"),
            Column("first seen", Kind.IDS),
            Column("last seen", Kind.IDS),
        ],
        (
            [
                v["model_version"],
                f"{v['failures']:,}",
                time_cell(v["first_seen"]),
                time_cell(v["last_seen"]),
            ]
            for v in d["versions"]
        ),
        title="per model version",
    )
    # the timeline has every hour of the window, 0 when it had no failure
    busy = [t for t in d["timeline"] if t["failures"]]
    if busy:
        per_version: dict[str, list[str]] = {}
        for t in busy[-48 * max(1, len(d["versions"])) :]:
            per_version.setdefault(t["model_version"], []).append(
                f"{t['hour'][5:13]}h:{t['failures']}"
            )
        out("[bold]timeline[/] (hour: failures, latest 48 hours with failures):", True)
        for version, points in per_version.items():
            out(f"  {version}: " + "  ".join(points[-48:]))
    print_table(
        console,
        [
            Column("time", Kind.IDS),
            Column("trace id"),
            Column("model version"),
            Column("message", Kind.TEXT),
        ],
        (
            [time_cell(e["time"], 23), e["trace_id"], e["model_version"], e["message"]]
            for e in d["exemplars"]
        ),
        title="exemplar calls",
    )


def _statement_source(arg: str) -> bool:
    """Whether ARG is an SQL statement opening with a ``-- comment``, not an option.

    The parser takes any argument that starts with ``-`` for an option, so
    ``faultprint sql "$(cat q.sql)"`` of a saved query failed with "No such
    option: -- what spiked…". An option's name holds no space or line break;
    an argument that has one before any ``=`` cannot be an option.
    """
    name = arg.partition("=")[0]
    return arg.startswith("--") and any(c.isspace() for c in name)


class StatementCommand(TyperCommand):
    """``sql``'s command: a statement that opens with a comment is its argument."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Hand a commented statement to the parser as the argument it is."""
        takes_value = {
            opt
            for p in self.params
            if p.param_type_name == "option" and not getattr(p, "is_flag", False)
            for opt in p.opts
        }
        args = [
            # leading white space is still the same SQL, and no option
            f"\n{arg}"
            if _statement_source(arg) and (i == 0 or args[i - 1] not in takes_value)
            else arg
            for i, arg in enumerate(args)
        ]
        return super().parse_args(ctx, args)


def _read_statement(statement: str | None, file: str | None) -> str:
    """The statement: the argument, standard input (``-``), or --file's text."""
    from faultprint_collector.cli import fail

    if statement is not None and file is not None:
        fail("give the statement or --file, not both")
    if file is None and statement != "-":
        if statement is None:
            fail("give the statement, '-' to read it from standard input, or --file FILE")
        return statement
    if file is None or file == "-":
        return sys.stdin.read()
    try:
        return Path(file).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        fail(f"cannot read --file {file}: {reason}")


#: ClickHouse types whose values are lists of parts (arrays, tuples, maps):
#: never free text, so wrapped between their parts rather than shortened
_COMPOSITE_TYPES = ("Array(", "Tuple(", "Map(", "Nested(")


def _sql_kind(values: list[str], type_name: str = "") -> Kind:
    """What a column of query results holds, known from its values and its type.

    One word each, no longer than a stored version or call site can be (a
    fingerprint, a trace id, a version, a number): identifiers, kept whole.
    An array, tuple or map (``model_versions``): identifiers between
    separators, wrapped between them. Anything else (a message, a template)
    is free text, one line, shortened with "…" (``--format json`` or ``tsv``
    has it whole).
    """
    if all(len(v.split()) <= 1 and len(v) <= _ID_MAX_CHARS for v in values):
        return Kind.ID
    if any(marker in type_name for marker in _COMPOSITE_TYPES):
        return Kind.IDS
    return Kind.TEXT


def _sql_text(value: Any) -> str:
    """One value of a query result as a table or TSV cell.

    A whole float prints as an integer, as ClickHouse prints it: the
    rollups' weighted counts are Float64, and ``73.0`` failures read as a
    measurement rather than a count. ``--format json`` keeps the engine's
    type (``73.0``), which the ``types`` field names.
    """
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def _sql_json_lines(result: dict[str, Any]) -> str:
    """One JSON object per row, keyed by column name (``--format jsonl``).

    What ``faultprint fingerprint`` reads: rows of ``failures_v`` (or
    ``calls``) piped to it give back their stored fingerprints.
    """
    columns = result["columns"]
    return "".join(
        json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False, default=str) + "\n"
        for row in result["rows"]
    )


def sql(
    statement: str = typer.Argument(
        None,
        help="One SELECT over faultprint's tables and views; '-' reads it from standard input.",
        show_default=False,
    ),
    file: str = typer.Option(
        None, "--file", "-f", help="Read the statement from this file ('-': standard input)."
    ),
    url: str = typer.Option(None, help="Run through the collector at this URL."),
    store: str = typer.Option(None, help="Run against this store directly."),
    max_rows: int = typer.Option(1000, min=1, max=10_000, help="Row limit."),
    fmt: str = typer.Option(
        "table",
        "--format",
        help="table, json, jsonl (one object per row: pipe failures_v rows to "
        "'faultprint fingerprint') or tsv.",
    ),
    project: str = project_option(),
) -> None:
    """Run read-only SQL against the store (refused for writes), scoped to the project.

    Give the statement as the argument, or run a saved query with
    --file FILE (or '-' to read standard input). Tables keep identifiers
    whole and shorten long text with "…"; json, jsonl and tsv have every
    value in full.
    """
    from faultprint_collector.cli import console, err, fail, read

    if fmt not in ("table", "json", "jsonl", "tsv"):
        fail("--format must be table, json, jsonl or tsv")
    text = _read_statement(statement, file)
    result = read(url, store, lambda r: r.sql(text, project, max_rows), project)
    if fmt == "json":
        _json(result)
    elif fmt == "jsonl":
        sys.stdout.write(_sql_json_lines(result))
    elif fmt == "tsv":
        lines = ["\t".join(result["columns"])]
        lines += ["\t".join(_sql_text(v) for v in row) for row in result["rows"]]
        sys.stdout.write("\n".join(lines) + "\n")
    else:
        rows = [[_sql_text(v) for v in row] for row in result["rows"]]
        types = result.get("types") or [""] * len(result["columns"])
        columns = [
            Column(name, _sql_kind([r[i] for r in rows], types[i]))
            for i, name in enumerate(result["columns"])
        ]
        print_table(console, columns, rows)
        if not rows:
            err.print("(no rows)")
    if result["truncated"]:
        err.print(f"(only the first {max_rows} rows; raise --max-rows)")


def register(app: typer.Typer) -> None:
    """Add ``compare``, ``versions``, ``show`` and ``sql`` to the CLI."""
    app.command(name="compare")(compare)
    app.command(name="versions")(versions)
    app.command(name="show")(show)
    app.command(name="sql", cls=StatementCommand)(sql)
