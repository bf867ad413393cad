"""A deterministic synthetic population: citizens, their family cards and birth certificates.

``generate()`` builds the same people for the same seed, in well under a second, and caches
the result. Everyone lives in a real district (Tebet, Setiabudi and Kebayoran Baru in
Jakarta Selatan; Coblong in Bandung; Gubeng in Surabaya) and carries a NIK that encodes their
district, birth date and sex. A few citizens are *faults*: the sandbox backends misbehave when
asked about them, so the broker's failure paths can be exercised over real HTTP.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal

from adapters.sandbox._builder import AKTA_SINCE, KTP_AGE, build
from adapters.sandbox._model import (
    REFERENCE_DATE,
    SEUMUR_HIDUP,
    Address,
    BirthRecord,
    Household,
    Person,
)

__all__ = [
    "AKTA_SINCE",
    "DEFAULT_HOUSEHOLDS",
    "DEFAULT_SEED",
    "FAULT_KINDS",
    "KTP_AGE",
    "REFERENCE_DATE",
    "SEUMUR_HIDUP",
    "Address",
    "BirthRecord",
    "FaultKind",
    "Household",
    "Person",
    "Population",
    "generate",
]

DEFAULT_SEED: Final = 20250701
DEFAULT_HOUSEHOLDS: Final = 400

FaultKind = Literal["corrupt", "slow", "error"]
FAULT_KINDS: tuple[FaultKind, ...] = ("corrupt", "slow", "error")
"""What the sandbox backends do when an answer would include a fault NIK's record (their KTP,
any family card listing them, their birth certificate): ``corrupt`` answers a malformed record
(Dukcapil: an impossible birth date; the birth registry: no child name), ``slow`` answers
after 3 s, ``error`` answers HTTP 500."""


def _office_key(office: str) -> str:
    return " ".join(office.split()).casefold()


class Population:
    """Households and birth records with lookups by NIK, No. KK and akta number."""

    def __init__(
        self,
        *,
        seed: int,
        households: tuple[Household, ...],
        birth_records: tuple[BirthRecord, ...],
    ) -> None:
        if not households:
            raise ValueError("a population needs at least one household")
        self.seed = seed
        self.households = households
        self.birth_records = birth_records
        self.people: tuple[Person, ...] = tuple(p for h in households for p in h.members)
        self._people = {person.nik: person for person in self.people}
        self._households = {household.no_kk: household for household in households}
        self._births = {record.anak_nik: record for record in birth_records}
        self._births_by_number = {
            (record.no_akta, _office_key(record.kantor_penerbit)): record
            for record in birth_records
        }
        self.faults: Mapping[str, FaultKind] = MappingProxyType(self._pick_faults())

    def person(self, nik: str) -> Person | None:
        """The citizen with this NIK, if any."""
        return self._people.get(nik)

    def household(self, no_kk: str) -> Household | None:
        """The family card with this number, if any."""
        return self._households.get(no_kk)

    def household_of(self, nik: str) -> Household | None:
        """The family card the citizen with this NIK is a member of, if any."""
        person = self._people.get(nik)
        return None if person is None else self._households[person.no_kk]

    def birth_record(self, nik: str) -> BirthRecord | None:
        """The birth certificate of the child with this NIK, if any."""
        return self._births.get(nik)

    def birth_record_by_number(self, no_akta: str, office: str) -> BirthRecord | None:
        """The birth certificate with this number from this office (case and spacing aside)."""
        return self._births_by_number.get((no_akta.strip(), _office_key(office)))

    def demo_citizen(self) -> Person:
        """The head of the first household: an adult in Tebet, Jakarta Selatan, with a KTP,
        a birth certificate and a family card of three or more members."""
        return self.households[0].head

    def fault_nik(self, kind: FaultKind) -> str:
        """The NIK designated for ``kind``; ``KeyError`` if this population is too small."""
        for nik, fault in self.faults.items():
            if fault == kind:
                return nik
        raise KeyError(kind)

    def _pick_faults(self) -> dict[str, FaultKind]:
        """One adult with a KTP and an akta per fault kind, from the last households backwards,
        each in a different household and never in the demo citizen's."""
        faults: dict[str, FaultKind] = {}
        for household in reversed(self.households[1:]):
            head = household.head
            if head.has_ktp and head.nik in self._births:
                faults[head.nik] = FAULT_KINDS[len(faults)]
                if len(faults) == len(FAULT_KINDS):
                    break
        return faults


@functools.lru_cache(maxsize=8)
def generate(seed: int = DEFAULT_SEED, households: int = DEFAULT_HOUSEHOLDS) -> Population:
    """The population for ``seed``: ``households`` families (about 3.2 people each)."""
    built_households, birth_records = build(seed, households)
    return Population(seed=seed, households=built_households, birth_records=birth_records)
