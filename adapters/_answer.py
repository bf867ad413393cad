"""Read an agency backend's JSON answer field by field; whatever does not fit is rejected.

Every accessor raises :class:`~adapters.errors.UpstreamInvalid` rather than pass on something
it cannot vouch for. Error details name the object and the key, never the value found there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Final, Protocol

from adapters.errors import UpstreamInvalid

__all__ = ["Fields", "json_of", "parse_date", "parse_iso_date", "parse_iso_datetime"]


#: Date formats read without ``strptime`` when the value has their usual fixed width (ASCII
#: digits only); anything else still goes to ``strptime``, so what is accepted is unchanged.
#: The pattern's groups are day, month, year.
_FIXED_WIDTH_DATES: Final = {"%d-%m-%Y": re.compile(r"([0-9]{2})-([0-9]{2})-([0-9]{4})")}


def parse_date(value: str, fmt: str) -> date:
    """``datetime.strptime(value, fmt).date()``, faster for the usual fixed-width forms."""
    pattern = _FIXED_WIDTH_DATES.get(fmt)
    match = pattern.fullmatch(value) if pattern is not None else None
    if match is None:
        return datetime.strptime(value, fmt).date()
    day, month, year = match.groups()
    return date(int(year), int(month), int(day))


class _HasJson(Protocol):
    def json(self) -> object: ...


def json_of(response: _HasJson, where: str) -> object:
    """The decoded JSON body of ``response``."""
    try:
        body: object = response.json()
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both are ValueErrors
        raise UpstreamInvalid(f"{where} is not JSON") from exc
    return body


def parse_iso_date(value: str, where: str) -> date:
    """A ``YYYY-MM-DD`` date that exists in the calendar."""
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise UpstreamInvalid(f"{where} is not a real ISO date") from exc


def parse_iso_datetime(value: str, where: str) -> datetime:
    """An ISO 8601 date-time (with or without an offset)."""
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise UpstreamInvalid(f"{where} is not an ISO date-time") from exc


class Fields:
    """One JSON object of a backend answer, read through typed accessors.

    ``where`` names the object in error details (``"dukcapil CALL_NIK element"``).
    """

    __slots__ = ("_data", "_where")

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, dict):
            raise UpstreamInvalid(f"{where} is not a JSON object")
        self._data: Mapping[str, object] = value
        self._where = where

    def _invalid(self, key: str, problem: str) -> UpstreamInvalid:
        return UpstreamInvalid(f"{self._where}: {key} {problem}")

    def has(self, key: str) -> bool:
        """Whether ``key`` is present (even if ``null``)."""
        return key in self._data

    def get(self, key: str) -> object:
        """The raw value of a key that must be present (it may be ``null``)."""
        if key not in self._data:
            raise self._invalid(key, "is missing")
        return self._data[key]

    def text(self, key: str) -> str:
        """A non-blank string, stripped."""
        value = self.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self._invalid(key, "is not a non-empty string")
        return value.strip()

    def digits(self, key: str, length: int, *, pad: bool = False) -> str:
        """A string of exactly ``length`` ASCII digits; a JSON number is accepted, and with
        ``pad`` a shorter one is zero-padded (RT ``1`` or ``"1"`` becomes ``"001"``)."""
        value = self.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise self._invalid(key, f"is not {length} digits")
        value = value.strip()
        if pad:
            value = value.zfill(length)
        if len(value) != length or not (value.isascii() and value.isdigit()):
            raise self._invalid(key, f"is not {length} digits")
        return value

    def optional_digits(self, key: str, length: int) -> str | None:
        """Like :meth:`digits`, but a missing key or ``null`` gives ``None``."""
        if self._data.get(key) is None:
            return None
        return self.digits(key, length)

    def integer(self, key: str, *, minimum: int) -> int:
        """A JSON integer no smaller than ``minimum``."""
        value = self.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise self._invalid(key, f"is not an integer >= {minimum}")
        return value

    def date(self, key: str, fmt: str) -> str:
        """A date written in ``fmt`` (``strptime`` syntax), returned as ISO ``YYYY-MM-DD``."""
        value = self.text(key)
        try:
            return parse_date(value, fmt).isoformat()
        except ValueError as exc:
            raise self._invalid(key, "is not a real date in the expected format") from exc

    def choice(
        self, key: str, allowed: frozenset[str], aliases: Mapping[str, str] | None = None
    ) -> str:
        """A value of a shared vocabulary, matched regardless of case and spacing;
        ``aliases`` maps the backend's own spellings (upper case) to the shared ones."""
        value = " ".join(self.text(key).upper().split())
        if aliases:
            value = aliases.get(value, value)
        if value not in allowed:
            raise self._invalid(key, "holds a value outside the shared vocabulary")
        return value

    def obj(self, key: str) -> Fields:
        """A nested JSON object."""
        return Fields(self.get(key), f"{self._where}.{key}")

    def optional_obj(self, key: str) -> Fields | None:
        """A nested JSON object, or ``None`` if the key is missing or ``null``."""
        if self._data.get(key) is None:
            return None
        return self.obj(key)

    def objects(self, key: str) -> list[Fields]:
        """A non-empty JSON array of objects."""
        value = self.get(key)
        if not isinstance(value, list) or not value:
            raise self._invalid(key, "is not a non-empty array")
        return [Fields(item, f"{self._where}.{key}[{i}]") for i, item in enumerate(value)]
