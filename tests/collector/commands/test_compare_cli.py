"""``faultprint compare`` and ``versions`` as a team gating a rollout reads them:
the verdict, the cells, the JSON values and the exit code, from a store made
by another process (as a collector leaves it) and read with ``--store``."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.collector.test_cli import faultprint as cli

#: an hour well inside the store's retention, two hours ago
HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)

_MAKE = """
import json, sys
from datetime import datetime
from faultprint_collector.ingest import CallRecord
from faultprint_collector.store import apply_migrations, open_store
from faultprint_collector.store._writer import insert_rows

store = open_store(sys.argv[1])
apply_migrations(store)
rows = []
for i, (version, when, fp) in enumerate(json.load(open(sys.argv[2]))):
    rows.append(CallRecord(
        project="default", time=datetime.fromisoformat(when), trace_id=f"{i:032x}",
        span_id=f"{i + 1:016x}", model_version=version, call_site="app.answer",
        status="error" if fp else "ok", is_failure=1 if fp else 0,
        category="exception" if fp else "", error_type=f"Error{fp}" if fp else "",
        message=f"mode {fp}" if fp else "", template=f"mode {fp}" if fp else "",
        fingerprint=fp, coarse_fingerprint=fp,
    ).row())
for start in range(0, len(rows), 50_000):
    insert_rows(store, rows[start:start + 50_000], token=f"t{start}")
