"""The collector's HTTP interface."""

from faultprint_collector.api.app import create_app

__all__ = ["create_app"]
