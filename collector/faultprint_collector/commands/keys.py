"""``faultprint keys``: create API keys for projects."""

from __future__ import annotations

import os

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
        try:
            key = append_key(path, project)
        except (KeyConfigError, OSError) as exc:
            fail(str(exc))
        typer.echo(key)
        err.print(
            f"key for project {project!r} added to {path} (only its hash is stored; "
            "keep the key: it cannot be shown again)",
            highlight=False,
        )
