"""``faultprint keys add``: a key file goes where it is told, or the command says why not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def keys_add(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "FAULTPRINT_API_KEYS_FILE"}
    return subprocess.run(
        [sys.executable, "-m", "faultprint_collector.cli", "keys", "add", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**environ, "COLUMNS": "300", **(env or {})},
    )


def test_a_missing_directory_is_an_error_and_nothing_is_created(tmp_path: Path) -> None:
    target = tmp_path / "nonexistent" / "dir" / "k.txt"
    done = keys_add("shop", "--file", str(target), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{target.parent} does not exist" in done.stderr and "--file" in done.stderr
    assert done.stdout == ""  # no key printed that was never stored
    assert not (tmp_path / "nonexistent").exists()


def test_the_variable_naming_a_missing_directory_is_an_error_too(tmp_path: Path) -> None:
    target = tmp_path / "typo" / "keys"
    done = keys_add("shop", cwd=tmp_path, env={"FAULTPRINT_API_KEYS_FILE": str(target)})
    assert done.returncode == 2 and "FAULTPRINT_API_KEYS_FILE" in done.stderr
    assert not (tmp_path / "typo").exists()


def test_a_file_where_the_directory_should_be_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("")
    done = keys_add("shop", "--file", str(tmp_path / "plain" / "k.txt"), cwd=tmp_path)
    assert done.returncode == 2 and "is not a directory" in done.stderr


def test_a_file_in_an_existing_directory_is_written(tmp_path: Path) -> None:
    done = keys_add("shop", "--file", str(tmp_path / "k.txt"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "k.txt").read_text().startswith("shop:")
    assert "created" not in done.stderr


def test_the_default_location_has_its_directory_made_and_says_so(tmp_path: Path) -> None:
    done = keys_add("shop", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / ".faultprint" / "api_keys").read_text().startswith("shop:")
    assert "created the directory .faultprint" in done.stderr
    again = keys_add("shop", cwd=tmp_path)
    assert again.returncode == 0 and "created" not in again.stderr


def test_a_project_name_ending_in_a_newline_is_refused(tmp_path: Path) -> None:
    """A regular expression's ``$`` matches before a final newline: such a
    name would write a key file line the collector refuses at start-up."""
    target = tmp_path / "keys"
    done = keys_add("shop\n", "--file", str(target), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "invalid project name" in done.stderr
    assert not target.exists()
