"""The consent tables (SQLAlchemy Core) and their conversion to the store's dataclasses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
)

from consent.models import (
    Consent,
    ConsentEvent,
    ConsentRequest,
    ConsentStatus,
    FetchType,
    RequestStatus,
)
from consent.tokens import Grant, Purpose

__all__ = [
    "consent_events",
    "consent_from_mapping",
    "consent_from_row",
    "consent_requests",
    "consent_uses",
    "consent_values",
    "consents",
    "event_from_row",
    "grants_to_json",
    "install",
    "metadata",
    "request_from_row",
    "request_values",
]

metadata = MetaData()


def _status_check(
    name: str, statuses: type[RequestStatus] | type[ConsentStatus]
) -> CheckConstraint:
    allowed = ", ".join(f"'{status.value}'" for status in statuses)
    return CheckConstraint(f"status IN ({allowed})", name=name)


# Times are unix seconds. subject_nik is the raw NIK: this database is the broker's own,
# unlike the audit log, which only ever holds a keyed hash of it.
consent_requests = Table(
    "consent_requests",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("client_id", String(255), nullable=False),
    Column("client_jkt", String(64), nullable=False),
    Column("subject_nik", String(16), nullable=False),
    Column("grants", JSON, nullable=False),
    Column("purpose_code", String(64), nullable=False),
    Column("purpose_text", Text, nullable=False),
    Column("procedure_ref", String(255), nullable=False),
    Column("consent_not_before", BigInteger, nullable=False),
    Column("consent_expires_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("max_uses", Integer, nullable=True),
    Column("status", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("decided_at", BigInteger, nullable=True),
    Column("consent_id", String(36), nullable=True),
    Column("fetch_type", String(16), nullable=False, default=FetchType.PERIODIC.value),
    _status_check("ck_consent_requests_status", RequestStatus),
    Index("ix_consent_requests_subject", "subject_nik", "created_at"),
    Index("ix_consent_requests_deadline", "status", "expires_at"),  # the expiry sweep
)

consents = Table(
    "consents",
    metadata,
    Column("id", String(36), primary_key=True),
    # unique: one request yields at most one consent, whatever races the application loses
    Column(
        "request_id", String(36), ForeignKey("consent_requests.id"), nullable=False, unique=True
    ),
    Column("client_id", String(255), nullable=False),
    Column("client_jkt", String(64), nullable=False),
    Column("subject_nik", String(16), nullable=False),
    Column("grants", JSON, nullable=False),
    Column("purpose_code", String(64), nullable=False),
    Column("purpose_text", Text, nullable=False),
    Column("procedure_ref", String(255), nullable=False),
    Column("iat", BigInteger, nullable=False),
    Column("nbf", BigInteger, nullable=False),
    Column("exp", BigInteger, nullable=False),
    Column("max_uses", Integer, nullable=True),
    Column("use_count", Integer, nullable=False, default=0),
    Column("status", String(16), nullable=False),
    Column("status_changed_at", BigInteger, nullable=False),
    Column("fetch_type", String(16), nullable=False, default=FetchType.PERIODIC.value),
    _status_check("ck_consents_status", ConsentStatus),
    Index("ix_consents_subject", "subject_nik", "iat"),
    # the expiry sweep looks for live consents by end of validity
    Index("ix_consents_status_exp", "status", "exp"),
)

# One row per (consent, service) a ONETIME consent has been used for: the primary key is the
# lock, so of two exchanges racing for the same service exactly one can insert.
consent_uses = Table(
    "consent_uses",
    metadata,
    Column("consent_id", String(36), ForeignKey("consents.id"), primary_key=True),
    Column("service", String(255), primary_key=True),
    Column("used_at", BigInteger, nullable=False),
)

# The transition log: written in the same transaction as each change, so no change can
# happen without its event. The broker drains it into the audit log and the notification
# outbox (``audit_seq`` and ``dispatched`` say how far each has got).
consent_events = Table(
    "consent_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("event", String(64), nullable=False),
    Column("target", String(36), nullable=False),
    Column("consent_id", String(36), nullable=True),
    Column("client_id", String(255), nullable=False),
    Column("subject_nik", String(16), nullable=False),
    Column("purpose_code", String(64), nullable=False),
    Column("services", JSON, nullable=False),
    Column("from_status", String(16), nullable=True),
    Column("to_status", String(16), nullable=False),
    Column("actor", String(16), nullable=False),
    Column("xroad_id", String(64), nullable=True),
    Column("at", BigInteger, nullable=False),
    Column("audit_seq", BigInteger, nullable=True),
    Column("dispatched", Integer, nullable=False, default=0),
    Index("ix_consent_events_audit", "audit_seq"),
    Index("ix_consent_events_dispatched", "dispatched"),
)


def install(engine: Engine) -> None:
    """Create the consent tables if they do not exist yet (safe to call again)."""
    metadata.create_all(engine, checkfirst=True)


def grants_to_json(grants: tuple[Grant, ...]) -> list[dict[str, Any]]:
    """The JSON column form of grants (order kept: tokens are re-issued from it)."""
    return [{"service": grant.service, "fields": list(grant.fields)} for grant in grants]


def _grants(value: list[dict[str, Any]]) -> tuple[Grant, ...]:
    return tuple(Grant(service=item["service"], fields=tuple(item["fields"])) for item in value)


def request_from_row(row: Row[Any]) -> ConsentRequest:
    """A ConsentRequest from a ``consent_requests`` row."""
    m = row._mapping
    return ConsentRequest(
        id=m["id"],
        client_id=m["client_id"],
        client_jkt=m["client_jkt"],
        subject_nik=m["subject_nik"],
        grants=_grants(m["grants"]),
        purpose=Purpose(code=m["purpose_code"], text=m["purpose_text"]),
        procedure_ref=m["procedure_ref"],
        consent_not_before=m["consent_not_before"],
        consent_expires_at=m["consent_expires_at"],
        expires_at=m["expires_at"],
        max_uses=m["max_uses"],
        status=RequestStatus(m["status"]),
        created_at=m["created_at"],
        decided_at=m["decided_at"],
        consent_id=m["consent_id"],
        fetch_type=FetchType(m["fetch_type"]),
    )


def consent_from_row(row: Row[Any]) -> Consent:
    """A Consent from a ``consents`` row."""
    return consent_from_mapping(row._mapping)


def consent_from_mapping(m: Mapping[Any, Any]) -> Consent:
    """A Consent from a ``consents`` row's columns by name (``grants`` already decoded)."""
    return Consent(
        id=m["id"],
        request_id=m["request_id"],
        client_id=m["client_id"],
        client_jkt=m["client_jkt"],
        subject_nik=m["subject_nik"],
        grants=_grants(m["grants"]),
        purpose=Purpose(code=m["purpose_code"], text=m["purpose_text"]),
        procedure_ref=m["procedure_ref"],
        iat=m["iat"],
        nbf=m["nbf"],
        exp=m["exp"],
        max_uses=m["max_uses"],
        use_count=m["use_count"],
        status=ConsentStatus(m["status"]),
        status_changed_at=m["status_changed_at"],
        fetch_type=FetchType(m["fetch_type"]),
    )


