"""The verifier against an intact log and against every kind of tampering.

Each tamper test first drops the append-only triggers, as someone with write access to the
database file could, then edits rows with plain SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest.mock import patch

import pytest
from sqlalchemy import Connection, Engine, delete, insert, update

import audit.tree
import audit.verify
from audit import merkle
from audit.records import GENESIS_CHAIN_HASH, hash_chain, hash_leaf, seal
from audit.store import audit_records, audit_tree, iter_rows, record_from_row, record_values
from audit.tree import sizes_in
from audit.verify import (
    NOT_IN_TREE,
    OUT_OF_ORDER,
    RECORD_CHANGED,
    RECORD_MISSING,
    TREE_MISMATCH,
    VerifyReport,
    verify_log,
)
from audit.writer import append_now
from tests.audit._factories import drop_triggers, make_entry

# These tests work on the SQLite file itself (raw connections, dropped triggers, file locks);
# tests/audit/test_postgres.py covers the same on PostgreSQL.
pytestmark = pytest.mark.sqlite_only

SIZE = 20
BAD = 7
seq_col = audit_records.c.seq


@pytest.fixture
def log(installed: Engine) -> Engine:
    """A 20-record log written in two batches, with its triggers dropped."""
    append_now(installed, [make_entry(i) for i in range(10)])
    append_now(installed, [make_entry(i) for i in range(10, SIZE)])
    drop_triggers(installed)
    return installed


def _row(engine: Engine, seq: int) -> dict[str, Any]:
    (row,) = iter_rows(engine, start=seq, limit=1)
    assert row["seq"] == seq
    return dict(row)


def _set(engine: Engine, seq: int, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(update(audit_records).where(seq_col == seq).values(**values))


def _renumber(engine: Engine, mapping: dict[int, int]) -> None:
    """Move rows to new sequence numbers (through negatives, so the primary key never clashes)."""
    with engine.begin() as conn:
        for old in mapping:
            conn.execute(update(audit_records).where(seq_col == old).values(seq=-old))
        for old, new in mapping.items():
            conn.execute(update(audit_records).where(seq_col == -old).values(seq=new))


def _reseal_leaf(engine: Engine, seq: int) -> None:
    """Recompute a row's leaf hash for the number it now has: the record format is public."""
    row = _row(engine, seq)
    record = record_from_row(row | {"leaf_hash": "0" * 64})
    _set(engine, seq, leaf_hash=hash_leaf(record.canonical()).hex())


def _forge(engine: Engine, seq: int, previous_chain_hash: str) -> None:
    """Insert a well-formed record at ``seq`` chained onto ``previous_chain_hash``."""
    record = seal(
        make_entry(99, client="ID/GOV/FORGER/x"),
        seq=seq,
        time="2026-01-01T00:00:00.000000Z",
        previous_chain_hash=previous_chain_hash,
    )
    with engine.begin() as conn:
        conn.execute(insert(audit_records), record_values(record))


def _flip_hex(value: str) -> str:
    return value[:-1] + ("0" if value[-1] != "0" else "1")


def _expect(report: VerifyReport, seq: int, problem: str) -> None:
    assert (report.ok, report.first_bad_seq, report.problem) == (False, seq, problem)


class TestIntactLog:
    def test_empty_log_is_ok(self, installed: Engine) -> None:
        assert verify_log(installed) == VerifyReport(
            ok=True, records=0, first_bad_seq=None, problem=None
        )

    @pytest.mark.parametrize("page_size", [1, 7, 1000])
    def test_untouched_log_is_ok(self, log: Engine, page_size: int) -> None:
        assert verify_log(log, page_size=page_size) == VerifyReport(
            ok=True, records=SIZE, first_bad_seq=None, problem=None
        )

    def test_progress_is_reported_while_walking(self, installed: Engine) -> None:
        append_now(installed, [make_entry(i) for i in range(2500)])
        seen: list[int] = []
        report = verify_log(installed, progress=seen.append, progress_every=1000)
        assert report.records == 2500
        assert seen == [1000, 2000, 2500]

    def test_progress_every_must_be_positive(self, installed: Engine) -> None:
        with pytest.raises(ValueError, match="progress_every"):
            verify_log(installed, progress_every=0)


CHANGES: list[tuple[str, Callable[[Any], Any]]] = [
    ("client", lambda v: v.replace("DKI", "DKJ")),
    ("event", lambda _: "exchangf"),
    ("decision", lambda _: "refused"),
    ("status", lambda v: v + 1),
    ("latency_us", lambda v: v + 1),
    ("officer", lambda _: None),
    ("time", lambda v: v[:-2] + ("1" if v[-2] != "1" else "2") + "Z"),
    ("released_fields", lambda v: v.replace("alamat", "alamaT")),
    ("released_fields", lambda v: v.replace(",", ", ")),
    ("subject_ref", _flip_hex),
    ("request_hash", _flip_hex),
    ("leaf_hash", _flip_hex),
    ("chain_hash", _flip_hex),
]


