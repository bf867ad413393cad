"""Appending to the log: group commit, so concurrent exchanges share one durable transaction.

:class:`AuditLog` queues what callers append and writes it in batches on a thread of its
own; each batch runs the steps of :mod:`audit._append` (the write lock, the tail read inside
it, numbering, hashing and chaining, one insert, the commit), which the synchronous
:func:`append_now` runs too.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.pool import QueuePool

from audit._append import FAILED, append_in, append_now, checkpoint_wal, index_pending, write_batch
from audit._lock import LockBusy, open_unwaiting, try_write_transaction
from audit.errors import AuditUnavailable
from audit.merkle import CompactRange
from audit.records import AuditEntry, AuditRecord
from audit.sealing import Stamp, record_of

__all__ = ["AuditLog", "append_now", "index_pending"]

_log = logging.getLogger(__name__)

_T = TypeVar("_T")
_WAL_CHECKPOINT_EVERY = 0.1  # seconds
_NOT_RUNNING = "the audit writer is not running"


class _IndexNow:
    """Queued by the idle timer: run an indexing pass (see :mod:`audit.lookup`)."""


_INDEX_NOW: Final = _IndexNow()


@dataclass(slots=True)
class _Pending:
    """Entries that go into one batch together, and the future their caller awaits."""

    entries: Sequence[AuditEntry]
    future: asyncio.Future[list[Stamp]]
    arrived: float


class AuditLog:
    """The broker's asynchronous audit writer (group commit).

    One background task takes queued entries, up to ``max_batch`` of them or whatever
    arrived within ``max_delay`` seconds of the first (never splitting a group queued by
    :meth:`commit_all`), and writes them in one transaction on a thread of the writer's own.
    :meth:`append` returns only after its record is committed; if the batch fails, every entry
    in it fails with :class:`AuditUnavailable` and the writer carries on with the next batch.
    After ``index_when_idle`` seconds without a batch, it indexes what it wrote for lookups
    (:mod:`audit.lookup`), on the same thread; on SQLite it also checkpoints the WAL now and
    then on another thread.

    A caller with nothing else in flight (``commit(entry, alone=True)``: an exchange alone in
    its worker) skips the thread on a SQLite file when the writer is idle: the entry is written
    at once, on the caller's thread. There a commit costs less than the two thread wake-ups
    around it, and no other exchange waits for the loop meanwhile. It goes through a
    connection of the writer's own (:func:`audit._lock.open_unwaiting`, WAL mode only), opened
    by :meth:`start` on a thread, used by the first thread that writes so, and closed by
    :meth:`stop` or after a failure (the writer then carries on through its thread). It never
    waits for the lock: if another writer holds it, the entry is queued as usual. A due
    indexing pass is queued for the writer's thread.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = 512,
        max_delay: float = 0.002,
        index_when_idle: float = 0.05,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if max_delay < 0:
            raise ValueError("max_delay must not be negative")
        if not index_when_idle > 0:
            raise ValueError("index_when_idle must be a positive number of seconds")
        self._engine = engine
        # Inline writes only on a SQLite file: a PostgreSQL commit is a network round trip.
        self._inline = engine.dialect.name == "sqlite" and isinstance(engine.pool, QueuePool)
        self._own: Connection | None = None  # for writes on the caller's thread, and its thread
        self._owner: int | None = None
        self._max_batch = max_batch
        self._max_delay = max_delay
        self._index_when_idle = index_when_idle
        self._unindexed = False
        self._wal_checkpoint: asyncio.Task[None] | None = None
        self._wal_checkpointed_at = 0.0
        # A plain deque and one wake-up future for the writer: asyncio.Queue's bookkeeping
        # (unfinished-task counts, getter and putter lists) cost more per append than it did.
        self._queue: deque[_Pending | _IndexNow | None] = deque()
        self._wakeup: asyncio.Future[None] | None = None  # set while parked with nothing queued
        self._more: asyncio.Future[None] | None = None  # set while waiting for a fuller batch
        self._idle_timer: asyncio.TimerHandle | None = None
        self._last_write = 0.0
        self._task: asyncio.Task[None] | None = None
        self._accepting = False
        self._batches_written = 0
        self._records_written = 0
        self._written_inline = 0
        # The tree's right edge after this writer's last committed batch (see write_batch).
        self._edge: CompactRange | None = None
        # Batches and indexing passes run one at a time, so on one thread of the writer's own
        # (made by start, ended by stop), not on the loop's shared pool: that pool grew to a
        # thread per concurrent job, each with its own malloc arena and SQLite connection.
        self._thread: ThreadPoolExecutor | None = None

    @property
    def batches_written(self) -> int:
        """How many batches (transactions) this writer has committed."""
        return self._batches_written

    @property
    def records_written(self) -> int:
        """How many records this writer has committed."""
        return self._records_written

    @property
    def written_inline(self) -> int:
        """How many of those were written on the caller's thread (``commit(alone=True)``)."""
        return self._written_inline

    async def start(self) -> None:
        """Start the background writer task."""
        if self._task is not None:
            raise RuntimeError("the audit writer is already running")
        if self._inline:
            # Opened here, on a thread: taking a connection from the pool may wait for one.
            try:
                self._own = await asyncio.to_thread(open_unwaiting, self._engine)
            except Exception:  # noqa: BLE001 - an optimisation: every entry can take the queue
                _log.warning("the audit writer writes through its thread only", exc_info=True)
        self._queue = deque()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="simpul-audit-writer")
        self._task = asyncio.create_task(self._run(), name="audit-writer")
        self._accepting = True
        self._idle_timer = asyncio.get_running_loop().call_later(
            self._index_when_idle, self._on_idle_timer
        )

    async def stop(self) -> None:
        """Stop taking entries, write every one already queued, then end the task."""
        task, self._task = self._task, None
        self._accepting = False
        self._close_own()  # no write on the caller's thread can start or be running now
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self._wal_checkpoint is not None:
            await self._wal_checkpoint  # never raises: a failure is only logged
        if task is None:
            return
        try:
            if task.done():  # the writer was killed; it failed whatever it held on the way out
                if not task.cancelled():
                    task.result()  # a crash surfaces here
                return
            self._put(None)  # after everything queued so far: the queue is FIFO
            await task
            if self._wal_checkpoint is not None:
                await self._wal_checkpoint
        finally:
            self._end_thread()

    async def append(self, entry: AuditEntry) -> AuditRecord:
        """Append ``entry``; return its record once the record is durable.

        Raises :class:`AuditUnavailable` if it could not be written or the writer is not
        running. If the caller is cancelled, the entry is still written: it happened.
        """
        # The record is made here, on the caller's side, not under the writers' lock.
        return record_of(entry, await self.commit(entry))

    async def commit(self, entry: AuditEntry, *, alone: bool = False) -> Stamp:
        """:meth:`append`, returning only what the log added (sequence number, time, hashes).

        For callers that need no more than the sequence number (an exchange, a consent
        event): building the whole record costs more than the rest of an append's own share.
        ``alone``: the caller has nothing else in flight (see the class); a hint, never a
        change in what is written or when the call returns.
        """
        return (await self.commit_all((entry,), alone=alone))[0]

    async def commit_all(
        self, entries: Sequence[AuditEntry], *, alone: bool = False
    ) -> list[Stamp]:
        """:meth:`commit` for entries that belong together (an exchange and the records filed
        under the other people it concerns): in order, in one transaction, so all of them are
        written or none; returns their stamps once they are durable.

        A batch never splits them, so it may hold up to ``max_batch`` records plus one group.
        """
        if not self._accepting:
            raise AuditUnavailable(_NOT_RUNNING)
        if not entries:
            return []
        if alone and self._idle():
            stamps = self._write_now(entries)
            if stamps is not None:
                return stamps
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Stamp]] = loop.create_future()
        self._put(_Pending(entries, future, loop.time()))
        return await future

    def _idle(self) -> bool:
        """Whether the writer task is parked with nothing queued: no batch or pass running."""
        wakeup = self._wakeup
        return (
            self._own is not None and not self._queue and wakeup is not None and not wakeup.done()
        )

    def _write_now(self, entries: Sequence[AuditEntry]) -> list[Stamp] | None:
        """Write ``entries`` on this thread; None, having written nothing, if the lock is taken
        or the writer's own connection belongs to another thread.

        No await: the writer task cannot start a batch meanwhile, so the edge stays ours. A
        due indexing pass (thousands of records) is queued for the writer's thread.
        """
        try:
            own = self._own_connection()
            if own is None:
                return None
            with try_write_transaction(own) as conn:
                stamps, edge, index_due = append_in(conn, entries, self._edge, index=False)
        except LockBusy:
            return None
        except Exception as exc:
            self._edge = None  # as in _write: nothing is assumed about a failure
            self._close_own()  # a connection that failed is not used again: the queue is
            raise AuditUnavailable(FAILED) from exc
        self._edge = edge
        self._written_inline += len(stamps)
        self._note_written(len(stamps))
        if index_due:
            self._put(_INDEX_NOW)
        return stamps

    def _own_connection(self) -> Connection | None:
        """The writer's own connection (opened by :meth:`start`) for the first thread to ask;
        None for other threads, and once it has been closed after a failure."""
        if self._owner is None:
            self._owner = threading.get_ident()
        return self._own if self._owner == threading.get_ident() else None

    def _close_own(self) -> None:
        own, self._own, self._owner = self._own, None, None
        if own is not None:
            with suppress(Exception):  # closing is all that is left to do with it
                own.close()

    def _note_written(self, records: int) -> None:
        self._batches_written += 1
        self._records_written += records
        self._unindexed = True
        self._last_write = asyncio.get_running_loop().time()
        self._checkpoint_wal_beside()

    def _put(self, item: _Pending | _IndexNow | None) -> None:
        self._queue.append(item)
        _settle(self._wakeup)
        _settle(self._more)

    def _batch_ready(self, wanted: int) -> bool:
        """Whether waiting for more is pointless: the queue holds at least ``wanted`` records
        (a group counts each of its entries), or the stop. Counted only until it is known."""
        queued = 0
        for item in self._queue:
            if queued >= wanted or item is None:
                return True
            if isinstance(item, _Pending):
                queued += len(item.entries)
        return queued >= wanted

    async def _wait_for_more(self, until: float, wanted: int) -> None:
        """Wait until the loop's time ``until`` for ``wanted`` more records, or the stop."""
        loop = asyncio.get_running_loop()
        # The clock first: once the delay is past, the queue is not counted.
        while (left := until - loop.time()) > 0 and not self._batch_ready(wanted):
            # Not self._wakeup: the writer holds entries, so it is not idle (see _idle).
            self._more = more = loop.create_future()
            timer = loop.call_later(left, _settle, more)
            try:
                await more
            finally:
                timer.cancel()
                self._more = None

    async def _take(self) -> _Pending | _IndexNow | None:
        while not self._queue:
            self._wakeup = asyncio.get_running_loop().create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None
        return self._queue.popleft()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _run(self) -> None:
        batch: list[_Pending] = []
        try:
            stopping = False
            while not stopping:
                first = await self._take()
                if first is None:
                    return
                if isinstance(first, _IndexNow):
                    await self._index_idle()
                    continue
                batch = [first]
                records = len(first.entries)
                if self._max_delay:  # the broker runs with none: no coroutine per batch
                    await self._wait_for_more(
                        first.arrived + self._max_delay, self._max_batch - records
                    )
                while records < self._max_batch and self._queue:
                    item = self._queue.popleft()
                    if item is None:
                        stopping = True
                        break
                    if isinstance(
                        item, _IndexNow
                    ):  # busy after all: the next idle spell will do it
                        self._unindexed = True
                        continue
                    batch.append(item)
                    records += len(item.entries)
                await self._write(batch)
        finally:
            # Reached early only if the task itself is cancelled: nobody may wait forever. A
            # batch cancelled mid-write may still commit in its thread; failing closed can
            # over-report (a record for a refused exchange), never under-report.
            self._accepting = False
            for pending in batch:
                _fail(pending.future, None)
            while self._queue:
                item = self._queue.popleft()
                if isinstance(item, _Pending):
                    _fail(item.future, None)

    def _on_idle_timer(self) -> None:
        """Every ``index_when_idle`` seconds: if the writer has been idle that long with records
        not yet in the lookup table, queue an indexing pass (taken after anything queued)."""
        if not self._accepting:
            return
        loop = asyncio.get_running_loop()
        if (
            self._unindexed
            and not self._queue
            and loop.time() - self._last_write >= self._index_when_idle
        ):
            self._unindexed = False
            self._put(_INDEX_NOW)
        self._idle_timer = loop.call_later(self._index_when_idle, self._on_idle_timer)

    async def _index_idle(self) -> None:
        try:
            await self._on_thread(index_pending, self._engine)
        except Exception:  # noqa: BLE001 - derived data: queries stay complete without it
            _log.warning("indexing the audit lookup table failed", exc_info=True)

    async def _on_thread(self, work: Callable[..., _T], *args: object) -> _T:
        """``work(*args)`` on the writer's thread (the loop's pool once the thread is ended)."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, work, *args)

    def _end_thread(self) -> None:
        """Let the writer's thread end once it is idle; a job still on it runs to its end."""
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.shutdown(wait=False)

    async def _write(self, batch: list[_Pending]) -> None:
        entries = [entry for pending in batch for entry in pending.entries]
        try:
            stamps, self._edge = await self._on_thread(
                write_batch, self._engine, entries, self._edge
            )
            if len(stamps) != len(entries):  # never: each waiter must get its own stamps
                raise RuntimeError(f"{len(stamps)} stamps for {len(entries)} entries")
        except Exception as exc:  # noqa: BLE001 - fail closed, whatever went wrong
            self._edge = None  # read it back next time: nothing is assumed about a failure
            for pending in batch:
                _fail(pending.future, exc)
            return
        self._note_written(len(stamps))
        start = 0
        for pending in batch:
            end = start + len(pending.entries)
            if not pending.future.done():  # a cancelled caller has gone; its records stay
                pending.future.set_result(stamps[start:end])
            start = end

    def _checkpoint_wal_beside(self) -> None:
        """On SQLite, copy the WAL back into the database on another thread, now and then.

        Otherwise the commit that crosses SQLite's auto-checkpoint threshold does it, inside
        the write lock, with an extra fsync, while every waiting exchange waits longer. A
        PASSIVE checkpoint never blocks the writer; the auto-checkpoint stays as a backstop.
        """
        if self._engine.dialect.name != "sqlite":
            return
        if self._wal_checkpoint is not None and not self._wal_checkpoint.done():
            return
        now = asyncio.get_running_loop().time()
        if now - self._wal_checkpointed_at < _WAL_CHECKPOINT_EVERY:
            return
        self._wal_checkpointed_at = now
        self._wal_checkpoint = asyncio.create_task(
            asyncio.to_thread(checkpoint_wal, self._engine), name="audit-wal-checkpoint"
        )


def _fail(future: asyncio.Future[list[Stamp]], cause: BaseException | None) -> None:
    if future.done():
        return
    # One exception per waiter: a shared instance would collect every waiter's traceback.
    error = AuditUnavailable(FAILED if cause is not None else _NOT_RUNNING)
    error.__cause__ = cause
    future.set_exception(error)


def _settle(future: asyncio.Future[None] | None) -> None:
    """Wake whoever awaits ``future`` (if anyone still does)."""
    if future is not None and not future.done():
        future.set_result(None)
