"""The replay cache: an ``X-Road-Id`` is accepted once per client inside the replay window."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    delete,
    insert,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import QueuePool

from broker.errors import Replay

__all__ = ["PURGE_MARGIN_SECONDS", "ReplayCache", "install", "metadata"]

#: The most ids one INSERT statement of a batch takes (a power of two): a batch goes in
#: statements of power-of-two sizes, so a connection prepares at most eight of them.
_LARGEST_STATEMENT = 128
#: How long past the replay window an id is kept before it is purged. Every broker node
#: purges by its own clock, and ``seen_at`` by the clock of the node that recorded the id: a
#: node whose clock ran ahead of that one's would otherwise forget an id while a copy of its
#: request, still inside the signature's skew, could reach another node (the window is only
#: twice the skew at the least). Nodes' clocks a minute apart are out of order anyway.
PURGE_MARGIN_SECONDS = 60
#: PostgreSQL's SQLSTATE for a transaction it aborted to break a deadlock.
_DEADLOCK_DETECTED = "40P01"

metadata = MetaData()

seen_requests = Table(
    "seen_requests",
    metadata,
    Column("client_id", String(255), nullable=False),
    Column("xroad_id", String(64), nullable=False),
    Column("seen_at", BigInteger, nullable=False, index=True),
    PrimaryKeyConstraint("client_id", "xroad_id"),
)


def install(engine: Engine) -> None:
    """Create the replay table if it is missing."""
    metadata.create_all(engine)


class ReplayCache:
    """Remembers request ids in the database, so every broker process sees every id.

    The primary key does the work: two concurrent inserts of one id cannot both succeed,
    whichever process they reach.

    :meth:`remember_soon` is the same check group-committed, for the event loop: the ids that
    arrive in one turn of the loop go in one batch, and those that arrive while it is being
    made durable go together in the next, on a thread of the cache's own, so a commit's fsync
    neither blocks the loop nor is paid once per request. A caller with nothing else in
    flight (``alone=True``: an exchange alone in its worker) has its id committed at once on
    the caller's thread instead, on a SQLite file, when no batch is in flight: there the
    commit costs less than the two thread wake-ups around it, and no other exchange waits for
    the loop meanwhile. That commit goes through a connection of the cache's own, opened from
    the engine (so with its pragmas) for the first thread that needs it and kept out of the
    pool, which never waits for the write lock: if another connection holds it, the id goes
    to the thread. It does not wait for the disk (``synchronous=NORMAL``): the id is
    committed, so every process sees it at once, and the WAL file is then synced on the
    cache's thread while the caller goes on. :meth:`durable` waits for that sync, and an
    exchange calls it before it releases anything; the sync's ``fdatasync`` came off the
    lone exchange's path. (A commit that crosses SQLite's auto-checkpoint threshold still
    copies the WAL back where it runs, as on the thread, where the exchange waited for it
    too.) :meth:`close` closes the connection and lets the cache's thread end.
    """

    def __init__(
        self,
        *,
        engine: Engine,
        window_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._window = window_seconds
        self._clock = clock
        self._last_purge = 0.0
        # Only on a SQLite file: a PostgreSQL commit is a network round trip.
        self._inline = engine.dialect.name == "sqlite" and isinstance(engine.pool, QueuePool)
        self._own: sqlite3.Connection | None = None  # for commits made here, and its thread
        self._wal_path = ""  # the own connection's WAL file, which _sync_soon syncs
        self._sync: Future[None] | None = None  # the last sync of that WAL, while it matters
        self._sync_thread: int | None = None  # the thread whose commit it follows
        self._owner: int | None = None
        self._own_lock = threading.Lock()
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        # Insert-or-ignore: a row returned means the id was new. (RETURNING, not rowcount:
        # psycopg reports -1 for ON CONFLICT inserts.) At the driver: through Core, building
        # and compiling the statement per id cost more than the insert. One text per
        # statement size a batch uses (see _statement_sizes), by its number of ids.
        self._insert_sql = {
            1 << power: _insert_rows_sql(mark, 1 << power)
            for power in range(_LARGEST_STATEMENT.bit_length())
        }
        self._pending: list[_Pending] = []
        self._in_flight: asyncio.Future[list[bool]] | None = None
        self._starting = False  # a batch is due to start once the loop's ready callbacks ran
        # One batch is in flight at a time, so batches go to one thread of the cache's own
        # (started by the first batch), not to the loop's shared pool, which grew to a thread
        # per concurrent job, each with its own malloc arena and pooled SQLite connection.
        self._thread: ThreadPoolExecutor | None = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="simpul-replay"
        )

    def remember(self, client_id: str, xroad_id: str) -> None:
        """Record the id, or raise :class:`Replay` if this client used it inside the window."""
        now = self._clock()
        if now - self._last_purge > self._window / 10:
            with self._engine.begin() as conn:
                conn.execute(
                    delete(seen_requests).where(seen_requests.c.seen_at < self._forget_before(now))
                )
            self._last_purge = now
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(seen_requests).values(
                        client_id=client_id, xroad_id=xroad_id, seen_at=int(now)
                    )
                )
        except IntegrityError as exc:
            raise Replay(f"X-Road-Id {xroad_id} was already used by this client") from exc

    def _forget_before(self, now: float) -> int:
        """The ``seen_at`` before which ids are purged: the window and a margin ago."""
        return int(now) - self._window - PURGE_MARGIN_SECONDS

    def remember_soon(
        self, client_id: str, xroad_id: str, *, alone: bool = False
    ) -> asyncio.Future[bool]:
        """Start recording the id now; the future says, once it is committed, whether it was new.

        Group commit: the ids that arrive together (in one turn of the loop) go in one batch,
        and those that arrive while it commits go in the next. The batch is handed to the
        cache's thread as soon as the loop has run the callbacks it had ready, so the commit
        runs while the caller goes on.
        A batch's ids are durable when their futures settle; a failed batch fails every
        future in it. ``alone`` (see the class): the future may come back already done, the
        id committed, and durable once :meth:`durable` returns. The id goes to the thread as
        usual if another writer holds the database's write lock, the old ids are due to be
        purged, the cache's connection belongs to another thread, the database is not in WAL
        mode, or the cache has been closed.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        if alone and self._inline and self._in_flight is None and not self._pending:
            try:
                fresh = self._insert_now(client_id, xroad_id)
            except Exception as exc:  # noqa: BLE001 - a failed commit fails its caller, as a batch
                future.set_exception(exc)
                return future
            if fresh is not None:
                future.set_result(fresh)
                if fresh:  # a replay wrote nothing
                    self._sync_soon()
                return future
        self._pending.append(_Pending(client_id, xroad_id, future))
        if self._in_flight is None and not self._starting:
            # Not at once: after every callback the loop has ready, so the ids of the requests
            # that arrived together go in one batch, one thread hand-off and one commit.
            self._starting = True
            loop.call_soon(self._start_batch, loop)
        return future

    async def durable(self) -> None:
        """Wait until every id committed on the caller's thread so far is durable.

        Such a commit (``alone=True``) is seen by every process at once, but does not wait for
        the disk: the WAL file is synced on the cache's thread after it, while the caller
        goes on, and this waits for that sync. A batch's commit is durable when its futures
        settle. Raises the sync's error if it failed, until a later sync, or a batch that
        inserted ids, succeeds (either makes the whole WAL durable, earlier commits included).
        """
        sync = self._sync
        # Only the connection's own thread commits without a sync; another thread's ids went
        # in batches, durable when they settled.
        if sync is None or self._sync_thread != threading.get_ident():
            return
        if not sync.done():
            # Usually done by now: the loop is woken for it only when it is not.
            await asyncio.shield(asyncio.wrap_future(sync))
        sync.result()  # the sync's error, if it failed
        if self._sync is sync:
            self._sync = None

    def _sync_soon(self) -> None:
        """Start syncing the WAL on the cache's thread, after a commit made on this one.

        A future of the thread's, not of the loop: its end does not wake the loop, which
        looks at it in :meth:`durable`.
        """
        thread = self._thread
        if thread is None:  # pragma: no cover - closed on another thread meanwhile, against close()
            raise RuntimeError("the replay cache is closed")  # the exchange fails, nothing released
        self._sync = thread.submit(_sync_file, self._wal_path)
        self._sync_thread = threading.get_ident()

    def _start_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        self._starting = False
        if self._in_flight is None and self._pending:
            self._commit_pending(loop)

    def _commit_pending(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending, []
        try:
            in_flight = loop.run_in_executor(self._thread, self._insert_batch, batch)
        except Exception as exc:  # noqa: BLE001 - refused (an executor shut down): fail them all
            in_flight = loop.create_future()  # settled as a failed batch, not left waiting
            in_flight.set_exception(exc)
        self._in_flight = in_flight
        in_flight.add_done_callback(lambda done: self._settle(loop, batch, done))

    def _settle(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[_Pending],
        done: asyncio.Future[list[bool]],
    ) -> None:
        self._in_flight = None
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        if error is None and any(done.result()):
            # A batch that wrote rows synced the whole WAL as it committed: every id committed
            # here before it too. (No sync starts while a batch is in flight, and the one
            # thread runs them in turn, so any sync ran before it.)
            self._sync = None
        for index, pending in enumerate(batch):
            if pending.future.done():  # a cancelled caller has gone
                continue
            if error is not None:
                pending.future.set_exception(error)
            else:
                pending.future.set_result(done.result()[index])
        if self._pending:
            self._commit_pending(loop)

    def close(self) -> None:
        """Close the connection kept for commits made on the caller's thread, and let the
        cache's thread end once idle; from now on every id goes to the loop's shared pool.
        Call it from the caller's thread, or once requests have stopped: it does not wait for
        a commit running on another thread."""
        with self._own_lock:
            self._inline = False
            own, self._own, self._owner = self._own, None, None
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.shutdown(wait=False)  # a batch on it still commits and settles its ids
        if own is not None:
            own.close()

    def _insert_now(self, client_id: str, xroad_id: str) -> bool | None:
        """Insert one id on this thread without waiting for the write lock: whether it was
        new, or None, having written nothing, if the lock is taken, a purge is due or the
        cache's connection belongs to another thread."""
        now = self._clock()
        if now - self._last_purge > self._window / 10:
            return None  # a purge can take a while: not on the event loop
        own = self._own_connection()
        if own is None:
            return None
        try:
            own.execute("BEGIN IMMEDIATE")  # the write lock now, or SQLITE_BUSY at once
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                self._drop(own)
                raise
            return None
        try:
            fresh = own.execute(self._insert_sql[1], (client_id, xroad_id, int(now))).fetchone()
            own.execute("COMMIT")
        except BaseException:
            self._drop(own)  # whatever it left open goes with it
            raise
        return fresh is not None

    def _own_connection(self) -> sqlite3.Connection | None:
        """The cache's own connection, opened for the first thread to ask; None for others."""
        if self._owner is None:
            with self._own_lock:
                if self._inline and self._owner is None:
                    fairy = self._engine.raw_connection()  # the engine's pragmas included
                    try:
                        own = cast(sqlite3.Connection, fairy.driver_connection)
                        (mode,) = own.execute("PRAGMA journal_mode").fetchone()
                        if str(mode).lower() != "wal":
                            # Outside WAL mode a COMMIT may wait for readers, which a busy
                            # wait of 0 would turn into a failed exchange: every id takes the
                            # thread.
                            fairy.close()
                            self._inline = False
                            return None
                        fairy.detach()  # out of the pool: close() or a failure closes it
                        own.isolation_level = None  # transactions are begun and ended below
                        own.execute("PRAGMA busy_timeout = 0")
                        # Its commits do not wait for the disk; _sync_soon syncs the WAL
                        # after each, on the cache's thread (see durable()).
                        own.execute("PRAGMA synchronous = NORMAL")
                        self._wal_path = _wal_file(own)
                    except BaseException:
                        # Back to the pool before detach(); closed for good after it.
                        fairy.close()
                        raise
                    self._own, self._owner = own, threading.get_ident()
        return self._own if self._owner == threading.get_ident() else None

    def _drop(self, own: sqlite3.Connection) -> None:
        """Close ``own`` after a failure (rolling back what it held); the next asks anew."""
        with self._own_lock:
            if self._own is own:
                self._own, self._owner = None, None
        with suppress(sqlite3.Error):
            own.close()

    def _insert_batch(self, batch: list[_Pending]) -> list[bool]:
        """Insert every id in one transaction; for each, whether it was new.

        The ids go in a few statements of many rows each (see :func:`_statement_sizes`), not
        one statement per id: fewer driver calls, and on PostgreSQL fewer round trips (a
        batch of 32 took ≈1.2 ms instead of ≈4.6, on SQLite ≈0.88 ms of CPU instead of
        ≈1.0). Each id goes in once, and in sorted order: two processes' batches then take
        their keys' locks in one order, so on PostgreSQL they cannot deadlock over ids sent to
        both at once in opposite orders (one batch, every id in it, would have failed). Of two
        equal ids in a batch the first is new and the second a replay, as when they went one
        by one. A deadlock with a purge is retried once: nothing of the batch was committed.
        """
        rows = sorted({(pending.client_id, pending.xroad_id) for pending in batch})
        try:
            inserted = self._insert_rows(rows)
        except Exception as exc:
            # The inserts go through the driver's own cursor, whose errors come unwrapped;
            # the purge's through SQLAlchemy, whose come wrapped (DBAPIError.orig).
            if _sqlstate(exc) != _DEADLOCK_DETECTED:
                raise
            inserted = self._insert_rows(rows)
        fresh = []
        for pending in batch:
            key = (pending.client_id, pending.xroad_id)
            fresh.append(key in inserted)
            inserted.discard(key)  # the same id again in this batch is a replay of it
        return fresh

    def _insert_rows(self, rows: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Insert ``rows`` (client, id) in one transaction; those that were new."""
        now = self._clock()
        seen_at = int(now)
        with self._engine.begin() as conn:
            if now - self._last_purge > self._window / 10:
                conn.execute(
                    delete(seen_requests).where(seen_requests.c.seen_at < self._forget_before(now))
                )
                self._last_purge = now
            inserted: set[tuple[str, str]] = set()
            cursor: Any = conn.connection.cursor()
            try:
                start = 0
                for size in _statement_sizes(len(rows)):
                    params = [
                        value
                        for client_id, xroad_id in rows[start : start + size]
                        for value in (client_id, xroad_id, seen_at)
                    ]
                    cursor.execute(self._insert_sql[size], params)
                    inserted.update((str(c), str(x)) for c, x in cursor.fetchall())
                    start += size
            finally:
                cursor.close()
        return inserted


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a PostgreSQL error, raw from the driver or wrapped by SQLAlchemy."""
    wrapped = exc.orig if isinstance(exc, DBAPIError) else exc
    state = getattr(wrapped, "sqlstate", None)
    return state if isinstance(state, str) else None


def _wal_file(connection: sqlite3.Connection) -> str:
    """The WAL file of ``connection``'s main database (SQLite names it after the database)."""
    for _seq, name, path in connection.execute("PRAGMA database_list").fetchall():
        if name == "main" and path:
            return f"{path}-wal"
    raise sqlite3.OperationalError("the database has no file")  # pragma: no cover - WAL checked


def _sync_file(path: str) -> None:
    """``fdatasync`` the file at ``path``, as a commit with ``synchronous=FULL`` syncs the WAL
    (``fsync`` where the platform has no ``fdatasync``, as macOS has not, and as SQLite does).

    A file that is gone was a WAL checkpointed into its database and removed, and a
    checkpoint syncs the database before the WAL can be removed or written over.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        getattr(os, "fdatasync", os.fsync)(fd)
    finally:
        os.close(fd)


def _insert_rows_sql(mark: str, rows: int) -> str:
    """The insert-or-ignore of ``rows`` ids in one statement, returning those inserted."""
    values = ", ".join([f"({mark}, {mark}, {mark})"] * rows)
    return (
        "INSERT INTO seen_requests (client_id, xroad_id, seen_at) "  # noqa: S608 - marks only
        f"VALUES {values} ON CONFLICT DO NOTHING RETURNING client_id, xroad_id"
    )


def _statement_sizes(ids: int) -> Iterator[int]:
    """How many ids each statement of a batch of ``ids`` takes: powers of two, largest first,
    none over :data:`_LARGEST_STATEMENT` (13 ids: 8, 4, 1)."""
    while ids > 0:
        size = min(_LARGEST_STATEMENT, 1 << (ids.bit_length() - 1))
        yield size
        ids -= size


@dataclass(slots=True)
class _Pending:
    client_id: str
    xroad_id: str
    future: asyncio.Future[bool]
