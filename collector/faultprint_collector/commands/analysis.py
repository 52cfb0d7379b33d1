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
from typing import Any

import typer
from rich.table import Table

from faultprint_collector.analysis import (
    RuleError,
    evaluate_rules,
    parse_rules,
    render_markdown,
    render_table,
)
from faultprint_collector.settings import DEFAULT_PROJECT

TIME_HELP = "a duration ago (30m, 24h, 7d) or an ISO time"
PROJECT_HELP = "Project (direct store reads only; through a collector the API key decides)."
FAIL_ON_HELP = (
    "Comma-separated rules that make the command exit 1: new-modes, vanished-modes, "
    "changed-modes, mode-increase, rate-increase[>X], jsd>X, effective-modes-increase[>X], "
    "failure-rate>X, novelty>X, not-enough-data."
)


def _json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


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
    project: str = typer.Option(DEFAULT_PROJECT, help=PROJECT_HELP),
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

        err.print(
            "gate failed: " + "; ".join(o.reason for o in tripped),
            highlight=False,
            markup=False,
        )
        raise typer.Exit(1)


def versions(
    since: str = typer.Option(None, help=f"Window start: {TIME_HELP}."),
    until: str = typer.Option(None, help=f"Window end: {TIME_HELP}."),
    call_site: str = typer.Option(None, "--call-site", help="Only this call site."),
    url: str = typer.Option(None, help="Read through the collector at this URL."),
    store: str = typer.Option(None, help="Read this store directly (directory or URL)."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
    project: str = typer.Option(DEFAULT_PROJECT, help=PROJECT_HELP),
) -> None:
    """Model versions with their failure-consistency metrics."""
    from faultprint_collector.cli import console, fail, read
    from faultprint_collector.queries import grouping_note

    if fmt not in ("table", "json"):
        fail("--format must be table or json")
    rows = read(url, store, lambda r: r.versions(since, project, until=until, call_site=call_site))
    if fmt == "json":
        _json({"versions": rows})
        return
    table = Table(title="Model versions")
    for column in (
        "model version",
        "calls",
        "failures",
        "failure rate (95% CI)",
        "modes",
        "effective",
        "top-3",
        "novelty",
        "repeatable",
        "drift",
    ):
        table.add_column(column)
    for r in rows:
        lo, hi = r["failure_rate_ci"]
        table.add_row(
            r["model_version"],
            f"{r['calls']:,}",
            f"{r['failures']:,}",
            f"{r['failure_rate'] * 100:.2f}% [{lo * 100:.2f}–{hi * 100:.2f}]",
            str(r["distinct_modes"]),
            f"{r['effective_modes']:.2f}",
            _pct(r["top3_share"]),
            _pct(r["novelty_rate"]),
            _pct(r["repeatability"]),
            "–" if r["drift"] is None else f"{r['drift']:.3f}",
        )
    console.print(table)
    note = grouping_note(rows)
    if note:
        console.print(f"[yellow]{note}[/]")


def show(
    fp: str = typer.Argument(..., help="Fingerprint (16 hex digits)."),
    url: str = typer.Option(None, help="Read through the collector at this URL."),
    store: str = typer.Option(None, help="Read this store directly (directory or URL)."),
    since: str = typer.Option(None, help=f"Timeline start: {TIME_HELP}."),
    until: str = typer.Option(None, help=f"Timeline end: {TIME_HELP}."),
    exemplars: int = typer.Option(5, min=1, max=100, help="How many example calls."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
    project: str = typer.Option(DEFAULT_PROJECT, help=PROJECT_HELP),
) -> None:
    """One fingerprint: why calls share it, when it happened per version, examples."""
    from faultprint_collector.cli import console, fail, read

    if fmt not in ("table", "json"):
        fail("--format must be table or json")
    d = read(
        url,
        store,
        lambda r: r.fingerprint(fp, project, since=since, until=until, exemplars=exemplars),
    )
    if fmt == "json":
        _json(d)
        return
    out = console.print
    out(f"[bold]fingerprint {d['fingerprint']}[/]  (coarse {d['coarse_fingerprint']})")
    out(f"{d['category']} · {d['error_type'] or d['error_code']} · {d['call_site']}", markup=False)
    out(f"template: {d['template']}", markup=False, highlight=False)
    out(f"failures: {d['failures']:,}   first seen {d['first_seen']}   last seen {d['last_seen']}")
    out("")
    out(f"[bold]grouping components[/] (strategy {d['strategy'] or '?'}):")
    for key, value in (d["components"] or {}).items():
        text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        out(f"  {key}: {text}", markup=False, highlight=False)
    versions_table = Table(title="per model version")
    for column in ("model version", "failures", "first seen", "last seen"):
        versions_table.add_column(column)
    for v in d["versions"]:
        versions_table.add_row(
            v["model_version"], f"{v['failures']:,}", v["first_seen"][:19], v["last_seen"][:19]
        )
    out(versions_table)
    if d["timeline"]:
        per_version: dict[str, list[str]] = {}
        for t in d["timeline"][-48 * max(1, len(d["versions"])) :]:
            per_version.setdefault(t["model_version"], []).append(
                f"{t['hour'][5:13]}h:{t['failures']}"
            )
        out("[bold]timeline[/] (hour: failures, latest 48 hours with failures):")
        for version, points in per_version.items():
            out(f"  {version}: " + "  ".join(points[-48:]), markup=False, highlight=False)
    examples = Table(title="exemplar calls")
    for column in ("time", "trace id", "model version", "message"):
        examples.add_column(column, overflow="fold")
    for e in d["exemplars"]:
        examples.add_row(e["time"][:23], e["trace_id"], e["model_version"], e["message"][:200])
    out(examples)


def sql(
    statement: str = typer.Argument(..., help="One SELECT over faultprint's tables and views."),
    url: str = typer.Option(None, help="Run through the collector at this URL."),
    store: str = typer.Option(None, help="Run against this store directly."),
    max_rows: int = typer.Option(1000, min=1, max=10_000, help="Row limit."),
    fmt: str = typer.Option("table", "--format", help="table, json or tsv."),
    project: str = typer.Option(DEFAULT_PROJECT, help=PROJECT_HELP),
) -> None:
    """Run read-only SQL against the store (refused for writes), scoped to the project."""
    from faultprint_collector.cli import console, err, fail, read

    if fmt not in ("table", "json", "tsv"):
        fail("--format must be table, json or tsv")
    result = read(url, store, lambda r: r.sql(statement, project, max_rows))
    if fmt == "json":
        _json(result)
    elif fmt == "tsv":
        lines = ["\t".join(result["columns"])]
        lines += ["\t".join("" if v is None else str(v) for v in row) for row in result["rows"]]
        sys.stdout.write("\n".join(lines) + "\n")
    else:
        table = Table()
        for column in result["columns"]:
            table.add_column(column, overflow="fold")
        for row in result["rows"]:
            table.add_row(*("" if v is None else str(v) for v in row))
        console.print(table)
    if result["truncated"]:
        err.print(f"(only the first {max_rows} rows; raise --max-rows)")


def register(app: typer.Typer) -> None:
    """Add ``compare``, ``versions``, ``show`` and ``sql`` to the CLI."""
    app.command(name="compare")(compare)
    app.command(name="versions")(versions)
    app.command(name="show")(show)
    app.command(name="sql")(sql)
