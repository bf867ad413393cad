"""``python -m bench.audit_bench`` (``make bench-audit``): the audit log's figures, each beside
a baseline measured in the same run on the same machine.

- durable appends/s through the group-commit writer (SQLite, WAL, ``synchronous=FULL``), beside
  plain one-row-per-commit inserts of the same records;
- seconds to verify N records (default 1,000,000) online and offline (an export file), beside
  plain SHA-256 over the same canonical bytes;
- milliseconds to build an inclusion proof at N records, beside one primary-key record read;
- on PostgreSQL (when a server answers), durable appends/s with one and with two writer
  processes, beside one-row-per-commit inserts (``bench/audit_pg.py``).

Not a test: it prints figures, asserts nothing. ``AUDIT_BENCH_RECORDS`` sets N.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
import random
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from audit import AuditEntry, AuditLog, append_now, install, read_records
from audit.checkpoints import sign_now
from audit.export import iter_export, verify_export
from audit.notes import open_checkpoint
from audit.records import canonical_json, record_document
from audit.tree import inclusion_proof_at
from audit.verify import verify_log
from bench.audit_pg import bench_postgres
from broker.db import create_db_engine

_T = TypeVar("_T")
ORIGIN = "bench.simpul/audit"


def _engine(path: Path) -> Engine:
    # The broker's own engine setup (WAL, synchronous=FULL, busy timeout).
    return create_db_engine(f"sqlite:///{path}")


def _entry(i: int) -> AuditEntry:
    digest = hashlib.sha256(str(i).encode()).hexdigest()
    return AuditEntry(
        event="exchange",
        # Random like real X-Road ids (uuid4), so an index on it would pay its real price.
        xroad_id=str(
            uuid.UUID(bytes=hashlib.sha256(b"x" + str(i).encode()).digest()[:16], version=4)
        ),
        client="ID/GOV/DPMPTSP-DKI/perizinan",
        service="ID/GOV/DUKCAPIL/adminduk/ktp",
        officer="petugas-7",
        issue=f"PB-UMKU/2026/{i:06d}",
        purpose="perizinan-berusaha",
        consent_id=f"consent-{i % 997}",
        subject_ref=digest,
        decision="allowed",
        reason=None,
        status=200,
        request_hash=digest,
        response_hash=digest,
        released_fields=("nama", "tanggal_lahir", "alamat"),
        latency_us=1500 + i % 1000,
    )


def _timed(fn: Callable[[], _T]) -> tuple[float, _T]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def bench_appends(folder: Path, count: int, concurrency: int) -> tuple[float, float]:
    """(group-commit appends/s into a new log, one-row-per-commit inserts/s)."""
    engine = _engine(folder / "appends.db")
    install(engine)
    rate = append_rate(engine, range(count), concurrency)
    engine.dispose()
    # Baseline: the same rows, one INSERT and one COMMIT each, plain sqlite3, same pragmas.
    rows = 2000
    plain = folder / "plain.db"
    with closing(sqlite3.connect(plain, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, doc TEXT NOT NULL)")
        docs = [
            canonical_json(
                record_document(_entry(i), seq=i + 1, time="2026-01-01T00:00:00.000000Z")
            )
            for i in range(rows)
        ]
        start = time.perf_counter()
        for i, doc in enumerate(docs):
            conn.execute("BEGIN")
            conn.execute("INSERT INTO t VALUES (?, ?)", (i + 1, doc))
            conn.execute("COMMIT")
        plain_elapsed = time.perf_counter() - start
    return rate, rows / plain_elapsed


def append_rate(engine: Engine, numbers: range, concurrency: int) -> float:
    """Durable appends/s of the entries ``numbers`` through the broker's writer and settings."""

    async def run() -> float:
        async with AuditLog(engine, max_delay=0.0) as writer:  # the broker's settings
            entries = [_entry(i) for i in numbers]
            queue = iter(entries)
            # The prepared entries are the bench's input, not the log's state: a broker never
            # holds 100,000 of them. Frozen, they stay out of the collector's full passes,
            # which would otherwise walk them all and bill the writer for it.
            gc.freeze()

            async def worker() -> None:
                for entry in queue:
                    await writer.commit(entry)  # as the exchange and consent events do

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - start

    try:
        return len(numbers) / asyncio.run(run())
    finally:
        gc.unfreeze()


