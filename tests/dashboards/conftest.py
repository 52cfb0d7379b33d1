"""Demo data shared by the dashboard tests (made once per session)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.demo_store import copy_store, make_demo_store


@pytest.fixture(scope="session")
def demo_store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stopped store holding ``faultprint demo`` traffic (read-only: copy it)."""
    return make_demo_store(tmp_path_factory.mktemp("demo") / "store")


@pytest.fixture(scope="module")
def engine(demo_store_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The demo store opened in-process on the embedded engine."""
    from faultprint_collector.store import open_store

    opened = open_store(str(copy_store(demo_store_dir, tmp_path_factory.mktemp("engine") / "s")))
    yield opened
    opened.close()
