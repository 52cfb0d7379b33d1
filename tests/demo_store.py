"""Demo data for the dashboard and UI tests, made once per test session.

``faultprint demo`` runs a real collector subprocess and sends simulated
two-version traffic through the real SDK; when it returns, the collector has
stopped and the store directory is free for one consumer at a time (each
consumer copies it, since the embedded engine locks its directory).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

DEMO_CALLS = 3000


def make_demo_store(dest: Path, calls: int = DEMO_CALLS) -> Path:
    """Run ``faultprint demo`` into DEST (a fresh directory) and return it."""
    cmd = [
        sys.executable,
        "-m",
        "faultprint_collector.cli",
        "demo",
        "--store",
        str(dest),
        "--calls",
        str(calls),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(
            f"faultprint demo failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return dest


def copy_store(source: Path, dest: Path) -> Path:
    """A private copy of a stopped store (the engine's lock file is per copy)."""
    # the engine links tables to their data with relative symlinks: keep them
    shutil.copytree(source, dest, symlinks=True)
    return dest
