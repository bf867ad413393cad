"""Consent requests and consents as the store hands them out (never raw rows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from consent.tokens import ConsentClaims, Grant, Purpose

__all__ = [
    "Consent",
    "ConsentEvent",
    "ConsentRequest",
    "ConsentStatus",
    "FetchType",
    "RequestStatus",
]


class FetchType(StrEnum):
    """How often a consent may be used: once per granted service, or repeatedly."""

    ONETIME = "ONETIME"
    PERIODIC = "PERIODIC"


class RequestStatus(StrEnum):
    """Where a consent request stands: PENDING until the citizen decides or its deadline passes."""

    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


class ConsentStatus(StrEnum):
    """Where a consent stands: ACTIVE ⇄ PAUSED, then REVOKED or EXPIRED for good."""

    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    """A client's request for a citizen's consent.

    ``consent_not_before``/``consent_expires_at`` are the validity the consent will get if
    approved, fixed when the request is made so the citizen approves exactly what they see;
    ``expires_at`` is the deadline for deciding (never after ``consent_expires_at``).
    """

    id: str
    client_id: str
    client_jkt: str
    subject_nik: str = field(repr=False)  # a NIK: kept out of reprs so it cannot reach logs
    grants: tuple[Grant, ...]
    purpose: Purpose
    procedure_ref: str
    consent_not_before: int
    consent_expires_at: int
    expires_at: int
    max_uses: int | None
    status: RequestStatus
    created_at: int
    decided_at: int | None
    consent_id: str | None
    fetch_type: FetchType = FetchType.PERIODIC


@dataclass(frozen=True, slots=True)
class Consent:
    """A consent the citizen gave; its id is the ``jti`` of its token."""

    id: str
    request_id: str
    client_id: str
    client_jkt: str
    subject_nik: str = field(repr=False)
    grants: tuple[Grant, ...]
    purpose: Purpose
    procedure_ref: str
    iat: int
    nbf: int
    exp: int
    max_uses: int | None
    use_count: int
    status: ConsentStatus
    status_changed_at: int
    fetch_type: FetchType = FetchType.PERIODIC

    @property
    def counted(self) -> bool:
        """Whether exchanges under this consent must be counted (a use limit applies)."""
        return self.max_uses is not None or self.fetch_type is FetchType.ONETIME

    def claims(self, issuer: str) -> ConsentClaims:
        """The claims of this consent's token as ``issuer`` signs them."""
        return ConsentClaims(
            jti=self.id,
            iss=issuer,
            sub=self.subject_nik,
            aud=self.client_id,
            iat=self.iat,
            nbf=self.nbf,
            exp=self.exp,
            jkt=self.client_jkt,
            grants=self.grants,
            purpose=self.purpose,
            procedure_ref=self.procedure_ref,
            max_uses=self.max_uses,
            fetch_type=self.fetch_type.value,
        )


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """One lifecycle transition, written in the same transaction as the change itself.

    ``seq`` orders events; ``target`` is the request or consent id; ``event`` is the audit
    event name (``consent.approve``, ``consent.pause``, ...); ``actor`` is who caused it
    (``citizen``, ``client`` or ``broker`` for deadlines); ``xroad_id`` the client's request id
    when a client caused it. ``audit_seq`` is set once the
    event is in the audit log, ``dispatched`` once its notifications are queued.
    """

    seq: int
    id: str
    event: str
    target: str
    consent_id: str | None
    client_id: str
    subject_nik: str = field(repr=False)
    purpose_code: str
    services: tuple[str, ...]
    from_status: str | None
    to_status: str
    actor: str
    xroad_id: str | None
    at: int
    audit_seq: int | None
    dispatched: bool
