"""The audit log's write lock: one appender at a time across threads, processes and nodes.

Sequence numbers are assigned by reading the tail inside the lock, so the lock must be held
from the transaction's first statement, before that read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, Final

from sqlalchemy import Connection, Engine

__all__ = ["LockBusy", "write_transaction"]

# Constant key of the PostgreSQL advisory lock that serialises appends: b"simpulAU" as a bigint.
_PG_LOCK_KEY: Final = 8316298516690125141
_PG_LOCK_SQL: Final = f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})"
_PG_TRY_LOCK_SQL: Final = f"SELECT pg_try_advisory_xact_lock({_PG_LOCK_KEY})"


class LockBusy(Exception):
    """Another writer holds the write lock, and the caller asked not to wait for it."""


@contextmanager
def write_transaction(engine: Engine, *, wait: bool = True) -> Iterator[Connection]:
    """A transaction holding the audit write lock; commits on normal exit, else rolls back.

    ``wait=False``: raise :class:`LockBusy` at once, before anything is written, if another
    writer (thread, process or node) holds the lock, instead of waiting for it. (The audit
    writer tries it on SQLite only; PostgreSQL has it too, so the lock means one thing.)
    """
    dialect = engine.dialect.name
    if dialect == "sqlite":
        with engine.connect() as conn, _driver_begin_disabled(conn), conn.begin():
            # RESERVED lock now rather than at the first write: the tail read below it must
            # already be the one no other writer can move (busy_timeout covers the wait).
            # Straight to the driver, as the writer's other statements (see audit._bulk):
            # through exec_driver_sql the BEGIN cost more than the rest of a small batch.
            raw: Any = conn.connection.driver_connection
            if wait:
                raw.execute("BEGIN IMMEDIATE")
            else:
                _begin_immediate_or_busy(raw)
            yield conn
    elif dialect == "postgresql":
        with engine.connect() as conn:
            # READ COMMITTED takes a fresh snapshot per statement, so the tail read after the
            # lock sees the previous holder's commit (REPEATABLE READ would not).
            conn.execution_options(isolation_level="READ COMMITTED")
            with conn.begin():
                if wait:
                    conn.exec_driver_sql(_PG_LOCK_SQL)
                elif not conn.exec_driver_sql(_PG_TRY_LOCK_SQL).scalar_one():
                    raise LockBusy("another writer holds the audit write lock")
                yield conn
    else:
        raise ValueError(f"the audit log supports sqlite and postgresql, not {dialect}")


def _begin_immediate_or_busy(raw: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE`` without the connection's busy wait: :class:`LockBusy` if taken.

    The wait is off for the BEGIN alone; the rest of the transaction runs as usual.
    """
    (timeout,) = raw.execute("PRAGMA busy_timeout").fetchone()
    raw.execute("PRAGMA busy_timeout = 0")
    try:
        raw.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
            raise
        raise LockBusy("another writer holds the audit write lock") from exc
    finally:
        raw.execute(f"PRAGMA busy_timeout = {int(timeout)}")


@contextmanager
def _driver_begin_disabled(conn: Connection) -> Iterator[None]:
    """Stop the sqlite3 driver from emitting its own (deferred) BEGIN on this connection only.

    This is SQLAlchemy's documented recipe for controlling BEGIN with pysqlite ("Enabling
    Non-Legacy SQLite Transactional Modes": ``isolation_level = None``, then emit BEGIN
    yourself; sqlite3 still issues COMMIT and ROLLBACK correctly), scoped to one checkout and
    undone afterwards: the engine is shared with other code and its pooled connections
    predate us, so a ``connect`` hook would neither reach them nor leave the rest alone.
    """
    raw: Any = conn.connection.driver_connection
    previous = raw.isolation_level
    raw.isolation_level = None
    try:
        yield
    finally:
        # A connection closed by a failure is discarded by the pool anyway.
        with suppress(sqlite3.Error):
            raw.isolation_level = previous
