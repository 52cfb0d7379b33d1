"""bench/sdk_instructions.py: its workload runs for every candidate, and a count
under callgrind is read from valgrind's own output (no count is asserted)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "sdk_instructions.py"


def _module():
    spec = importlib.util.spec_from_file_location("sdk_instructions", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _module()


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.mark.parametrize("mode", [*BENCH.CANDIDATES, BENCH.WARM_UP_ONLY])
def test_every_candidate_runs_its_calls(mode: str) -> None:
    result = _run("--child", mode, "--calls", "25", "--warm-up", "2")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_counts_a_candidate_under_callgrind() -> None:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        pytest.skip("valgrind is not installed")
    with ThreadPoolExecutor(max_workers=2) as pool:
        one, more = pool.map(lambda calls: BENCH.count(valgrind, "raw", calls, 1), (1, 21))
    calling, others = one
    # The whole interpreter start and the client's import run on the calling thread.
    assert calling > 100_000_000
    assert 0 < others < calling  # the export thread ran, and did little
    # More calls, more instructions: the count covers the measured calls.
    assert more[0] - calling > 20 * 1_000_000


def test_refuses_bad_arguments() -> None:
    result = _run("--calls", "0", timeout=60)
    assert result.returncode == 2
    assert "must be positive" in result.stderr
