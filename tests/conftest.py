"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from broker.db import create_db_engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A fresh SQLite database file, set up as the broker sets up its own."""
    eng = create_db_engine(f"sqlite:///{tmp_path / 'test.db'}")
    yield eng
    eng.dispose()
