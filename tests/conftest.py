"""Fixtures shared by every test package, and the choice of database for the run.

``make test`` runs the suite twice: on SQLite (the embedded default) and again with
``SIMPUL_TEST_DATABASE=postgresql``, where every database fixture — the ``engine`` fixture and
the end-to-end broker — uses PostgreSQL (``SIMPUL_TEST_POSTGRES_URL``, default the local ``test``
database), one fresh schema per test. Without a reachable server the PostgreSQL run skips its
database tests with the reason, unless ``SIMPUL_REQUIRE_POSTGRES=1`` (CI), where it fails.
Tests that exercise SQLite itself (its file, its locks, its triggers) carry ``sqlite_only``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import OperationalError

from broker.db import create_db_engine, with_search_path

DATABASE = os.environ.get("SIMPUL_TEST_DATABASE", "sqlite")
POSTGRES_URL = os.environ.get(
    "SIMPUL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("SIMPUL_REQUIRE_POSTGRES") == "1"

# Property tests judge results, never speed: on a busy 2-core machine an example can take longer
# than hypothesis' default 200 ms deadline, which would fail a correct test.
settings.register_profile("simpul", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("simpul")

if DATABASE not in {"sqlite", "postgresql"}:  # pragma: no cover - a typo in the environment
    raise pytest.UsageError("SIMPUL_TEST_DATABASE must be sqlite or postgresql")


def pytest_configure(config: pytest.Config) -> None:
    """Register the run's database in the header of the report."""
    config.addinivalue_line(
        "markers", "sqlite_only: exercises SQLite itself; not run on PostgreSQL"
    )


def pytest_report_header() -> str:
    """Say which database this run uses."""
    where = POSTGRES_URL if DATABASE == "postgresql" else "SQLite files in temporary directories"
    return f"simpul test database: {DATABASE} ({where})"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip SQLite-specific tests on the PostgreSQL run."""
    if DATABASE != "postgresql":
        return
    skip = pytest.mark.skip(reason="exercises SQLite itself; covered by the SQLite run")
    for item in items:
        if item.get_closest_marker("sqlite_only"):
            item.add_marker(skip)


class PostgresSchema:
    """A throw-away schema on the test server (created and dropped by the caller)."""

    def __init__(self) -> None:
        self.name = f"simpul_test_{uuid.uuid4().hex[:12]}"
        self._admin = create_engine(POSTGRES_URL)

    def create(self) -> str:
        """Create the schema, or skip (fail, if required) when no server answers."""
        try:
            with self._admin.begin() as conn:
                conn.exec_driver_sql(f"CREATE SCHEMA {self.name}")
        except OperationalError as exc:
            self._admin.dispose()
            reason = f"no PostgreSQL server at {POSTGRES_URL}: {str(exc.orig).strip()}"
            if REQUIRE_POSTGRES:
                pytest.fail(reason)
            pytest.skip(reason)
        return with_search_path(POSTGRES_URL, self.name)

    def drop(self) -> None:
        """Drop the schema and everything in it."""
        with self._admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")
        self._admin.dispose()


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for one test, on this run's database."""
    if DATABASE == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    schema = PostgresSchema()
    url = schema.create()
    try:
        yield url
    finally:
        schema.drop()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a fresh database, set up as the broker sets up its own."""
    eng = create_db_engine(database_url)
    yield eng
    eng.dispose()
