"""NIK and No. KK: the rules of Indonesian civil-registration numbers that JSON Schema cannot say.

A NIK is ``PPRRSSDDMMYYXXXX``: province, regency/city and district codes, day of birth (plus 40
for women), month, two-digit year, and a serial from 0001. A No. KK is ``PPRRSSDDMMYYXXXX`` too:
the issuing district's area code, the issue date, and a serial from 0001. Neither has a check
digit, so these checks catch typos and fabrications only as far as the structure allows.

Error details name the rule that failed, never the number: a NIK is personal data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Final, Literal

from schemas.errors import InvalidNik, InvalidNoKk

__all__ = [
    "FEMALE",
    "MALE",
    "PROVINCES",
    "InvalidNik",
    "InvalidNoKk",
    "KkInfo",
    "NikInfo",
    "Sex",
    "is_valid_nik",
    "is_valid_no_kk",
    "make_nik",
    "make_no_kk",
    "nik_matches",
    "parse_nik",
    "parse_no_kk",
    "today_in_indonesia",
]

Sex = Literal["LAKI-LAKI", "PEREMPUAN"]
MALE: Final = "LAKI-LAKI"
FEMALE: Final = "PEREMPUAN"

# Dukcapil writes Kemendagri area codes into NIK and KK numbers, not BPS statistical codes, which
# differ in Papua (BPS: 91 Papua Barat, 92 Papua Barat Daya, 94 Papua, 95-97; there is no
# Kemendagri 97). Source: Kepmendagri No. 300.2.2-2138 Tahun 2025 (38 provinces), which keeps the
# codes of Kepmendagri No. 100.1.1-6117 Tahun 2022. A NIK never changes, so numbers issued before
# the 2022 split still carry the old codes 91 (then Papua Barat) and 94 (then Papua): the prefix
# tells where a number was issued, not where its holder lives today.
PROVINCES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "11": "ACEH",
        "12": "SUMATERA UTARA",
        "13": "SUMATERA BARAT",
        "14": "RIAU",
        "15": "JAMBI",
        "16": "SUMATERA SELATAN",
        "17": "BENGKULU",
        "18": "LAMPUNG",
        "19": "KEPULAUAN BANGKA BELITUNG",
        "21": "KEPULAUAN RIAU",
        "31": "DKI JAKARTA",
        "32": "JAWA BARAT",
        "33": "JAWA TENGAH",
        "34": "DAERAH ISTIMEWA YOGYAKARTA",
        "35": "JAWA TIMUR",
        "36": "BANTEN",
        "51": "BALI",
        "52": "NUSA TENGGARA BARAT",
        "53": "NUSA TENGGARA TIMUR",
        "61": "KALIMANTAN BARAT",
        "62": "KALIMANTAN TENGAH",
        "63": "KALIMANTAN SELATAN",
        "64": "KALIMANTAN TIMUR",
        "65": "KALIMANTAN UTARA",
        "71": "SULAWESI UTARA",
        "72": "SULAWESI TENGAH",
        "73": "SULAWESI SELATAN",
        "74": "SULAWESI TENGGARA",
        "75": "GORONTALO",
        "76": "SULAWESI BARAT",
        "81": "MALUKU",
        "82": "MALUKU UTARA",
        "91": "PAPUA",
        "92": "PAPUA BARAT",
        "93": "PAPUA SELATAN",
        "94": "PAPUA TENGAH",
        "95": "PAPUA PEGUNUNGAN",
        "96": "PAPUA BARAT DAYA",
    }
)

# [0-9], not \d or str.isdigit(): both also accept non-ASCII digits such as "٣" or "²".
_SIXTEEN_DIGITS = re.compile(r"[0-9]{16}")
_AREA = re.compile(r"[0-9]{6}")
_FEMALE_DAY_OFFSET = 40
# WIT (UTC+9) is Indonesia's easternmost time zone: its date is the latest one anywhere in the
# country, so a date that is "in the future" there is in the future for every registry office.
_WIT = timezone(timedelta(hours=9))


@dataclass(frozen=True, slots=True)
class NikInfo:
    """What a NIK encodes. Together the fields rebuild the NIK: treat this as personal data."""

    province: str
    """Two-digit province code, e.g. ``"32"``."""
    regency: str
    """Four-digit regency/city code including the province, e.g. ``"3201"``."""
    district: str
    """Six-digit district (kecamatan) code including the regency, e.g. ``"320101"``."""
    birth_date: date
    sex: Sex
    serial: int


@dataclass(frozen=True, slots=True)
class KkInfo:
    """What a No. KK encodes."""

    area_code: str
    """Six-digit code of the issuing district (kecamatan)."""
    issue_date: date
    serial: int


def today_in_indonesia() -> date:
    """Today's date in WIT, the latest calendar date anywhere in Indonesia."""
    return datetime.now(_WIT).date()


def parse_nik(nik: str, *, today: date | None = None) -> NikInfo:
    """Decode ``nik`` or raise :class:`~schemas.errors.InvalidNik` naming the rule it breaks.

    The two-digit year is read as the latest year, 19YY or 20YY, that puts the birth date on or
    before ``today`` (default: :func:`today_in_indonesia`).
    """
    if not isinstance(nik, str) or not _SIXTEEN_DIGITS.fullmatch(nik):
        raise InvalidNik("NIK must be exactly 16 digits")
    if problem := _area_problem(nik[:6]):
        raise InvalidNik(problem)
    encoded_day = int(nik[6:8])
    if 1 <= encoded_day <= 31:
        sex: Sex = MALE
        day = encoded_day
    elif 1 + _FEMALE_DAY_OFFSET <= encoded_day <= 31 + _FEMALE_DAY_OFFSET:
        sex, day = FEMALE, encoded_day - _FEMALE_DAY_OFFSET
    else:
        raise InvalidNik("day of birth must be 01-31, or 41-71 for women")
    try:
        birth_date = _decode_date(day, nik[8:10], nik[10:12], today or today_in_indonesia())
    except ValueError as exc:
        raise InvalidNik(f"birth date {exc}") from None
    if nik[12:] == "0000":
        raise InvalidNik("serial must be 0001-9999, not 0000")
    return NikInfo(
        province=nik[:2],
        regency=nik[:4],
        district=nik[:6],
        birth_date=birth_date,
        sex=sex,
        serial=int(nik[12:]),
    )


