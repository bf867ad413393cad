"""The replay cache: an ``X-Road-Id`` is accepted once per client inside the replay window."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
from sqlalchemy.exc import IntegrityError

from broker.errors import Replay

__all__ = ["ReplayCache", "install", "metadata"]

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

    :meth:`remember_async` is the same check group-committed, for the event loop: the ids that
    arrive while one transaction is being made durable go together in the next, on a worker
    thread, so a commit's fsync neither blocks the loop nor is paid once per request.
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
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    def remember(self, client_id: str, xroad_id: str) -> None:
        """Record the id, or raise :class:`Replay` if this client used it inside the window."""
        now = self._clock()
        if now - self._last_purge > self._window / 10:
            with self._engine.begin() as conn:
                conn.execute(
                    delete(seen_requests).where(seen_requests.c.seen_at < int(now) - self._window)
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

    async def remember_async(self, client_id: str, xroad_id: str) -> None:
        """:meth:`remember`, returning once the id is durable; raises :class:`Replay` the same."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(client_id, xroad_id, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        if not await future:
            raise Replay(f"X-Road-Id {xroad_id} was already used by this client")

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                fresh = await asyncio.to_thread(self._insert_batch, batch)
            except Exception as exc:  # noqa: BLE001 - every waiter learns the batch failed
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                continue
            for pending, ok in zip(batch, fresh, strict=True):
                if not pending.future.done():  # a cancelled caller has gone
                    pending.future.set_result(ok)

    def _insert_batch(self, batch: list[_Pending]) -> list[bool]:
        """Insert every id in one transaction; for each, whether it was new."""
        now = self._clock()
        mark = "?" if self._engine.dialect.paramstyle == "qmark" else "%s"
        # Insert-or-ignore: a row returned means the id was new; within this batch too.
        # (RETURNING, not rowcount: psycopg reports -1 for ON CONFLICT inserts.) At the driver:
        # through Core, building and compiling the statement per id cost more than the insert.
        sql = (
            "INSERT INTO seen_requests (client_id, xroad_id, seen_at) "  # noqa: S608 - marks only
            f"VALUES ({mark}, {mark}, {mark}) ON CONFLICT DO NOTHING RETURNING xroad_id"
        )
        with self._engine.begin() as conn:
            if now - self._last_purge > self._window / 10:
                conn.execute(
                    delete(seen_requests).where(seen_requests.c.seen_at < int(now) - self._window)
                )
                self._last_purge = now
            cursor: Any = conn.connection.cursor()
            try:
                fresh = []
                for pending in batch:
                    cursor.execute(sql, (pending.client_id, pending.xroad_id, int(now)))
                    fresh.append(cursor.fetchone() is not None)
            finally:
                cursor.close()
        return fresh


@dataclass(slots=True)
class _Pending:
    client_id: str
    xroad_id: str
    future: asyncio.Future[bool]