class TestChangedRecord:
    @pytest.mark.parametrize("page_size", [1, 7, 1000])
    @pytest.mark.parametrize(("column", "change"), CHANGES, ids=[c for c, _ in CHANGES])
    def test_one_changed_value_names_the_record(
        self, log: Engine, column: str, change: Callable[[Any], Any], page_size: int
    ) -> None:
        _set(log, BAD, **{column: change(_row(log, BAD)[column])})
        report = verify_log(log, page_size=page_size)
        _expect(report, BAD, RECORD_CHANGED)
        assert report.records == BAD - 1

    def test_the_first_of_two_changes_is_named(self, log: Engine) -> None:
        _set(log, 12, client="x")
        _set(log, 5, client="y")
        _expect(verify_log(log), 5, RECORD_CHANGED)

    def test_change_resealed_with_its_own_leaf_breaks_the_chain(self, log: Engine) -> None:
        _set(log, BAD, decision="refused")
        _reseal_leaf(log, BAD)
        _expect(verify_log(log), BAD, OUT_OF_ORDER)

    def test_a_bad_chain_hash_on_the_last_record_reads_as_not_belonging(self, log: Engine) -> None:
        # With no record after it, an edited chain hash and an appended forgery look the same.
        _set(log, SIZE, chain_hash=_flip_hex(_row(log, SIZE)["chain_hash"]))
        _expect(verify_log(log), SIZE, OUT_OF_ORDER)


class TestMissingRecord:
    @pytest.mark.parametrize(("deleted", "first_bad"), [((BAD,), BAD), ((1,), 1), ((8, 9), 8)])
    def test_a_deleted_record_is_named(
        self, log: Engine, deleted: tuple[int, ...], first_bad: int
    ) -> None:
        with log.begin() as conn:
            conn.execute(delete(audit_records).where(seq_col.in_(deleted)))
        report = verify_log(log)
        _expect(report, first_bad, RECORD_MISSING)
        assert report.records == first_bad - 1

    def test_deletion_with_renumbering_is_still_caught(self, log: Engine) -> None:
        with log.begin() as conn:
            conn.execute(delete(audit_records).where(seq_col == BAD))
        _renumber(log, {seq: seq - 1 for seq in range(BAD + 1, SIZE + 1)})
        _expect(verify_log(log), BAD, RECORD_CHANGED)

    def test_cutting_off_the_tail_is_seen_against_the_stored_tree(self, log: Engine) -> None:
        with log.begin() as conn:
            conn.execute(delete(audit_records).where(seq_col > SIZE - 2))
        report = verify_log(log)
        _expect(report, SIZE - 1, RECORD_MISSING)
        assert report.records == SIZE - 2

    def test_cutting_off_the_tail_and_its_tree_needs_a_checkpoint_to_be_seen(
        self, log: Engine
    ) -> None:
        # A hash chain alone cannot tell a shortened log from a younger one, nor can a tree
        # cut back with it; the signed checkpoints close this (tests/audit/test_tamper.py).
        with log.begin() as conn:
            conn.execute(delete(audit_records).where(seq_col > SIZE - 2))
            conn.execute(delete(audit_tree).where(audit_tree.c.id > 2 * (SIZE - 3)))
        assert verify_log(log) == VerifyReport(
            ok=True, records=SIZE - 2, first_bad_seq=None, problem=None
        )


class TestReorderedRecords:
    @pytest.mark.parametrize(("a", "b"), [(BAD, 12), (BAD, BAD + 1), (1, SIZE)])
    def test_swapped_records_are_named_at_the_first(self, log: Engine, a: int, b: int) -> None:
        _renumber(log, {a: b, b: a})
        report = verify_log(log)
        _expect(report, a, RECORD_CHANGED)  # seq is hashed: each now sits under a wrong number
        assert report.records == a - 1

    @pytest.mark.parametrize(("a", "b"), [(BAD, 12), (BAD, BAD + 1), (1, SIZE)])
    def test_swapped_and_resealed_records_are_out_of_order(
        self, log: Engine, a: int, b: int
    ) -> None:
        _renumber(log, {a: b, b: a})
        _reseal_leaf(log, a)
        _reseal_leaf(log, b)
        _expect(verify_log(log), a, OUT_OF_ORDER)


