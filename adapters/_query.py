"""Check the query an adapter is handed before anything of it goes on the wire."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.errors import QueryInvalid

__all__ = ["identifier", "query_shape", "text"]

_SIXTEEN_DIGITS = re.compile(r"[0-9]{16}")


def query_shape(
    query: Mapping[str, Any], service: str, shapes: Sequence[frozenset[str]]
) -> frozenset[str]:
    """The one of ``shapes`` (sets of keys) that ``query`` has exactly."""
    keys = frozenset(query)
    if keys not in shapes:
        allowed = " or ".join("{" + ", ".join(sorted(shape)) + "}" for shape in shapes)
        raise QueryInvalid(f"a {service} query is {allowed}")
    return keys


def identifier(query: Mapping[str, Any], key: str) -> str:
    """A NIK or No. KK: exactly 16 ASCII digits."""
    value = query[key]
    if not isinstance(value, str) or not _SIXTEEN_DIGITS.fullmatch(value):
        raise QueryInvalid(f"{key} must be 16 digits")
    return value


def text(query: Mapping[str, Any], key: str) -> str:
    """A non-blank string, stripped."""
    value = query[key]
    if not isinstance(value, str) or not value.strip():
        raise QueryInvalid(f"{key} must be a non-empty string")
    return value.strip()
