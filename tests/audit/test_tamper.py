"""Tampering behind the broker's back, caught by both verifiers: online and offline (export).

Checkpoints are signed first; then the append-only triggers are dropped, as someone with write
access to the SQLite file could, and rows are changed with plain SQL. The online verifier walks
the database against the signed roots; the offline one checks an export made afterwards.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from audit.checkpoints import StoredCheckpoint, list_checkpoints, sign_now
from audit.export import iter_export, verify_export
from audit.notes import open_checkpoint
from audit.records import seal
from audit.store import install, record_values
from audit.verify import (
    CHECKPOINT_MISMATCH,
    OUT_OF_ORDER,
    RECORD_CHANGED,
    RECORD_MISSING,
    VerifyReport,
    verify_log,
)
from audit.writer import append_now
from tests.audit._factories import drop_triggers, make_entry, raw_sqlite

# These tests work on the SQLite file itself (raw connections, dropped triggers, file locks);
# tests/audit/test_postgres.py covers the same on PostgreSQL.
pytestmark = pytest.mark.sqlite_only

ORIGIN = "test.go.id/audit"
SIZE = 30
BAD = 11
KEY = Ed25519PrivateKey.generate()


@pytest.fixture
def log(installed: Engine) -> tuple[Engine, StoredCheckpoint]:
    """30 records with a checkpoint after each of three batches; triggers then dropped."""
    checkpoint = None
    for start in range(0, SIZE, 10):
        append_now(installed, [make_entry(i) for i in range(start, start + 10)])
        checkpoint = sign_now(installed, origin=ORIGIN, kid="k-1", key=KEY)
    assert checkpoint is not None
    drop_triggers(installed)
    return installed, checkpoint


def _online(engine: Engine) -> VerifyReport:
    checkpoints = [open_checkpoint(c.note, KEY.public_key()) for c in list_checkpoints(engine)]
    return verify_log(engine, checkpoints=checkpoints)


def _offline(engine: Engine, checkpoint: StoredCheckpoint, first: int = 1) -> VerifyReport:
    lines = list(iter_export(engine, checkpoint, first_seq=first))
    return verify_export(lines, checkpoint_note=checkpoint.note, public_key=KEY.public_key())


def _sql(*statements: str) -> Callable[[Engine], None]:
    def run(engine: Engine) -> None:
        with raw_sqlite(engine) as conn:
            for statement in statements:
                conn.execute(statement)

    return run


def _insert_forgery(engine: Engine) -> None:
    """Push records BAD.. up by one and slip a well-formed record, correctly chained, into BAD."""
    with raw_sqlite(engine) as conn:
        conn.execute(f"UPDATE audit_records SET seq = -seq WHERE seq >= {BAD}")  # noqa: S608
        conn.execute("UPDATE audit_records SET seq = 1 - seq WHERE seq < 0")
        (previous,) = conn.execute(
            f"SELECT chain_hash FROM audit_records WHERE seq = {BAD - 1}"  # noqa: S608
        ).fetchone()
    forged = seal(
        make_entry(99, client="ID/GOV/FORGER/x"),
        seq=BAD,
        time="2026-01-01T00:00:00.000000Z",
        previous_chain_hash=previous,
    )
    with engine.begin() as conn:
        from audit.store import audit_records

        conn.execute(audit_records.insert(), record_values(forged))


TAMPERING: list[tuple[str, Callable[[Engine], None], int, str]] = [
    (
        "one-byte-changed",
        _sql(f"UPDATE audit_records SET officer = 'budi.santosO' WHERE seq = {BAD}"),  # noqa: S608
        BAD,
        RECORD_CHANGED,
    ),
    ("one-deleted", _sql(f"DELETE FROM audit_records WHERE seq = {BAD}"), BAD, RECORD_MISSING),  # noqa: S608
    (
        "two-swapped",
        _sql(
            f"UPDATE audit_records SET seq = -1 WHERE seq = {BAD}",  # noqa: S608
            f"UPDATE audit_records SET seq = {BAD} WHERE seq = {BAD + 4}",  # noqa: S608
            f"UPDATE audit_records SET seq = {BAD + 4} WHERE seq = -1",  # noqa: S608
        ),
        BAD,
        RECORD_CHANGED,
    ),
    ("one-inserted", _insert_forgery, BAD, OUT_OF_ORDER),
]


class TestBothVerifiersNameTheFirstBadRecord:
    def test_untouched_log_verifies_both_ways(self, log: tuple[Engine, StoredCheckpoint]) -> None:
        engine, checkpoint = log
        online = _online(engine)
        assert (online.ok, online.records, online.checkpoints) == (True, SIZE, 3)
        offline = _offline(engine, checkpoint)
        assert (offline.ok, offline.records, offline.checkpoints) == (True, SIZE, 1)
        assert _offline(engine, checkpoint, first=BAD).ok

    @pytest.mark.parametrize(
        ("tamper", "first_bad", "problem"),
        [t[1:] for t in TAMPERING],
        ids=[t[0] for t in TAMPERING],
    )
    def test_tampering(
        self,
        log: tuple[Engine, StoredCheckpoint],
        tamper: Callable[[Engine], None],
        first_bad: int,
        problem: str,
    ) -> None:
        engine, checkpoint = log
        tamper(engine)
        for report in (_online(engine), _offline(engine, checkpoint)):
            assert (report.ok, report.first_bad_seq, report.problem) == (False, first_bad, problem)

    def test_cutting_off_the_tail_is_seen_against_the_checkpoint(
        self, log: tuple[Engine, StoredCheckpoint]
    ) -> None:
        engine, checkpoint = log
        _sql(f"DELETE FROM audit_records WHERE seq > {SIZE - 2}")(engine)  # noqa: S608
        for report in (_online(engine), _offline(engine, checkpoint)):
            assert (report.ok, report.first_bad_seq, report.problem) == (
                False,
                SIZE - 1,
                RECORD_MISSING,
            )

    def test_a_rewrite_with_every_hash_recomputed_breaks_the_signed_root(
        self, log: tuple[Engine, StoredCheckpoint], tmp_path: object
    ) -> None:
        engine, checkpoint = log
        # Rebuild records BAD.. with one changed, re-hashing and re-chaining all of them.
        with raw_sqlite(engine) as conn:
            conn.execute(f"DELETE FROM audit_records WHERE seq >= {BAD}")  # noqa: S608
            conn.execute("DELETE FROM audit_tree")
        install(engine)  # rebuilds the tree from the records left
        append_now(engine, [make_entry(i, officer="mallory") for i in range(BAD - 1, SIZE)])
        online = _online(engine)
        assert (online.ok, online.problem, online.first_bad_seq) == (
            False,
            CHECKPOINT_MISMATCH,
            BAD,  # the first record after the last checkpoint that still matched (size 10)
        )
        offline = _offline(engine, checkpoint)
        assert (offline.ok, offline.problem) == (False, CHECKPOINT_MISMATCH)
