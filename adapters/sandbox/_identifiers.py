"""Construct NIK, No. KK and akta numbers for the sandbox (the sandbox's own, not ``schemas``).

Serials are handed out per prefix so that every number is unique and starts at 0001, the way
a civil registry numbers them.
"""

from __future__ import annotations

from datetime import date

__all__ = ["Numbering"]

_FEMALE_DAY_OFFSET = 40
_MAX_SERIAL = 9999


def _ddmmyy(day: int, when: date) -> str:
    return f"{day:02d}{when.month:02d}{when.year % 100:02d}"


class Numbering:
    """Hands out unique identifiers; one instance per generated population."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def _next(self, prefix: str) -> str:
        serial = self._last.get(prefix, 0) + 1
        if serial > _MAX_SERIAL:
            raise RuntimeError("sandbox numbering ran out of serials for one prefix")
        self._last[prefix] = serial
        return f"{prefix}{serial:04d}"

    def nik(self, district_code: str, birth: date, *, female: bool) -> str:
        """``PPRRSS`` + birth day (+40 for women) + month + 2-digit year + serial."""
        day = birth.day + (_FEMALE_DAY_OFFSET if female else 0)
        return self._next(district_code + _ddmmyy(day, birth))

    def no_kk(self, district_code: str, issued: date) -> str:
        """``PPRRSS`` + issue date ``DDMMYY`` + serial."""
        return self._next(district_code + _ddmmyy(issued.day, issued))

    def no_akta(self, regency_code: str, issued: date, *, late: bool) -> str:
        """``3174-LU-20052010-0012``: regency, LU (on time) or LT (late), issue date, serial."""
        kind = "LT" if late else "LU"
        return self._next(f"{regency_code}-{kind}-{issued:%d%m%Y}-")
