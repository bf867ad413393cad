"""Where records live: the ``audit_records`` table, its append-only guard, and reads.

The table is append-only at the database level: triggers refuse UPDATE and DELETE (and
TRUNCATE on PostgreSQL; on SQLite also an INSERT that is not the next sequence number, which
closes INSERT OR REPLACE). They stop mistakes and ordinary SQL access; whoever can drop a
trigger (the table's owner) can drop the table too, which is what the hash chain and the
verifier are for. On PostgreSQL the broker should therefore not connect as the owner.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import Any, Final

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    select,
)
from sqlalchemy.exc import OperationalError

from audit._bulk import fetch_rows
from audit._lock import write_transaction
from audit._undecodable import read_page, undecodable_text_kept
from audit.records import AuditRecord

__all__ = [
    "APPEND_ONLY_TABLES",
    "COLUMNS",
    "DOCUMENT_COLUMNS",
    "audit_checkpoints",
    "audit_lookup",
    "audit_lookup_marks",
    "audit_records",
    "audit_tree",
    "count",
    "encode_fields",
    "install",
    "iter_raw_tuples",
    "iter_rows",
    "metadata",
    "read_records",
    "record_from_row",
    "record_row",
    "record_values",
    "tail",
    "tail_in",
]

metadata = MetaData()

audit_records = Table(
    "audit_records",
    metadata,
    # Assigned by the writer inside its lock, never by a sequence (sequences leave gaps).
    # BIGINT on PostgreSQL; INTEGER on SQLite, where it is the 64-bit rowid.
    Column(
        "seq",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("time", Text, nullable=False),
    Column("event", Text, nullable=False),
    Column("xroad_id", Text, nullable=False),
    Column("client", Text, nullable=False),
    Column("service", Text),
    Column("officer", Text),
    Column("issue", Text),
    Column("purpose", Text),
    Column("consent_id", Text),
    Column("subject_ref", Text),
    Column("decision", Text, nullable=False),
    Column("reason", Text),
    Column("status", Integer, nullable=False),
    Column("request_hash", Text),
    Column("response_hash", Text),
    Column("released_fields", Text, nullable=False),  # canonical JSON array
    Column("latency_us", BigInteger, nullable=False),
    Column("leaf_hash", Text, nullable=False),
    Column("chain_hash", Text, nullable=False),
    # The only secondary index here grows at its right edge, like the table. Lookups by
    # subject, consent or X-Road id go through audit_lookup (see audit.lookup).
    Index("ix_audit_records_time", "time"),
)

#: Derived from audit_records, written in bulk by the writer: (kind, bucket, 64-bit key, seq),
#: where bucket is seq >> audit.lookup.BUCKET_BITS (see there).
audit_lookup = Table(
    "audit_lookup",
    metadata,
    Column("kind", Integer, autoincrement=False),
    Column("bucket", BigInteger, autoincrement=False),
    Column("key", BigInteger, autoincrement=False),
    Column("seq", BigInteger, autoincrement=False),
    # Named: a log migrated from revision 0002 got its table under another name (see 0003).
    PrimaryKeyConstraint("kind", "bucket", "key", "seq", name="audit_lookup_pkey"),
    sqlite_with_rowid=False,
)

#: Each indexing pass's last seq: audit_lookup is complete up to the largest.
audit_lookup_marks = Table(
    "audit_lookup_marks",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False
    ),
)

audit_tree = Table(
    "audit_tree",
    metadata,
    # merkle.node_id(level, index): the perfect subtree's in-order position (leaves are even).
    Column(
        "id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False
    ),
    Column("hash", LargeBinary(32), nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", Text, nullable=False),  # hex
    Column("time", Text, nullable=False),
    Column("key_name", Text, nullable=False),
    Column("key_id", Text, nullable=False),  # hex of the signed-note key ID (4 bytes)
    Column("kid", Text, nullable=False),  # the signing JWK's kid
    Column("note", Text, nullable=False),  # the signed note, exactly as signed
    Index("ix_audit_checkpoints_tree_size", "tree_size"),
)

#: The record columns, in table order, as plain ``str`` (column names are a str subclass,
#: which orjson will not take as a key).
COLUMNS: Final = tuple(str.__str__(column.name) for column in audit_records.columns)
#: The columns a record's canonical JSON covers (all but its two hashes).
DOCUMENT_COLUMNS: Final = tuple(name for name in COLUMNS if name not in ("leaf_hash", "chain_hash"))

#: The tables that only ever grow: UPDATE and DELETE (and TRUNCATE) are refused on each.
APPEND_ONLY_TABLES: Final = (
    "audit_records",
    "audit_tree",
    "audit_checkpoints",
    "audit_lookup",
    "audit_lookup_marks",
)

_SQLITE_TRIGGERS: Final = (
    *(
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_{verb.lower()}
    BEFORE {verb} ON {table}
    BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"""
        for table in APPEND_ONLY_TABLES
        for verb in ("UPDATE", "DELETE")
    ),
    # INSERT OR REPLACE deletes the old row without firing DELETE triggers (unless
    # recursive_triggers is on), so an insert must take exactly the next sequence number.
    """CREATE TRIGGER IF NOT EXISTS audit_records_next_seq
    BEFORE INSERT ON audit_records
    WHEN NEW.seq IS NOT coalesce((SELECT max(seq) FROM audit_records), 0) + 1
    BEGIN SELECT RAISE(ABORT, 'audit_records is append-only: seq must be the next one'); END""",
)