def is_valid_nik(nik: object, *, today: date | None = None) -> bool:
    """Whether ``nik`` is a string that :func:`parse_nik` accepts."""
    if not isinstance(nik, str):
        return False
    try:
        parse_nik(nik, today=today)
    except InvalidNik:
        return False
    return True


def nik_matches(nik: str, birth_date: date | str, sex: str) -> bool:
    """Whether ``nik`` is valid and encodes this birth date (a date or ISO string) and sex.

    A NIK carries only two digits of the year, so 1925 and 2025 both match ``..25``.
    """
    if isinstance(birth_date, str):
        try:
            birth_date = date.fromisoformat(birth_date)
        except ValueError:
            return False
    try:
        # Decoding "as of" the claimed birth date picks that date's century when the day,
        # month and two-digit year agree, so no century guess can cause a false mismatch.
        info = parse_nik(nik, today=birth_date)
    except InvalidNik:
        return False
    return info.birth_date == birth_date and info.sex == sex


def parse_no_kk(no_kk: str, *, today: date | None = None) -> KkInfo:
    """Decode ``no_kk`` or raise :class:`~schemas.errors.InvalidNoKk` naming the rule it breaks.

    The issue date must be a real date on or before ``today`` (default:
    :func:`today_in_indonesia`); its century is chosen as for :func:`parse_nik`.
    """
    if not isinstance(no_kk, str) or not _SIXTEEN_DIGITS.fullmatch(no_kk):
        raise InvalidNoKk("No. KK must be exactly 16 digits")
    if problem := _area_problem(no_kk[:6]):
        raise InvalidNoKk(problem)
    day = int(no_kk[6:8])
    if not 1 <= day <= 31:
        raise InvalidNoKk("day of issue must be 01-31")
    try:
        issue_date = _decode_date(day, no_kk[8:10], no_kk[10:12], today or today_in_indonesia())
    except ValueError as exc:
        raise InvalidNoKk(f"issue date {exc}") from None
    if no_kk[12:] == "0000":
        raise InvalidNoKk("serial must be 0001-9999, not 0000")
    return KkInfo(area_code=no_kk[:6], issue_date=issue_date, serial=int(no_kk[12:]))


def is_valid_no_kk(no_kk: object, *, today: date | None = None) -> bool:
    """Whether ``no_kk`` is a string that :func:`parse_no_kk` accepts."""
    if not isinstance(no_kk, str):
        return False
    try:
        parse_no_kk(no_kk, today=today)
    except InvalidNoKk:
        return False
    return True


def make_nik(area6: str, birth_date: date, sex: Sex, serial: int) -> str:
    """Build the NIK for a person born in district ``area6`` (for the sandbox generator).

    Raises :class:`ValueError` for an unknown area, a sex other than ``LAKI-LAKI`` or
    ``PEREMPUAN``, a serial outside 1-9999, or a birth year outside 1900-2099.
    """
    _check_parts(area6, birth_date, serial)
    if sex not in (MALE, FEMALE):
        raise ValueError("sex must be LAKI-LAKI or PEREMPUAN")
    day = birth_date.day + (_FEMALE_DAY_OFFSET if sex == FEMALE else 0)
    return f"{area6}{day:02d}{birth_date:%m%y}{serial:04d}"


def make_no_kk(area6: str, issue_date: date, serial: int) -> str:
    """Build the No. KK issued in district ``area6`` on ``issue_date`` (for the sandbox generator).

    Raises :class:`ValueError` for an unknown area, a serial outside 1-9999, or a year outside
    1900-2099.
    """
    _check_parts(area6, issue_date, serial)
    return f"{area6}{issue_date:%d%m%y}{serial:04d}"


def _area_problem(area: str) -> str | None:
    if area[:2] not in PROVINCES:
        return "province code is not a Kemendagri province code"
    if area[2:4] == "00":
        return "regency/city code must not be 00"
    if area[4:6] == "00":
        return "district code must not be 00"
    return None


def _decode_date(day: int, month: str, year: str, today: date) -> date:
    """The latest real date ``day``/``month``/19``year`` or 20``year`` not after ``today``."""
    if not 1 <= int(month) <= 12:
        raise ValueError("month must be 01-12")
    real = []
    for century in (2000, 1900):
        try:
            real.append(date(century + int(year), int(month), day))
        except ValueError:
            continue
    if not real:
        raise ValueError("is not a real calendar date")
    for candidate in real:
        if candidate <= today:
            return candidate
    raise ValueError("is in the future")


def _check_parts(area6: str, when: date, serial: int) -> None:
    if not _AREA.fullmatch(area6):
        raise ValueError("area code must be 6 digits")
    if problem := _area_problem(area6):
        raise ValueError(problem)
    if not 1900 <= when.year <= 2099:
        raise ValueError("year must be 1900-2099: the number keeps only two digits of it")
    if not 1 <= serial <= 9999:
        raise ValueError("serial must be 1-9999")
