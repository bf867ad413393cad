"""The stored Merkle tree and checkpoints: same roots and proofs as audit.merkle, O(log n) reads."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text

from audit import checkpoints as checkpoints_module
from audit import merkle
from audit import tree as tree_module
from audit._bulk import fetch_rows
from audit.checkpoints import (
    CheckpointScheduler,
    StoredCheckpoint,
    checkpoint_covering,
    get_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    sign_now,
)
from audit.errors import CheckpointNotFound
from audit.notes import open_checkpoint
from audit.store import install, read_records
from audit.tree import consistency_proof_at, inclusion_proof_at, root_at, tree_size_in
from audit.writer import AuditLog, append_now
from tests.audit._factories import drop_triggers, make_entry, raw_sqlite

ORIGIN = "test.go.id/audit"


def _leaves(engine: Engine) -> list[bytes]:
    return [record.canonical() for record in read_records(engine)]


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def log(installed: Engine) -> Engine:
    """37 records in batches of uneven size."""
    for start, end in ((0, 1), (1, 8), (8, 21), (21, 37)):
        append_now(installed, [make_entry(i) for i in range(start, end)])
    return installed


class TestTree:
    def test_every_prefix_root_matches_the_reference(self, log: Engine) -> None:
        leaves = _leaves(log)
        for size in range(len(leaves) + 1):
            assert root_at(log, size) == merkle.root_hash(leaves[:size])

    def test_proofs_match_the_reference_and_verify(self, log: Engine) -> None:
        leaves = _leaves(log)
        size = len(leaves)
        root = merkle.root_hash(leaves)
        for index in (0, 1, 17, size - 1):
            proof = inclusion_proof_at(log, index, size)
            assert proof == merkle.inclusion_proof(leaves, index)
            assert merkle.verify_inclusion(
                merkle.leaf_hash(leaves[index]), index, size, proof, root
            )
        for old in (0, 1, 8, 21, 36, 37):
            proof = consistency_proof_at(log, old, size)
            assert proof == merkle.consistency_proof(leaves, old)

    def test_the_writer_grows_the_tree_in_its_batches(self, installed: Engine) -> None:
        async def write() -> None:
            async with AuditLog(installed, max_batch=4) as writer:
                await asyncio.gather(*(writer.append(make_entry(i)) for i in range(23)))

        asyncio.run(write())
        assert root_at(installed, 23) == merkle.root_hash(_leaves(installed))

    @pytest.mark.sqlite_only
    def test_a_log_from_before_the_tree_is_backfilled(self, log: Engine) -> None:
        expected = root_at(log, 37)
        drop_triggers(log)
        with raw_sqlite(log) as conn:
            conn.execute("DELETE FROM audit_tree")
        install(log)
        with log.connect() as conn:
            assert tree_size_in(conn) == 37
        assert root_at(log, 37) == expected

    def test_a_proof_reads_the_tree_in_one_query(
        self, log: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        statements: list[str] = []

        def counted(conn: Any, sql: str, params: Any = ()) -> list[Any]:
            statements.append(sql)
            return fetch_rows(conn, sql, params)

        monkeypatch.setattr(tree_module, "fetch_rows", counted)  # the tree's reads go here
        proof = inclusion_proof_at(log, 5, 37)
        assert proof == merkle.inclusion_proof(_leaves(log), 5)
        assert sum("audit_tree" in s for s in statements) == 1

    @pytest.mark.sqlite_only
    def test_tree_rows_are_append_only(self, log: Engine) -> None:
        with raw_sqlite(log) as conn:
            for statement in ("UPDATE audit_tree SET hash = x'00'", "DELETE FROM audit_tree"):
                with pytest.raises(Exception, match="append-only"):
                    conn.execute(statement)
        assert root_at(log, 37) == merkle.root_hash(_leaves(log))


class TestCheckpoints:
    def test_sign_covers_the_log_as_committed(self, log: Engine, key: Ed25519PrivateKey) -> None:
        signed = sign_now(log, origin=ORIGIN, kid="k-1", key=key)
        assert (signed.tree_size, signed.kid, signed.key_name) == (37, "k-1", ORIGIN)
        opened = open_checkpoint(signed.note, key.public_key())
        assert (opened.size, opened.root) == (37, merkle.root_hash(_leaves(log)))
        assert get_checkpoint(log, signed.id) == signed == latest_checkpoint(log)

    def test_no_growth_no_new_checkpoint_unless_forced(
        self, log: Engine, key: Ed25519PrivateKey
    ) -> None:
        first = sign_now(log, origin=ORIGIN, kid="k", key=key)
        assert sign_now(log, origin=ORIGIN, kid="k", key=key) == first
        forced = sign_now(log, origin=ORIGIN, kid="k", key=key, force=True)
        assert forced.id != first.id
        assert forced.tree_size == first.tree_size

    def test_nodes_signing_at_once_store_one_checkpoint(
        self, log: Engine, key: Ed25519PrivateKey
    ) -> None:
        # Several nodes' schedulers firing together on a log that has not grown since.
        barrier = threading.Barrier(6)

        def sign() -> StoredCheckpoint:
            barrier.wait()
            return sign_now(log, origin=ORIGIN, kid="k", key=key)

        with ThreadPoolExecutor(6) as pool:
            signed = list(pool.map(lambda _: sign(), range(6)))
        assert len(list_checkpoints(log)) == 1
        assert {checkpoint.id for checkpoint in signed} == {signed[0].id}

    def test_every_checkpoint_is_kept_and_consistent(
        self, installed: Engine, key: Ed25519PrivateKey
    ) -> None:
        for batch in range(4):
            append_now(installed, [make_entry(batch * 10 + i) for i in range(batch + 3)])
            sign_now(installed, origin=ORIGIN, kid="k", key=key)
        kept = list_checkpoints(installed)
        assert [c.tree_size for c in kept] == [3, 7, 12, 18]
        for old in kept:
            for new in kept:
                if old.tree_size <= new.tree_size:
                    proof = consistency_proof_at(installed, old.tree_size, new.tree_size)
                    assert merkle.verify_consistency(
                        old.tree_size, new.tree_size, old.root_hash, new.root_hash, proof
                    )
        assert checkpoint_covering(installed, 8) == kept[2]
        assert checkpoint_covering(installed, 19) is None

    def test_rewritten_log_is_not_consistent_with_its_old_checkpoint(
        self, log: Engine, key: Ed25519PrivateKey, tmp_path: Any
    ) -> None:
        old = sign_now(log, origin=ORIGIN, kid="k", key=key)
        # Someone rebuilds the log from scratch with record 5 altered, then grows it.
        from tests.audit._factories import sqlite_engine

        forged = sqlite_engine(str(tmp_path / "forged.db"))
        install(forged)
        entries = [make_entry(i) for i in range(37)]
        entries[4] = make_entry(4, officer="mallory")
        append_now(forged, entries)
        append_now(forged, [make_entry(i) for i in range(37, 40)])
        new = sign_now(forged, origin=ORIGIN, kid="k", key=key)
        proof = consistency_proof_at(forged, 37, 40)
        assert not merkle.verify_consistency(37, 40, old.root_hash, new.root_hash, proof)
        forged.dispose()

    def test_unknown_checkpoint(self, installed: Engine) -> None:
        with pytest.raises(CheckpointNotFound):
            get_checkpoint(installed, 99)

    def test_checkpoints_are_append_only(self, log: Engine, key: Ed25519PrivateKey) -> None:
        sign_now(log, origin=ORIGIN, kid="k", key=key)
        with log.connect() as conn, pytest.raises(Exception, match="append-only"):
            conn.execute(text("UPDATE audit_checkpoints SET tree_size = 1"))

    async def test_scheduler_signs_while_records_arrive_and_at_stop(
        self, installed: Engine, key: Ed25519PrivateKey
    ) -> None:
        scheduler = CheckpointScheduler(installed, key=lambda: ("k-2", key), interval=0.01)
        await scheduler.start()
        async with AuditLog(installed) as writer:
            await writer.append(make_entry(1))
            for _ in range(2000):  # the timer signs on its own; wait for it, however slow
                latest = latest_checkpoint(installed)
                if latest is not None and latest.tree_size == 1:
                    break
                await asyncio.sleep(0.01)
            assert latest is not None
            await writer.append(make_entry(2))
        await scheduler.stop()
        latest = latest_checkpoint(installed)
        assert latest is not None
        assert (latest.tree_size, latest.kid) == (2, "k-2")
        # The timer may have signed the empty tree first; after that, once per growth.
        assert [c.tree_size for c in list_checkpoints(installed) if c.tree_size] == [1, 2]

    async def test_a_stop_while_the_timer_signs_waits_for_that_signing(
        self, installed: Engine, key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Cancelled mid-signing, the timer still holds the lock until its thread has signed:
        the last checkpoint of stop() is never signed beside it (nor after the engine is gone)."""
        signing, go_on = threading.Event(), threading.Event()
        running, most = [0], [0]
        guard = threading.Lock()
        real = checkpoints_module.sign_now

        def slow_sign(*args: Any, **kwargs: Any) -> Any:
            with guard:
                running[0] += 1
                most[0] = max(most[0], running[0])
            try:
                signing.set()
                go_on.wait(5)
                return real(*args, **kwargs)
            finally:
                with guard:
                    running[0] -= 1

        monkeypatch.setattr(checkpoints_module, "sign_now", slow_sign)
        scheduler = CheckpointScheduler(installed, key=lambda: ("k", key), interval=0.01)
        await scheduler.start()
        await asyncio.to_thread(signing.wait, 5)  # the timer's signing is on its thread
        threading.Timer(0.2, go_on.set).start()
        await scheduler.stop()
        # Before, the cancelled timer let go of the lock at once, and stop() signed beside it.
        assert most[0] == 1
