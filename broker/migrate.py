"""Schema migrations for both databases, and the start-up check that they are applied.

The broker's state (consents, replay cache, notification outbox) and the audit log may live in
two databases (SQLite default: two files) or in one (PostgreSQL). Each has its own Alembic
script directory and version table, so either layout migrates the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData

from broker.errors import SchemaBehind
from broker.settings import Settings

__all__ = [
    "Which",
    "current_revision",
    "databases",
    "head_revision",
    "require_current",
    "run_environment",
    "target",
    "upgrade",
]

Which = Literal["main", "audit"]


@dataclass(frozen=True, slots=True)
class Target:
    """What one script directory migrates."""

    metadata: MetaData
    version_table: str

    @property
    def tables(self) -> frozenset[str]:
        """Names of the tables this target owns."""
        return frozenset(self.metadata.tables)


def target(which: Which) -> Target:
    """The metadata and version table of ``which`` database."""
    metadata = MetaData()
    if which == "main":
        from broker import notifications, replay
        from consent import store

        sources = [store.metadata, replay.metadata, notifications.metadata]
    else:
        from audit import store as audit_store

        sources = [audit_store.metadata]
    for source in sources:
        for table in source.tables.values():
            table.to_metadata(metadata)
    return Target(metadata=metadata, version_table=f"simpul_version_{which}")


def databases(settings: Settings) -> tuple[tuple[Which, str], ...]:
    """Each database with its URL, as the settings resolve them."""
    return (
        ("main", settings.resolved_database_url),
        ("audit", settings.resolved_audit_database_url),
    )


def _config(which: Which) -> Config:
    config = Config()
    location = resources.files("broker.migrations") / which
    config.set_main_option("script_location", str(location))
    return config


def head_revision(which: Which) -> str | None:
    """The newest revision this code knows for ``which`` database."""
    return ScriptDirectory.from_config(_config(which)).get_current_head()


def current_revision(engine: Engine, which: Which) -> str | None:
    """The revision ``which`` database is at (None: never migrated)."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": target(which).version_table}
        )
        return context.get_current_revision()


def upgrade(engine: Engine, which: Which, revision: str = "head") -> None:
    """Bring ``which`` database up to ``revision``."""
    config = _config(which)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def require_current(engine: Engine, which: Which) -> None:
    """Refuse to run on a database whose schema is behind (or ahead of) this code."""
    have, want = current_revision(engine, which), head_revision(which)
    if have != want:
        raise SchemaBehind(
            f"the {which} database schema is at {have or 'nothing'}, this broker needs {want}; "
            "run `simpul db upgrade`"
        )


def run_environment(which: Which) -> None:
    """The body of both ``env.py`` files: migrate ``which`` on the connection handed over."""
    from alembic import context

    owned = target(which)

    def include(
        _obj: object, name: str | None, type_: str, _reflected: bool, _other: object
    ) -> bool:
        # One database may hold both sets of tables (PostgreSQL); each set migrates its own.
        return type_ != "table" or name in owned.tables

    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=owned.metadata,
        version_table=owned.version_table,
        include_object=include,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
