"""Shared pieces of the unit tests: a migrated store and a recorder of activity notes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub_viz.service.store import Store


class Notes:
    """Stands in for the activity coalescer: remembers what was noted."""

    def __init__(self) -> None:
        self.notes: list[tuple[str, str]] = []

    def note(self, owner: str, server: str) -> None:
        self.notes.append((owner, server))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """The service's store, migrated, in a fresh SQLite file."""
    s = Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    yield s
    s.close()
