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

__all__ = [
    "PG_APPEND_LOCK",
    "LockBusy",
    "open_unwaiting",
    "try_write_transaction",
    "write_transaction",
]

#: Constant key of the PostgreSQL advisory lock that serialises appends: b"simpulAU" as a
#: bigint. The audit database's migrations take it too, so no writer appends meanwhile.
PG_APPEND_LOCK: Final = 8316298516690125141
_PG_LOCK_SQL: Final = f"SELECT pg_advisory_xact_lock({PG_APPEND_LOCK})"


class LockBusy(Exception):
    """Another writer holds the write lock, and the caller asked not to wait for it."""


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction holding the audit write lock; commits on normal exit, else rolls back."""
    dialect = engine.dialect.name
    if dialect == "sqlite":
        with engine.connect() as conn, _driver_begin_disabled(conn), conn.begin():
            # RESERVED lock now rather than at the first write: the tail read below it must
            # already be the one no other writer can move (busy_timeout covers the wait).
            # Straight to the driver, as the writer's other statements (see audit._bulk):
            # through exec_driver_sql the BEGIN cost more than the rest of a small batch.
            raw: Any = conn.connection.driver_connection
            raw.execute("BEGIN IMMEDIATE")
            yield conn
    elif dialect == "postgresql":
        with engine.connect() as conn:
            # READ COMMITTED takes a fresh snapshot per statement, so the tail read after the
            # lock sees the previous holder's commit (REPEATABLE READ would not).
            conn.execution_options(isolation_level="READ COMMITTED")
            with conn.begin():
                conn.exec_driver_sql(_PG_LOCK_SQL)
                yield conn
    else:
        raise ValueError(f"the audit log supports sqlite and postgresql, not {dialect}")


def open_unwaiting(engine: Engine) -> Connection:
    """A connection of the caller's own to a SQLite ``engine``, for :func:`try_write_transaction`.

    Opened from the engine (so with its pragmas), then taken out of its pool for good: the
    driver leaves BEGIN to us and the busy wait is off, settings no pooled connection may
    keep. Closing it closes the database connection.
    """
    if engine.dialect.name != "sqlite":
        raise ValueError("only a SQLite connection can be tried without waiting")
    conn = engine.connect()
    try:
        raw: Any = conn.connection.driver_connection
        # In WAL mode a transaction that has its write lock commits without waiting for
        # anyone; in other modes COMMIT waits for readers, which a busy wait of 0 would fail.
        (mode,) = raw.execute("PRAGMA journal_mode").fetchone()
        if str(mode).lower() != "wal":
            raise ValueError(f"only a database in WAL mode can be written without waiting: {mode}")
        conn.detach()
        raw.isolation_level = None
        raw.execute("PRAGMA busy_timeout = 0")
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def try_write_transaction(conn: Connection) -> Iterator[Connection]:
    """:func:`write_transaction` on a connection from :func:`open_unwaiting`, without waiting:
    :class:`LockBusy` at once, before anything is written, if another writer (thread, process
    or node) holds the lock."""
    raw: Any = conn.connection.dbapi_connection  # sqlite3's own; detached, it has no record
    with conn.begin():
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            raise LockBusy("another writer holds the audit write lock") from exc
        yield conn


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
