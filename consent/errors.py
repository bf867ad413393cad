"""Errors raised by the consent package: tokens, the checks on an exchange, the consent store.

Each class is one stable problem type. Details never name a NIK, a token or a key.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ConsentAlgorithmRefused",
    "ConsentExhausted",
    "ConsentExpired",
    "ConsentInvalid",
    "ConsentMissing",
    "ConsentNotActive",
    "ConsentNotBound",
    "ConsentNotEntitled",
    "ConsentNotFound",
    "ConsentNotYetValid",
    "ConsentPurposeMismatch",
    "ConsentRequestInvalid",
    "ConsentRequestNotFound",
    "ConsentRequestNotPending",
    "ConsentRevoked",
    "ConsentTransitionRefused",
    "ConsentWrongAudience",
    "ConsentWrongSubject",
    "Error",
    "FieldNotGranted",
    "ReceiptInvalid",
    "ServiceNotGranted",
]


class Error(Exception):
    """Base of the consent package's errors; each subclass is one stable problem type."""

    problem_type: ClassVar[str] = "consent-error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Consent error"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.title
        super().__init__(self.detail)


# --- the token itself (401: the caller has not presented a usable consent) ---


class ConsentMissing(Error):
    """The request carries no consent token."""

    problem_type = "consent-missing"
    status = 401
    title = "Consent token required"


class ConsentInvalid(Error):
    """The token is malformed, its signature fails, its key or issuer is unknown, or claims lack."""

    problem_type = "consent-invalid"
    status = 401
    title = "Consent token is invalid"


class ConsentAlgorithmRefused(Error):
    """The token's ``alg`` is not on the allow-list (``none``, HMAC, RSA, ...)."""

    problem_type = "consent-algorithm-refused"
    status = 401
    title = "Consent token algorithm is not allowed"


# --- a valid token that does not allow this exchange (403) ---


class ConsentExpired(Error):
    """The consent's validity has ended."""

    problem_type = "consent-expired"
    status = 403
    title = "Consent has expired"


class ConsentNotYetValid(Error):
    """The consent's validity has not begun."""

    problem_type = "consent-not-yet-valid"
    status = 403
    title = "Consent is not yet valid"


class ConsentRevoked(Error):
    """The citizen has revoked the consent."""

    problem_type = "consent-revoked"
    status = 403
    title = "Consent has been revoked"


class ConsentNotActive(Error):
    """The consent is in a state other than ACTIVE (e.g. PAUSED); the detail says which."""

    problem_type = "consent-not-active"
    status = 403
    title = "Consent is not active"


class ConsentExhausted(Error):
    """The consent has been used as many times as its ``max_uses`` allows."""

    problem_type = "consent-exhausted"
    status = 403
    title = "Consent has no uses left"


class ConsentNotFound(Error):
    """The consent is not in the store, or belongs to someone else."""

    problem_type = "consent-not-found"
    status = 403
    title = "Consent not found"


class ConsentWrongAudience(Error):
    """The token was issued to another client (``aud``)."""

    problem_type = "consent-wrong-audience"
    status = 403
    title = "Consent was issued to another client"


class ConsentNotBound(Error):
    """The token's ``cnf.jkt`` is not the thumbprint of the caller's signing key."""

    problem_type = "consent-not-bound"
    status = 403
    title = "Consent is bound to another key"


class ConsentWrongSubject(Error):
    """The request or the record is about someone other than the consent's subject."""

    problem_type = "consent-wrong-subject"
    status = 403
    title = "Consent is for another person"


class ConsentNotEntitled(Error):
    """The consent's subject is named in the record but may not consent for the others in it
    (see :mod:`consent.people`): a minor, or someone outside the family, for a family card; a
    parent, once the child is adult, or the child while a minor, for a birth certificate."""

    problem_type = "consent-not-entitled"
    status = 403
    title = "Consent's subject may not consent to this record"


class ServiceNotGranted(Error):
    """The consent grants nothing for this service."""

    problem_type = "service-not-granted"
    status = 403
    title = "Consent does not grant this service"


class FieldNotGranted(Error):
    """A requested field is not among the fields the consent grants for this service."""

    problem_type = "field-not-granted"
    status = 403
    title = "Consent does not grant a requested field"


class ConsentPurposeMismatch(Error):
    """The purpose stated for the exchange is not the purpose the citizen consented to."""

    problem_type = "consent-purpose-mismatch"
    status = 403
    title = "Consent was given for another purpose"


# --- consent requests ---


class ConsentRequestInvalid(Error):
    """A consent request is malformed (no grants, bad validity, ...)."""

    problem_type = "consent-request-invalid"
    status = 400
    title = "Consent request is invalid"


class ConsentRequestNotFound(Error):
    """No such consent request, or it belongs to someone else (existence is not revealed)."""

    problem_type = "consent-request-not-found"
    status = 404
    title = "Consent request not found"


class ConsentRequestNotPending(Error):
    """The consent request was already decided or has passed its deadline."""

    problem_type = "consent-request-not-pending"
    status = 409
    title = "Consent request is no longer pending"


class ConsentTransitionRefused(Error):
    """The consent cannot make this move from where it stands (e.g. resume a revoked one)."""

    problem_type = "consent-transition-refused"
    status = 409
    title = "Consent cannot make this change"


class ReceiptInvalid(Error):
    """A consent receipt is malformed, or its signature does not verify with the given keys."""

    problem_type = "receipt-invalid"
    status = 400
    title = "Consent receipt does not verify"
