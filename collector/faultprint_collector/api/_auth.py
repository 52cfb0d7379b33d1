"""Who is calling: the project a request is scoped to."""

from __future__ import annotations

from fastapi import Request

from faultprint_collector.settings import DEFAULT_PROJECT


def caller_project(request: Request) -> str:
    """The project every write and read of this request is scoped to."""
    return DEFAULT_PROJECT