store.close()
"""


def _version(
    version: str, failures: dict[int, int], calls: int, start: timedelta, span: timedelta
) -> list[tuple[str, str, int]]:
    """CALLS calls of VERSION spread evenly over SPAN from HOUR + START, the
    first ones failing (FAILURES[fp] in mode fp), interleaved with the rest."""
    outcomes = [fp for fp, k in failures.items() for _ in range(k)]
    outcomes += [0] * (calls - len(outcomes))
    # spread the failures among the successes: every k-th call fails
    order = sorted(range(calls), key=lambda i: (i * 7919) % calls)
    step = span / calls
    return [
        (version, (HOUR + start + step * i).isoformat(), outcomes[order[i]]) for i in range(calls)
    ]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("compare_cli")
    minutes = timedelta(minutes=1)
    calls = [
        # a failure mix that moved between modes (4%/1% to 1%/4%), same spread
        *_version("mix-a", {1: 379, 2: 111}, 10_000, 0 * minutes, 50 * minutes),
        *_version("mix-b", {1: 107, 2: 440}, 10_000, 0 * minutes, 50 * minutes),
        # an offline evaluation: the candidate ran right after the baseline,
        # in the same hour, failing in the same modes
        *_version("eval-a", {3: 60, 4: 30}, 2000, 10 * minutes, 10 * minutes),
        *_version("eval-b", {3: 58, 4: 33}, 2000, 30 * minutes, 10 * minutes),
        # a 50-call canary failing 22%, against 5% of 2,000
        *_version("prod", {5: 100}, 2000, 0 * minutes, 50 * minutes),
        *_version("canary", {5: 5, 6: 6}, 50, 0 * minutes, 50 * minutes),
        # a version without failures
        *_version("quiet", {}, 2000, 0 * minutes, 50 * minutes),
    ]
    spec = tmp / "calls.json"
    spec.write_text(json.dumps(calls))
    path = tmp / "store"
    subprocess.run([sys.executable, "-c", _MAKE, str(path), str(spec)], check=True, timeout=300)
    return path


def faultprint(*args: str) -> subprocess.CompletedProcess[str]:
    return cli(*args, columns=200)


def _row(text: str, label: str) -> list[str]:
    """The cells of the line of TEXT that starts with LABEL (two spaces apart)."""
    (line,) = [x for x in text.splitlines() if x.startswith(label)]
    return [cell for cell in line[len(label) :].split("  ") if cell.strip()]


def test_a_mix_that_moved_between_modes_passes_the_spread_gate(store: Path) -> None:
    # 1.71 against 1.64 effective modes: the verdict said "failures spread
    # over fewer modes (p=0.002)", and "more" the other way round, failing
    # effective-modes-increase>0 (exit 1)
    for baseline, candidate in (("mix-a", "mix-b"), ("mix-b", "mix-a")):
        done = faultprint(
            "compare",
            baseline,
            candidate,
            "--store",
            str(store),
            "--fail-on",
            "effective-modes-increase>0",
        )
        assert done.returncode == 0, done.stdout + done.stderr
        verdict = done.stdout.splitlines()[1]
        assert "failure mix shifted" in verdict and "spread over" not in verdict
        assert "TRIPPED" not in done.stdout
    # the direction in which effective modes rose says why it did not trip
    assert "not tripped: the increase is not significant" in done.stdout


def test_a_candidate_run_right_after_its_baseline_has_no_novelty(store: Path) -> None:
    # novelty read 100% (every mode the baseline showed minutes earlier in
    # the same hour), and novelty>0.1 failed the gate
    done = faultprint(
        "compare", "eval-a", "eval-b", "--store", str(store), "--fail-on", "novelty>0.1"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert [c.strip() for c in _row(done.stdout, "novelty rate")] == ["100.0%", "0.0%"]
    result = json.loads(
        faultprint("compare", "eval-a", "eval-b", "--store", str(store), "--format", "json").stdout
    )
    assert result["candidate"]["novelty_rate"] == 0
    versions = json.loads(faultprint("versions", "--store", str(store), "--format", "json").stdout)
    novelty = {v["model_version"]: v["novelty_rate"] for v in versions["versions"]}
    assert (novelty["eval-a"], novelty["eval-b"]) == (1, 0)
    # a window that starts between the two runs: the baseline's modes were
    # seen before it, to the second (floored to the hour, they were "new")
    since = (HOUR + timedelta(minutes=25)).isoformat()
    windowed = json.loads(
        faultprint("versions", "--store", str(store), "--since", since, "--format", "json").stdout
    )
    novelty = {v["model_version"]: v["novelty_rate"] for v in windowed["versions"]}
    assert (novelty["eval-a"], novelty["eval-b"]) == (0, 0)


def test_a_canary_without_enough_data_skips_its_rules_visibly(store: Path) -> None:
    rules = "new-modes,rate-increase,jsd>0.2"

    def canary(output: str) -> subprocess.CompletedProcess[str]:
        return faultprint(
            "compare", "prod", "canary", "--store", str(store), "--fail-on", rules,
            "--format", output,
        )  # fmt: skip

    md = canary("markdown")
    assert md.returncode == 0, md.stderr  # nothing tripped: nothing was judged
    for rule in ("new-modes>0", "rate-increase>0", "jsd>0.2"):
        assert f"- ⚠️ `{rule}`: skipped: not enough data" in md.stdout
    assert "✅" not in md.stdout
    assert "modes not tested (not enough data)" in md.stdout
    assert "new 0, vanished 0, changed 0" not in md.stdout
    assert "add `not-enough-data` to `--fail-on`" in md.stdout
    assert "  SKIPPED  new-modes>0: not enough data" in canary("table").stdout
    as_json = json.loads(canary("json").stdout)
    assert [(r["tripped"], r["evaluated"]) for r in as_json["gate"]["rules"]] == [
        (False, False)
    ] * 3
    assert as_json["gate"]["tripped"] is False
    # the README's advice for canaries: not-enough-data fails the gate
    strict = faultprint(
        "compare", "prod", "canary", "--store", str(store), "--fail-on", f"{rules},not-enough-data"
    )
    assert strict.returncode == 1 and "gate failed: not-enough-data = 1" in strict.stderr


@pytest.mark.parametrize("rule", ["new-modes>=0", "not-enough-data>=0", "jsd<=1"])
def test_a_gate_that_trips_on_every_comparison_is_a_usage_error(store: Path, rule: str) -> None:
    done = faultprint("compare", "eval-a", "eval-b", "--store", str(store), "--fail-on", rule)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "would trip on every comparison" in " ".join(done.stderr.split())


def test_a_version_without_failures_shows_no_value_for_its_spread(store: Path) -> None:
    versions = json.loads(faultprint("versions", "--store", str(store), "--format", "json").stdout)
    (quiet,) = [v for v in versions["versions"] if v["model_version"] == "quiet"]
    assert (quiet["failures"], quiet["effective_modes"], quiet["top3_share"]) == (0, None, None)
    table = faultprint("versions", "--store", str(store)).stdout
    (row,) = [line for line in table.splitlines() if "quiet" in line]
    cells = [c.strip() for c in row.replace("│", "|").split("|") if c.strip()]
    # modes, effective, top-3, novelty, repeatable, drift
    assert cells[-6:] == ["0", "–", "–", "–", "–", "–"]
    done = faultprint(
        "compare",
        "prod",
        "quiet",
        "--store",
        str(store),
        "--format",
        "json",
        "--fail-on",
        "effective-modes-increase",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["candidate"]["effective_modes"], result["candidate"]["top3_share"]) == (
        None,
        None,
    )
    assert result["effective_modes_change"]["delta"] is None
    assert result["gate"]["rules"][0]["evaluated"] is False
    table = faultprint("compare", "prod", "quiet", "--store", str(store)).stdout
    assert [c.strip() for c in _row(table, "effective modes")] == ["1.00", "–"]
    assert [c.strip() for c in _row(table, "top-3 share")] == ["100.0%", "–"]
