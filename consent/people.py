"""Who a record is about, and which of them may consent to its release.

A KTP is about its holder alone. A KK (family card) is about every member of the family, an
Akta Kelahiran (birth certificate) about the child and the parents it names. Every one of them
may find the exchange in their access log (the broker files it under each); not every one of
them may consent to releasing the others' data:

- **KK**: an adult member of the family. The family card is the household's own document,
  which any adult member holds and hands over today as a photocopy; a child's consent
  releases nothing, nor does that of someone listed on the card outside the family (a
  household worker, ``PEMBANTU``, or ``LAINNYA``).
- **Akta Kelahiran**: the child once adult; while the child is a minor, a parent the record
  names (with a NIK). A minor's data is the parents' to decide on, and an adult's birth
  certificate is that adult's.
- **KTP**: the holder (a KTP is issued only at 17 or on marriage).

Adult: :data:`ADULT_AGE` years old on the day of the exchange (UTC), or, where the record
says so (a KK member's marital status), married now or before. The age is the one below which
UU 35/2014 counts a person a child, whose personal data UU 27/2022 (PDP), article 25, lets be
processed only with a parent's or guardian's consent; a married minor counts as an adult, as
in Indonesian civil law. Where a date cannot be read the person counts as a minor: refusal by
default. Guardians other than the parents on the birth certificate are not modelled.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

__all__ = ["ADULT_AGE", "RecordPeople", "is_adult", "record_people"]

#: Age in whole years from which a person may consent for a record that names others.
ADULT_AGE: Final = 18

#: The marital statuses (``status_perkawinan``) of someone married now or before.
_MARRIED: Final = frozenset({"KAWIN", "CERAI HIDUP", "CERAI MATI"})
#: The relationships (``hubungan_keluarga``) of someone listed on a KK who is not family.
_NOT_FAMILY: Final = frozenset({"PEMBANTU", "LAINNYA"})
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True, slots=True)
class RecordPeople:
    """The NIKs a record names (each once, in record order) and those who may consent."""

    subjects: tuple[str, ...] = field(repr=False)
    may_consent: tuple[str, ...] = field(repr=False)


def is_adult(born: object, today: date, *, married: bool = False) -> bool:
    """Whether someone born on ``born`` (``YYYY-MM-DD``) is :data:`ADULT_AGE` on ``today``.

    ``married``: married now or before, which makes a minor an adult. A date that is not one
    (the schemas let only real dates through; this is the default for anything else) is False.
    """
    if married:
        return True
    # fromisoformat takes other forms too (20010203, 2001-W05-6): only the schemas' one here.
    if not isinstance(born, str) or _DATE.fullmatch(born) is None:
        return False
    try:
        birth = date.fromisoformat(born)
    except ValueError:
        return False
    years = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    return years >= ADULT_AGE


def record_people(code: str, record: Mapping[str, Any], *, today: date) -> RecordPeople:
    """Who the ``code`` record (schema-valid) is about, and who of them may consent to it.

    An unknown schema code names no one, so nobody may consent to it.
    """
    if code == "ktp":
        return RecordPeople(subjects=(record["nik"],), may_consent=(record["nik"],))
    if code == "kk":
        members = record["anggota"]
        adults = [
            m["nik"]
            for m in members
            if m.get("hubungan_keluarga") not in _NOT_FAMILY
            and is_adult(
                m.get("tanggal_lahir"), today, married=m.get("status_perkawinan") in _MARRIED
            )
        ]
        return RecordPeople(
            subjects=_unique(m["nik"] for m in members), may_consent=_unique(adults)
        )
    if code == "akta-lahir":
        child = record["anak"]
        parents = [p["nik"] for p in (record.get("ayah"), record.get("ibu")) if p and p.get("nik")]
        holders = [child["nik"]] if is_adult(child.get("tanggal_lahir"), today) else parents
        return RecordPeople(
            subjects=_unique([child["nik"], *parents]), may_consent=_unique(holders)
        )
    return RecordPeople(subjects=(), may_consent=())


def _unique(niks: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(niks))
