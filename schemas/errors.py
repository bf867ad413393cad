"""Errors of the schemas package: unknown or broken schemas, invalid bodies and identifiers."""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "Error",
    "InvalidNik",
    "InvalidNoKk",
    "RequestInvalid",
    "ResponseInvalid",
    "SchemaFileInvalid",
    "UnknownSchema",
]


class Error(Exception):
    """Base of the schemas package's errors; each subclass is one stable problem type."""

    problem_type: ClassVar[str] = "schema-error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Schema error"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.title
        super().__init__(self.detail)


class SchemaFileInvalid(Error):
    """A packaged schema file is missing, not JSON, not valid Draft 2020-12, or inconsistent.

    The detail starts with the file's name.
    """

    problem_type = "schema-file-invalid"
    status = 500
    title = "A schema file is invalid"


class UnknownSchema(Error):
    """No schema exists for this schema code (a registry naming a service Simpul cannot check)."""

    problem_type = "unknown-schema"
    status = 500
    title = "No schema for this service"


class RequestInvalid(Error):
    """The request body does not match the service's request schema or its identifier rules."""

    problem_type = "schema-invalid"
    status = 400
    title = "Request does not match the service's schema"


class ResponseInvalid(Error):
    """The provider's answer does not match the response schema or its identifier rules."""

    # The same slug as ``adapters.errors.UpstreamInvalid``: to the consumer both mean the
    # owning agency answered with something Simpul will not pass on.
    problem_type = "upstream-invalid"
    status = 502
    title = "Provider's answer does not match the service's schema"


class InvalidNik(Error):
    """A NIK fails the rules of its format; the detail says which rule, never the number."""

    problem_type = "invalid-nik"
    status = 400
    title = "Invalid NIK"


class InvalidNoKk(Error):
    """A No. KK fails the rules of its format; the detail says which rule, never the number."""

    problem_type = "invalid-no-kk"
    status = 400
    title = "Invalid No. KK"
