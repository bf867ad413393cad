"""The group-committed replay check: the same answers as the synchronous one, in batches."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from broker import replay
from broker.db import create_db_engine
from broker.errors import Replay
from broker.replay import PURGE_MARGIN_SECONDS, ReplayCache
from tests.broker.test_replay import PERMIT, TAX, WINDOW, Clock, rows


@pytest.fixture
def installed(engine: Engine) -> Engine:
    replay.install(engine)
    return engine


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(installed: Engine, clock: Clock) -> Iterator[ReplayCache]:
    cache = ReplayCache(engine=installed, window_seconds=WINDOW, clock=clock)
    yield cache
    cache.close()


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A list to which the path of every file the replay cache syncs is appended."""
    paths: list[str] = []
    real = replay.os.fdatasync

    def recording(fd: int) -> None:
        paths.append(str(Path(f"/proc/self/fd/{fd}").readlink()))
        real(fd)

    monkeypatch.setattr(replay.os, "fdatasync", recording)
    return paths


def failing_sync(_fd: int) -> None:
    raise OSError(errno.EIO, "EIO: the disk failed")


async def committed_with_a_failed_sync(cache: ReplayCache, monkeypatch: pytest.MonkeyPatch) -> None:
    """An id committed on this thread whose sync fails (and fails from now on)."""
    await remember(cache, PERMIT, str(uuid.uuid4()))  # the first call purges, on its thread
    monkeypatch.setattr(replay.os, "fdatasync", failing_sync)
    assert cache.remember_soon(PERMIT, str(uuid.uuid4()), alone=True).done()


def wal_file(engine: Engine) -> str:
    database = engine.url.database
    assert database
    return str(Path(database).resolve()) + "-wal"


async def remember(cache: ReplayCache, client_id: str, xroad_id: str) -> None:
    """What the exchange does with ``remember_soon`` (see ``RequestAuthenticator.remembered``)."""
    if not await cache.remember_soon(client_id, xroad_id):
        raise Replay(xroad_id)


