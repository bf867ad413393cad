"""The writer's statements at the driver: plain DBAPI cursors, ``COPY`` on PostgreSQL.

The writer runs half a dozen statements per batch while it holds the log's lock, so their cost
is the lock's hold time, and at low load a batch is a single record. Through SQLAlchemy each
statement paid more in execution context and result set-up than SQLite took to run it, so these
go to the DBAPI cursor of the caller's connection, inside its transaction. Inserts are one
``executemany`` on SQLite (one prepared statement stepped per row); on PostgreSQL psycopg's
``executemany`` would pipeline one INSERT per row, so ``COPY ... FROM STDIN`` streams them all
into a single statement instead, several times faster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

__all__ = ["fetch_rows", "insert_rows", "mark"]


def mark(conn: Connection) -> str:
    """The driver's placeholder: ``?`` for sqlite3, ``%s`` for psycopg."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def fetch_rows(conn: Connection, sql: str, params: Sequence[object] = ()) -> list[Any]:
    """Every row ``sql`` returns, as the driver's tuples."""
    cursor: Any = conn.connection.cursor()
    try:
        cursor.execute(sql, tuple(params))
        return list(cursor.fetchall())
    finally:
        cursor.close()


def insert_rows(
    conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
) -> None:
    """Insert ``rows`` (values in ``columns`` order) into ``table``; constant names only."""
    if not rows:
        return
    names = ", ".join(columns)
    cursor: Any = conn.connection.cursor()
    try:
        if conn.dialect.name == "postgresql":
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join(["?"] * len(columns))
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)  # noqa: S608 - constant names
    finally:
        cursor.close()
