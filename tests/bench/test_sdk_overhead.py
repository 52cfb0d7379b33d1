"""bench/sdk_overhead.py keeps running and printing its ratios (no timing is asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_prints_every_ratio() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "sdk_overhead.py"), "--rounds", "2", "--calls", "50"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"decorator: .* ratio \d+\.\d{3} .* SDK's span class: ratio \d+\.\d{3}", out)
    assert re.search(r"openai: raw client .* instrumented .* added cost [+-]\d+\.\d%", out)
    assert "noise floor: second raw client" in out
    assert re.search(
        r"calling thread .* -?\d+\.\d µs in a loop, -?\d+\.\d µs right after each raw call "
        r"\(-?\d+\.\dx: .*\) = -?\d+\.\d% of the raw call",
        out,
    )


def test_refuses_bad_arguments() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "sdk_overhead.py"), "--rounds", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "must be positive" in result.stderr
