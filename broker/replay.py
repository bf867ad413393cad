"""The replay cache: an ``X-Road-Id`` is accepted once per client inside the replay window."""

from __future__ import annotations

import time
from collections.abc import Callable

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
