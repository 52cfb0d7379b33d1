"""Options several commands share, checked the same way everywhere."""

from __future__ import annotations

from typing import Any

import typer

from faultprint_collector.settings import DEFAULT_PROJECT

PROJECT_HELP = "Project (direct store reads only; through a collector the API key decides)."


def check_project_name(value: str) -> str:
    """Refuse a malformed --project as a usage error (exit 2).

    The rule is the one project names of API keys follow: a name that no
    key can carry would only ever read an empty project, which looks like
    "no incidents".
    """
    if value == DEFAULT_PROJECT:  # valid, and the check imports the API package
        return value
    from faultprint_collector.api._auth import PROJECT_NAME

    if not PROJECT_NAME.fullmatch(value):
        raise typer.BadParameter(
            f"{value!r} is not a project name: letters, digits, '.', '_', '-' (max 64), "
            "starting with a letter or digit"
        )
    return value


def project_option(help: str = PROJECT_HELP) -> Any:
    """``--project``, defaulting to the default project, checked by ``check_project_name``."""
    return typer.Option(DEFAULT_PROJECT, callback=check_project_name, help=help)