def event_from_row(row: Row[Any]) -> ConsentEvent:
    """A ConsentEvent from a ``consent_events`` row."""
    m = row._mapping
    return ConsentEvent(
        seq=m["seq"],
        id=m["id"],
        event=m["event"],
        target=m["target"],
        consent_id=m["consent_id"],
        client_id=m["client_id"],
        subject_nik=m["subject_nik"],
        purpose_code=m["purpose_code"],
        services=tuple(m["services"]),
        from_status=m["from_status"],
        to_status=m["to_status"],
        actor=m["actor"],
        xroad_id=m["xroad_id"],
        at=m["at"],
        audit_seq=m["audit_seq"],
        dispatched=bool(m["dispatched"]),
    )


def request_values(request: ConsentRequest) -> dict[str, Any]:
    """The ``consent_requests`` row of a ConsentRequest."""
    return {
        "id": request.id,
        "client_id": request.client_id,
        "client_jkt": request.client_jkt,
        "subject_nik": request.subject_nik,
        "grants": grants_to_json(request.grants),
        "purpose_code": request.purpose.code,
        "purpose_text": request.purpose.text,
        "procedure_ref": request.procedure_ref,
        "consent_not_before": request.consent_not_before,
        "consent_expires_at": request.consent_expires_at,
        "expires_at": request.expires_at,
        "max_uses": request.max_uses,
        "status": request.status.value,
        "created_at": request.created_at,
        "decided_at": request.decided_at,
        "consent_id": request.consent_id,
        "fetch_type": request.fetch_type.value,
    }


def consent_values(consent: Consent) -> dict[str, Any]:
    """The ``consents`` row of a Consent."""
    return {
        "id": consent.id,
        "request_id": consent.request_id,
        "client_id": consent.client_id,
        "client_jkt": consent.client_jkt,
        "subject_nik": consent.subject_nik,
        "grants": grants_to_json(consent.grants),
        "purpose_code": consent.purpose.code,
        "purpose_text": consent.purpose.text,
        "procedure_ref": consent.procedure_ref,
        "iat": consent.iat,
        "nbf": consent.nbf,
        "exp": consent.exp,
        "max_uses": consent.max_uses,
        "use_count": consent.use_count,
        "status": consent.status.value,
        "status_changed_at": consent.status_changed_at,
        "fetch_type": consent.fetch_type.value,
    }