def batch_sizes(cache: ReplayCache, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list to which the size of every batch ``cache`` commits from now on is appended."""
    sizes: list[int] = []
    real = cache._insert_batch

    def counting(batch: list[Any]) -> list[bool]:
        sizes.append(len(batch))
        return real(batch)

    monkeypatch.setattr(cache, "_insert_batch", counting)
    return sizes


class TestRememberAsync:
    async def test_concurrent_new_ids_all_pass_in_few_transactions(
        self, cache: ReplayCache, installed: Engine
    ) -> None:
        ids = [str(uuid.uuid4()) for _ in range(50)]
        await asyncio.gather(*(remember(cache, PERMIT, i) for i in ids))
        assert rows(installed) == 50

    async def test_batches_run_on_one_thread_of_the_caches_own_which_close_ends(
        self, installed: Engine, clock: Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Not on the loop's shared pool, which grew to a thread per job in flight.
        cache = ReplayCache(engine=installed, window_seconds=WINDOW, clock=clock)
        threads: list[threading.Thread] = []
        real = cache._insert_batch

        def noting_the_thread(batch: list[Any]) -> list[bool]:
            threads.append(threading.current_thread())
            return real(batch)

        monkeypatch.setattr(cache, "_insert_batch", noting_the_thread)
        for _ in range(3):
            await asyncio.gather(*(remember(cache, PERMIT, str(uuid.uuid4())) for _ in range(20)))
        cache.close()
        assert len(threads) >= 3
        (thread,) = set(threads)
        assert thread is not threading.main_thread()
        assert thread.name.startswith("simpul-replay")
        thread.join(timeout=10)
        assert not thread.is_alive()
        # Once closed, ids still go to a thread: the loop's shared pool.
        batches = len(threads)
        await remember(cache, PERMIT, str(uuid.uuid4()))
        assert len(threads) == batches + 1
        assert threads[-1] not in (thread, threading.main_thread())

    async def test_ids_that_arrive_together_go_in_one_batch(
        self, cache: ReplayCache, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The first id does not start a batch on its own with the others left for the next.
        batches = batch_sizes(cache, monkeypatch)
        futures = [cache.remember_soon(PERMIT, str(uuid.uuid4())) for _ in range(5)]
        assert await asyncio.gather(*futures) == [True] * 5
        assert batches == [5]
        # Those that arrive while it commits go in the next, together.
        first = [cache.remember_soon(PERMIT, str(uuid.uuid4())) for _ in range(2)]
        await asyncio.sleep(0)  # the first batch is on the thread now
        second = [cache.remember_soon(PERMIT, str(uuid.uuid4())) for _ in range(3)]
        assert await asyncio.gather(*first, *second) == [True] * 5
        assert batches == [5, 2, 3]

    async def test_an_id_queued_before_close_is_still_committed(
        self, cache: ReplayCache, installed: Engine
    ) -> None:
        # Closed between the id's arrival and its batch's start: the loop's pool takes it.
        future = cache.remember_soon(PERMIT, str(uuid.uuid4()))
        cache.close()
        assert await asyncio.wait_for(future, timeout=10) is True
        assert rows(installed) == 1

    async def test_a_batch_the_executor_refuses_fails_its_ids_instead_of_hanging(
        self, cache: ReplayCache, installed: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        refusing = ThreadPoolExecutor(max_workers=1)
        refusing.shutdown()
        monkeypatch.setattr(cache, "_thread", refusing)
        futures = [cache.remember_soon(PERMIT, str(uuid.uuid4())) for _ in range(3)]
        outcomes = await asyncio.wait_for(
            asyncio.gather(*futures, return_exceptions=True), timeout=10
        )
        assert all(isinstance(o, RuntimeError) for o in outcomes)
        assert rows(installed) == 0
        monkeypatch.undo()  # the cache's own thread again: the next id goes through
        await asyncio.wait_for(remember(cache, PERMIT, str(uuid.uuid4())), timeout=10)
        assert rows(installed) == 1

    @pytest.mark.parametrize("largest_statement", [128, 2])
    async def test_each_id_of_a_mixed_batch_gets_its_own_answer(
        self,
        cache: ReplayCache,
        installed: Engine,
        monkeypatch: pytest.MonkeyPatch,
        largest_statement: int,
    ) -> None:
        # One batch: new ids, one stored before, one twice, and another client's equal id; in
        # statements of 8 and 1 ids, or (largest 2) of 2, 2, 2, 2 and 1.
        monkeypatch.setattr(replay, "_LARGEST_STATEMENT", largest_statement)
        stored, twice, shared = (str(uuid.uuid4()) for _ in range(3))
        await remember(cache, PERMIT, stored)
        batches = batch_sizes(cache, monkeypatch)
        sent = [
            (PERMIT, str(uuid.uuid4())),
            (PERMIT, twice),
            (PERMIT, stored),
            (PERMIT, shared),
            (PERMIT, twice),
            (TAX, shared),
            (TAX, stored),
            (PERMIT, str(uuid.uuid4())),
            (TAX, twice),
        ]
        answers = await asyncio.gather(*(cache.remember_soon(c, x) for c, x in sent))
        assert batches == [len(sent)]
        assert answers == [True, True, False, True, False, True, True, True, True]
        assert rows(installed) == 1 + 7

    async def test_an_id_sent_twice_at_once_passes_once(self, cache: ReplayCache) -> None:
        xroad_id = str(uuid.uuid4())
        outcomes = await asyncio.gather(
            *(remember(cache, PERMIT, xroad_id) for _ in range(5)), return_exceptions=True
        )
        assert sum(o is None for o in outcomes) == 1
        assert all(isinstance(o, Replay) for o in outcomes if o is not None)

    @pytest.mark.parametrize("first_sync", [True, False])
    async def test_sync_and_async_see_each_other(
        self, cache: ReplayCache, first_sync: bool
    ) -> None:
        xroad_id = str(uuid.uuid4())
        if first_sync:
            cache.remember(PERMIT, xroad_id)
            with pytest.raises(Replay):
                await remember(cache, PERMIT, xroad_id)
        else:
            await remember(cache, PERMIT, xroad_id)
            with pytest.raises(Replay):
                cache.remember(PERMIT, xroad_id)

    async def test_another_client_may_use_the_same_id(self, cache: ReplayCache) -> None:
        xroad_id = str(uuid.uuid4())
        await asyncio.gather(remember(cache, PERMIT, xroad_id), remember(cache, TAX, xroad_id))

    async def test_two_caches_on_one_database_share_ids(
        self, cache: ReplayCache, installed: Engine, clock: Clock
    ) -> None:
        # A second worker process, on the same database.
        other = ReplayCache(engine=installed, window_seconds=WINDOW, clock=clock)
        xroad_id = str(uuid.uuid4())
        await remember(cache, PERMIT, xroad_id)
        with pytest.raises(Replay):
            await remember(other, PERMIT, xroad_id)

    async def test_ids_past_the_window_are_purged(
        self, cache: ReplayCache, installed: Engine, clock: Clock
    ) -> None:
        old = str(uuid.uuid4())
        await remember(cache, PERMIT, old)
        clock.now += WINDOW + PURGE_MARGIN_SECONDS + 1
        await remember(cache, PERMIT, str(uuid.uuid4()))
        assert rows(installed) == 1
        await remember(cache, PERMIT, old)  # forgotten with its window

    async def test_a_failed_batch_fails_every_waiter(
        self, cache: ReplayCache, installed: Engine
    ) -> None:
        with installed.begin() as conn:
            conn.execute(text("DROP TABLE seen_requests"))
        outcomes = await asyncio.gather(
            *(remember(cache, PERMIT, str(uuid.uuid4())) for _ in range(3)),
            return_exceptions=True,
        )
        assert all(isinstance(o, Exception) and not isinstance(o, Replay) for o in outcomes)

    @pytest.mark.parametrize("wrapped", [False, True], ids=["driver", "sqlalchemy"])
    async def test_a_batch_that_lost_a_deadlock_is_tried_once_more(
        self, cache: ReplayCache, monkeypatch: pytest.MonkeyPatch, wrapped: bool
    ) -> None:
        """PostgreSQL aborts one of two deadlocked transactions (a purge against inserts);
        nothing of it was committed. Its error comes raw from the driver's cursor (the
        inserts) or wrapped by SQLAlchemy (the purge)."""

        class DeadlockDetected(Exception):
            sqlstate = "40P01"

        real = ReplayCache._insert_rows
        calls: list[object] = []

        def aborted_once(self: ReplayCache, rows: list[tuple[str, str]]) -> set[tuple[str, str]]:
            calls.append(rows)
            if len(calls) == 1:
                error = DeadlockDetected("deadlock detected")
                raise DBAPIError("INSERT", {}, error) if wrapped else error
            return real(self, rows)

        monkeypatch.setattr(ReplayCache, "_insert_rows", aborted_once)
        assert await cache.remember_soon(PERMIT, str(uuid.uuid4())) is True
        assert len(calls) == 2

    def test_two_processes_batches_of_the_same_ids_in_opposite_orders_do_not_deadlock(
        self, installed: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """One client's ids A and B reach two workers at once, in opposite orders. Each
        batch goes one id per statement here, and neither goes on past its first statement
        until both have made it (or a second has passed): a batch that took A's lock, then
        B's, against one that took B's, then A's, deadlocked, and PostgreSQL failed one whole
        batch, another client's id in it too."""
        if installed.dialect.name == "sqlite":
            pytest.skip("SQLite locks the whole database per write: no two batches interleave")
        both_started = threading.Barrier(2, timeout=1)

        def one_at_a_time(ids: int) -> Iterator[int]:
            for index in range(ids):
                if index == 1:
                    with contextlib.suppress(threading.BrokenBarrierError):
                        both_started.wait()
                yield 1

        monkeypatch.setattr(replay, "_statement_sizes", one_at_a_time)
        first, second = str(uuid.uuid4()), str(uuid.uuid4())
        other = create_db_engine(database_url)

        def worker(engine: Engine, ids: list[str]) -> list[bool | str]:
            async def batch() -> list[bool | str]:
                cache = ReplayCache(engine=engine, window_seconds=WINDOW)
                try:
                    waiting = [cache.remember_soon(PERMIT, xroad_id) for xroad_id in ids]
                    waiting.append(cache.remember_soon(TAX, str(uuid.uuid4())))
                    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
                finally:
                    cache.close()
                return [o if isinstance(o, bool) else repr(o) for o in outcomes]

            return asyncio.run(batch())

        try:
            with ThreadPoolExecutor(2) as pool:
                one = pool.submit(worker, installed, [first, second])
                two = pool.submit(worker, other, [second, first])
                outcomes = [one.result(timeout=30), two.result(timeout=30)]
        finally:
            other.dispose()
        assert all(isinstance(o, bool) for o in outcomes[0] + outcomes[1]), outcomes
        assert outcomes[0][2] is outcomes[1][2] is True  # the other client's ids
        assert sorted(outcomes[0][:2] + outcomes[1][:2]) == [False, False, True, True]
        assert outcomes[0][0] is not outcomes[1][1]  # each id passed exactly once
        assert outcomes[0][1] is not outcomes[1][0]


