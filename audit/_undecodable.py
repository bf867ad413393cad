"""Reading SQLite TEXT that is not UTF-8: the verifiers name such a record instead of failing.

SQLite stores whatever bytes it is given as TEXT (a plain ``UPDATE`` with ``CAST(X'ff' AS TEXT)``
does), and its Python driver raises on a value it cannot decode, which would stop the online
verifier and the export where they must name that record as changed. Here such
bytes are read as ``str`` with surrogate escapes (``"\\udcff"`` for ``0xff``): no record holds
one (canonical JSON cannot encode it), so the row's leaf never matches and the verdict is
``record changed`` at its seq, while the bytes stay recoverable for whoever looks.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from sqlalchemy import Connection

__all__ = ["read_page", "undecodable_text_kept"]


def read_page(
    conn: Connection, sql: str, first: int, size: int
) -> Generator[list[tuple[Any, ...]], None, None]:
    """Up to ``size`` rows from seq ``first`` on (``sql`` takes both), in chunks off the cursor.

    Rows come as the driver decodes them until it fails on text; the rest of the page is then
    read again with :func:`undecodable_text_kept`. Only after a failure: a text factory in
    Python costs every value of every row a call. (A failure that is not about text comes
    back from the second read.)
    """
    kept = False
    with ExitStack() as restore:
        while True:
            cursor: Any = conn.connection.cursor()
            try:
                cursor.execute(sql, (first, size))
                while chunk := cursor.fetchmany(256):
                    first, size = int(chunk[-1][0]) + 1, size - len(chunk)
                    yield chunk
                return
            except sqlite3.OperationalError:
                if kept:
                    raise
                kept = True
                restore.enter_context(undecodable_text_kept(conn))
            finally:
                cursor.close()


def _surrogate_escaped(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


@contextmanager
def undecodable_text_kept(conn: Connection) -> Iterator[None]:
    """Inside, ``conn`` (SQLite) reads text that is not UTF-8 with its bytes as surrogate escapes.

    The connection is the pool's: its driver's own decoding is put back on the way out.
    """
    raw: Any = conn.connection.driver_connection
    previous = raw.text_factory
    raw.text_factory = _surrogate_escaped
    try:
        yield
    finally:
        raw.text_factory = previous
