"""Fixtures for the audit tests."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from audit.store import install


@pytest.fixture
def installed(engine: Engine) -> Engine:
    """The test database with the audit table and its triggers installed."""
    install(engine)
    return engine
