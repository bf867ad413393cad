"""The citizen's data tracker (after Estonia's): who read my data, when, why, and what was decided.

Entries are found through the keyed subject hash, so the audit log never holds a NIK and a
citizen can only ever reach the records made about themselves.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field
from sqlalchemy import Engine

from audit import AuditRecord, records_for_subject, subject_ref
from broker.auditor_api import InclusionOut
from broker.citizen import Citizen
from broker.exchange import CO_SUBJECT_EVENT
from broker.registry import Registry

__all__ = ["AccessLogEntry", "AccessLogPage", "access_log"]

MAX_PAGE = 200


class AccessLogEntry(BaseModel):
    """One thing that happened to the citizen's data or consents."""

    seq: int
    time: str
    event: str
    decision: str
    reason: str | None
    agency: str | None  # the organisation that asked
    client: str
    officer: str | None
    service: str | None
    provider: str | None  # the organisation whose data it is
    fields: list[str]
    purpose_code: str | None
    purpose_text: str | None
    procedure_ref: str | None
    consent_id: str | None
    status: int
    #: With ``?proofs=true``: the RFC 9162 proof that this record is in the signed log.
    proof: InclusionOut | None = None


class AccessLogPage(BaseModel):
    """Newest first; ask for the next page with ``before`` = ``next_before``."""

    entries: list[AccessLogEntry]
    next_before: Annotated[int | None, Field(description="None on the last page")] = None


def _names(registry: Registry) -> dict[str, str]:
    return {sub.id: member.name for member in registry.members for sub in member.subsystems}


def _entry(record: AuditRecord, registry: Registry, names: dict[str, str]) -> AccessLogEntry:
    service = registry.services.get(record.service or "")
    purpose = registry.purpose(record.purpose or "")
    # A read of a record that names the citizen under someone else's consent (a family card):
    # who read what, when and why is theirs to know; the other person's case (officer,
    # procedure reference) and consent are not.
    theirs = record.event != CO_SUBJECT_EVENT
    return AccessLogEntry(
        seq=record.seq,
        time=record.time,
        event=record.event,
        decision=record.decision,
        reason=record.reason,
        agency=names.get(record.client),
        client=record.client,
        officer=record.officer if theirs else None,
        service=record.service,
        provider=names.get(service.provider) if service else None,
        fields=list(record.released_fields),
        purpose_code=record.purpose,
        purpose_text=purpose.text_id if purpose else None,
        procedure_ref=record.issue if theirs else None,
        consent_id=record.consent_id if theirs else None,
        status=record.status,
    )


def access_log(
    engine: Engine,
    registry: Registry,
    citizen: Citizen,
    *,
    secret: bytes,
    limit: int,
    before: int | None,
) -> AccessLogPage:
    """One page of the citizen's own records, newest first."""
    ref = subject_ref(citizen.nik, secret)
    records = records_for_subject(engine, ref, limit=limit, before_seq=before)
    names = _names(registry)
    entries = [_entry(record, registry, names) for record in records]
    return AccessLogPage(
        entries=entries, next_before=entries[-1].seq if len(entries) == limit else None
    )
