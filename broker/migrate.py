"""Schema migrations for both databases, and the start-up check that they are applied.

The broker's state (consents, replay cache, notification outbox) and the audit log may live in
two databases (SQLite default: two files) or in one (PostgreSQL). Each has its own Alembic
script directory and version table, so either layout migrates the same way.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Connection, Engine, MetaData, String, column, inspect, select
from sqlalchemy import table as table_clause

from audit._lock import PG_APPEND_LOCK
from broker.errors import SchemaBehind
from broker.settings import Settings

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "Which",
    "current_revision",
    "databases",
    "head_revision",
    "is_current",
    "require_current",
    "run_environment",
    "target",
    "upgrade",
]

Which = Literal["main", "audit"]

#: The advisory lock of the main database's migrations: b"simpulMG" as a bigint.
_PG_MIGRATION_LOCK = int.from_bytes(b"simpulMG", "big")


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
    return Target(metadata=metadata, version_table=_version_table(which))


def _version_table(which: Which) -> str:
    return f"simpul_version_{which}"


def databases(settings: Settings) -> tuple[tuple[Which, str], ...]:
    """Each database with its URL, as the settings resolve them."""
    return (
        ("main", settings.resolved_database_url),
        ("audit", settings.resolved_audit_database_url),
    )


def _config(which: Which) -> Config:
    from alembic.config import Config

    config = Config()
    location = resources.files("broker.migrations") / which
    config.set_main_option("script_location", str(location))
    return config


# Alembic itself (≈10 MB and ≈0.15 s of imports in every worker) is needed only to migrate:
# checking that a database is current reads the revision files and the version table directly.
# tests/broker/test_migrate.py holds both readings to Alembic's own.


@cache
def head_revision(which: Which) -> str | None:
    """The newest revision this code knows for ``which`` database (None: it has none).

    Read from the ``revision`` and ``down_revision`` of each file in the script directory's
    ``versions``, as Alembic reads them; more than one head is refused, as Alembic refuses it.
    """
    return _head_of(_revision_files(which))


@cache
def _revision_files(which: Which) -> Mapping[str, str]:
    """The source of each revision file of ``which`` database, by file name."""
    versions = resources.files("broker.migrations") / which / "versions"
    return {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in versions.iterdir()
        # The files Alembic reads: editors' lock files (.#name) and __init__ are not revisions.
        if entry.name.endswith(".py") and not entry.name.startswith((".#", "__init__"))
    }


@cache
def _known_revisions(which: Which) -> frozenset[str]:
    """Every revision this code has a file for."""
    return frozenset(_revision_names(src, name)[0] for name, src in _revision_files(which).items())


def _refuse_unknown(which: Which, have: str | None) -> None:
    """Refuse a database at a revision this code has no file for: a newer release's."""
    if have is None or have in _known_revisions(which):
        return
    raise SchemaBehind(
        f"the {which} database schema is at {have}, a revision this code does not know "
        f"(its newest is {head_revision(which)}): a newer release migrated it; run that release"
    )


def _head_of(files: Mapping[str, str]) -> str | None:
    """The one revision no other file revises, of revision files (source by file name)."""
    revisions: set[str] = set()
    replaced: set[str] = set()
    for name, source in files.items():
        revision, revises = _revision_names(source, name)
        revisions.add(revision)
        replaced.update(revises)
    if missing := sorted(replaced - revisions):
        raise ValueError(f"the migrations revise unknown revisions: {', '.join(missing)}")
    heads = sorted(revisions - replaced)
    if len(heads) > 1:
        raise ValueError(f"the migrations have several heads: {', '.join(heads)}")
    if revisions and not heads:
        raise ValueError("the migrations revise each other in a circle: they have no head")
    return heads[0] if heads else None


def _revision_names(source: str, name: str) -> tuple[str, tuple[str, ...]]:
    """A revision file's own id, and the ids it revises."""
    values: dict[str, object] = {}
    try:
        for node in ast.parse(source, filename=name).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            else:
                continue
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                values[target.id] = ast.literal_eval(value)
    except (SyntaxError, ValueError) as exc:  # literal_eval's "malformed node" is a ValueError
        raise ValueError(f"migration {name} cannot be read: {exc}") from exc
    revision, down = values.get("revision"), values.get("down_revision")
    if not isinstance(revision, str):
        raise ValueError(f"migration {name} names no revision")
    if down is None:
        return revision, ()
    if isinstance(down, str):
        return revision, (down,)
    if isinstance(down, tuple | list) and all(isinstance(d, str) for d in down):
        return revision, tuple(down)
    raise ValueError(f"migration {name} has an unreadable down_revision")


def current_revision(engine: Engine, which: Which) -> str | None:
    """The revision ``which`` database is at (None: never migrated)."""
    with engine.connect() as conn:
        return _current_in(conn, which)


def _current_in(conn: Connection, which: Which) -> str | None:
    name = _version_table(which)
    if not inspect(conn).has_table(name):
        return None
    query = select(column("version_num", String)).select_from(table_clause(name))
    versions = sorted(conn.execute(query).scalars())
    if len(versions) > 1:
        # Alembic refuses such a table too: this code's migrations are one line of revisions.
        raise SchemaBehind(
            f"the {which} database schema is at several revisions ({', '.join(versions)}); "
            "it was not migrated by this code"
        )
    return versions[0] if versions else None


def upgrade(engine: Engine, which: Which, revision: str = "head") -> None:
    """Bring ``which`` database up to ``revision``.

    On PostgreSQL the migration first takes an advisory lock for its transaction: two
    ``simpul db upgrade`` at once run one after the other (the second finds nothing to do),
    and the audit database's is the audit writers' own lock, so no node still serving appends
    or indexes while its tables are rebuilt. Nor do the broker's timeouts for a node's
    statements (:mod:`broker.db`) apply: a migration copies whole tables.
    """
    from alembic import command

    config = _config(which)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
            conn.exec_driver_sql("SET LOCAL lock_timeout = 0")
            lock = PG_APPEND_LOCK if which == "audit" else _PG_MIGRATION_LOCK
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({lock})")
        _refuse_unknown(which, _current_in(conn, which))
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def is_current(engine: Engine, which: Which) -> bool:
    """Whether ``which`` database is at this code's newest revision."""
    return current_revision(engine, which) == head_revision(which)


def require_current(engine: Engine, which: Which) -> None:
    """Refuse to run on a database whose schema is behind (or ahead of) this code."""
    have, want = current_revision(engine, which), head_revision(which)
    _refuse_unknown(which, have)
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
