"""The live consent read and use count of every exchange, in driver-level SQL.

``ConsentStore.require_active`` runs twice per exchange on the event loop (before the backend
call and again before release). Through SQLAlchemy Core its one-row SELECT cost more in
statement compilation, result processing and transaction handling than in the database.
This module sends one fixed SQL string straight through the DBAPI cursor instead: the consent
row and, for ONETIME consents, whether the service was already used, read by a single
statement (so from one snapshot). Nothing read is cached: every call reads the database, so a
revocation on any process or node stops the very next request. Only the step from a row's
values to a :class:`Consent` is remembered, keyed by those very values (a row that differs in
any column is a different key), as a PERIODIC consent's row reads the same on every exchange.

On SQLite (a file, with SQLAlchemy's usual queue pool) the first thread to read, in the broker
the event loop's, reads through a connection of its own, opened once from the engine (so with
its pragmas) and taken out of the pool: the pool's checkout and check-in cost as much CPU as
the read itself. Other threads borrow from the pool as before. A read holds no transaction
once it returns, so the held connection never stops a WAL checkpoint. :meth:`LiveReader.close`
closes it (``ConsentStore.close``; the broker calls it before disposing of the engine).

On psycopg the read runs in autocommit mode: a lone SELECT needs no transaction, and
BEGIN/ROLLBACK would be two more round trips with the event loop blocked. Counting a use is
the store's conditional UPDATE (the WHERE clause is the lock), the row read back and, for a
ONETIME consent, the INSERT whose primary key refuses a second use of a service, all in one
transaction, exactly as the Core version does it.
"""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool

from consent._tables import consent_from_mapping, consent_uses, consents
from consent.models import Consent, ConsentStatus, FetchType

__all__ = ["LiveReader"]

_MARKERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
_ACTIVE = ConsentStatus.ACTIVE.value
#: Rows whose Consent is remembered; past this the memory starts again from empty.
_PARSED_ROWS = 1024


