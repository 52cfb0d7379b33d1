"""``faultprint demo`` does what the README promises, end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from faultprint_collector.demo import shop
from faultprint_collector.store import open_store


def test_demo_sends_real_traffic_and_reports_it(tmp_path: Path) -> None:
    store_dir = tmp_path / "demo"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "faultprint_collector.cli",
            "demo",
            "--calls",
            "3000",
            "--store",
            str(store_dir),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert out.returncode == 0, out.stderr
    assert shop.VERSION_A in out.stdout and shop.VERSION_B in out.stdout
    assert "faultprint compare" in out.stdout and str(store_dir.name) in out.stdout

    store = open_store(str(store_dir))
    try:
        rows = store.query_dicts(
            "SELECT model_version, count() AS calls, countIf(is_failure = 1) AS failures, "
            "uniqExactIf(fingerprint, is_failure = 1) AS modes FROM calls FINAL "
            "GROUP BY model_version ORDER BY model_version"
        )
    finally:
        store.close()
    by_version = {r["model_version"]: r for r in rows}
    a, b = by_version[shop.VERSION_A], by_version[shop.VERSION_B]
    assert a["calls"] == b["calls"] == 1500
    # version A: about 8% in exactly three consistent modes
    assert 0.05 < a["failures"] / a["calls"] < 0.11
    assert a["modes"] == 3
    # version B: about 5%, spread over many erratic modes
    assert 0.03 < b["failures"] / b["calls"] < 0.08
    assert b["modes"] >= 8


def test_demo_refuses_a_store_that_is_not_fresh(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "keep.txt").write_text("precious")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "faultprint_collector.cli",
            "demo",
            "--store",
            str(tmp_path / "old"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "not empty" in out.stdout + out.stderr
    assert (tmp_path / "old" / "keep.txt").read_text() == "precious"


def _demo(*args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "faultprint_collector.cli", "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "120"},
    )


def test_two_demos_at_once_in_one_directory_keep_apart(tmp_path: Path) -> None:
    runs = [_demo("--calls", "200", cwd=tmp_path) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (stdout, stderr) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, stderr
        assert "Traceback" not in stderr and shop.VERSION_B in stdout
    stores = [p for p in (tmp_path / ".faultprint").iterdir() if p.suffix != ".spool"]
    stores = [p for p in stores if p.is_dir()]
    assert len(stores) == 2 and all(p.name.startswith("demo-") for p in stores)


def test_demo_refuses_a_file_as_store(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    done = _demo("--store", str(tmp_path / "f"))
    stdout, stderr = done.communicate(timeout=60)
    assert done.returncode == 2
    assert "is not a directory" in stderr and "Traceback" not in stdout + stderr


@pytest.mark.parametrize("empty", ["", "  "])
def test_demo_refuses_an_empty_store(tmp_path: Path, empty: str) -> None:
    """An empty --store was the current directory (refused there as not empty,
    or filled with a store where the demo was started)."""
    done = _demo("--store", empty, cwd=tmp_path)
    stdout, stderr = done.communicate(timeout=60)
    assert done.returncode == 2
    assert "--store must not be empty" in stderr and "Traceback" not in stdout + stderr
    assert list(tmp_path.iterdir()) == []


CLI = [sys.executable, "-m", "faultprint_collector.cli"]


def test_the_store_path_is_printed_whole_on_its_line(tmp_path: Path) -> None:
    # a path longer than the 80 columns of a log is not broken before it
    store_dir = (tmp_path / ("nested-" * 8) / "demo").resolve()
    out = subprocess.run(
        [*CLI, "demo", "--calls", "100", "--store", str(store_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert f"Starting the collector with a fresh embedded store {store_dir}" in lines
    assert any(line.startswith("The collector listens on http://127.0.0.1:") for line in lines)
    assert '  faultprint sql "SELECT * FROM fingerprints_v" --store ' in out.stdout
