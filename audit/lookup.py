"""Finding a citizen's, a consent's or an exchange's records without slowing down the appends.

A B-tree index on a random key (a subject hash, a consent id, an X-Road id) costs a random
page write per record. SQLite's WAL writes whole pages at every commit, so three such indexes
on ``audit_records`` made a durable append cost several times an index-free one. The log
therefore keeps them apart, as derived data written in bulk:

- ``audit_lookup`` holds ``(kind, key, seq)``: ``key`` is the first 8 bytes of SHA-256 of the
  looked-up value, a compact integer, so the index is small and a batch of many records dirties
  few pages. A key may collide; every query compares the record's own column too.
- ``audit_lookup_marks`` holds the sequence number up to which ``audit_lookup`` is complete.
  Each pass inserts one mark in the same transaction as its rows; the watermark is the largest.
- The writer indexes inside its own lock and transaction (:func:`index_pending_in`), once at
  least :data:`INDEX_EVERY` records wait, and whenever it falls idle, so under load one pass
  covers thousands of records and at rest nothing waits long.

A query reads the watermark, takes the records up to it through ``audit_lookup`` and scans the
few after it by sequence number, so its answer is always complete. Both tables are derived from
``audit_records`` alone: they can be rebuilt, and the verifiers never read them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final, Literal

from sqlalchemy import ColumnElement, Connection, Select, select

from audit._bulk import fetch_rows, insert_rows
from audit.records import AuditRecord
from audit.store import audit_lookup, audit_lookup_marks, audit_records, record_from_row

__all__ = [
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

_PAGE: Final = 20_000


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
    watermark read here is the one no other writer can move meanwhile.
    """
    start = indexed_through_in(conn)
    end = start
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    names = ", ".join(LOOKUP_KINDS)
    read = (
        f"SELECT seq, {names} FROM audit_records "  # noqa: S608 - constant column names
        f"WHERE seq > {mark} ORDER BY seq LIMIT {mark}"
    )
    kinds = tuple(LOOKUP_KINDS.values())
    sha256 = hashlib.sha256
    from_bytes = int.from_bytes
    while upto is None or end < upto:
        limit = _PAGE if upto is None else min(_PAGE, upto - end)
        page = conn.exec_driver_sql(read, (end, limit)).fetchall()
        if not page:
            break
        rows = [
            (kind, from_bytes(sha256(value.encode()).digest()[:8], "big", signed=True), seq)
            for seq, *values in page
            for kind, value in zip(kinds, values, strict=True)
            if value is not None
        ]
        if rows:
            rows.sort()  # in key order the B-tree is written page by page, not at random
            insert_rows(conn, "audit_lookup", ("kind", "key", "seq"), rows)
        end = int(page[-1][0])
    if end > start:
        conn.execute(audit_lookup_marks.insert().values(seq=end))
    return end - start


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
    indexed: Select[tuple[object, ...]] = (
        select(audit_records)
        .join(audit_lookup, audit_lookup.c.seq == audit_records.c.seq)
        .where(
            audit_lookup.c.kind == LOOKUP_KINDS[kind],
            audit_lookup.c.key == lookup_key(value),
            audit_lookup.c.seq <= watermark,
            *where,
        )
        .order_by(audit_lookup.c.seq.desc() if newest_first else audit_lookup.c.seq)
        .limit(limit)
    )
    recent = (
        select(audit_records)
        .where(audit_records.c.seq > watermark, *where)
        .order_by(order)
        .limit(limit)
    )
    # Every indexed record comes before every recent one; newest first, the other way round.
    parts = (recent, indexed) if newest_first else (indexed, recent)
    found: list[AuditRecord] = []
    for part in parts:
        if len(found) >= limit:
            break
        found.extend(record_from_row(dict(row)) for row in conn.execute(part).mappings())
    return found[:limit]
