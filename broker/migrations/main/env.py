"""Alembic environment for the main database (run through broker.migrate)."""

from __future__ import annotations

from alembic import context

from broker.migrate import target

config = context.config
_target = target("main")


def _include(obj: object, name: str | None, type_: str, reflected: bool, _compare: object) -> bool:
    # One database may hold both sets of tables (PostgreSQL); each set migrates its own.
    if type_ == "table":
        return name in _target.tables
    return True


def run() -> None:
    """Run migrations on the connection broker.migrate hands over."""
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=_target.metadata,
        version_table=_target.version_table,
        include_object=_include,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run()