class TestInsertedRecords:
    def test_forgery_chained_onto_its_predecessor_breaks_at_the_next(self, log: Engine) -> None:
        # Everything from BAD on moves up one and is resealed; the forgery takes BAD and chains
        # correctly onto BAD - 1, so the first record that does not follow is the one after it.
        _renumber(log, {seq: seq + 1 for seq in range(BAD, SIZE + 1)})
        for seq in range(BAD + 1, SIZE + 2):
            _reseal_leaf(log, seq)
        _forge(log, BAD, _row(log, BAD - 1)["chain_hash"])
        report = verify_log(log)
        _expect(report, BAD + 1, OUT_OF_ORDER)
        assert report.records == BAD

    def test_forgery_that_does_not_chain_is_named_itself(self, log: Engine) -> None:
        _renumber(log, {seq: seq + 1 for seq in range(BAD, SIZE + 1)})
        _forge(log, BAD, GENESIS_CHAIN_HASH)
        _expect(verify_log(log), BAD, OUT_OF_ORDER)

    def test_forgery_appended_with_a_wrong_chain(self, log: Engine) -> None:
        _forge(log, SIZE + 1, _row(log, SIZE - 1)["chain_hash"])
        report = verify_log(log)
        _expect(report, SIZE + 1, OUT_OF_ORDER)
        assert report.records == SIZE

    def test_forgery_below_one_is_found(self, log: Engine) -> None:
        with log.begin() as conn:  # a copy of record 1 numbered 0: no record may come first
            conn.execute(insert(audit_records), _row(log, 1) | {"seq": 0})
        _expect(verify_log(log), 0, OUT_OF_ORDER)

    def test_forgery_beyond_a_gap_reads_as_missing_records(self, log: Engine) -> None:
        tail_chain = _row(log, SIZE)["chain_hash"]
        _forge(log, SIZE + 5, tail_chain)
        _expect(verify_log(log), SIZE + 1, RECORD_MISSING)

    def test_forgery_chained_correctly_at_the_end_is_not_in_the_tree(self, log: Engine) -> None:
        # The chain holds (checked below); the stored tree, written with every record in the
        # writer's transaction, never got its leaf.
        _forge(log, SIZE + 1, _row(log, SIZE)["chain_hash"])
        report = verify_log(log)
        _expect(report, SIZE + 1, NOT_IN_TREE)
        assert report.records == SIZE
        last = _row(log, SIZE + 1)
        leaf = bytes.fromhex(last["leaf_hash"])
        assert (
            last["chain_hash"]
            == hash_chain(bytes.fromhex(_row(log, SIZE)["chain_hash"]), leaf).hex()
        )


def _set_node(engine: Engine, node: int, digest: bytes) -> None:
    with engine.begin() as conn:
        conn.execute(update(audit_tree).where(audit_tree.c.id == node).values(hash=digest))


class TestStoredTree:
    def test_a_forgery_inserted_with_the_guard_in_place_is_found(self, installed: Engine) -> None:
        # INSERT of the next seq is what the broker itself may do: the triggers let it through.
        append_now(installed, [make_entry(i) for i in range(SIZE)])
        _forge(installed, SIZE + 1, _row(installed, SIZE)["chain_hash"])
        report = verify_log(installed)
        _expect(report, SIZE + 1, NOT_IN_TREE)
        assert report.records == SIZE

    # At SIZE = 20 the root is made of two stored subtrees: records 1..16 and 17..20.
    def test_a_changed_subtree_is_named_at_its_first_record(self, log: Engine) -> None:
        _set_node(log, merkle.node_id(2, 4), bytes(32))
        report = verify_log(log)
        _expect(report, 17, TREE_MISMATCH)
        assert report.records == 16

    def test_a_missing_subtree_is_named_at_its_first_record(self, log: Engine) -> None:
        with log.begin() as conn:
            conn.execute(delete(audit_tree).where(audit_tree.c.id == merkle.node_id(2, 4)))
        _expect(verify_log(log), 17, TREE_MISMATCH)

    @pytest.mark.parametrize("page", [3, 10_000])
    def test_a_changed_leaf_under_a_changed_subtree_is_named(self, log: Engine, page: int) -> None:
        # A rewritten record's leaf and the nodes above it, as a forger rebuilding the tree would.
        _set_node(log, merkle.node_id(0, BAD - 1), bytes(32))
        _set_node(log, merkle.node_id(4, 0), bytes(32))
        with patch.object(audit.tree, "_COMPARE_PAGE", page):
            report = verify_log(log)
        _expect(report, BAD, TREE_MISMATCH)
        assert report.records == BAD - 1

    def test_a_tree_longer_than_the_records_means_records_missing(self, log: Engine) -> None:
        with log.begin() as conn:
            conn.execute(delete(audit_records).where(seq_col == SIZE))
        _expect(verify_log(log), SIZE, RECORD_MISSING)

    def test_records_appended_after_the_walk_are_walked_too(self, installed: Engine) -> None:
        append_now(installed, [make_entry(i) for i in range(SIZE)])

        def appended_meanwhile(conn: Connection) -> tuple[int, int]:
            append_now(installed, [make_entry(i) for i in range(SIZE, SIZE + 5)])
            return sizes_in(conn)

        with patch.object(audit.verify, "sizes_in", appended_meanwhile):
            report = verify_log(installed, page_size=7)
        assert report == VerifyReport(ok=True, records=SIZE + 5, first_bad_seq=None, problem=None)
