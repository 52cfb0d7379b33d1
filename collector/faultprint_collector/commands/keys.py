"""``faultprint keys``: create API keys for projects."""

from __future__ import annotations

import os
from pathlib import Path

import typer

DEFAULT_KEYS_FILE = "./.faultprint/api_keys"


def register(app: typer.Typer) -> None:
    """Add the ``keys`` command group to APP."""
    keys_app = typer.Typer(help="Manage API keys (stored hashed, one project per key).")
    app.add_typer(keys_app, name="keys")

    @keys_app.command("add")
    def add(
        project: str = typer.Argument(..., help="Project the new key writes and reads."),
        file: str = typer.Option(
            None,
            "--file",
            help=f"Key file (default: $FAULTPRINT_API_KEYS_FILE or {DEFAULT_KEYS_FILE}).",
        ),
    ) -> None:
        """Create a key for PROJECT: print it once, append its SHA-256 to the key file."""
        from faultprint_collector.api._auth import KeyConfigError, append_key
        from faultprint_collector.cli import err, fail

        path = file or os.environ.get("FAULTPRINT_API_KEYS_FILE") or DEFAULT_KEYS_FILE
        parent = Path(path).expanduser().parent
        created = ""
        if not parent.is_dir():
            if path != DEFAULT_KEYS_FILE:
                # a mistyped directory would otherwise be made on the spot, and
                # the collector pointed at the intended one would find no key
                where = "--file" if file else "FAULTPRINT_API_KEYS_FILE"
                problem = "is not a directory" if parent.exists() else "does not exist"
                fail(
                    f"{where} {path}: {parent} {problem}; create the directory first, "
                    "or give a file in an existing directory"
                )
            created = f" (created the directory {parent})"
        try:
            key = append_key(path, project)
        except (KeyConfigError, OSError) as exc:
            fail(str(exc))
        typer.echo(key)
        err.print(
            f"key for project {project!r} added to {path}{created} (only its hash is stored; "
            "keep the key: it cannot be shown again)",
            highlight=False,
        )
