"""A store holding failures with long identifiers, for the CLI's read commands.

The versions differ only in their last characters and the call sites are
long, as in real deployments: a table that cuts or wraps identifiers makes
its rows indistinguishable, which the CLI tests check against.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

VERSION_A = "acme-chat-2025-06"
VERSION_B = "acme-chat-2025-09"
CALL_SITE = "shop.billing.invoices.extract_invoice_lines_from_pdf"
#: fingerprint -> (version, category, failures, message)
FAILURES = {
    0xFE7DAF276481A6BE: (
        VERSION_A,
        "invalid_output",
        5,
        "Expecting value: line 1 column 149 (char 148) while parsing the invoice "
        "[/bold] returned by the model for the customer's order",
    ),
    0x0181C0B982B4C0F5: (VERSION_B, "content_filter", 3, "output blocked: content_filter"),
}
#: the calls of each version in project "default" (its failures above, then successes)
CALLS_PER_VERSION = 20
OTHER_PROJECT = "shop-eu"

_MAKE = """
import json, sys
from datetime import UTC, datetime, timedelta
from faultprint_collector.ingest import CallRecord
from faultprint_collector.store import apply_migrations, open_store
from faultprint_collector.store._writer import insert_rows

spec = json.loads(sys.argv[2])
store = open_store(sys.argv[1])
apply_migrations(store)
now = datetime.now(UTC) - timedelta(minutes=5)
rows, i = [], 0
def call(project, version, fp=0, category="", message=""):
    global i
    i += 1
    return CallRecord(
        project=project, time=now - timedelta(seconds=i), trace_id=f"{i:032x}",
        span_id=f"{i:016x}", model_version=version, call_site=spec["call_site"],
        status="error" if fp else "ok", is_failure=1 if fp else 0, category=category,
        error_type="ValueError" if fp else "", message=message, template=message,
        fingerprint=fp, coarse_fingerprint=fp,
    ).row()
for fp, (version, category, n, message) in spec["failures"].items():
    rows += [call("default", version, int(fp), category, message) for _ in range(n)]
for version in spec["versions"]:
    failed = sum(n for v, _, n, _ in spec["failures"].values() if v == version)
    rows += [call("default", version) for _ in range(spec["calls"] - failed)]
rows += [call(spec["other"], spec["versions"][0]) for _ in range(3)]
insert_rows(store, rows, token="cli")
store.close()
"""


@pytest.fixture(scope="session")
def failure_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with failures of two versions in project "default", calls in another.

    Made by another process, so that CLI processes can open it afterwards.
    """
    path = tmp_path_factory.mktemp("cli-data") / "store"
    spec = {
        "call_site": CALL_SITE,
        "failures": {str(fp): list(v) for fp, v in FAILURES.items()},
        "calls": CALLS_PER_VERSION,
        "versions": [VERSION_A, VERSION_B],
        "other": OTHER_PROJECT,
    }
    subprocess.run(
        [sys.executable, "-c", _MAKE, str(path), json.dumps(spec)], check=True, timeout=120
    )
    return path
