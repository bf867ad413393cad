"""Errors raised by the broker itself: authentication, access rights, the request envelope."""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AccessDenied",
    "AuditorRequired",
    "BadRequest",
    "CitizenUnauthenticated",
    "ContentTooLarge",
    "DigestMismatch",
    "Error",
    "InvalidKey",
    "PurposeNotAllowed",
    "RegistryError",
    "Replay",
    "SchemaBehind",
    "SignatureInvalid",
    "SignatureMissing",
    "SignatureStale",
    "UnknownClient",
    "UnknownService",
]


class Error(Exception):
    """Base of the broker's errors; each subclass is one stable problem type."""

    problem_type: ClassVar[str] = "broker-error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Broker error"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.title
        super().__init__(self.detail)


class BadRequest(Error):
    """The request envelope is malformed: an ill-formed header, a body that is not JSON."""

    problem_type = "bad-request"
    status = 400
    title = "Malformed request"


class ContentTooLarge(Error):
    """The request body is longer than the broker reads; it was refused unread."""

    problem_type = "content-too-large"
    status = 413
    title = "Content too large"


class SignatureMissing(Error):
    """The request carries no HTTP message signature."""

    problem_type = "signature-missing"
    status = 401
    title = "Request is not signed"


class SignatureInvalid(Error):
    """The signature does not verify, names an unknown key, or does not cover what it must."""

    problem_type = "signature-invalid"
    status = 401
    title = "Request signature is invalid"


class DigestMismatch(Error):
    """The body does not match its Content-Digest, or the digest is missing or unsupported."""

    problem_type = "digest-mismatch"
    status = 400
    title = "Content-Digest does not match the body"


class SignatureStale(Error):
    """The signature's ``created`` time lies outside the allowed clock skew."""

    problem_type = "signature-stale"
    status = 401
    title = "Signature created outside the allowed time window"


class Replay(Error):
    """This ``X-Road-Id`` was already used by this client inside the replay window."""

    problem_type = "replay"
    status = 409
    title = "Request id already used"


class ReplayUnavailable(Error):
    """The request's ``X-Road-Id`` could not be recorded (or made durable): nothing is done
    for a request that might be a replay, so it is refused until the store answers again."""

    problem_type = "replay-unavailable"
    status = 503
    title = "Replay cache unavailable"


class DatabaseUnavailable(Error):
    """The database could not do what the request needs now (a lock not had in time, a lost
    connection, a disk error): nothing was changed by it, and it may be tried again."""

    problem_type = "database-unavailable"
    status = 503
    title = "Database unavailable"


class UnknownClient(Error):
    """The ``X-Road-Client`` is not a registered subsystem."""

    problem_type = "unknown-client"
    status = 401
    title = "Unknown client"


class UnknownService(Error):
    """The service id names no registered service."""

    problem_type = "unknown-service"
    status = 404
    title = "Unknown service"


class AccessDenied(Error):
    """The registry does not grant this client this service (deny by default)."""

    problem_type = "access-denied"
    status = 403
    title = "Client has no access right to this service"


class CitizenUnauthenticated(Error):
    """The citizen's ID token is missing, invalid or expired."""

    problem_type = "citizen-unauthenticated"
    status = 401
    title = "Citizen sign-in required"


class InvalidKey(Error):
    """A key or key file is malformed, not Ed25519, or holds what it must not (``d`` in public)."""

    problem_type = "key-invalid"
    status = 500
    title = "Key is invalid"


class RegistryError(Error):
    """The registry file is invalid; the message names the file, the entry and the problem."""

    problem_type = "registry-invalid"
    status = 500
    title = "Registry is invalid"


class SchemaBehind(Error):
    """The database schema is not the one this code needs; ``simpul db upgrade`` fixes it."""

    problem_type = "schema-behind"
    status = 503
    title = "Database schema is not up to date"


class PurposeNotAllowed(Error):
    """The purpose is not in the registry's catalogue, or this client may not name it."""

    problem_type = "purpose-not-allowed"
    status = 403
    title = "Purpose not allowed for this client"


class AuditorRequired(Error):
    """The caller is authenticated but its subsystem does not hold the ``auditor`` role."""

    problem_type = "auditor-required"
    status = 403
    title = "Auditor role required"
