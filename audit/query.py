"""Finding records: an auditor's filters (time, client, service, decision, reason, consent,
subject, X-Road id) and a citizen's own records, newest first."""

from __future__ import annotations

from dataclasses import dataclass, fields

from sqlalchemy import ColumnElement, Engine, select

from audit.errors import AuditQueryInvalid
from audit.lookup import Kind, select_records
from audit.records import AuditRecord
from audit.store import audit_records, record_from_row

__all__ = ["RecordFilter", "find_records", "records_for_subject"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordFilter:
    """Every given criterion must hold; ``since`` inclusive, ``until`` exclusive (RFC 3339 UTC).

    Times compare as text, which is exact because every record's time has one fixed format.
    A value no text column can hold is refused (:class:`AuditQueryInvalid`): PostgreSQL
    cannot take a NUL character, nor a lone surrogate (no UTF-8 text holds one), and would fail
    the query, while SQLite would just match nothing. Such a value is a malformed query on both.
    """

    since: str | None = None
    until: str | None = None
    event: str | None = None
    client: str | None = None
    service: str | None = None
    decision: str | None = None
    reason: str | None = None
    consent_id: str | None = None
    subject_ref: str | None = None
    xroad_id: str | None = None

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if value is not None and ("\x00" in value or not _encodable(value)):
                raise AuditQueryInvalid(f"{field.name} holds a character no record can hold")


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


_EQUALS = tuple(f.name for f in fields(RecordFilter) if f.name not in ("since", "until"))
# Looked up through audit_lookup, most selective first.
_LOOKED_UP: tuple[Kind, ...] = ("xroad_id", "subject_ref", "consent_id")


def find_records(
    engine: Engine, where: RecordFilter, *, after_seq: int = 0, limit: int = 100
) -> list[AuditRecord]:
    """Matching records in log order, after ``after_seq`` (page on with the last seq seen)."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    lookup = next((kind for kind in _LOOKED_UP if getattr(where, kind) is not None), None)
    conditions: list[ColumnElement[bool]] = []
    for name in _EQUALS:
        value = getattr(where, name)
        if value is not None and name != lookup:
            conditions.append(audit_records.c[name] == value)
    if where.since is not None:
        conditions.append(audit_records.c.time >= where.since)
    if where.until is not None:
        conditions.append(audit_records.c.time < where.until)
    with engine.connect() as conn:
        if lookup is not None:
            return select_records(
                conn, lookup, getattr(where, lookup), conditions, after_seq=after_seq, limit=limit
            )
        query = (
            select(audit_records)
            .where(audit_records.c.seq > after_seq, *conditions)
            .order_by(audit_records.c.seq)
            .limit(limit)
        )
        return [record_from_row(dict(row)) for row in conn.execute(query).mappings()]


def records_for_subject(
    engine: Engine, subject_ref: str, *, limit: int = 50, before_seq: int | None = None
) -> list[AuditRecord]:
    """A citizen's records, newest first; page on with ``before_seq`` = the last seq seen."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    with engine.connect() as conn:
        return select_records(
            conn, "subject_ref", subject_ref, before_seq=before_seq, newest_first=True, limit=limit
        )
