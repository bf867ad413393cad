"""Inserting a batch of rows in one go: ``executemany`` on SQLite, ``COPY`` on PostgreSQL.

The writer inserts hundreds of rows per batch into three tables while it holds the log's lock,
so the insert is the lock's hold time. psycopg's ``executemany`` pipelines one INSERT per row,
and the server still executes each one; ``COPY ... FROM STDIN`` streams them all into a single
statement, several times faster. SQLite's ``executemany`` already steps one prepared statement.
Both run inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

__all__ = ["insert_rows"]


def insert_rows(
    conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
) -> None:
    """Insert ``rows`` (values in ``columns`` order) into ``table``; constant names only."""
    if not rows:
        return
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        raw: Any = conn.connection.driver_connection
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join(["?"] * len(columns))
    conn.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(rows))  # noqa: S608 - constant names