@contextmanager
def lock_held_elsewhere(engine: Engine, *, at_most: float) -> Iterator[None]:
    """Another connection (another worker, say) holding the database's write lock, on another
    thread, until the block exits or ``at_most`` seconds have passed, whichever is first."""
    path = engine.url.database
    assert path is not None
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            held.set()
            release.wait(at_most)
            conn.execute("ROLLBACK")

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10), "the other connection never took the lock"
        yield
    finally:
        release.set()
        holder.join()


class TestAlone:
    """``alone=True``: the same answers; on SQLite, committed before the call returns."""

    async def test_the_same_answers(self, cache: ReplayCache, installed: Engine) -> None:
        xroad_id = str(uuid.uuid4())
        assert await cache.remember_soon(PERMIT, xroad_id, alone=True)
        assert not await cache.remember_soon(PERMIT, xroad_id, alone=True)
        assert await cache.remember_soon(TAX, xroad_id, alone=True)
        assert rows(installed) == 2

    @pytest.mark.sqlite_only
    async def test_on_sqlite_the_id_is_committed_when_the_call_returns(
        self, cache: ReplayCache, installed: Engine, synced: list[str]
    ) -> None:
        await remember(cache, PERMIT, str(uuid.uuid4()))  # the first call purges, on its thread
        xroad_id = str(uuid.uuid4())
        recording = cache.remember_soon(PERMIT, xroad_id, alone=True)
        assert recording.done()
        assert recording.result() is True
        assert rows(installed) == 2  # committed: another connection sees it
        again = cache.remember_soon(PERMIT, xroad_id, alone=True)
        assert (again.done(), again.result()) == (True, False)
        await cache.durable()
        assert synced == [wal_file(installed)]  # once: the replay wrote nothing to sync

    @pytest.mark.sqlite_only
    async def test_its_commit_leaves_the_wal_to_be_synced_on_the_thread(
        self, cache: ReplayCache, installed: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await remember(cache, PERMIT, str(uuid.uuid4()))
        threads: list[str] = []
        monkeypatch.setattr(
            replay.os, "fdatasync", lambda _fd: threads.append(threading.current_thread().name)
        )
        assert cache.remember_soon(PERMIT, str(uuid.uuid4()), alone=True).done()
        # Its commit did not wait for the disk (NORMAL); the WAL is synced on the cache's thread.
        assert cache._own is not None
        assert cache._own.execute("PRAGMA synchronous").fetchone() == (1,)
        await cache.durable()
        assert len(threads) == 1
        assert threads[0].startswith("simpul-replay")

    @pytest.mark.sqlite_only
    async def test_durable_waits_for_a_sync_still_running_and_a_cancelled_wait_leaves_it(
        self, cache: ReplayCache, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await remember(cache, PERMIT, str(uuid.uuid4()))
        disk = threading.Event()
        done: list[int] = []

        def slow_sync(_fd: int) -> None:
            disk.wait(10)
            done.append(1)

        monkeypatch.setattr(replay.os, "fdatasync", slow_sync)
        for _ in range(2):  # the second sync waits in the thread's queue behind the first
            assert cache.remember_soon(PERMIT, str(uuid.uuid4()), alone=True).done()
        cancelled = asyncio.ensure_future(cache.durable())
        waiting = asyncio.ensure_future(cache.durable())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        cancelled.cancel()
        disk.set()
        await waiting  # the queued sync was not cancelled with the first caller's wait
        assert done == [1, 1]
        assert cancelled.cancelled()
        await cache.durable()

    @pytest.mark.sqlite_only
    async def test_a_failed_sync_fails_durable_until_a_later_one_succeeds(
        self, cache: ReplayCache, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await committed_with_a_failed_sync(cache, monkeypatch)
        for _ in range(2):  # for every caller after it, not the first alone
            with pytest.raises(OSError, match="EIO"):
                await cache.durable()
        monkeypatch.undo()
        assert cache.remember_soon(PERMIT, str(uuid.uuid4()), alone=True).done()
        await cache.durable()

    @pytest.mark.sqlite_only
    async def test_a_batch_commit_makes_the_earlier_ones_durable(
        self, cache: ReplayCache, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await committed_with_a_failed_sync(cache, monkeypatch)
        with pytest.raises(OSError, match="EIO"):
            await cache.durable()
        # A batch commits with synchronous=FULL: the whole WAL, the earlier commit's too.
        await remember(cache, PERMIT, str(uuid.uuid4()))
        await cache.durable()

    @pytest.mark.sqlite_only
    async def test_a_batch_of_replays_alone_wrote_nothing_and_makes_nothing_durable(
        self, cache: ReplayCache, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        seen = str(uuid.uuid4())
        await remember(cache, PERMIT, seen)
        await committed_with_a_failed_sync(cache, monkeypatch)
        assert not await cache.remember_soon(PERMIT, seen)  # a batch, committing no row
        with pytest.raises(OSError, match="EIO"):
            await cache.durable()

    @pytest.mark.sqlite_only
    async def test_a_sync_is_still_waited_for_once_the_connection_is_dropped(
        self, cache: ReplayCache, installed: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await committed_with_a_failed_sync(cache, monkeypatch)
        with installed.begin() as conn:
            conn.execute(text("ALTER TABLE seen_requests RENAME TO away"))
        with pytest.raises(sqlite3.OperationalError):
            await cache.remember_soon(PERMIT, str(uuid.uuid4()), alone=True)  # drops it
        with pytest.raises(OSError, match="EIO"):
            await cache.durable()
        with installed.begin() as conn:
            conn.execute(text("ALTER TABLE away RENAME TO seen_requests"))

    def test_a_wal_that_is_gone_needs_no_sync(self, tmp_path: Path) -> None:
        replay._sync_file(str(tmp_path / "checkpointed.db-wal"))  # no error

    def test_without_fdatasync_the_wal_is_fsynced(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """macOS has no ``os.fdatasync``; a lone exchange's sync must not fail there."""
        wal = tmp_path / "simpul.db-wal"
        wal.write_bytes(b"frames")
        synced: list[int] = []
        monkeypatch.delattr(replay.os, "fdatasync", raising=False)
        monkeypatch.setattr(replay.os, "fsync", synced.append)
        replay._sync_file(str(wal))
        assert len(synced) == 1

    @pytest.mark.sqlite_only
    async def test_another_loops_batch_ids_do_not_wait_for_its_sync(
        self, cache: ReplayCache, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await committed_with_a_failed_sync(cache, monkeypatch)

        async def from_another_loop() -> None:
            await cache.durable()  # its ids went in batches: nothing of this loop's to wait for

        await asyncio.to_thread(asyncio.run, from_another_loop())
        with pytest.raises(OSError, match="EIO"):
            await cache.durable()

    @pytest.mark.sqlite_only
    async def test_a_due_purge_goes_to_the_thread(
        self, cache: ReplayCache, installed: Engine, clock: Clock
    ) -> None:
        old = str(uuid.uuid4())
        await remember(cache, PERMIT, old)
        clock.now += WINDOW + PURGE_MARGIN_SECONDS + 1
        recording = cache.remember_soon(PERMIT, str(uuid.uuid4()), alone=True)
        assert not recording.done()
        assert await recording
        assert rows(installed) == 1  # the old id was purged with it

    @pytest.mark.sqlite_only
    async def test_a_batch_in_flight_takes_it_along(self, cache: ReplayCache) -> None:
        await remember(cache, PERMIT, str(uuid.uuid4()))
        first = cache.remember_soon(PERMIT, str(uuid.uuid4()))
        second = cache.remember_soon(PERMIT, str(uuid.uuid4()), alone=True)
        assert not second.done()
        assert await asyncio.gather(first, second) == [True, True]

    @pytest.mark.sqlite_only
    async def test_a_lock_held_elsewhere_is_not_waited_for_on_the_loop(
        self, cache: ReplayCache, installed: Engine
    ) -> None:
        await remember(cache, PERMIT, str(uuid.uuid4()))
        with lock_held_elsewhere(installed, at_most=2):
            recording = cache.remember_soon(PERMIT, str(uuid.uuid4()), alone=True)
            # Had it waited here for the lock, it would have come back done, committed, once
            # the other connection gave up the lock after two seconds.
            assert not recording.done()  # handed to the thread, which waits for the lock
        assert await recording
        assert rows(installed) == 2

    @pytest.mark.sqlite_only
    async def test_a_failure_fails_the_caller_and_the_next_one_starts_afresh(
        self, cache: ReplayCache, installed: Engine
    ) -> None:
        await remember(cache, PERMIT, str(uuid.uuid4()))
        with installed.begin() as conn:
            conn.execute(text("ALTER TABLE seen_requests RENAME TO away"))
        recording = cache.remember_soon(PERMIT, str(uuid.uuid4()), alone=True)
        with pytest.raises(sqlite3.OperationalError):
            await recording
        with installed.begin() as conn:
            conn.execute(text("ALTER TABLE away RENAME TO seen_requests"))
        again = cache.remember_soon(PERMIT, str(uuid.uuid4()), alone=True)
        assert (again.done(), again.result()) == (True, True)
        assert rows(installed) == 2

    @pytest.mark.sqlite_only
    async def test_a_connection_that_fails_while_being_set_up_goes_back_to_the_pool(
        self, cache: ReplayCache, installed: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await remember(cache, PERMIT, str(uuid.uuid4()))  # the first call purges, on its thread
        real = installed.raw_connection

        class Failing:
            """A pooled connection whose first statement fails (a disk error, say)."""

            def __init__(self) -> None:
                self.fairy = real()
                self.driver_connection = self

            def execute(self, *_: object) -> None:
                raise sqlite3.OperationalError("disk I/O error")

            def close(self) -> None:
                self.fairy.close()

        monkeypatch.setattr(installed, "raw_connection", Failing)
        recording = cache.remember_soon(PERMIT, str(uuid.uuid4()), alone=True)
        with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
            await recording
        assert installed.pool.checkedout() == 0  # handed back, not held by a failed set-up

    @pytest.mark.sqlite_only
    async def test_after_close_every_id_goes_to_the_thread(self, cache: ReplayCache) -> None:
        await remember(cache, PERMIT, str(uuid.uuid4()))
        assert cache.remember_soon(PERMIT, str(uuid.uuid4()), alone=True).done()
        cache.close()
        recording = cache.remember_soon(PERMIT, str(uuid.uuid4()), alone=True)
        assert not recording.done()
        assert await recording

    @pytest.mark.sqlite_only
    async def test_another_thread_goes_to_the_worker_thread(self, cache: ReplayCache) -> None:
        # The connection belongs to the first thread that commits here, this test's loop.
        await remember(cache, PERMIT, str(uuid.uuid4()))
        assert cache.remember_soon(PERMIT, str(uuid.uuid4()), alone=True).done()

        async def from_another_loop() -> tuple[bool, bool]:
            recording = cache.remember_soon(PERMIT, str(uuid.uuid4()), alone=True)
            return recording.done(), await recording

        assert await asyncio.to_thread(asyncio.run, from_another_loop()) == (False, True)

    @pytest.mark.sqlite_only
    async def test_outside_wal_mode_every_id_goes_to_the_thread(self, tmp_path: Path) -> None:
        # There a COMMIT may wait for readers: no busy wait of 0 for it.
        engine = create_engine(f"sqlite:///{tmp_path / 'rollback-journal.db'}")
        replay.install(engine)
        cache = ReplayCache(engine=engine, window_seconds=WINDOW, clock=Clock())
        try:
            await remember(cache, PERMIT, str(uuid.uuid4()))  # the first call purges
            recording = cache.remember_soon(PERMIT, str(uuid.uuid4()), alone=True)
            assert not recording.done()
            assert await recording
        finally:
            cache.close()
            engine.dispose()
