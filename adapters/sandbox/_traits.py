"""Draw a person's religion, blood type, education and occupation, consistent with their age."""

from __future__ import annotations

import random
from datetime import date

__all__ = ["blood_type", "education", "occupation", "religion"]

_RELIGIONS = ("ISLAM", "KRISTEN", "KATOLIK", "HINDU", "BUDDHA", "KONGHUCU", "KEPERCAYAAN")
_RELIGION_WEIGHTS = (860, 70, 35, 17, 10, 4, 4)
_BLOOD = ("O", "A", "B", "AB")
_BLOOD_WEIGHTS = (37, 25, 28, 7)
_ADULT_EDUCATION = (
    "TIDAK/BELUM SEKOLAH",
    "BELUM TAMAT SD/SEDERAJAT",
    "TAMAT SD/SEDERAJAT",
    "SLTP/SEDERAJAT",
    "SLTA/SEDERAJAT",
    "DIPLOMA I/II",
    "AKADEMI/DIPLOMA III/S. MUDA",
    "DIPLOMA IV/STRATA I",
    "STRATA II",
    "STRATA III",
)
_EDUCATION_WEIGHTS = (1, 2, 10, 12, 38, 4, 8, 20, 4, 1)
_ELDER_EDUCATION_WEIGHTS = (8, 12, 30, 15, 22, 2, 4, 6, 1, 0)
_HIGHER_EDUCATION = frozenset(_ADULT_EDUCATION[5:])
_SCHOOL_LEVELS = (
    (5, "TIDAK/BELUM SEKOLAH"),
    (12, "BELUM TAMAT SD/SEDERAJAT"),
    (15, "TAMAT SD/SEDERAJAT"),
    (18, "SLTP/SEDERAJAT"),
    (22, "SLTA/SEDERAJAT"),
)
_SKILLED_WORK = (
    "KARYAWAN SWASTA",
    "PEGAWAI NEGERI SIPIL",
    "KARYAWAN BUMN",
    "GURU",
    "DOSEN",
    "DOKTER",
    "PERAWAT",
    "WIRASWASTA",
)
_GENERAL_WORK = (
    "KARYAWAN SWASTA",
    "WIRASWASTA",
    "PEDAGANG",
    "BURUH HARIAN LEPAS",
    "SOPIR",
    "KARYAWAN HONORER",
    "PENJAHIT",
)


def religion(rng: random.Random) -> str:
    """A household's religion, weighted roughly as Indonesia's census."""
    return rng.choices(_RELIGIONS, _RELIGION_WEIGHTS)[0]


def blood_type(rng: random.Random, born: date) -> str:
    """A blood type, sometimes with rhesus; older people more often never had it tested."""
    if rng.random() < (0.25 if born.year < 1970 else 0.08):
        return "TIDAK TAHU"
    base = rng.choices(_BLOOD, _BLOOD_WEIGHTS)[0]
    roll = rng.random()
    if roll < 0.12:
        return base + "+"
    if roll < 0.13:
        return base + "-"
    return base


def education(rng: random.Random, age: int) -> str:
    """The school level reached by ``age``: fixed for children, drawn for adults."""
    for below, level in _SCHOOL_LEVELS:
        if age < below:
            return level
    weights = _ELDER_EDUCATION_WEIGHTS if age >= 65 else _EDUCATION_WEIGHTS
    return rng.choices(_ADULT_EDUCATION, weights)[0]


def occupation(rng: random.Random, age: int, *, female: bool, relation: str, education: str) -> str:
    """An occupation fitting the person's age, place in the family and schooling."""
    if age < 5:
        return "BELUM/TIDAK BEKERJA"
    if relation == "ANAK" and age < 23:
        return "PELAJAR/MAHASISWA"
    if age >= 58:
        if female and rng.random() < 0.5:
            return "MENGURUS RUMAH TANGGA"
        return rng.choice(("PENSIUNAN", "PENSIUNAN", "WIRASWASTA"))
    if relation == "ISTRI" and rng.random() < 0.4:
        return "MENGURUS RUMAH TANGGA"
    if relation == "ANAK" and rng.random() < 0.15:
        return "BELUM/TIDAK BEKERJA"
    return rng.choice(_SKILLED_WORK if education in _HIGHER_EDUCATION else _GENERAL_WORK)
