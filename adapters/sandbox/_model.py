"""The records of the synthetic population, in the shared vocabulary (``docs/architecture.md``).

The sandbox backends translate these into their own dialects; the adapters translate back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

__all__ = [
    "REFERENCE_DATE",
    "SEUMUR_HIDUP",
    "WIB",
    "Address",
    "BirthRecord",
    "Household",
    "Person",
    "age_on",
]

REFERENCE_DATE = date(2025, 7, 1)
"""The population's "today": ages, KTP eligibility and issue dates are fixed against it."""

WIB = timezone(timedelta(hours=7), "WIB")
SEUMUR_HIDUP = "SEUMUR HIDUP"


def age_on(day: date, born: date) -> int:
    """Age in whole years on ``day`` of someone born on ``born``."""
    had_birthday = (day.month, day.day) >= (born.month, born.day)
    return day.year - born.year - (0 if had_birthday else 1)


@dataclass(frozen=True, slots=True)
class Person:
    """One citizen as the national register knows them."""

    nik: str
    nama: str
    jenis_kelamin: str
    tempat_lahir: str
    tanggal_lahir: date
    agama: str
    golongan_darah: str
    pendidikan: str
    pekerjaan: str
    status_perkawinan: str
    hubungan_keluarga: str
    kewarganegaraan: str
    nama_ayah: str
    nama_ibu: str
    no_kk: str
    has_ktp: bool

    @property
    def age(self) -> int:
        """Age in whole years on :data:`REFERENCE_DATE`."""
        return age_on(REFERENCE_DATE, self.tanggal_lahir)


@dataclass(frozen=True, slots=True)
class Address:
    """Where a household lives; ``rt``/``rw`` as numbers, codes as Kemendagri writes them."""

    alamat: str
    rt: int
    rw: int
    kelurahan_desa: str
    kecamatan: str
    kabupaten_kota: str
    provinsi: str
    kode_pos: str
    kode_kecamatan: str
    kode_kelurahan: str


@dataclass(frozen=True, slots=True)
class Household:
    """One family card (KK): its number, issue date, address and members, head first."""

    no_kk: str
    tanggal_terbit: date
    address: Address
    members: tuple[Person, ...]

    @property
    def head(self) -> Person:
        """The member whose relationship is ``KEPALA KELUARGA``."""
        return self.members[0]


@dataclass(frozen=True, slots=True)
class BirthRecord:
    """One birth certificate (akta kelahiran)."""

    no_akta: str
    kantor_penerbit: str
    issued_at: datetime
    anak_nik: str
    anak_nama: str
    jenis_kelamin: str
    tempat_lahir: str
    tanggal_lahir: date
    anak_ke: int
    ayah_nik: str | None
    ayah_nama: str
    ibu_nik: str | None
    ibu_nama: str

    @property
    def tanggal_terbit(self) -> date:
        """The issue date at the issuing office (WIB)."""
        return self.issued_at.astimezone(WIB).date()
