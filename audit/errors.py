"""Errors raised by the audit package."""

# The class names are the Errors contract (docs/architecture.md), not "...Error" names.

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AuditQueryInvalid",
    "AuditRecordNotFound",
    "AuditUnavailable",
    "CheckpointInvalid",
    "CheckpointNotFound",
    "CheckpointUnsigned",
    "Error",
]


class Error(Exception):
    """Base of the audit package's errors; each subclass is one stable problem type."""

    problem_type: ClassVar[str] = "audit-error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Audit error"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.title
        super().__init__(self.detail)


class AuditUnavailable(Error):
    """A record could not be made durable, so the exchange it describes must fail closed."""

    problem_type = "audit-unavailable"
    status = 503
    title = "Audit log unavailable"


class CheckpointInvalid(Error):
    """A checkpoint is malformed, or no signature on it verifies with the key given."""

    problem_type = "checkpoint-invalid"
    status = 400
    title = "Checkpoint is invalid"


class CheckpointUnsigned(CheckpointInvalid):
    """No signature on a checkpoint is by the key given (another key may have signed it)."""


class CheckpointNotFound(Error):
    """No checkpoint with that id, or none signed yet."""

    problem_type = "checkpoint-not-found"
    status = 404
    title = "Checkpoint not found"


class AuditRecordNotFound(Error):
    """No audit record with that sequence number (or not covered by the checkpoint asked for)."""

    problem_type = "audit-record-not-found"
    status = 404
    title = "Audit record not found"


class AuditQueryInvalid(Error):
    """An auditor's query is malformed: bad range, unknown filter value, sizes out of order."""

    problem_type = "audit-query-invalid"
    status = 400
    title = "Audit query is invalid"
