"""Checks on what a client asks for when it requests consent; failures are ConsentRequestInvalid."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from consent.errors import ConsentRequestInvalid
from consent.tokens import Grant, Purpose

__all__ = [
    "DEFAULT_REQUEST_TTL_SECONDS",
    "MAX_REQUEST_TTL_SECONDS",
    "MAX_VALIDITY_SECONDS",
    "checked_grants",
    "checked_jkt",
    "checked_nik",
    "checked_positive",
    "checked_purpose",
    "checked_text",
]

_DAY: Final = 86_400
#: Longest validity a consent may be given.
MAX_VALIDITY_SECONDS: Final = 366 * _DAY
#: How long a citizen has to decide, unless the client asks otherwise.
DEFAULT_REQUEST_TTL_SECONDS: Final = 3 * _DAY
#: Longest deadline a client may give a citizen.
MAX_REQUEST_TTL_SECONDS: Final = 30 * _DAY

_MAX_GRANTS: Final = 16
_MAX_FIELDS: Final = 64
_NIK: Final = re.compile(r"[0-9]{16}")
_JKT: Final = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url SHA-256, RFC 7638


def checked_text(name: str, value: object, max_length: int) -> str:
    """``value`` if it is a non-empty string of at most ``max_length`` characters."""
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise ConsentRequestInvalid(f"{name} must be a non-empty string of at most {max_length}")
    return value


def checked_nik(value: object) -> str:
    """``value`` if it has the shape of a NIK (the detail never repeats it)."""
    if not isinstance(value, str) or not _NIK.fullmatch(value):
        raise ConsentRequestInvalid("subject must be a 16-digit NIK")
    return value


def checked_jkt(value: object) -> str:
    """``value`` if it has the shape of an RFC 7638 SHA-256 thumbprint."""
    if not isinstance(value, str) or not _JKT.fullmatch(value):
        raise ConsentRequestInvalid("client key thumbprint must be a base64url SHA-256 (43 chars)")
    return value


def checked_positive(name: str, value: object, maximum: int | None = None) -> int:
    """``value`` if it is an integer from 1 to ``maximum``."""
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < 1
        or (maximum is not None and value > maximum)
    ):
        bound = f" and at most {maximum}" if maximum is not None else ""
        raise ConsentRequestInvalid(f"{name} must be a positive integer{bound}")
    return value


def checked_purpose(value: object) -> Purpose:
    """``value`` if it is a Purpose with a short code and a readable text."""
    if not isinstance(value, Purpose):
        raise ConsentRequestInvalid("purpose must have a code and a text")
    return Purpose(
        code=checked_text("purpose code", value.code, 64),
        text=checked_text("purpose text", value.text, 1000),
    )


def checked_grants(value: Sequence[Grant]) -> tuple[Grant, ...]:
    """The grants as tuples, if there are some, each service once, each with unique fields."""
    if isinstance(value, (str, bytes)) or not value or len(value) > _MAX_GRANTS:
        raise ConsentRequestInvalid(f"grants must list 1 to {_MAX_GRANTS} services")
    grants: list[Grant] = []
    for grant in value:
        if not isinstance(grant, Grant):
            raise ConsentRequestInvalid("each grant must name a service and its fields")
        service = checked_text("grant service", grant.service, 255)
        fields = grant.fields
        if isinstance(fields, (str, bytes)) or not fields or len(fields) > _MAX_FIELDS:
            raise ConsentRequestInvalid(f"each grant must list 1 to {_MAX_FIELDS} fields")
        names = tuple(checked_text("field name", name, 64) for name in fields)
        if len(set(names)) != len(names):
            raise ConsentRequestInvalid("a grant lists a field twice")
        grants.append(Grant(service=service, fields=names))
    if len({grant.service for grant in grants}) != len(grants):
        raise ConsentRequestInvalid("grants name a service twice")
    return tuple(grants)
