"""RFC 9457 problem documents: one shape for every refusal, whichever package raised it."""

from __future__ import annotations

import json
from typing import Protocol, runtime_checkable

__all__ = ["PROBLEM_MEDIA_TYPE", "Problem", "problem_body", "problem_type_uri"]

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TYPE_PREFIX = "urn:simpul:problem:"


@runtime_checkable
class Problem(Protocol):
    """What every package's errors carry (see docs/architecture.md, "Errors")."""

    @property
    def problem_type(self) -> str:
        """The stable slug."""

    @property
    def status(self) -> int:
        """The HTTP status."""

    @property
    def title(self) -> str:
        """A short, fixed summary."""

    @property
    def detail(self) -> str:
        """This occurrence, in words; never a NIK, a token or a stack trace."""


def problem_type_uri(problem_type: str) -> str:
    """The RFC 9457 ``type`` URI for a problem slug."""
    return _TYPE_PREFIX + problem_type


def problem_body(problem: Problem, *, instance: str | None = None) -> bytes:
    """Serialise a problem; never a stack trace, never record data."""
    doc: dict[str, object] = {
        "type": problem_type_uri(problem.problem_type),
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
    }
    if instance:
        doc["instance"] = instance
    return json.dumps(doc, ensure_ascii=False).encode()


class InternalError(Exception):
    """An unexpected failure, reported without its details."""

    problem_type = "internal-error"
    status = 500
    title = "Internal error"

    def __init__(self) -> None:
        self.detail = "The broker failed unexpectedly; the failure is logged for the operator"
        super().__init__(self.detail)
