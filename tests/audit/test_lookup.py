"""Lookups by subject, consent and X-Road id: indexed in bulk, always complete."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from sqlalchemy import Engine, func, insert, select, text

from audit import AuditLog
from audit import lookup as lookup_module
from audit import writer as writer_module
from audit._append import append_now, index_pending, write_batch
from audit.lookup import (
    BUCKET_BITS,
    INDEX_EVERY,
    LOOKUP_KINDS,
    index_pending_in,
    indexed_through_in,
    lookup_key,
)
from audit.query import RecordFilter, find_records, records_for_subject
from audit.records import GENESIS_CHAIN_HASH, seal
from audit.store import audit_lookup, audit_records, record_values
from audit.tree import backfill_in
from broker import migrate
from tests.audit._factories import make_entry

TIME = "2026-01-01T00:00:00.000000Z"
SUBJECT_0 = make_entry(0).subject_ref
assert SUBJECT_0 is not None


def _watermark(engine: Engine) -> int:
    with engine.connect() as conn:
        return indexed_through_in(conn)


def _lookup_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(audit_lookup)) or 0)


class TestKeys:
    def test_the_key_is_the_signed_first_8_bytes_of_sha256(self) -> None:
        # SHA-256("abc") = ba7816bf8f01cfea...
        assert lookup_key("abc") == int.from_bytes(bytes.fromhex("ba7816bf8f01cfea"), "big") - 2**64

    def test_kinds_are_frozen(self) -> None:
        # Stored in audit_lookup: renumbering would orphan every row.
        assert LOOKUP_KINDS == {"subject_ref": 1, "consent_id": 2, "xroad_id": 3}


class TestIndexing:
    def test_small_appends_wait_for_the_indexer(self, installed: Engine) -> None:
        append_now(installed, [make_entry(i) for i in range(10)])
        assert _watermark(installed) == 0
        assert index_pending(installed) == 10
        assert _watermark(installed) == 10
        # 10 records, each with a subject, a consent and an X-Road id.
        assert _lookup_rows(installed) == 30
        assert index_pending(installed) == 0

    def test_the_writer_indexes_once_enough_records_wait(self, installed: Engine) -> None:
        write_batch(installed, [make_entry(i) for i in range(INDEX_EVERY - 1)])
        assert _watermark(installed) == 0
        write_batch(installed, [make_entry(INDEX_EVERY)])
        assert _watermark(installed) == INDEX_EVERY

    def test_missing_values_are_not_indexed(self, installed: Engine) -> None:
        append_now(installed, [make_entry(1, subject_ref=None, consent_id=None)])
        index_pending(installed)
        assert _lookup_rows(installed) == 1  # the X-Road id only

    @pytest.mark.parametrize(
        "consent_id", ["consent-7", "izin-usaha/Ñañá/☃", "emoji-\U0001f600", "x" * 300, ""]
    )
    def test_the_database_derives_the_same_key_as_python(
        self, installed: Engine, consent_id: str
    ) -> None:
        # The pass runs in SQL (a function on SQLite, sha256() on PostgreSQL); queries look
        # keys up with lookup_key in Python, so the two must agree byte for byte.
        append_now(installed, [make_entry(0, consent_id=consent_id)])
        index_pending(installed)
        with installed.connect() as conn:
            stored = conn.execute(
                select(audit_lookup.c.key).where(audit_lookup.c.kind == LOOKUP_KINDS["consent_id"])
            ).scalar_one()
        assert stored == lookup_key(consent_id)
        assert [r.seq for r in find_records(installed, RecordFilter(consent_id=consent_id))] == [1]

    def test_a_pass_longer_than_a_page(
        self, installed: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(lookup_module, "_PAGE", 4)
        append_now(installed, [make_entry(i) for i in range(10)])
        assert index_pending(installed) == 10
        assert _lookup_rows(installed) == 30
        with installed.connect() as conn:
            seqs = conn.execute(select(audit_lookup.c.seq).distinct()).scalars().all()
        assert sorted(seqs) == list(range(1, 11))

    def test_indexing_stops_at_upto(self, installed: Engine) -> None:
        append_now(installed, [make_entry(i) for i in range(10)])
        with installed.begin() as conn:
            assert index_pending_in(conn, upto=4) == 4
        assert _watermark(installed) == 4

    async def test_an_idle_writer_indexes_what_it_wrote(self, installed: Engine) -> None:
        async with AuditLog(installed, max_delay=0.0, index_when_idle=0.01) as log:
            await asyncio.gather(*(log.append(make_entry(i)) for i in range(5)))
            for _ in range(200):
                if _watermark(installed) == 5:
                    break
                await asyncio.sleep(0.01)
            assert _watermark(installed) == 5
            # An append arriving after the idle pass is taken as usual.
            record = await log.append(make_entry(6))
        assert record.seq == 6

    async def test_a_failed_idle_pass_is_a_warning_and_appends_go_on(
        self,
        installed: Engine,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        def broken(engine: Engine) -> int:
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(writer_module, "index_pending", broken)
        async with AuditLog(installed, max_delay=0.0, index_when_idle=0.01) as log:
            await log.append(make_entry(0))
            for _ in range(200):
                if "indexing the audit lookup table failed" in caplog.text:
                    break
                await asyncio.sleep(0.01)
            assert "indexing the audit lookup table failed" in caplog.text
            assert (await log.append(make_entry(3))).seq == 2
        # Queries stay complete: the records the pass missed are scanned after the watermark.
        assert _watermark(installed) == 0
        assert [r.seq for r in records_for_subject(installed, SUBJECT_0)] == [2, 1]


@pytest.mark.parametrize("indexed_through", [0, 7, 15, 30])
@pytest.mark.parametrize("bucket_bits", [16, 2], ids=["one-bucket", "buckets-of-4"])
class TestQueriesAreComplete:
    """However far the index has got, and across buckets, every query sees every record."""

    @pytest.fixture
    def log(
        self,
        installed: Engine,
        indexed_through: int,
        bucket_bits: int,
        monkeypatch: pytest.MonkeyPatch,
    ) -> Engine:
        monkeypatch.setattr(lookup_module, "BUCKET_BITS", bucket_bits)
        append_now(installed, [make_entry(i) for i in range(30)])
        with installed.begin() as conn:
            index_pending_in(conn, upto=indexed_through)
        return installed

    def test_a_subject_newest_first_and_paged(self, log: Engine) -> None:
        expected = [seq for seq in range(30, 0, -1) if (seq - 1) % 3 == 0]
        first = records_for_subject(log, SUBJECT_0, limit=4)
        rest = records_for_subject(log, SUBJECT_0, limit=50, before_seq=first[-1].seq)
        assert [r.seq for r in first + rest] == expected

    def test_a_consent_in_log_order_after_a_seq(self, log: Engine) -> None:
        found = find_records(log, RecordFilter(consent_id="consent-2"), after_seq=5, limit=3)
        assert [r.seq for r in found] == [8, 13, 18]

    def test_an_x_road_id(self, log: Engine) -> None:
        wanted = make_entry(21).xroad_id
        assert [r.seq for r in find_records(log, RecordFilter(xroad_id=wanted))] == [22]

    def test_other_criteria_apply_on_top(self, log: Engine) -> None:
        found = find_records(
            log, RecordFilter(consent_id="consent-0", subject_ref=SUBJECT_0, event="exchange")
        )
        # consent-(i % 5) == 0 and subject-(i % 3) == 0: i in {0, 15}.
        assert [r.seq for r in found] == [1, 16]
        assert find_records(log, RecordFilter(consent_id="consent-0", event="other")) == []


class TestCollisions:
    def test_a_colliding_key_never_returns_a_stranger(self, installed: Engine) -> None:
        append_now(installed, [make_entry(i) for i in range(3)])
        index_pending(installed)
        # A forged lookup row pointing the stranger's key at record 2 (consent-1's record).
        with installed.begin() as conn:
            conn.execute(
                insert(audit_lookup).values(
                    kind=LOOKUP_KINDS["consent_id"], bucket=0, key=lookup_key("consent-0"), seq=2
                )
            )
        found = find_records(installed, RecordFilter(consent_id="consent-0"))
        assert [r.seq for r in found] == [1]


class TestMigration:
    @staticmethod
    def _records_of_revision_0001(engine: Engine, count: int) -> None:
        migrate.upgrade(engine, "audit", "0001")
        # What a writer of revision 0001 wrote: sealed records (the writer needs 0002 now).
        previous, records = GENESIS_CHAIN_HASH, []
        for i in range(count):
            record = seal(make_entry(i), seq=i + 1, time=TIME, previous_chain_hash=previous)
            previous = record.chain_hash
            records.append(record_values(record))
        with engine.begin() as conn:
            conn.execute(insert(audit_records), records)
            backfill_in(conn)  # and the tree nodes it wrote with them

    def test_0002_indexes_the_records_already_there(self, engine: Engine) -> None:
        self._records_of_revision_0001(engine, 12)
        migrate.upgrade(engine, "audit")
        assert _watermark(engine) == 12
        assert _lookup_rows(engine) == 36
        found = records_for_subject(engine, SUBJECT_0, limit=50)
        assert [r.seq for r in found] == [10, 7, 4, 1]

    def test_0003_puts_the_rows_in_buckets_and_back(self, engine: Engine) -> None:
        self._records_of_revision_0001(engine, 12)
        migrate.upgrade(engine, "audit", "0002")  # indexes the 12
        (late,) = append_now(engine, [make_entry(12)])  # not indexed yet
        far = [(1, 7, 65_535), (1, 7, 65_536), (2, 7, 200_000)]  # rows past the first bucket
        with engine.begin() as conn:
            for kind, key, seq in far:
                conn.execute(
                    text("INSERT INTO audit_lookup VALUES (:kind, :key, :seq)"),
                    {"kind": kind, "key": key, "seq": seq},
                )
        migrate.upgrade(engine, "audit")
        with engine.connect() as conn:
            rows = conn.execute(select(audit_lookup)).all()
        assert len(rows) == 39
        assert all(row.bucket == row.seq >> BUCKET_BITS for row in rows)
        assert {(row.seq, row.bucket) for row in rows if row.key == 7} == {
            (65_535, 0),
            (65_536, 1),
            (200_000, 3),
        }
        assert _watermark(engine) == 12
        found = records_for_subject(engine, SUBJECT_0, limit=50)
        assert [r.seq for r in found] == [13, 10, 7, 4, 1]
        assert find_records(engine, RecordFilter(xroad_id=late.xroad_id)) == [late]
        wanted = make_entry(5).xroad_id
        assert [r.seq for r in find_records(engine, RecordFilter(xroad_id=wanted))] == [6]
        config = migrate._config("audit")
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0002")
        with engine.connect() as conn:
            columns = list(conn.exec_driver_sql("SELECT * FROM audit_lookup").keys())
            count = conn.exec_driver_sql("SELECT count(*) FROM audit_lookup").scalar()
        assert (columns, count) == (["kind", "key", "seq"], 39)

    def test_0003_runs_again_after_a_failed_run(self, engine: Engine) -> None:
        # On SQLite a run that failed while copying leaves its new table behind.
        migrate.upgrade(engine, "audit", "0002")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE audit_lookup_next (half_built INTEGER)"))
        migrate.upgrade(engine, "audit")
        append_now(engine, [make_entry(0)])
        assert index_pending(engine) == 1