class LiveReader:
    """Reads a consent's row and counts its uses, or says it cannot (unknown paramstyle)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        marker = _MARKERS.get(engine.dialect.paramstyle)
        self._columns = tuple(column.name for column in consents.c)
        self._sql: str | None = None
        if marker is not None:
            columns = ", ".join(f"c.{name}" for name in self._columns)
            self._sql = (
                f"SELECT {columns}, EXISTS (SELECT 1 FROM {consent_uses.name} u "  # noqa: S608 - our own table names; values are bound
                f"WHERE u.consent_id = c.id AND u.service = {marker}) "
                f"FROM {consents.name} c WHERE c.id = {marker}"
            )
        self._autocommit = engine.dialect.driver == "psycopg"
        self._count_sql = self._row_sql = self._use_sql = ""
        if marker is not None:
            m = marker
            self._count_sql = (
                f"UPDATE {consents.name} SET use_count = use_count + 1 "  # noqa: S608 - as above
                f"WHERE id = {m} AND status = {m} AND nbf <= {m} AND exp > {m} "
                "AND (max_uses IS NULL OR use_count < max_uses)"
            )
            names = ", ".join(self._columns)
            self._row_sql = f"SELECT {names} FROM {consents.name} WHERE id = {m}"  # noqa: S608
            self._use_sql = (
                f"INSERT INTO {consent_uses.name} (consent_id, service, used_at) "  # noqa: S608
                f"VALUES ({m}, {m}, {m})"
            )
        self.integrity_error: type[Exception] = engine.dialect.loaded_dbapi.IntegrityError
        # A connection of its own for the first thread that reads: in the broker, the event
        # loop's (SQLite files only; see the module docstring). Other threads use the pool.
        self._own = engine.dialect.name == "sqlite" and isinstance(engine.pool, QueuePool)
        self._owner: int | None = None
        self._connection: Any = None
        self._lock = threading.Lock()
        # SQLite hands JSON columns over as text, so a row is a key; psycopg parses them.
        self._memo = engine.dialect.name == "sqlite"
        self._parsed: dict[tuple[Any, ...], Consent] = {}

    @property
    def available(self) -> bool:
        """Whether this engine's driver is one the fixed SQL is written for."""
        return self._sql is not None

    def read(self, consent_id: str, service: str | None) -> tuple[Consent, bool] | None:
        """The consent as stored and whether ``service`` is recorded as used; None if absent."""
        if self._sql is None:  # pragma: no cover - guarded by ``available``
            raise RuntimeError("no driver-level SQL for this engine")
        connection = self._own_connection()
        row = (
            self._read_pooled(consent_id, service)
            if connection is None
            else self._read_own(connection, consent_id, service)
        )
        if row is None:
            return None
        return self._consent(tuple(row[: len(self._columns)])), bool(row[len(self._columns)])

    def _consent(self, columns: tuple[Any, ...]) -> Consent:
        if not self._memo:
            return consent_from_mapping(self._values(columns))
        remembered = self._parsed.get(columns)
        if remembered is None:
            remembered = consent_from_mapping(self._values(columns))
            if len(self._parsed) >= _PARSED_ROWS:
                self._parsed.clear()
            self._parsed[columns] = remembered
        return remembered

    def close(self) -> None:
        """Close the reader's own connection; later reads go through the pool.

        Call it from the owning thread, or once reads have stopped: it does not wait for a
        read running on another thread.
        """
        with self._lock:
            self._own = False
            connection, self._connection, self._owner = self._connection, None, None
        if connection is not None:
            connection.close()

    def _own_connection(self) -> Any:
        """The reader's own connection if this thread owns it (the first to read), else None."""
        if not self._own:
            return None
        if self._owner is None:
            with self._lock:
                if self._own and self._owner is None:
                    fairy = self._engine.raw_connection()  # the engine's pragmas included
                    connection = fairy.driver_connection
                    fairy.detach()  # out of the pool: only close() or a failed read closes it
                    self._connection = connection
                    self._owner = threading.get_ident()
        connection = self._connection
        return connection if self._owner == threading.get_ident() else None

    def _read_own(self, connection: Any, consent_id: str, service: str | None) -> Any:
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self._sql, (service or "", consent_id))
                return cursor.fetchone()
            finally:
                cursor.close()  # resets the statement: no read transaction stays open
        except BaseException:
            # Whatever went wrong, the next read starts on a new connection.
            with self._lock:
                if self._connection is connection:
                    self._connection = self._owner = None
            with contextlib.suppress(Exception):
                connection.close()
            raise

    def _read_pooled(self, consent_id: str, service: str | None) -> Any:
        fairy = self._engine.raw_connection()
        try:
            driver = fairy.driver_connection
            if self._autocommit:
                driver.autocommit = True  # type: ignore[union-attr] # psycopg Connection
            try:
                cursor = fairy.cursor()
                cursor.execute(self._sql, (service or "", consent_id))
                row = cursor.fetchone()
                cursor.close()
            finally:
                if self._autocommit:
                    _restore(fairy)
        finally:
            fairy.close()
        return row

    def count_use(self, consent_id: str, service: str | None, at: int) -> Consent | None:
        """Count one use of an ACTIVE, valid, not used-up consent; the consent after, or None.

        None means nothing was counted. A ONETIME consent already used for ``service``
        raises :attr:`integrity_error` (the driver's), and nothing is counted either.
        """
        fairy = self._engine.raw_connection()
        try:
            cursor = fairy.cursor()
            try:
                cursor.execute(self._count_sql, (consent_id, _ACTIVE, at, at))
                if cursor.rowcount != 1:
                    fairy.rollback()
                    return None
                cursor.execute(self._row_sql, (consent_id,))
                row = cursor.fetchone()
                values = self._values(row)
                if values["fetch_type"] == FetchType.ONETIME.value:
                    if service is None:
                        raise ValueError("a ONETIME consent's use must name the service")
                    cursor.execute(self._use_sql, (consent_id, service, at))
                fairy.commit()
            except BaseException:
                fairy.rollback()
                raise
            finally:
                cursor.close()
        finally:
            fairy.close()
        return consent_from_mapping(values)

    def _values(self, row: Any) -> dict[str, Any]:
        values = dict(zip(self._columns, row, strict=False))
        grants = values["grants"]
        if isinstance(grants, str | bytes):  # SQLite keeps JSON as text; psycopg parses it
            values["grants"] = json.loads(grants)
        return values


def _restore(fairy: Any) -> None:
    """Give the pool back a connection in the mode it lent it out."""
    try:
        fairy.driver_connection.autocommit = False
    except Exception:  # noqa: BLE001 - a connection we cannot reset is never reused
        fairy.invalidate()
