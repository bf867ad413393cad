"""The table: installing it, its append-only triggers, and reading records back."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import Engine, exc, insert, inspect, text

from audit.query import records_for_subject
from audit.records import GENESIS_CHAIN_HASH, seal
from audit.store import (
    audit_records,
    count,
    install,
    read_records,
    record_from_row,
    record_values,
    tail,
)
from audit.writer import append_now
from tests.audit._factories import TRIGGERS, make_entry, raw_sqlite

# These tests work on the SQLite file itself (raw connections, dropped triggers, file locks);
# tests/audit/test_postgres.py covers the same on PostgreSQL.
pytestmark = pytest.mark.sqlite_only

TIME = "2026-01-01T00:00:00.000000Z"


def _triggers(engine: Engine) -> set[str]:
    with raw_sqlite(engine) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
    return {name for (name,) in rows}


class TestInstall:
    def test_creates_the_table_indexes_and_triggers(self, installed: Engine) -> None:
        inspector = inspect(installed)
        assert "audit_records" in inspector.get_table_names()
        # Only the index that grows at its right edge: lookups live in audit_lookup.
        indexed = {tuple(ix["column_names"]) for ix in inspector.get_indexes("audit_records")}
        assert indexed == {("time",)}
        assert {"audit_lookup", "audit_lookup_marks"} <= set(inspector.get_table_names())
        assert _triggers(installed) == set(TRIGGERS)

    def test_is_idempotent_and_keeps_records(self, installed: Engine) -> None:
        append_now(installed, [make_entry(1)])
        install(installed)
        install(installed)
        assert count(installed) == 1
        assert _triggers(installed) == set(TRIGGERS)

    def test_puts_back_a_dropped_trigger(self, installed: Engine) -> None:
        with raw_sqlite(installed) as conn:
            conn.execute("DROP TRIGGER audit_records_no_delete")
        install(installed)
        assert _triggers(installed) == set(TRIGGERS)

    def test_seq_is_the_rowid_not_autoincrement(self, installed: Engine) -> None:
        with raw_sqlite(installed) as conn:
            (sql,) = conn.execute(
                "SELECT sql FROM sqlite_master WHERE name = 'audit_records'"
            ).fetchone()
            has_sequence_table = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'"
            ).fetchone()[0]
        assert "seq INTEGER NOT NULL" in sql
        assert "AUTOINCREMENT" not in sql.upper()
        assert has_sequence_table == 0


class TestAppendOnlyTriggers:
    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE audit_records SET status = 500 WHERE seq = 2",
            "UPDATE audit_records SET seq = seq + 10",
            "DELETE FROM audit_records WHERE seq = 3",
            "DELETE FROM audit_records",
        ],
    )
    def test_changing_or_removing_records_is_refused(
        self, installed: Engine, statement: str
    ) -> None:
        append_now(installed, [make_entry(i) for i in range(3)])
        with (
            pytest.raises(exc.IntegrityError, match="audit_records is append-only"),
            installed.begin() as conn,
        ):
            conn.execute(text(statement))
        assert [record.seq for record in read_records(installed)] == [1, 2, 3]

    def test_raw_sqlite_connection_is_refused_too(self, installed: Engine) -> None:
        append_now(installed, [make_entry(1)])
        with raw_sqlite(installed) as conn, pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE audit_records SET client = 'someone else'")

    def test_insert_or_replace_cannot_overwrite_a_record(self, installed: Engine) -> None:
        (record,) = append_now(installed, [make_entry(1)])
        forged = record_values(record) | {"client": "forged"}
        replace = insert(audit_records).prefix_with("OR REPLACE")
        with pytest.raises(exc.IntegrityError, match="append-only"), installed.begin() as conn:
            conn.execute(replace, forged)
        assert next(read_records(installed)).client == make_entry(1).client

    @pytest.mark.parametrize("seq", [0, 3, 10])
    def test_an_insert_must_take_the_next_number(self, installed: Engine, seq: int) -> None:
        (record,) = append_now(installed, [make_entry(1)])
        values = record_values(record) | {"seq": seq}
        with pytest.raises(exc.IntegrityError, match="next one"), installed.begin() as conn:
            conn.execute(insert(audit_records), values)
        assert count(installed) == 1


class TestReads:
    def test_empty_log(self, installed: Engine) -> None:
        assert tail(installed) is None
        assert count(installed) == 0
        assert list(read_records(installed)) == []

    def test_tail_is_the_last_seq_and_chain_hash(self, installed: Engine) -> None:
        records = append_now(installed, [make_entry(i) for i in range(4)])
        assert tail(installed) == (4, records[-1].chain_hash)

    @pytest.mark.parametrize("page_size", [1, 3, 4, 1000])
    def test_read_records_pages_through_in_order(self, installed: Engine, page_size: int) -> None:
        written = append_now(installed, [make_entry(i) for i in range(10)])
        assert list(read_records(installed, page_size=page_size)) == written

    @pytest.mark.parametrize(
        ("start", "limit", "expected"),
        [
            (1, None, list(range(1, 11))),
            (4, 3, [4, 5, 6]),
            (9, 5, [9, 10]),
            (11, None, []),
            (1, 0, []),
        ],
    )
    def test_read_records_from_start_up_to_limit(
        self, installed: Engine, start: int, limit: int | None, expected: list[int]
    ) -> None:
        append_now(installed, [make_entry(i) for i in range(10)])
        got = read_records(installed, start=start, limit=limit, page_size=2)
        assert [record.seq for record in got] == expected

    def test_records_for_subject_newest_first_and_paged(self, installed: Engine) -> None:
        append_now(installed, [make_entry(i) for i in range(12)])  # subjects cycle i % 3
        ref = make_entry(0).subject_ref
        assert ref is not None
        first = records_for_subject(installed, ref, limit=3)
        assert [record.seq for record in first] == [10, 7, 4]
        rest = records_for_subject(installed, ref, limit=3, before_seq=first[-1].seq)
        assert [record.seq for record in rest] == [1]
        assert all(record.subject_ref == ref for record in first + rest)

    def test_records_for_unknown_subject_is_empty(self, installed: Engine) -> None:
        append_now(installed, [make_entry(1)])
        assert records_for_subject(installed, "0" * 64) == []

    def test_records_for_subject_refuses_a_zero_limit(self, installed: Engine) -> None:
        with pytest.raises(ValueError, match="limit"):
            records_for_subject(installed, "0" * 64, limit=0)

    def test_row_round_trip(self, installed: Engine) -> None:
        (record,) = append_now(installed, [make_entry(1, released_fields=("nama", "n\u00e9"))])
        assert record_from_row(record_values(record)) == record
        assert next(read_records(installed)) == record

    @pytest.mark.parametrize(
        "released",
        ['["nik", "nama"]', '["nik",1]', '{"nik":1}', "not json"],
    )
    def test_a_row_whose_field_list_is_not_canonical_is_refused(self, released: str) -> None:
        record = seal(make_entry(1), seq=1, time=TIME, previous_chain_hash=GENESIS_CHAIN_HASH)
        with pytest.raises(ValueError, match="released_fields"):
            record_from_row(record_values(record) | {"released_fields": released})
