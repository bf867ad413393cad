"""What a verified consent token allows: the checks on one exchange, shaped as small policies.

Each policy checks one thing and raises the one error that names it; ``AllOf`` runs several
in order. ``check_exchange`` is the composition the broker runs before calling the provider,
``check_subject_in`` and ``check_may_consent`` the ones it runs on the provider's answer.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from consent.errors import (
    ConsentNotBound,
    ConsentNotEntitled,
    ConsentPurposeMismatch,
    ConsentWrongAudience,
    ConsentWrongSubject,
    FieldNotGranted,
    ServiceNotGranted,
)
from consent.people import RecordPeople
from consent.tokens import ConsentClaims

__all__ = [
    "AllOf",
    "Audience",
    "BoundTo",
    "FieldsGranted",
    "Policy",
    "PurposeIs",
    "ServiceGranted",
    "Subject",
    "check_exchange",
    "check_may_consent",
    "check_subject_in",
]


class Policy(Protocol):
    """One condition on a consent's claims."""

    def verify(self, claims: ConsentClaims) -> None:
        """Return if the claims satisfy the condition; raise a consent error if not."""


def _same(a: str, b: str) -> bool:
    # Bytes, because compare_digest refuses non-ASCII str, and request values are untrusted.
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every policy must hold; they run in order and the first failure is raised."""

    policies: Sequence[Policy]

    def __post_init__(self) -> None:
        if not self.policies:
            raise ValueError("AllOf needs at least one policy")  # an empty AllOf would allow all

    def verify(self, claims: ConsentClaims) -> None:
        """Verify every policy in turn."""
        for policy in self.policies:
            policy.verify(claims)


@dataclass(frozen=True, slots=True)
class Audience:
    """The token was issued to this client (``aud``)."""

    client_id: str

    def verify(self, claims: ConsentClaims) -> None:
        """Raise ConsentWrongAudience unless ``aud`` is the client."""
        if claims.aud != self.client_id:
            raise ConsentWrongAudience()


@dataclass(frozen=True, slots=True)
class BoundTo:
    """The token is bound to this key: ``cnf.jkt`` is its RFC 7638 thumbprint."""

    jkt: str

    def verify(self, claims: ConsentClaims) -> None:
        """Raise ConsentNotBound unless ``cnf.jkt`` is the caller's key thumbprint."""
        if not _same(claims.jkt, self.jkt):
            raise ConsentNotBound()


@dataclass(frozen=True, slots=True)
class Subject:
    """The token's subject is this person."""

    nik: str = field(repr=False)

    def verify(self, claims: ConsentClaims) -> None:
        """Raise ConsentWrongSubject unless ``sub`` is the NIK."""
        if not _same(claims.sub, self.nik):
            raise ConsentWrongSubject()


@dataclass(frozen=True, slots=True)
class ServiceGranted:
    """The consent grants something for this service."""

    service_id: str

    def verify(self, claims: ConsentClaims) -> None:
        """Raise ServiceNotGranted unless a grant names the service."""
        if claims.grant_for(self.service_id) is None:
            raise ServiceNotGranted()


@dataclass(frozen=True, slots=True)
class FieldsGranted:
    """Every one of ``fields`` is granted for the service."""

    service_id: str
    fields: Sequence[str]

    def verify(self, claims: ConsentClaims) -> None:
        """Raise FieldNotGranted (or ServiceNotGranted) unless all fields are granted."""
        grant = claims.grant_for(self.service_id)
        if grant is None:
            raise ServiceNotGranted()
        missing = [name for name in self.fields if name not in grant.fields]
        if missing:
            # Field names are schema property names, never personal data.
            raise FieldNotGranted(f"not granted: {', '.join(sorted(set(missing)))}")


@dataclass(frozen=True, slots=True)
class PurposeIs:
    """The exchange states the purpose the citizen consented to."""

    code: str

    def verify(self, claims: ConsentClaims) -> None:
        """Raise ConsentPurposeMismatch unless the purpose codes match."""
        if claims.purpose.code != self.code:
            raise ConsentPurposeMismatch()


def check_exchange(
    claims: ConsentClaims,
    *,
    client_id: str,
    client_jkt: str,
    service_id: str,
    subject_nik: str | None,
    fields: Sequence[str] | None,
    purpose_code: str | None = None,
) -> tuple[str, ...]:
    """Check that ``claims`` allow this exchange and return the field names to release.

    ``subject_nik`` is the person the request names, or None when it names them otherwise
    (a KK or Akta number; then ``check_subject_in`` runs on the answer). ``fields`` None
    means every granted field; requested fields come back in request order, without repeats.
    """
    if isinstance(fields, str):
        raise TypeError("fields must be a sequence of names, not one string")
    policies: list[Policy] = [Audience(client_id), BoundTo(client_jkt)]
    if subject_nik is not None:
        policies.append(Subject(subject_nik))
    policies.append(ServiceGranted(service_id))
    if fields is not None:
        policies.append(FieldsGranted(service_id, fields))
    if purpose_code is not None:
        policies.append(PurposeIs(purpose_code))
    AllOf(policies).verify(claims)

    grant = claims.grant_for(service_id)
    if grant is None:  # ServiceGranted has held; this keeps the type checker and reader sure
        raise ServiceNotGranted()
    if fields is None:
        return grant.fields
    return tuple(dict.fromkeys(fields))


def check_subject_in(claims: ConsentClaims, niks: Iterable[str]) -> None:
    """Raise ConsentWrongSubject unless the token's subject is one of the record's ``niks``."""
    # Compare against every NIK (no early exit) so timing says nothing about which matched.
    found = False
    for nik in niks:
        found |= _same(claims.sub, nik)
    if not found:
        raise ConsentWrongSubject("the record is not about the consent's subject")


def check_may_consent(claims: ConsentClaims, people: RecordPeople) -> None:
    """Raise unless the token's subject is one of the record's people who may consent to it.

    ConsentWrongSubject if the record is not about the subject at all; ConsentNotEntitled if
    it is, but the subject may not consent for the others it names (see :mod:`consent.people`).
    """
    check_subject_in(claims, people.subjects)
    entitled = False
    for nik in people.may_consent:
        entitled |= _same(claims.sub, nik)
    if not entitled:
        raise ConsentNotEntitled(
            "the consent's subject may not consent for the others this record names"
        )
