"""The PostgreSQL branch: install, triggers, advisory-lock appends. Needs psycopg and a server.

Runs against ``SIMPUL_TEST_POSTGRES_URL`` (default: the local ``test`` database) in a schema
of its own, dropped afterwards; skipped where psycopg is not installed or no server answers.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, exc, insert, text

from audit._lock import open_unwaiting
from audit.records import seal
from audit.store import audit_records, count, install, record_values
from audit.verify import NOT_IN_TREE, verify_log
from audit.writer import AuditLog, append_now
from tests.audit._factories import make_entry

pytest.importorskip(
    "psycopg",
    reason="psycopg is not installed; PostgreSQL branch untested here",
)

URL = os.environ.get(
    "SIMPUL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _engine(schema: str) -> Engine:
    return create_engine(URL, connect_args={"options": f"-c search_path={schema}"})


@pytest.fixture
def schema() -> Iterator[str]:
    """A fresh schema on the test server, dropped with everything in it afterwards."""
    name = f"audit_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(URL)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {name}")
    except exc.OperationalError as error:
        admin.dispose()
        pytest.skip(f"no PostgreSQL server at {URL}: {error.orig}")
    try:
        yield name
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
        admin.dispose()


@pytest.fixture
def pg(schema: str) -> Iterator[Engine]:
    """An engine on the schema, with the audit table installed."""
    engine = _engine(schema)
    install(engine)
    yield engine
    engine.dispose()


class TestPostgres:
    def test_install_is_idempotent_and_triggers_always_fire(self, pg: Engine) -> None:
        install(pg)
        with pg.connect() as conn:
            triggers = conn.execute(
                text(
                    "SELECT tgname, tgenabled FROM pg_trigger "
                    "WHERE tgrelid = 'audit_records'::regclass AND NOT tgisinternal"
                )
            ).all()
        assert sorted(triggers) == [
            ("audit_records_no_delete", "A"),
            ("audit_records_no_truncate", "A"),
            ("audit_records_no_update", "A"),
        ]

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE audit_records SET status = 500",
            "DELETE FROM audit_records WHERE seq = 1",
            "TRUNCATE audit_records",
        ],
    )
    @pytest.mark.parametrize("replica", [False, True])
    def test_changing_records_is_refused(self, pg: Engine, statement: str, replica: bool) -> None:
        append_now(pg, [make_entry(1), make_entry(2)])
        with pg.connect() as conn:
            if replica:  # the usual way round ordinary triggers; ENABLE ALWAYS closes it
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            with pytest.raises(exc.DBAPIError, match="append-only"):
                conn.exec_driver_sql(statement)
        assert count(pg) == 2

    def test_append_now_and_verify(self, pg: Engine) -> None:
        records = append_now(pg, [make_entry(i) for i in range(5)])
        assert [record.seq for record in records] == [1, 2, 3, 4, 5]
        assert verify_log(pg).records == 5

    async def test_two_nodes_append_gap_free(self, pg: Engine, schema: str) -> None:
        other = _engine(schema)
        try:
            async with AuditLog(pg, max_batch=8) as first, AuditLog(other, max_batch=8) as second:
                records = await asyncio.gather(
                    *((first if i % 2 else second).append(make_entry(i)) for i in range(300))
                )
        finally:
            other.dispose()
        assert sorted(record.seq for record in records) == list(range(1, 301))
        report = verify_log(pg)
        assert (report.ok, report.records) == (True, 300)

    def test_a_record_inserted_past_the_tree_is_found(self, pg: Engine) -> None:
        # The broker's own INSERT privilege is enough; the triggers guard only old rows.
        (last,) = append_now(pg, [make_entry(i) for i in range(5)])[-1:]
        forged = seal(make_entry(99), seq=6, time=last.time, previous_chain_hash=last.chain_hash)
        with pg.begin() as conn:
            conn.execute(insert(audit_records), record_values(forged))
        report = verify_log(pg)
        assert (report.ok, report.first_bad_seq, report.problem, report.records) == (
            False,
            6,
            NOT_IN_TREE,
            5,
        )

    def test_only_sqlite_is_written_without_waiting(self, pg: Engine) -> None:
        with pytest.raises(ValueError, match="only a SQLite connection"):
            open_unwaiting(pg)

    async def test_alone_is_still_written_on_the_writers_thread(self, pg: Engine) -> None:
        # A PostgreSQL commit is a network round trip: never on the caller's event loop.
        async with AuditLog(pg) as log:
            await asyncio.sleep(0)  # the writer task starts and waits for work
            assert log._wakeup is not None  # parked: where SQLite would write inline
            stamp = await log.commit(make_entry(0), alone=True)
            assert (stamp.seq, log.written_inline, log.batches_written) == (1, 0, 1)
