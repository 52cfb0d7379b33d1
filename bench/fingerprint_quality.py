"""Grouping quality of the fingerprinting engine against Drain3, in the same run.

Labelled corpora (``fingerprint_corpus.py``):
1. failed model calls produced by real libraries, grouped by
   ``faultprint fingerprint`` (the offline command's record parser + engine);
2. the same failures as the SDK records a provider error (with its HTTP status
   and provider error code, not only the message);
3. generic log lines (HDFS / OpenSSH / Apache / application styles), grouped
   by ``faultprint fingerprint --lines``.

Metric: Grouping Accuracy (GA), the share of records whose predicted group
has exactly the members of its true group, plus the number of groups against
the truth. Baseline: Drain3 with its default ``TemplateMiner`` configuration,
fed one line per record (call site, category, error type, and the message
flattened to one line: everything our engine may look at in text form).
Drain3 is online, so its result depends on arrival order; the run reports its
spread over shuffles, and checks that our fingerprints do not change at all.

    python bench/fingerprint_quality.py [--scale 1.0] [--shuffles 3] [--verbose]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import random
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from drain3 import TemplateMiner
from faultprint_collector.commands.fingerprint import run as run_command
from faultprint_collector.ingest._dialects import provider_error_code
from fingerprint_corpus import generate, generate_log_lines

logging.getLogger("drain3").setLevel(logging.WARNING)


def grouping_accuracy(pred: Sequence[Any], truth: Sequence[Any]) -> float:
    """GA: share of items whose predicted group equals their true group as a set."""
    by_pred: dict[Any, set[int]] = defaultdict(set)
    by_true: dict[Any, set[int]] = defaultdict(set)
    for i, (p, t) in enumerate(zip(pred, truth, strict=True)):
        by_pred[p].add(i)
        by_true[t].add(i)
    correct = sum(
        1 for i, (p, t) in enumerate(zip(pred, truth, strict=True)) if by_pred[p] == by_true[t]
    )
    return correct / len(truth) if truth else 1.0


def mistakes(pred: Sequence[Any], truth: Sequence[Any]) -> list[str]:
    """Human-readable list of split and merged true groups."""
    by_true: dict[Any, Counter[Any]] = defaultdict(Counter)
    by_pred: dict[Any, Counter[Any]] = defaultdict(Counter)
    for p, t in zip(pred, truth, strict=True):
        by_true[t][p] += 1
        by_pred[p][t] += 1
    out = []
    for t, preds in sorted(by_true.items()):
        if len(preds) > 1:
            out.append(
                f"  split  {t}: {len(preds)} groups {sorted(preds.values(), reverse=True)[:8]}"
            )
    for _p, ts in by_pred.items():
        if len(ts) > 1:
            out.append(f"  merged {sorted(ts)}")
    return out


def drain_line(rec: dict[str, Any]) -> str:
    """One text line per record for Drain3: the same fields our engine reads."""
    parts = [
        rec.get("function") or "",
        rec.get("category") or "",
        rec.get("error_type") or "",
        rec.get("finish_reason") or "",
        rec.get("message") or "",
    ]
    return " ".join(" ".join(p.split()) for p in parts if p)


# Log headers (timestamps, levels, components), as log-parsing benchmarks strip
# them before template mining: HDFS, syslog, Apache error log, python logging.
_HEADER = re.compile(
    r"^(?:\d{6} \d{6} \d+ \w+ [\w.$]+: "
    r"|\w{3} +\d+ \d\d:\d\d:\d\d \S+ [\w-]+\[\d+\]: "
    r"|\[[^\]]+\] \[\w+\] "
    r"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:,\d+|Z)? \w+ \w+: )"
)


def content_of(line: str) -> str:
    """A log line without its header."""
    return _HEADER.sub("", line, count=1)


def drain_groups(lines: Sequence[str]) -> list[int]:
    """Drain3 (default TemplateMiner configuration) cluster id per line, online."""
    miner = TemplateMiner()
    return [miner.add_log_message(line)["cluster_id"] for line in lines]


def ours_records(records: Sequence[dict[str, Any]]) -> list[str]:
    """Fingerprints from the offline command (``faultprint fingerprint``)."""
    stdin = io.BytesIO("".join(json.dumps(r) + "\n" for r in records).encode())
    out, err = io.StringIO(), io.StringIO()
    code = run_command(stdin, out, err, explain=False, lines=False)
    if code:
        raise SystemExit(f"fingerprint command failed: {err.getvalue()}")
    return out.getvalue().splitlines()


def ours_lines(lines: Sequence[str]) -> list[str]:
    """Fingerprints from ``faultprint fingerprint --lines``."""
    stdin = io.BytesIO("".join(line + "\n" for line in lines).encode())
    out, err = io.StringIO(), io.StringIO()
    code = run_command(stdin, out, err, explain=False, lines=True)
    if code:
        raise SystemExit(f"fingerprint --lines failed: {err.getvalue()}")
    return out.getvalue().splitlines()


def as_recorded(rec: dict[str, Any]) -> dict[str, Any]:
    """REC as the SDK and other instrumentations record a provider error: with
    its HTTP status and provider error code (the body's type when it has no
    code) besides the message."""
    status, code = provider_error_code(rec.get("message", ""))
    if not code:
        return rec
    return {**rec, "status_code": rec.get("status_code") or status, "error_code": code}


def evaluate(
    name: str, items: list[Any], truth: list[str], ours, drain_text, shuffles: int, verbose: bool
) -> dict[str, Any]:
    """Score ours and Drain3 on one corpus; shuffled re-runs for order dependence."""
    pred = ours(items)
    dpred = drain_groups([drain_text(x) for x in items])
    res = {
        "corpus": name,
        "records": len(items),
        "true_groups": len(set(truth)),
        "ours_ga": grouping_accuracy(pred, truth),
        "ours_groups": len(set(pred)),
        "drain_ga": grouping_accuracy(dpred, truth),
        "drain_groups": len(set(dpred)),
    }
    rng = random.Random(1)
    stable = True
    drain_gas = [res["drain_ga"]]
    for _ in range(shuffles):
        order = list(range(len(items)))
        rng.shuffle(order)
        shuffled = [items[i] for i in order]
        spred = ours(shuffled)
        stable &= all(spred[k] == pred[i] for k, i in enumerate(order))
        sd = drain_groups([drain_text(x) for x in shuffled])
        drain_gas.append(grouping_accuracy(sd, [truth[i] for i in order]))
    res["ours_order_independent"] = stable
    res["drain_ga_min"], res["drain_ga_max"] = min(drain_gas), max(drain_gas)
    if verbose:
        print(f"--- {name}: our mistakes")
        print("\n".join(mistakes(pred, truth)) or "  none")
        print(f"--- {name}: Drain3 mistakes (first order)")
        print("\n".join(mistakes(dpred, truth)[:40]) or "  none")
    return res


def main() -> None:
    """Run both corpora and print a table (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--shuffles", type=int, default=3)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    records = generate(args.seed, args.scale, drop_category=0.0)
    bare = generate(args.seed, args.scale, drop_category=1.0)
    coded = [as_recorded(r) for r in records]
    lines = generate_log_lines(args.seed + 4, args.scale)
    results = [
        evaluate(
            "failures",
            records,
            [r["mode"] for r in records],
            ours_records,
            drain_line,
            args.shuffles,
            args.verbose,
        ),
        evaluate(
            "failures, with codes",
            coded,
            [r["mode"] for r in coded],
            ours_records,
            drain_line,
            args.shuffles,
            args.verbose,
        ),
        evaluate(
            "failures, no category",
            bare,
            [r["mode"] for r in bare],
            ours_records,
            drain_line,
            args.shuffles,
            args.verbose,
        ),
        evaluate(
            "log lines",
            [x for x, _ in lines],
            [t for _, t in lines],
            ours_lines,
            lambda s: s,
            args.shuffles,
            args.verbose,
        ),
        evaluate(
            "log lines, headers cut",
            [content_of(x) for x, _ in lines],
            [t for _, t in lines],
            ours_lines,
            lambda s: s,
            args.shuffles,
            args.verbose,
        ),
    ]
    print(
        f"{'corpus':<22} {'records':>7} {'truth':>6} | {'ours GA':>7} {'groups':>6} {'stable':>6} "
        f"| {'Drain3 GA':>9} {'groups':>6} {'GA over shuffles':>17}"
    )
    for r in results:
        print(
            f"{r['corpus']:<22} {r['records']:>7} {r['true_groups']:>6} | {r['ours_ga']:>7.3f} "
            f"{r['ours_groups']:>6} {'yes' if r['ours_order_independent'] else 'NO':>6} | "
            f"{r['drain_ga']:>9.3f} {r['drain_groups']:>6} "
            f"{r['drain_ga_min']:>8.3f}..{r['drain_ga_max']:.3f}"
        )
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
