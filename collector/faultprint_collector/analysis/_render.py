"""A comparison for people: plain-text table and Markdown.

Both lead with the verdict and what changed in a few lines, then the
side-by-side metrics, then the modes in detail.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faultprint_collector.analysis._compare import p_number, p_text
from faultprint_collector.analysis._rules import RuleOutcome

__all__ = ["render_markdown", "render_table"]

_ROWS = (
    ("calls", "calls"),
    ("failures", "failures"),
    ("failure rate (95% CI)", "failure_rate"),
    ("distinct modes", "distinct_modes"),
    ("effective modes", "effective_modes"),
    ("top-3 share", "top3_share"),
    ("novelty rate", "novelty_rate"),
    ("repeatability", "repeatability"),
)


def _num(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def _share(value: Any) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _cell(metrics: dict[str, Any], key: str) -> str:
    value = metrics.get(key)
    if key == "failure_rate":
        lo, hi = metrics["failure_rate_ci"]
        return f"{(value or 0.0) * 100:.2f}% [{lo * 100:.2f}–{hi * 100:.2f}]"
    if key in ("top3_share", "novelty_rate", "repeatability"):
        return _share(value)
    if key == "effective_modes":
        return "–" if value is None else f"{value:.2f}"
    return _num(value)


def _headline(r: dict[str, Any]) -> list[str]:
    b, c = r["baseline"], r["candidate"]
    jsd = "–" if r["jsd"] is None else f"{r['jsd']:.3f}"
    return [
        f"{b['model_version']} → {c['model_version']}",
        f"verdict: {r['verdict']}",
        f"failure rate {_cell(b, 'failure_rate')} → {_cell(c, 'failure_rate')}"
        f" (Δ {r['failure_rate_change']['delta'] * 100:+.2f} pts,"
        f" {p_text(r['failure_rate_change']['p_value'])}); JSD {jsd}; {_mode_counts(r)}",
    ]


def _mode_counts(r: dict[str, Any]) -> str:
    """New, vanished and changed modes, or why modes were not tested: "new 0"
    read as "tested, none found" where nothing was tested."""
    if not r["enough_data"]:
        return "modes not tested (not enough data)"
    if not r.get("modes_judged", True):
        return "modes not compared (grouped by different fingerprint strategies)"
    return (
        f"new {len(r['new_modes'])}, vanished {len(r['vanished_modes'])},"
        f" changed {len(r['changed_modes'])}"
    )


def _mode_line(m: dict[str, Any]) -> list[str]:
    if m["rate_ratio"] is None:
        ratio = "new"
    elif m["rate_ratio"] == 0:
        ratio = "gone"
    else:
        ratio = f"×{m['rate_ratio']:.2f}"
    text = m.get("template") or ""
    if not any(ch.isalpha() for ch in text.replace("<*>", "")):
        # a template of placeholders only (e.g. KeyError's '<*>') says less than an example
        text = m.get("example") or text
    text = " ".join(text.split())
    if len(text) > 70:
        text = text[:69] + "…"
    return [
        m["fingerprint"],
        _num(m["baseline_failures"]),
        _num(m["candidate_failures"]),
        ratio,
        p_number(m["adjusted_p_value"], 2),
        m.get("category") or "",
        text,
    ]


_MODE_HEAD = ["fingerprint", "baseline", "candidate", "ratio", "p (adj.)", "category", "template"]


def _sections(r: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    return [
        ("New failure modes", r["new_modes"]),
        ("Vanished failure modes", r["vanished_modes"]),
        ("Modes that changed in frequency", r["changed_modes"]),
    ]


def _text_table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def render_table(r: dict[str, Any], gate: Sequence[RuleOutcome] = ()) -> str:
    """Plain text for a terminal."""
    lines = _headline(r)
    lines.append("")
    rows = [["", "baseline", "candidate"]]
    rows += [[label, _cell(r["baseline"], k), _cell(r["candidate"], k)] for label, k in _ROWS]
    lines += _text_table(rows)
    for title, modes in _sections(r):
        if modes:
            lines += ["", f"{title} ({len(modes)}):"]
            lines += ["  " + ln for ln in _text_table([_MODE_HEAD, *map(_mode_line, modes)])]
    if r["notes"]:
        lines += ["", "notes:"] + [f"  - {n}" for n in r["notes"]]
    if gate:
        lines += ["", "gate:"] + [
            f"  {_TABLE_STATUS[o.status]:8} {o.rule}: {o.reason.removeprefix('skipped: ')}"
            for o in gate
        ]
        hint = _skipped_hint(gate)
        if hint:
            lines.append(f"  {hint}")
    return "\n".join(lines) + "\n"


_TABLE_STATUS = {"tripped": "TRIPPED", "skipped": "SKIPPED", "passed": "ok"}
_MARKDOWN_STATUS = {"tripped": "❌", "skipped": "⚠️", "passed": "✅"}


def _skipped_hint(gate: Sequence[RuleOutcome], code: str = "{}") -> str | None:
    """What to do when rules were skipped for lack of data and nothing fails
    the gate for it: a skipped rule is no pass, but the exit code is 0.
    CODE formats a rule or option name."""
    lacking = [o for o in gate if o.reason == "skipped: not enough data"]
    if not lacking or any(o.rule.name == "not-enough-data" for o in gate):
        return None
    return (
        f"{len(lacking)} rule(s) skipped for lack of data do not fail the gate; add "
        f"{code.format('not-enough-data')} to {code.format('--fail-on')} to fail it instead"
    )


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def render_markdown(r: dict[str, Any], gate: Sequence[RuleOutcome] = ()) -> str:
    """Markdown for a pull request comment or a CI summary."""
    head = _headline(r)
    lines = [f"### faultprint compare: {head[0]}", "", f"**{r['verdict']}**", "", head[2], ""]
    lines += [_md_row(["", "baseline", "candidate"]), _md_row(["---", "---:", "---:"])]
    lines += [
        _md_row([label, _cell(r["baseline"], k), _cell(r["candidate"], k)]) for label, k in _ROWS
    ]
    for title, modes in _sections(r):
        if modes:
            lines += ["", f"#### {title} ({len(modes)})", "", _md_row(_MODE_HEAD)]
            lines.append(_md_row(["---"] * len(_MODE_HEAD)))
            lines += [
                _md_row([f"`{c}`" if i == 0 else c for i, c in enumerate(_mode_line(m))])
                for m in modes
            ]
    if r["notes"]:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in r["notes"]]
    if gate:
        lines += ["", "Gate:", ""] + [
            f"- {_MARKDOWN_STATUS[o.status]} `{o.rule}`: {o.reason}" for o in gate
        ]
        hint = _skipped_hint(gate, "`{}`")
        if hint:
            lines += ["", hint]
    return "\n".join(lines) + "\n"