_PG_FUNCTION: Final = """
CREATE OR REPLACE FUNCTION audit_records_append_only() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only';
END
$fn$"""

# (name, timing, level): TRUNCATE triggers exist only per statement.
_PG_TRIGGERS: Final = tuple(
    (table, f"{table}_no_{verb}", f"BEFORE {verb.upper()}", level)
    for table in APPEND_ONLY_TABLES
    for verb, level in (("update", "ROW"), ("delete", "ROW"), ("truncate", "STATEMENT"))
)


def _pg_trigger_sql(table: str, name: str, timing: str, level: str) -> list[str]:
    create = (
        f"CREATE TRIGGER {name} {timing} ON {table} "
        f"FOR EACH {level} EXECUTE FUNCTION audit_records_append_only()"
    )
    return [
        # CREATE OR REPLACE TRIGGER needs PostgreSQL 14; this works from 11 on.
        f"""DO $do$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_trigger
                           WHERE tgname = '{name}' AND tgrelid = '{table}'::regclass) THEN
                {create};
            END IF;
        END $do$""",  # noqa: S608 - only this module's constant names go in
        # ALWAYS: still fires with session_replication_role = replica, the usual bypass.
        f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {name}",
    ]


def install(engine: Engine) -> None:
    """Create the tables, indexes and append-only triggers; safe to run again.

    Runs under the writers' lock, so nodes starting together do not race each other. A log
    written before the Merkle tree was kept gets its tree built here, once.
    """
    from audit.tree import backfill_in  # the tree module builds on this one's tables

    with write_transaction(engine) as conn:
        metadata.create_all(conn)
        backfill_in(conn)
        if conn.dialect.name == "sqlite":
            for statement in _SQLITE_TRIGGERS:
                conn.exec_driver_sql(statement)
        else:
            conn.exec_driver_sql(_PG_FUNCTION)
            for trigger in _PG_TRIGGERS:
                for statement in _pg_trigger_sql(*trigger):
                    conn.exec_driver_sql(statement)


def count(engine: Engine) -> int:
    """How many records the table holds (a full count; :func:`tail` is the cheap size)."""
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(audit_records)) or 0)


def tail(engine: Engine) -> tuple[int, str] | None:
    """The last record's ``(seq, chain_hash)``, or None while the log is empty."""
    with engine.connect() as conn:
        return tail_in(conn)


def tail_in(conn: Connection) -> tuple[int, str] | None:
    """:func:`tail` inside an open transaction (the writer's, under its lock)."""
    # Driver-level SQL: the writer runs this once per batch, and Core's statement caching
    # cost more than the read itself.
    rows = fetch_rows(conn, "SELECT seq, chain_hash FROM audit_records ORDER BY seq DESC LIMIT 1")
    return (int(rows[0][0]), str(rows[0][1])) if rows else None


def read_records(
    engine: Engine, *, start: int = 1, limit: int | None = None, page_size: int = 1000
) -> Iterator[AuditRecord]:
    """Records in sequence order from ``start``, at most ``limit`` of them.

    Streams a page at a time, each page its own short read, so walking a large log keeps
    neither the log in memory nor a transaction open (which would stall SQLite checkpoints).
    Raises ValueError on a row that is not a well-formed record.
    """
    for row in iter_rows(engine, start=start, limit=limit, page_size=page_size):
        yield record_from_row(row)


def iter_rows(
    engine: Engine, *, start: int = 1, limit: int | None = None, page_size: int = 1000
) -> Iterator[Mapping[str, Any]]:
    """Raw rows in sequence order (for the verifier, which must see malformed rows too)."""
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    remaining = limit
    next_seq = start
    while remaining is None or remaining > 0:
        size = page_size if remaining is None else min(page_size, remaining)
        query = (
            select(audit_records)
            .where(audit_records.c.seq >= next_seq)
            .order_by(audit_records.c.seq)
            .limit(size)
        )
        with engine.connect() as conn:
            try:
                page = [dict(row) for row in conn.execute(query).mappings()]
            except OperationalError as exc:
                if not isinstance(exc.orig, sqlite3.OperationalError):
                    raise
                # Text that is not UTF-8 (see read_page): the page again, its bytes kept.
                # (Any other failure comes back from the second read.)
                with undecodable_text_kept(conn):
                    page = [dict(row) for row in conn.execute(query).mappings()]
        yield from page
        if len(page) < size:
            return
        next_seq = int(page[-1]["seq"]) + 1
        if remaining is not None:
            remaining -= len(page)