def build_log(folder: Path, records: int) -> Engine:
    """A log of ``records`` records written in large batches (the same code path as the writer)."""
    engine = _engine(folder / "big.db")
    install(engine)
    batch = 20_000
    for start in range(0, records, batch):
        append_now(engine, [_entry(i) for i in range(start, min(records, start + batch))])
    return engine


def _plain_sha256_seconds(engine: Engine) -> float:
    """The baseline: SHA-256 over every record's canonical bytes, nothing else."""
    canonical = [record.canonical() for record in read_records(engine, page_size=20_000)]
    start = time.perf_counter()
    for data in canonical:
        hashlib.sha256(b"\x00" + data).digest()
    return time.perf_counter() - start


def main() -> int:
    """Run every figure and print it beside its baseline."""
    records = int(os.environ.get("AUDIT_BENCH_RECORDS", "1000000"))
    appends = int(os.environ.get("AUDIT_BENCH_APPENDS", "100000"))
    key = Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory(prefix="simpul-bench-audit-") as tmp:
        folder = Path(tmp)
        rate, plain_rate = bench_appends(folder, appends, concurrency=256)
        print(
            f"appends, durable, SQLite     {rate:>12,.0f} /s   "
            f"(baseline one-row-per-commit: {plain_rate:,.0f} /s; target >= 30,000 /s)"
        )
        bench_postgres()

        build_s, engine = _timed(lambda: build_log(folder, records))
        print(f"built a {records:,}-record log in {build_s:.1f} s ({records / build_s:,.0f} /s)")
        checkpoint = sign_now(engine, origin=ORIGIN, kid="bench", key=key)
        opened = open_checkpoint(checkpoint.note, key.public_key())

        sha_s = _plain_sha256_seconds(engine)
        online_s, report = _timed(
            lambda: verify_log(engine, checkpoints=[opened], page_size=20_000)
        )
        assert report.ok, report
        print(
            f"verify {records:,}, online      {online_s:>12.2f} s    "
            f"(baseline plain SHA-256 over the same bytes: {sha_s:.2f} s; target <= 15 s)"
        )
        export = folder / "export.jsonl"
        with export.open("w") as out:
            out.writelines(iter_export(engine, checkpoint))

        def offline() -> Any:
            with export.open() as lines:
                return verify_export(
                    lines, checkpoint_note=checkpoint.note, public_key=key.public_key()
                )

        offline_s, report = _timed(offline)
        assert report.ok, report
        print(
            f"verify {records:,}, offline     {offline_s:>12.2f} s    "
            f"(baseline plain SHA-256 over the same bytes: {sha_s:.2f} s; target <= 15 s)"
        )

        rng = random.Random(7)  # noqa: S311 - picks leaves to prove, no secret involved
        picks = [rng.randrange(records) for _ in range(500)]
        proof_s, _ = _timed(lambda: [inclusion_proof_at(engine, i, records) for i in picks])
        read_s, _ = _timed(
            lambda: [list(read_records(engine, start=i + 1, limit=1)) for i in picks]
        )
        print(
            f"inclusion proof at {records:,} {proof_s / len(picks) * 1000:>8.3f} ms   "
            f"(baseline one record read by key: {read_s / len(picks) * 1000:.3f} ms; "
            "target <= 5 ms)"
        )
        # The lookup table's B-tree and the tree's pages grow with the log: appends onto the
        # big log, beside the ones into a new log above.
        big_rate = append_rate(engine, range(records, records + appends), concurrency=256)
        print(
            f"appends, durable, SQLite, onto the {records:,}-record log "
            f"{big_rate:,.0f} /s   (into a new log: {rate:,.0f} /s; target >= 30,000 /s)"
        )
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
