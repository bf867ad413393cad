"""The synchronous steps of an append, which :class:`audit.writer.AuditLog` runs on its thread.

Every batch runs the same steps whoever calls it: take the write lock, read the tail inside
it, number the records from the tail on, hash and chain them, insert them in one statement,
commit. Nothing about the tail is kept in memory, so several writers (threads, processes,
broker nodes) can share one database, and a writer recovers from a failed batch by itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine

from audit._bulk import insert_rows
from audit._lock import write_transaction
from audit.errors import AuditUnavailable
from audit.lookup import INDEX_EVERY, index_pending_in, indexed_through_in
from audit.merkle import CompactRange
from audit.records import GENESIS_CHAIN_HASH, AuditEntry, AuditRecord, format_time
from audit.sealing import Stamp, record_of, seal_batch
from audit.store import COLUMNS, tail_in
from audit.tree import extend_in

__all__ = ["FAILED", "append_in", "append_now", "checkpoint_wal", "index_pending", "write_batch"]

# The writer's name, as before these steps had a module of their own: logging set-ups name it.
_log = logging.getLogger("audit.writer")

#: What a caller is told when its records could not be written (the cause is chained).
FAILED = "the audit record could not be written"


def append_now(engine: Engine, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
    """Append ``entries`` in one transaction and return their records once committed.

    The synchronous path for the CLI and tests; :class:`AuditLog` batches through the same
    code. Raises :class:`AuditUnavailable` (chained to the cause) if nothing could be written.
    """
    try:
        stamps, _ = write_batch(engine, entries)
    except Exception as exc:
        raise AuditUnavailable(FAILED) from exc
    return [record_of(entry, stamp) for entry, stamp in zip(entries, stamps, strict=True)]


def write_batch(
    engine: Engine, entries: Sequence[AuditEntry], edge: CompactRange | None = None
) -> tuple[list[Stamp], CompactRange | None]:
    """Append ``entries`` in one transaction under the write lock; their stamps once committed.

    Also returns the tree's new right edge, for the next batch to pass as ``edge``: if no
    other writer appended in between (the tail read under the lock says so), that batch need
    not read the edge back from the stored nodes (see :func:`audit.tree.extend_in`).
    """
    if not entries:
        return [], edge
    with write_transaction(engine) as conn:
        stamps, edge, _ = append_in(conn, entries, edge, index=True)
    return stamps, edge


def append_in(
    conn: Connection, entries: Sequence[AuditEntry], edge: CompactRange | None, *, index: bool
) -> tuple[list[Stamp], CompactRange | None, bool]:
    """:func:`write_batch`'s statements, in ``conn``'s transaction under the write lock.

    ``index=False`` leaves a due indexing pass (see below) to the caller, and says so in the
    last value returned.
    """
    last = tail_in(conn)
    seq, previous = last if last is not None else (0, GENESIS_CHAIN_HASH)
    stamps, rows, leaves = seal_batch(
        entries,
        first_seq=seq + 1,
        time=format_time(datetime.now(UTC)),
        previous_chain_hash=previous,
    )
    insert_rows(conn, "audit_records", COLUMNS, rows)
    # The tree grows in the same transaction: a committed record is always a leaf.
    edge = extend_in(conn, seq, leaves, edge=edge)
    # Lookups are indexed in bulk (see audit.lookup); queries scan the few records after.
    index_due = seq + len(entries) - indexed_through_in(conn) >= INDEX_EVERY
    if index_due and index:
        index_pending_in(conn)
        index_due = False
    return stamps, edge, index_due


def index_pending(engine: Engine) -> int:
    """Index every record the lookup table does not cover yet; return how many."""
    with write_transaction(engine) as conn:
        return index_pending_in(conn)


def checkpoint_wal(engine: Engine) -> None:
    """Copy SQLite's WAL back into the database, if no reader is in the way (PASSIVE)."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
    except Exception:  # noqa: BLE001 - an optimisation: SQLite's auto-checkpoint still runs
        _log.warning("checkpointing the audit WAL failed", exc_info=True)