def record_values(record: AuditRecord) -> dict[str, object]:
    """The column values of ``record``."""
    return {
        "seq": record.seq,
        "time": record.time,
        "event": record.event,
        "xroad_id": record.xroad_id,
        "client": record.client,
        "service": record.service,
        "officer": record.officer,
        "issue": record.issue,
        "purpose": record.purpose,
        "consent_id": record.consent_id,
        "subject_ref": record.subject_ref,
        "decision": record.decision,
        "reason": record.reason,
        "status": record.status,
        "request_hash": record.request_hash,
        "response_hash": record.response_hash,
        "released_fields": _encode_fields(record.released_fields),
        "latency_us": record.latency_us,
        "leaf_hash": record.leaf_hash,
        "chain_hash": record.chain_hash,
    }


def record_row(record: AuditRecord) -> tuple[object, ...]:
    """The column values of ``record`` as a tuple, in the table's column order."""
    return (
        record.seq,
        record.time,
        record.event,
        record.xroad_id,
        record.client,
        record.service,
        record.officer,
        record.issue,
        record.purpose,
        record.consent_id,
        record.subject_ref,
        record.decision,
        record.reason,
        record.status,
        record.request_hash,
        record.response_hash,
        _encode_fields(record.released_fields),
        record.latency_us,
        record.leaf_hash,
        record.chain_hash,
    )


def record_from_row(row: Mapping[str, Any]) -> AuditRecord:
    """The record a row holds; ValueError or TypeError if the row is not a well-formed one."""
    return AuditRecord(
        event=row["event"],
        xroad_id=row["xroad_id"],
        client=row["client"],
        service=row["service"],
        officer=row["officer"],
        issue=row["issue"],
        purpose=row["purpose"],
        consent_id=row["consent_id"],
        subject_ref=row["subject_ref"],
        decision=row["decision"],
        reason=row["reason"],
        status=row["status"],
        request_hash=row["request_hash"],
        response_hash=row["response_hash"],
        released_fields=_decode_fields(row["released_fields"]),
        latency_us=row["latency_us"],
        seq=row["seq"],
        time=row["time"],
        leaf_hash=row["leaf_hash"],
        chain_hash=row["chain_hash"],
    )


def encode_fields(fields: Sequence[str]) -> str:
    """``released_fields`` as stored: canonical JSON text of the list."""
    return _encode_fields(tuple(fields))


def _encode_fields(fields: tuple[str, ...]) -> str:
    # Canonical JSON as in records.canonical_json (a list of strings has no keys to sort).
    return orjson.dumps(list(fields)).decode()


def _decode_fields(text: object) -> tuple[str, ...]:
    if not isinstance(text, str):
        raise TypeError("released_fields must be JSON text")
    try:
        items = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ValueError("released_fields is not JSON") from None
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ValueError("released_fields must be a JSON array of strings")
    fields = tuple(items)
    # Only the canonical spelling is accepted, so the stored text itself cannot drift.
    if _encode_fields(fields) != text:
        raise ValueError("released_fields is not canonical JSON")
    return fields


def iter_raw_tuples(
    engine: Engine, *, start: int = 1, page_size: int = 1000
) -> Generator[tuple[Any, ...], None, None]:
    """Rows from ``start`` on as the driver's tuples, in :data:`COLUMNS` order (verifier's path).

    Like :func:`iter_rows` without a dict or a SQLAlchemy row per record. Each page is its
    own read, streamed off the driver's cursor while the caller checks it (a page kept in the
    CPU caches, not a list of thousands of rows), so a read lasts as long as its page's checks.
    """
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    next_seq = start
    while True:
        fetched = 0
        last: tuple[Any, ...] | None = None
        with engine.connect() as conn:
            mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            sql = (
                f"SELECT {', '.join(COLUMNS)} FROM audit_records "  # noqa: S608 - constant names
                f"WHERE seq >= {mark} ORDER BY seq LIMIT {mark}"
            )
            for chunk in read_page(conn, sql, next_seq, page_size):
                fetched += len(chunk)
                last = chunk[-1]
                yield from chunk
        if fetched < page_size or last is None:
            return
        next_seq = int(last[0]) + 1
