"""Appending: group commit, gap-free numbering, durability, and failing closed."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine

from audit import merkle
from audit import writer as writer_module
from audit._append import checkpoint_wal
from audit._lock import LockBusy, open_unwaiting, try_write_transaction
from audit.errors import AuditUnavailable
from audit.lookup import INDEX_EVERY, indexed_through_in
from audit.store import count, install, read_records, tail
from audit.tree import root_at
from audit.verify import verify_log
from audit.writer import AuditLog, append_now
from tests.audit._factories import database_path, make_entry, raw_sqlite, sqlite_engine

# These tests work on the SQLite file itself (raw connections, dropped triggers, file locks);
# tests/audit/test_postgres.py covers the same on PostgreSQL.
pytestmark = pytest.mark.sqlite_only

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def second_engine(engine: Engine) -> Iterator[Engine]:
    """Another engine on the same file: what a second broker process would hold."""
    other = sqlite_engine(database_path(engine))
    try:
        yield other
    finally:
        other.dispose()


def _block_inserts(engine: Engine) -> None:
    with raw_sqlite(engine) as conn:
        conn.execute(
            "CREATE TRIGGER block BEFORE INSERT ON audit_records "
            "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
        )


def _unblock_inserts(engine: Engine) -> None:
    with raw_sqlite(engine) as conn:
        conn.execute("DROP TRIGGER block")


def _hide_table(engine: Engine) -> None:
    with raw_sqlite(engine) as conn:
        conn.execute("ALTER TABLE audit_records RENAME TO audit_records_away")


def _restore_table(engine: Engine) -> None:
    with raw_sqlite(engine) as conn:
        conn.execute("ALTER TABLE audit_records_away RENAME TO audit_records")


SABOTAGE = [
    # The writer talks to the driver (audit._bulk), so the cause is sqlite3's own error.
    pytest.param(_block_inserts, _unblock_inserts, sqlite3.IntegrityError, id="inserts-refused"),
    pytest.param(_hide_table, _restore_table, sqlite3.OperationalError, id="table-gone"),
]


class TestAppendNow:
    def test_numbers_from_one_and_chains(self, installed: Engine) -> None:
        records = append_now(installed, [make_entry(i) for i in range(3)])
        assert [record.seq for record in records] == [1, 2, 3]
        assert records[1].chain_hash != records[2].chain_hash
        assert list(read_records(installed)) == records

    def test_continues_from_the_tail(self, installed: Engine) -> None:
        append_now(installed, [make_entry(1)])
        (record,) = append_now(installed, [make_entry(2)])
        assert record.seq == 2
        assert verify_log(installed).ok

    def test_one_batch_shares_one_time(self, installed: Engine) -> None:
        records = append_now(installed, [make_entry(i) for i in range(5)])
        assert len({record.time for record in records}) == 1

    def test_nothing_to_append_writes_nothing(self, installed: Engine) -> None:
        assert append_now(installed, []) == []
        assert tail(installed) is None

    def test_without_the_table_it_fails_closed(self, engine: Engine) -> None:
        with pytest.raises(AuditUnavailable) as caught:
            append_now(engine, [make_entry(1)])
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
        assert caught.value.status == 503
        assert caught.value.problem_type == "audit-unavailable"


class TestLifecycle:
    async def test_append_before_start_is_refused(self, installed: Engine) -> None:
        with pytest.raises(AuditUnavailable, match="not running"):
            await AuditLog(installed).append(make_entry(1))
        assert count(installed) == 0

    async def test_append_after_stop_is_refused(self, installed: Engine) -> None:
        log = AuditLog(installed)
        await log.start()
        await log.stop()
        with pytest.raises(AuditUnavailable, match="not running"):
            await log.append(make_entry(1))
        assert count(installed) == 0

    async def test_start_twice_is_an_error(self, installed: Engine) -> None:
        async with AuditLog(installed) as log:
            with pytest.raises(RuntimeError, match="already running"):
                await log.start()

    async def test_can_restart_after_stop(self, installed: Engine) -> None:
        log = AuditLog(installed)
        async with log:
            await log.append(make_entry(1))
        async with log:
            record = await log.append(make_entry(2))
        assert record.seq == 2

    async def test_commit_gives_the_stamp_of_the_record_append_gives(
        self, installed: Engine
    ) -> None:
        async with AuditLog(installed) as log:
            stamps = await asyncio.gather(*(log.commit(make_entry(i)) for i in range(3)))
            record = await log.append(make_entry(3))
        stored = list(read_records(installed))
        assert [stamp.seq for stamp in stamps] == [1, 2, 3]
        assert [(r.seq, r.time, r.leaf_hash, r.chain_hash) for r in stored[:3]] == stamps
        assert stored[3] == record

    async def test_commit_before_start_is_refused(self, installed: Engine) -> None:
        with pytest.raises(AuditUnavailable, match="not running"):
            await AuditLog(installed).commit(make_entry(1))

    async def test_stop_drains_what_is_queued(self, installed: Engine) -> None:
        log = AuditLog(installed, max_batch=7)
        await log.start()
        tasks = [asyncio.create_task(log.append(make_entry(i))) for i in range(50)]
        await asyncio.sleep(0)  # let every task queue its entry
        await log.stop()
        assert all(task.done() for task in tasks)
        assert sorted(task.result().seq for task in tasks) == list(range(1, 51))
        assert count(installed) == 50

    async def test_a_killed_writer_leaves_no_caller_waiting(self, installed: Engine) -> None:
        log = AuditLog(installed, max_delay=10)
        await log.start()
        waiting = [asyncio.create_task(log.append(make_entry(i))) for i in range(3)]
        await asyncio.sleep(0.01)  # the writer holds the first entry, the rest are queued
        task = log._task  # white box: nothing public kills the writer, but the loop might
        assert task is not None
        task.cancel()
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(outcome, AuditUnavailable) for outcome in outcomes)
        with pytest.raises(AuditUnavailable):
            await log.append(make_entry(9))
        await log.stop()  # nothing left to drain, and no error out of shutdown

    @pytest.mark.parametrize(("max_batch", "max_delay"), [(0, 0.001), (1, -0.1)])
    def test_settings_are_checked(
        self, installed: Engine, max_batch: int, max_delay: float
    ) -> None:
        with pytest.raises(ValueError, match="max_"):
            AuditLog(installed, max_batch=max_batch, max_delay=max_delay)

    @pytest.mark.parametrize("idle", [0.0, -1.0])
    def test_the_idle_interval_must_be_positive(self, installed: Engine, idle: float) -> None:
        with pytest.raises(ValueError, match="index_when_idle"):
            AuditLog(installed, index_when_idle=idle)


class TestGroupCommit:
    async def test_500_concurrent_appends_are_numbered_1_to_500(self, installed: Engine) -> None:
        async with AuditLog(installed) as log:
            records = await asyncio.gather(*(log.append(make_entry(i)) for i in range(500)))
        # Queued in call order, numbered in queue order.
        assert [record.seq for record in records] == list(range(1, 501))
        assert [record.entry for record in records] == [make_entry(i) for i in range(500)]
        assert count(installed) == 500
        assert verify_log(installed).records == 500
        assert log.records_written == 500
        assert 1 <= log.batches_written <= 5  # grouped: not one transaction per record

    async def test_batches_never_exceed_max_batch(self, installed: Engine) -> None:
        async with AuditLog(installed, max_batch=50) as log:
            await asyncio.gather(*(log.append(make_entry(i)) for i in range(500)))
        assert log.batches_written >= 10
        assert verify_log(installed).ok

    async def test_sequential_appends_each_commit(self, installed: Engine) -> None:
        async with AuditLog(installed, max_delay=0) as log:
            seqs = [(await log.append(make_entry(i))).seq for i in range(5)]
        assert seqs == [1, 2, 3, 4, 5]
        assert log.batches_written == 5

    async def test_batches_run_on_one_thread_of_the_writers_own_which_stop_ends(
        self, installed: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Not on the loop's shared pool, which grew to a thread per job in flight.
        threads: list[threading.Thread] = []
        real = writer_module.write_batch

        def noting_the_thread(*args: Any) -> Any:
            threads.append(threading.current_thread())
            return real(*args)

        monkeypatch.setattr(writer_module, "write_batch", noting_the_thread)
        async with AuditLog(installed, max_batch=10) as log:
            await asyncio.gather(*(log.append(make_entry(i)) for i in range(100)))
            await log.append(make_entry(100))
        assert len(threads) == log.batches_written >= 11
        (thread,) = set(threads)
        assert thread is not threading.main_thread()
        assert thread.name.startswith("simpul-audit-writer")
        thread.join(timeout=10)
        assert not thread.is_alive()

    async def test_returned_record_is_already_durable(self, installed: Engine) -> None:
        async with AuditLog(installed) as log:
            record = await log.append(make_entry(1))
            # A fresh connection from another engine sees it: it is committed, not cached.
            with second_engine(installed) as other:
                assert list(read_records(other)) == [record]

    async def test_a_cancelled_caller_still_gets_its_record_written(
        self, installed: Engine
    ) -> None:
        async with AuditLog(installed, max_delay=0.05) as log:
            doomed = asyncio.create_task(log.append(make_entry(1)))
            await asyncio.sleep(0)
            doomed.cancel()
            kept = await log.append(make_entry(2))
        assert doomed.cancelled()
        assert kept.seq == 2
        assert [record.entry for record in read_records(installed)] == [make_entry(1), kept.entry]


class TestFailClosed:
    @pytest.mark.parametrize(("sabotage", "repair", "cause"), SABOTAGE)
    async def test_a_failed_batch_fails_every_entry_and_the_writer_recovers(
        self,
        installed: Engine,
        sabotage: object,
        repair: object,
        cause: type[Exception],
    ) -> None:
        assert callable(sabotage)
        assert callable(repair)
        async with AuditLog(installed) as log:
            before = await log.append(make_entry(0))
            sabotage(installed)
            outcomes = await asyncio.gather(
                *(log.append(make_entry(i)) for i in range(1, 21)), return_exceptions=True
            )
            assert all(isinstance(outcome, AuditUnavailable) for outcome in outcomes)
            assert all(isinstance(outcome.__cause__, cause) for outcome in outcomes)
            assert len({id(outcome) for outcome in outcomes}) == 20  # one error per waiter
            repair(installed)
            after = await log.append(make_entry(21))
        assert (before.seq, after.seq) == (1, 2)  # the failed batch left no trace, no gap
        assert verify_log(installed).records == 2

    async def test_append_now_fails_closed_and_writes_nothing(self, installed: Engine) -> None:
        append_now(installed, [make_entry(0)])
        _block_inserts(installed)
        with pytest.raises(AuditUnavailable) as caught:
            append_now(installed, [make_entry(1), make_entry(2)])
        assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)
        _unblock_inserts(installed)
        assert count(installed) == 1

    async def test_the_detail_names_no_cause(self, installed: Engine) -> None:
        _block_inserts(installed)
        async with AuditLog(installed) as log:
            with pytest.raises(AuditUnavailable) as caught:
                await log.append(make_entry(1))
        assert "disk on fire" not in caught.value.detail


class TestSeveralWriters:
    async def test_two_engines_on_one_file_stay_gap_free(self, installed: Engine) -> None:
        with second_engine(installed) as other:
            async with (
                AuditLog(installed, max_batch=8) as first,
                AuditLog(other, max_batch=8) as second,
            ):
                records = await asyncio.gather(
                    *((first if i % 2 else second).append(make_entry(i)) for i in range(400))
                )
        assert sorted(record.seq for record in records) == list(range(1, 401))
        assert first.batches_written > 1
        assert second.batches_written > 1
        report = verify_log(installed)
        assert report.ok
        assert report.records == 400

    async def test_a_writer_whose_edge_is_stale_reads_it_again(self, installed: Engine) -> None:
        # Each writer keeps the tree's right edge after its own batch; once the other has
        # appended, that edge is stale and must not be used. Batches of 1, 2 and 3 records
        # take the edge through odd and even sizes.
        with second_engine(installed) as other:
            async with AuditLog(installed) as first, AuditLog(other) as second:
                for size, log in [(1, first), (2, first), (3, second), (1, first), (2, second)]:
                    await asyncio.gather(*(log.append(make_entry(i)) for i in range(size)))
        records = list(read_records(installed))
        leaves = [record.canonical() for record in records]
        for size in range(1, len(leaves) + 1):
            assert root_at(installed, size) == merkle.root_hash(leaves[:size])

    def test_two_processes_stay_gap_free(self, installed: Engine, tmp_path: Path) -> None:
        ready, go = tmp_path / "ready", tmp_path / "go"
        script = textwrap.dedent(
            f"""
            import pathlib, time
            from audit.writer import append_now
            from tests.audit._factories import make_entry, sqlite_engine
            engine = sqlite_engine("{database_path(installed)}")
            append_now(engine, [make_entry(0, client="warm-up")])  # warm, like the parent
            pathlib.Path("{ready}").touch()
            while not pathlib.Path("{go}").exists():
                time.sleep(0.001)
            for i in range(150):
                append_now(engine, [make_entry(i, client="child"), make_entry(i, client="child")])
                time.sleep(0.0005)  # a broker does other work between batches
            """
        )
        append_now(installed, [make_entry(0)])
        child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
        written = 1
        try:
            while not ready.exists():
                assert child.poll() is None, "the child process ended early"
                time.sleep(0.005)
            go.touch()
            # Keep appending for as long as the child does, so the two really contend.
            while child.poll() is None or written < 150:
                append_now(installed, [make_entry(written)])
                written += 1
        finally:
            assert child.wait(timeout=60) == 0
        report = verify_log(installed)
        assert (report.ok, report.records) == (True, written + 301)
        records = list(read_records(installed))
        child_seqs = [r.seq for r in records if r.client == "child"]
        assert len(child_seqs) == 300
        between = [
            r.seq
            for r in records
            if r.client not in ("child", "warm-up") and min(child_seqs) < r.seq < max(child_seqs)
        ]
        assert between, "the two processes never interleaved, so nothing was tested"


class TestWalCheckpoint:
    """The writer copies SQLite's WAL back beside its batches, not inside them."""

    async def test_the_writer_checkpoints_and_stop_waits_for_it(
        self, installed: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls: list[Engine] = []
        release = threading.Event()

        def held_checkpoint(engine: Engine) -> None:
            release.wait(timeout=10)
            time.sleep(0.1)  # still running when stop() is called
            calls.append(engine)

        monkeypatch.setattr(writer_module, "checkpoint_wal", held_checkpoint)
        async with AuditLog(installed, max_delay=0.0) as log:
            for round_ in range(3):  # three batches, while the first checkpoint still runs
                await asyncio.gather(*(log.append(make_entry(round_ * 10 + i)) for i in range(10)))
                await asyncio.sleep(0.11)  # past the 0.1 s spacing: only the one in flight stops it
            assert log.batches_written == 3
            release.set()
        assert calls == [installed]  # one at a time, and stop() waited for it

    def test_a_checkpoint_moves_the_wal_into_the_database(self, installed: Engine) -> None:
        append_now(installed, [make_entry(i) for i in range(200)])
        database = Path(database_path(installed))
        before = database.stat().st_size
        checkpoint_wal(installed)
        assert database.stat().st_size > before

    def test_a_failed_checkpoint_is_only_a_warning(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        nowhere = sqlite_engine(str(tmp_path / "missing" / "audit.db"))
        checkpoint_wal(nowhere)
        assert "checkpointing the audit WAL failed" in caplog.text


@contextmanager
def lock_held_elsewhere(engine: Engine) -> Iterator[sqlite3.Connection]:
    """Another connection (another process, say) holding the file's write lock until exit."""
    with raw_sqlite(engine) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        finally:
            conn.execute("ROLLBACK")


async def parked(log: AuditLog) -> AuditLog:
    """``log`` once its writer task waits for work (after start, or after a batch)."""
    deadline = time.monotonic() + 10
    while log._queue or log._wakeup is None or log._wakeup.done():
        assert time.monotonic() < deadline, "the writer never came to wait for work"
        await asyncio.sleep(0.001)
    return log


async def waiting_for_more(log: AuditLog) -> None:
    """Once ``log``'s writer holds entries and waits (``max_delay``) for more to join them."""
    deadline = time.monotonic() + 10
    while log._more is None:
        assert time.monotonic() < deadline, "the writer never came to wait for more"
        await asyncio.sleep(0.001)


def indexed_through(engine: Engine) -> int:
    with engine.connect() as conn:
        return indexed_through_in(conn)


class TestAlone:
    """``commit(alone=True)``: an idle writer writes on the caller's thread, nothing else
    changes."""

    async def test_an_idle_writer_writes_on_the_callers_thread(
        self, installed: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        threads: list[threading.Thread] = []
        real = writer_module.append_in

        def spy(*args: Any, **kwargs: Any) -> Any:
            threads.append(threading.current_thread())
            return real(*args, **kwargs)

        monkeypatch.setattr(writer_module, "append_in", spy)
        async with AuditLog(installed) as log:
            stamps = [await (await parked(log)).commit(make_entry(i), alone=True) for i in range(3)]
            assert (log.written_inline, log.batches_written, log.records_written) == (3, 3, 3)
            # Committed before the call returned: another connection sees it.
            with raw_sqlite(installed) as other:
                assert other.execute("SELECT count(*) FROM audit_records").fetchone() == (3,)
        assert threads == [threading.current_thread()] * 3
        assert [stamp.seq for stamp in stamps] == [1, 2, 3]
        assert verify_log(installed).ok

    async def test_not_alone_goes_through_the_queue(self, installed: Engine) -> None:
        async with AuditLog(installed) as log:
            await (await parked(log)).commit(make_entry(0))
            assert log.written_inline == 0

    async def test_a_writer_with_a_batch_in_flight_queues_it(self, installed: Engine) -> None:
        async with AuditLog(installed) as log:
            await parked(log)
            first = asyncio.create_task(log.commit(make_entry(0)))
            deadline = time.monotonic() + 10
            while log._queue or log._wakeup is not None:  # until the writer has taken it
                assert time.monotonic() < deadline, "the writer never took the entry"
                await asyncio.sleep(0)
            assert not log._idle()  # writing it on its thread
            second = await log.commit(make_entry(1), alone=True)
            assert ((await first).seq, second.seq) == (1, 2)
            assert log.written_inline == 0

    async def test_a_lock_held_elsewhere_is_not_waited_for_on_the_loop(
        self, installed: Engine
    ) -> None:
        async with AuditLog(installed) as log:
            await parked(log)
            with lock_held_elsewhere(installed):
                # If the call waited for the lock on this thread, nothing could release it.
                pending = asyncio.create_task(log.commit(make_entry(0), alone=True))
                await asyncio.sleep(0.05)
                assert not pending.done()  # queued, its thread waiting for the lock
            assert (await pending).seq == 1
            assert log.written_inline == 0

    def test_a_tried_lock_that_is_taken_leaves_nothing_open(self, installed: Engine) -> None:
        own = open_unwaiting(installed)
        own_raw = own.connection.dbapi_connection
        try:
            with lock_held_elsewhere(installed):
                with pytest.raises(LockBusy), try_write_transaction(own):
                    pass  # pragma: no cover - never entered
                assert not own.in_transaction()
            with try_write_transaction(own) as conn:  # free again: the same connection works
                assert conn.exec_driver_sql("SELECT count(*) FROM audit_records").scalar_one() == 0
        finally:
            own.close()
        # It was taken out of the pool: the pooled connections still wait, and BEGIN as usual.
        with installed.connect() as pooled:
            raw: Any = pooled.connection.driver_connection
            assert raw is not own_raw
            assert raw.execute("PRAGMA busy_timeout").fetchone() == (5000,)
            assert raw.isolation_level == ""

    async def test_stop_closes_its_connection_and_a_restart_opens_another(
        self, installed: Engine
    ) -> None:
        log = AuditLog(installed)
        seen = []
        for round_ in range(2):
            async with log:
                await (await parked(log)).commit(make_entry(round_), alone=True)
                assert log._own is not None
                seen.append(log._own.connection.dbapi_connection)
            assert log._own is None
            with pytest.raises(sqlite3.ProgrammingError):  # closed
                seen[-1].execute("SELECT 1")
        assert seen[0] is not seen[1]
        assert log.written_inline == 2

    async def test_without_wal_every_entry_takes_the_thread(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        # Outside WAL mode a COMMIT may wait for readers: no busy wait of 0 there.
        engine = create_engine(f"sqlite:///{tmp_path / 'rollback-journal.db'}")
        try:
            install(engine)
            async with AuditLog(engine) as log:
                stamp = await (await parked(log)).commit(make_entry(0), alone=True)
            assert (stamp.seq, log.written_inline) == (1, 0)
            assert "writes through its thread only" in caplog.text
        finally:
            engine.dispose()

    async def test_a_failed_write_fails_closed_and_the_writer_carries_on_by_its_thread(
        self, installed: Engine
    ) -> None:
        async with AuditLog(installed) as log:
            await (await parked(log)).commit(make_entry(0), alone=True)
            assert log._own is not None
            raw = log._own.connection.dbapi_connection
            _block_inserts(installed)
            with pytest.raises(AuditUnavailable) as caught:
                await log.commit(make_entry(1), alone=True)
            assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)
            _unblock_inserts(installed)
            with pytest.raises(sqlite3.ProgrammingError):  # closed, not used again
                raw.execute("SELECT 1")
            after = await (await parked(log)).commit(make_entry(2), alone=True)
            assert log.written_inline == 1
        assert after.seq == 2  # no trace, no gap
        assert verify_log(installed).records == 2

    async def test_a_due_indexing_pass_goes_to_the_writers_thread(
        self, installed: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        passes: list[threading.Thread] = []
        real = writer_module.index_pending

        def spy(engine: Engine) -> int:
            passes.append(threading.current_thread())
            return real(engine)

        monkeypatch.setattr(writer_module, "index_pending", spy)
        append_now(installed, [make_entry(i) for i in range(INDEX_EVERY - 1)])
        # Not idle for long enough to index on its own: only the due pass is in question.
        async with AuditLog(installed, index_when_idle=3600) as log:
            stamp = await (await parked(log)).commit(make_entry(INDEX_EVERY), alone=True)
            assert (stamp.seq, log.written_inline) == (INDEX_EVERY, 1)
            assert indexed_through(installed) == 0  # not on the caller's thread
            await parked(log)  # the writer has taken the queued pass and finished it
        assert indexed_through(installed) == INDEX_EVERY
        assert passes
        assert threading.current_thread() not in passes

    async def test_inline_queued_and_another_writer_keep_one_tree(self, installed: Engine) -> None:
        # The edge kept between batches is shared by both paths, and goes stale when another
        # writer appends in between.
        with second_engine(installed) as other:
            async with AuditLog(installed) as first, AuditLog(other) as second:
                for i, (log, alone) in enumerate(
                    [(first, True), (first, False), (second, True), (first, True), (first, True)]
                ):
                    await (await parked(log)).commit(make_entry(i), alone=alone)
                assert first.written_inline == 3
        records = list(read_records(installed))
        leaves = [record.canonical() for record in records]
        for size in range(1, len(leaves) + 1):
            assert root_at(installed, size) == merkle.root_hash(leaves[:size])


class TestCommitAll:
    """``commit_all``: entries that belong together (an exchange and the records filed under
    the others it concerns), in order, in one transaction, durable before the call returns."""

    async def test_queued_together_in_order(self, installed: Engine) -> None:
        async with AuditLog(installed) as log:
            await log.commit(make_entry(0))
            stamps = await log.commit_all([make_entry(i) for i in range(1, 4)])
            assert log.written_inline == 0
        assert [stamp.seq for stamp in stamps] == [2, 3, 4]
        records = list(read_records(installed))
        assert [record.xroad_id for record in records] == [make_entry(i).xroad_id for i in range(4)]
        assert [record.leaf_hash for record in records[1:]] == [s.leaf_hash for s in stamps]
        assert verify_log(installed).ok

    async def test_alone_and_idle_in_one_transaction_on_the_callers_thread(
        self, installed: Engine
    ) -> None:
        async with AuditLog(installed) as log:
            stamps = await (await parked(log)).commit_all(
                [make_entry(i) for i in range(3)], alone=True
            )
            assert (log.written_inline, log.batches_written, log.records_written) == (3, 1, 3)
        assert [stamp.seq for stamp in stamps] == [1, 2, 3]
        assert len({stamp.time for stamp in stamps}) == 1  # one batch shares one time
        assert verify_log(installed).ok

    async def test_a_failed_write_fails_the_call(self, installed: Engine) -> None:
        _block_inserts(installed)
        async with AuditLog(installed) as log:
            with pytest.raises(AuditUnavailable):
                await log.commit_all([make_entry(0), make_entry(1)])
            _unblock_inserts(installed)
            assert [s.seq for s in await log.commit_all([make_entry(2)])] == [1]

    async def test_refused_when_not_running(self, installed: Engine) -> None:
        with pytest.raises(AuditUnavailable, match="not running"):
            await AuditLog(installed).commit_all([make_entry(0)])

    async def test_a_batch_never_splits_a_group(self, installed: Engine) -> None:
        async with AuditLog(installed, max_batch=2, max_delay=0.05) as log:
            single = asyncio.create_task(log.commit(make_entry(0)))
            group = asyncio.create_task(log.commit_all([make_entry(i) for i in range(1, 4)]))
            after = asyncio.create_task(log.commit(make_entry(4)))
            await asyncio.gather(single, group, after)
            assert (log.batches_written, log.records_written) == (2, 5)
        records = list(read_records(installed))
        # One batch shares one time: the group went in with the entry before it, whole.
        assert len({record.time for record in records[:4]}) == 1
        assert [record.seq for record in records] == [1, 2, 3, 4, 5]
        assert [stamp.seq for stamp in group.result()] == [2, 3, 4]
        assert verify_log(installed).ok

    async def test_a_batch_already_full_with_a_group_does_not_wait(self, installed: Engine) -> None:
        # One entry taken, and a group of three queued behind it: the batch of four is full, so
        # the writer must not wait out max_delay for more (it once counted the group as one).
        async with AuditLog(installed, max_batch=4, max_delay=10) as log:
            single = asyncio.create_task(log.commit(make_entry(0)))
            group = asyncio.create_task(log.commit_all([make_entry(i) for i in range(1, 4)]))
            await asyncio.wait_for(asyncio.gather(single, group), timeout=3)
            assert (log.batches_written, log.records_written) == (1, 4)

    async def test_a_queued_stop_is_not_waited_for(self, installed: Engine) -> None:
        log = AuditLog(installed, max_delay=10)
        await log.start()
        entry = asyncio.create_task(log.commit(make_entry(0)))
        await asyncio.sleep(0)  # the entry is queued
        await asyncio.wait_for(log.stop(), timeout=3)  # the stop queued behind it
        assert entry.result().seq == 1

    async def test_a_stop_during_the_wait_ends_it(self, installed: Engine) -> None:
        log = AuditLog(installed, max_delay=10)
        await log.start()
        entry = asyncio.create_task(log.commit(make_entry(0)))
        await waiting_for_more(log)
        await asyncio.wait_for(log.stop(), timeout=3)
        assert entry.result().seq == 1

    async def test_a_group_that_fills_the_batch_during_the_wait_ends_it(
        self, installed: Engine
    ) -> None:
        async with AuditLog(installed, max_batch=4, max_delay=10) as log:
            single = asyncio.create_task(log.commit(make_entry(0)))
            await waiting_for_more(log)
            group = log.commit_all([make_entry(i) for i in range(1, 4)])
            await asyncio.wait_for(asyncio.gather(single, group), timeout=3)
            assert (log.batches_written, log.records_written) == (1, 4)

    async def test_a_group_that_fails_in_part_writes_none_of_it(self, installed: Engine) -> None:
        with raw_sqlite(installed) as conn:
            conn.execute(
                "CREATE TRIGGER block BEFORE INSERT ON audit_records WHEN NEW.seq = 2 "
                "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
            )
        async with AuditLog(installed, max_batch=1) as log:
            with pytest.raises(AuditUnavailable):
                await log.commit_all([make_entry(i) for i in range(3)])
        assert list(read_records(installed)) == []

    async def test_stamps_that_do_not_match_fail_every_waiter_closed(
        self, installed: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real = writer_module.write_batch

        def one_short(*args: Any) -> Any:
            stamps, edge = real(*args)
            return stamps[:-1], edge

        monkeypatch.setattr(writer_module, "write_batch", one_short)
        async with AuditLog(installed) as log:
            group = log.commit_all([make_entry(0), make_entry(1)])
            single = log.commit(make_entry(2))
            outcomes = await asyncio.gather(group, single, return_exceptions=True)
        assert [type(outcome) for outcome in outcomes] == [AuditUnavailable] * 2

    async def test_nothing_to_write(self, installed: Engine) -> None:
        async with AuditLog(installed) as log:
            assert await (await parked(log)).commit_all([], alone=True) == []
            assert (log.batches_written, log.written_inline) == (0, 0)

    async def test_a_cancelled_caller_still_gets_every_record_written(
        self, installed: Engine
    ) -> None:
        async with AuditLog(installed, max_delay=0.05) as log:
            doomed = asyncio.create_task(log.commit_all([make_entry(1), make_entry(2)]))
            await asyncio.sleep(0)
            doomed.cancel()
            kept = await log.append(make_entry(3))
        assert doomed.cancelled()
        assert kept.seq == 3
        assert [record.entry for record in read_records(installed)] == [
            make_entry(1),
            make_entry(2),
            kept.entry,
        ]
