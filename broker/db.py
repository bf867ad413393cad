"""Database engines: one place decides how SQLite and PostgreSQL connections are set up."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

__all__ = ["SQLITE_PAGE_CACHE_KIB", "create_db_engine", "is_sqlite", "with_search_path"]

#: The page cache of each SQLite connection, in KiB (SQLite's default: 2,000).
SQLITE_PAGE_CACHE_KIB = 512


def is_sqlite(engine: Engine) -> bool:
    """Whether the engine talks to SQLite."""
    return engine.dialect.name == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the one writer; FULL makes a commit survive power loss,
    # which is what "the response is released only after its record is durable" means.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    # Each connection keeps a page cache of its own (2 MiB by default) over the operating
    # system's, which holds the same pages: with a pool per engine and two engines, two
    # workers held ≈5 MB of them under `make bench`. 512 KiB still holds every index's upper
    # levels; a page missed is a read from the operating system's cache.
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_PAGE_CACHE_KIB}")
    cursor.close()


def _postgres_timeouts(dbapi_connection: Any, _record: Any) -> None:
    # Fail closed rather than hang: if a peer node dies holding the audit writers' advisory
    # lock (or a row lock), waiting ends with an error after lock_timeout, the batch fails
    # with 503 and the writer retries; a session stuck inside a transaction is ended too.
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '10s'")
        cursor.execute("SET statement_timeout = '60s'")
        cursor.execute("SET idle_in_transaction_session_timeout = '60s'")
    dbapi_connection.commit()


def create_db_engine(url: str) -> Engine:
    """Create an engine for ``url`` with the connection settings Simpul relies on."""
    parsed = make_url(url)
    # hide_parameters: SQLAlchemy writes a failed statement's bound values into the error's
    # text, which reaches the operators' logs; among them are NIKs (the consent store's).
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
    if parsed.get_backend_name() == "postgresql":
        event.listen(engine, "connect", _postgres_timeouts)
    return engine


def with_search_path(url: str, schema: str) -> str:
    """``url`` (PostgreSQL) with ``schema`` as its search path: one schema per run or test."""
    parsed = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return parsed.render_as_string(hide_password=False)
