"""Errors raised by the audit package."""

# The class names are the Errors contract (docs/architecture.md), not "...Error" names.

from __future__ import annotations

from typing import ClassVar

__all__ = ["AuditUnavailable", "Error"]


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
