"""Consent requests and consents as the store hands them out (never raw rows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from consent.tokens import ConsentClaims, Grant, Purpose

__all__ = ["Consent", "ConsentRequest", "ConsentStatus", "RequestStatus"]


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
        )
