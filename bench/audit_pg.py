"""The audit log's group commit on PostgreSQL, with one and with two writer processes.

Part of ``make bench-audit``: durable appends/s through ``AuditLog`` (one advisory lock per
batch, sequence numbers assigned inside it), beside plain one-row-per-commit inserts measured in
the same run. Each writer process is a broker node's writer. Runs in a schema of its own,
dropped afterwards; skipped (with the reason) when no server answers.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
import uuid
from typing import Any

from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import OperationalError

from audit import AuditEntry, AuditLog
from audit.store import audit_records
from audit.verify import verify_log
from broker import migrate
from broker.db import create_db_engine, with_search_path

__all__ = ["bench_postgres"]

URL = os.environ.get(
    "SIMPUL_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _entry(i: int, writer: int) -> AuditEntry:
    return AuditEntry(
        event="exchange",
        xroad_id=str(uuid.UUID(int=(writer << 64) | i)),
        client="ID/GOV/DPMPTSP-DKI/perizinan",
        service="ID/GOV/DUKCAPIL/adminduk/ktp",
        officer="petugas-0042",
        issue="PB-UMKU/2026/11/000123",
        purpose="perizinan-berusaha",
        consent_id=str(uuid.UUID(int=i)),
        subject_ref="ab" * 32,
        decision="allowed",
        reason=None,
        status=200,
        request_hash="cd" * 32,
        response_hash="ef" * 32,
        released_fields=("nama", "tanggal_lahir", "alamat"),
        latency_us=1234,
    )


def _writer(
    url: str, writer: int, count: int, concurrency: int, start_at: float, ends: Any
) -> None:
    engine = create_db_engine(url)
    entries = [_entry(i, writer) for i in range(count)]
    with engine.connect() as conn:  # a warm pool: connecting is not part of the figure
        conn.exec_driver_sql("SELECT 1")

    async def run() -> None:
        # The broker's writer settings (broker/runtime.py): no delay, batches form while the
        # previous one commits.
        async with AuditLog(engine, max_delay=0.0) as log:
            queue = iter(entries)

            async def worker() -> None:
                for entry in queue:
                    await log.append(entry)

            await asyncio.sleep(max(0.0, start_at - time.time()))  # all processes start together
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        ends.put(time.time())

    asyncio.run(run())
    engine.dispose()


def _appends(url: str, processes: int, total: int) -> float:
    # Far enough ahead for every spawned interpreter to import, connect and build its entries.
    start_at = time.time() + 5.0
    context = multiprocessing.get_context("spawn")
    ends = context.Queue()
    procs = [
        context.Process(target=_writer, args=(url, w, total // processes, 256, start_at, ends))
        for w in range(processes)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"writer process failed with {proc.exitcode}")
    if time.time() < start_at:
        raise RuntimeError("the writers finished before they were due to start")
    return total / (max(float(ends.get()) for _ in procs) - start_at)


def _one_per_commit(url: str, rows: int) -> float:
    engine = create_db_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE plain_rows (seq BIGINT PRIMARY KEY, doc TEXT NOT NULL)")
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        started = time.perf_counter()
        for i in range(rows):
            cursor.execute("INSERT INTO plain_rows VALUES (%s, %s)", (i + 1, f"record {i}"))
            raw.commit()
        elapsed = time.perf_counter() - started
    finally:
        raw.close()
        engine.dispose()
    return rows / elapsed


def bench_postgres(total: int = 60_000) -> None:
    """Print PostgreSQL group-commit appends/s (1 and 2 writer processes) beside the baseline."""
    admin = create_engine(URL)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql("SELECT 1")
    except OperationalError as exc:
        print(f"PostgreSQL appends: skipped, no server at {URL}: {str(exc.orig).strip()}")
        admin.dispose()
        return
    for processes in (1, 2):
        schema = f"simpul_bench_{uuid.uuid4().hex[:10]}"
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        url = with_search_path(URL, schema)
        try:
            engine = create_db_engine(url)
            migrate.upgrade(engine, "audit")
            rate = _appends(url, processes, total)
            with engine.connect() as conn:
                count, low, high = conn.execute(
                    select(
                        func.count(), func.min(audit_records.c.seq), func.max(audit_records.c.seq)
                    )
                ).one()
            gap_free = (count, low, high) == (total, 1, total)
            verified = verify_log(engine).ok
            engine.dispose()
            baseline = _one_per_commit(url, 2000) if processes == 1 else None
        finally:
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        writers = f"{processes} writer process" + ("es" if processes > 1 else "")
        line = (
            f"appends, durable, PostgreSQL, {writers} {rate:>10,.0f} /s   "
            f"(gap-free: {gap_free}, verifies: {verified}; target >= 15,000 /s)"
        )
        if baseline is not None:
            line += f"\n  baseline one-row-per-commit on the same server: {baseline:,.0f} /s"
        print(line, flush=True)
    admin.dispose()
