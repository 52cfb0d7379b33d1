"""Running an interop application (``interop/*_app.py``) and reading what the
collector made of its spans; shared by the interop tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

#: the applications, one per provider library
APPS = Path(__file__).parent / "interop"


def run_app(app: str, *args: str) -> dict[str, str]:
    """Run APP (``openai_app.py``, …) with ARGS in a fresh process:
    scenario -> the exception type it raised ("" for none)."""
    done = subprocess.run(
        [sys.executable, str(APPS / app), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{app} {args} failed:\n{done.stdout}\n{done.stderr}"
    ran = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {r["scenario"]: r["raised"] for r in ran}


def incidents(url: str) -> list[dict[str, Any]]:
    """The collector's failure fingerprints of the last week, most frequent first."""
    answer = httpx.get(f"{url}/api/incidents", params={"since": "7d", "limit": 100}, timeout=10)
    return answer.json()["incidents"]


def accepted_spans(url: str) -> int:
    """Model-call spans the collector acknowledged (one row each)."""
    return int(httpx.get(f"{url}/api/stats", timeout=10).json()["accepted_spans"])
