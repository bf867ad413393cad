"""Errors raised by the adapters: the agency backend failed, or the record does not exist.

Details name the service and what went wrong with the backend's answer, never a NIK or a
value from a record.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "Error",
    "QueryInvalid",
    "RecordNotFound",
    "ServiceUnsupported",
    "UpstreamError",
    "UpstreamInvalid",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]


class Error(Exception):
    """Base of the adapters' errors; each subclass is one stable problem type."""

    problem_type: ClassVar[str] = "adapter-error"
    status: ClassVar[int] = 502
    title: ClassVar[str] = "Adapter error"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.title
        super().__init__(self.detail)


class RecordNotFound(Error):
    """The agency holds no such record (or, for a KTP, has issued none to this person)."""

    problem_type = "record-not-found"
    status = 404
    title = "Record not found"


class UpstreamTimeout(Error):
    """The agency backend did not answer within the adapter's timeout."""

    problem_type = "upstream-timeout"
    status = 504
    title = "Agency backend did not answer in time"


class UpstreamUnavailable(Error):
    """The agency backend could not be reached: connection refused, reset or cut short."""

    problem_type = "upstream-unavailable"
    status = 502
    title = "Agency backend is unavailable"


class UpstreamError(Error):
    """The agency backend answered with an unexpected HTTP status or refused the call."""

    problem_type = "upstream-error"
    status = 502
    title = "Agency backend answered with an error"


class UpstreamInvalid(Error):
    """The agency backend's answer cannot be mapped to the shared record shape."""

    problem_type = "upstream-invalid"
    status = 502
    title = "Agency backend answer is invalid"


class ServiceUnsupported(Error):
    """The adapter was asked for a service it does not serve: a registry misconfiguration."""

    problem_type = "service-unsupported"
    status = 500
    title = "Adapter does not serve this service"


class QueryInvalid(Error):
    """The query does not have the shape the service's request schema allows."""

    problem_type = "query-invalid"
    status = 400
    title = "Query is not valid for this service"
