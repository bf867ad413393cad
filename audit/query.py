"""Finding records for an auditor: by time, client, service, decision, reason, consent, subject."""

from __future__ import annotations

from dataclasses import dataclass, fields

from sqlalchemy import Engine, select

from audit.records import AuditRecord
from audit.store import audit_records, record_from_row

__all__ = ["RecordFilter", "find_records"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordFilter:
    """Every given criterion must hold; ``since`` inclusive, ``until`` exclusive (RFC 3339 UTC).

    Times compare as text, which is exact because every record's time has one fixed format.
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


_EQUALS = tuple(f.name for f in fields(RecordFilter) if f.name not in ("since", "until"))


def find_records(
    engine: Engine, where: RecordFilter, *, after_seq: int = 0, limit: int = 100
) -> list[AuditRecord]:
    """Matching records in log order, after ``after_seq`` (page on with the last seq seen)."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    query = select(audit_records).where(audit_records.c.seq > after_seq)
    for name in _EQUALS:
        value = getattr(where, name)
        if value is not None:
            query = query.where(audit_records.c[name] == value)
    if where.since is not None:
        query = query.where(audit_records.c.time >= where.since)
    if where.until is not None:
        query = query.where(audit_records.c.time < where.until)
    query = query.order_by(audit_records.c.seq).limit(limit)
    with engine.connect() as conn:
        return [record_from_row(dict(row)) for row in conn.execute(query).mappings()]
