"""Finding a citizen's, a consent's or an exchange's records without slowing down the appends.

A B-tree index on a random key (a subject hash, a consent id, an X-Road id) costs a random
page write per record. SQLite's WAL writes whole pages at every commit, so three such indexes
on ``audit_records`` made a durable append cost several times an index-free one. The log
therefore keeps them apart, as derived data written in bulk:

- ``audit_lookup`` holds ``(kind, bucket, key, seq)``: ``key`` is the first 8 bytes of SHA-256
  of the looked-up value, a compact integer, so the index is small. A key may collide; every
  query compares the record's own column too. ``bucket`` is ``seq >> BUCKET_BITS``: it leads
  the key, so the rows of new records all go into the newest bucket's part of the B-tree, and
  an indexing pass dirties only that bucket's pages, however large the log. (Without it, each
  pass wrote pages all over an index that grows with the log: on a 1,000,000-record log
  appends ran at half the rate.) A query seeks once per bucket.
- ``audit_lookup_marks`` holds the sequence number up to which ``audit_lookup`` is complete.
  Each pass inserts one mark in the same transaction as its rows; the watermark is the largest.
- The writer indexes inside its own lock and transaction (:func:`index_pending_in`), once at
  least :data:`INDEX_EVERY` records wait, and whenever it falls idle, so under load one pass
  covers thousands of records and at rest nothing waits long. A pass is one ``INSERT ...
  SELECT`` per page of records: the database derives, sorts and inserts the rows itself.

A query reads the watermark, takes the records up to it through ``audit_lookup`` and scans the
few after it by sequence number, so its answer is always complete. Both tables are derived from
``audit_records`` alone: they can be rebuilt, and the verifiers never read them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Final, Literal

from sqlalchemy import ColumnElement, Connection, Select, select

from audit._bulk import fetch_rows
from audit.records import AuditRecord
from audit.store import audit_lookup, audit_lookup_marks, audit_records, record_from_row

__all__ = [
    "BUCKET_BITS",
    "INDEX_EVERY",
    "LOOKUP_KINDS",
    "Kind",
    "index_pending_in",
    "indexed_through_in",
    "lookup_key",
    "select_records",
]

Kind = Literal["subject_ref", "consent_id", "xroad_id"]

#: The looked-up columns and their ``kind`` numbers in ``audit_lookup`` (never renumber).
LOOKUP_KINDS: Final[dict[Kind, int]] = {"subject_ref": 1, "consent_id": 2, "xroad_id": 3}

#: How many records may wait before the writer indexes them inside a batch.
INDEX_EVERY: Final = 8192

#: ``bucket = seq >> BUCKET_BITS``: 65,536 records a bucket (stored in every row: never change
#: it without re-indexing, as migration 0003 did when buckets came in).
BUCKET_BITS: Final = 16

#: Records per indexing statement: bounds the database's sort, not Python's memory.
_PAGE: Final = 100_000
_SQLITE_KEY_FUNCTION: Final = "simpul_lookup_key"
#: :func:`lookup_key` in PostgreSQL's SQL: ``bit(64)`` reads the hex digits as a signed bigint.
_PG_KEY: Final = (
    "('x' || substr(encode(sha256(convert_to({column}, 'UTF8')), 'hex'), 1, 16))::bit(64)::bigint"
)


def lookup_key(value: str) -> int:
    """The signed 64-bit key of ``value``: the first 8 bytes of its SHA-256, big-endian."""
    return int.from_bytes(hashlib.sha256(value.encode()).digest()[:8], "big", signed=True)


def indexed_through_in(conn: Connection) -> int:
    """The sequence number up to which ``audit_lookup`` covers every record (0: none)."""
    ((top,),) = fetch_rows(conn, "SELECT max(seq) FROM audit_lookup_marks")
    return int(top or 0)


def index_pending_in(conn: Connection, *, upto: int | None = None) -> int:
    """Index the records after the watermark (through ``upto``); return how many were indexed.

    Must run inside the audit write lock (the writer's transaction), like an append: the
    watermark read here is the one no other writer can move meanwhile. The rows are made,
    sorted and inserted by the database in one statement per page (see :func:`_index_sql`):
    no record is read back into Python.
    """
    start = indexed_through_in(conn)
    ((top,),) = fetch_rows(conn, "SELECT max(seq) FROM audit_records")
    stop = int(top or 0) if upto is None else min(upto, int(top or 0))
    if stop <= start:
        return 0
    if conn.dialect.name == "sqlite":
        # Registered per pass, on whichever pooled connection holds the lock: cheap, and no
        # connection needs setting up in advance.
        raw: Any = conn.connection.driver_connection
        raw.create_function(_SQLITE_KEY_FUNCTION, 1, lookup_key, deterministic=True)
    statement = _index_sql(conn)
    for low in range(start, stop, _PAGE):
        conn.exec_driver_sql(statement, {"low": low, "high": min(low + _PAGE, stop)})
    conn.execute(audit_lookup_marks.insert().values(seq=stop))
    return stop - start


def _index_sql(conn: Connection) -> str:
    """``INSERT ... SELECT`` of the lookup rows of the records in ``(low, high]``, in key order.

    In key order the B-tree is written page by page, not at random. On SQLite the key is
    :func:`lookup_key` itself, called by the database; on PostgreSQL the same bytes are taken
    by SQL (the first 16 hex digits of SHA-256, read as a signed 64-bit integer).
    """
    if conn.dialect.name == "sqlite":
        low, high = ":low", ":high"
        key = _SQLITE_KEY_FUNCTION + "({column})"
    else:
        low, high = "%(low)s", "%(high)s"
        key = _PG_KEY
    parts = " UNION ALL ".join(
        f"SELECT {kind} AS kind, {key.format(column=column)} AS key, seq FROM audit_records "  # noqa: S608 - constant names
        f"WHERE seq > {low} AND seq <= {high} AND {column} IS NOT NULL"
        for column, kind in LOOKUP_KINDS.items()
    )
    return (
        "INSERT INTO audit_lookup (kind, bucket, key, seq) "  # noqa: S608 - constant names only
        f"SELECT kind, seq >> {BUCKET_BITS}, key, seq FROM ({parts}) AS pending "
        f"ORDER BY kind, seq >> {BUCKET_BITS}, key, seq"
    )


def select_records(
    conn: Connection,
    kind: Kind,
    value: str,
    filters: Sequence[ColumnElement[bool]] = (),
    *,
    after_seq: int | None = None,
    before_seq: int | None = None,
    newest_first: bool = False,
    limit: int,
) -> list[AuditRecord]:
    """Records whose ``kind`` column equals ``value`` and every filter holds, in seq order.

    ``after_seq`` / ``before_seq`` bound the sequence numbers (exclusive); ``newest_first``
    reverses the order. At most ``limit`` records.
    """
    column = audit_records.c[kind]
    where = [column == value, *filters]
    if after_seq is not None:
        where.append(audit_records.c.seq > after_seq)
    if before_seq is not None:
        where.append(audit_records.c.seq < before_seq)
    order = audit_records.c.seq.desc() if newest_first else audit_records.c.seq
    watermark = indexed_through_in(conn)
    # One seek per bucket the bounds leave (an IN list: a range on bucket would scan).
    first = 0 if after_seq is None else max(0, after_seq + 1)
    last = watermark if before_seq is None else min(watermark, before_seq - 1)
    buckets = list(range(first >> BUCKET_BITS, (last >> BUCKET_BITS) + 1)) if first <= last else []
    indexed: Select[tuple[object, ...]] = (
        select(audit_records)
        .join(audit_lookup, audit_lookup.c.seq == audit_records.c.seq)
        .where(
            audit_lookup.c.kind == LOOKUP_KINDS[kind],
            audit_lookup.c.bucket.in_(buckets),
            audit_lookup.c.key == lookup_key(value),
            audit_lookup.c.seq <= watermark,
            *where,
        )
        # In index order (bucket rises with seq), so the database stops after ``limit`` rows
        # instead of sorting every match first.
        .order_by(
            *(
                (audit_lookup.c.bucket.desc(), audit_lookup.c.seq.desc())
                if newest_first
                else (audit_lookup.c.bucket, audit_lookup.c.seq)
            )
        )
        .limit(limit)
    )
    recent = (
        select(audit_records)
        .where(audit_records.c.seq > watermark, *where)
        .order_by(order)
        .limit(limit)
    )
    # Every indexed record comes before every recent one; newest first, the other way round.
    # Bounds that leave no indexed record leave no bucket either: nothing to look up.
    if not buckets:
        parts: tuple[Select[tuple[object, ...]], ...] = (recent,)
    else:
        parts = (recent, indexed) if newest_first else (indexed, recent)
    found: list[AuditRecord] = []
    for part in parts:
        if len(found) >= limit:
            break
        found.extend(record_from_row(dict(row)) for row in conn.execute(part).mappings())
    return found[:limit]
