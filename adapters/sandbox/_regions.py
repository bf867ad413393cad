"""Real administrative regions the synthetic citizens live in.

Codes and names follow Kepmendagri No 300.2.2-2138 Tahun 2025 (province, regency/city and
district codes are what a NIK and a No. KK start with); postal codes are Pos Indonesia's.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DISTRICTS", "District", "Village"]


@dataclass(frozen=True, slots=True)
class Village:
    """A kelurahan/desa: its 4-digit code inside the district, name and postal code."""

    code: str
    name: str
    postal_code: str


@dataclass(frozen=True, slots=True)
class District:
    """A kecamatan with the regency and province above it and the civil registry serving it."""

    code: str
    name: str
    regency: str
    province: str
    birth_city: str
    registry_office: str
    weight: int
    villages: tuple[Village, ...]
    streets: tuple[str, ...]

    @property
    def regency_code(self) -> str:
        """The 4-digit province + regency code (``3174`` for Jakarta Selatan)."""
        return self.code[:4]


_JAKSEL = "KOTA ADM. JAKARTA SELATAN"
_JAKSEL_OFFICE = "DISDUKCAPIL KOTA ADM. JAKARTA SELATAN"

DISTRICTS: tuple[District, ...] = (
    District(
        code="317401",
        name="TEBET",
        regency=_JAKSEL,
        province="DKI JAKARTA",
        birth_city="JAKARTA",
        registry_office=_JAKSEL_OFFICE,
        weight=4,
        villages=(
            Village("1001", "TEBET TIMUR", "12820"),
            Village("1002", "TEBET BARAT", "12810"),
            Village("1003", "MENTENG DALAM", "12870"),
            Village("1004", "KEBON BARU", "12830"),
            Village("1005", "BUKIT DURI", "12840"),
            Village("1006", "MANGGARAI SELATAN", "12860"),
            Village("1007", "MANGGARAI", "12850"),
        ),
        streets=(
            "JL. TEBET BARAT DALAM",
            "JL. TEBET TIMUR DALAM",
            "JL. TEBET RAYA",
            "JL. KH. ABDULLAH SYAFEI",
            "JL. SAHARJO",
            "JL. MINANGKABAU",
            "JL. KEBON BARU",
            "GG. MASJID",
        ),
    ),
    District(
        code="317402",
        name="SETIABUDI",
        regency=_JAKSEL,
        province="DKI JAKARTA",
        birth_city="JAKARTA",
        registry_office=_JAKSEL_OFFICE,
        weight=2,
        villages=(
            Village("1001", "SETIA BUDI", "12910"),
            Village("1002", "KARET SEMANGGI", "12930"),
            Village("1003", "KARET KUNINGAN", "12940"),
            Village("1004", "KARET", "12920"),
            Village("1005", "MENTENG ATAS", "12960"),
            Village("1006", "PASAR MANGGIS", "12970"),
            Village("1007", "GUNTUR", "12980"),
            Village("1008", "KUNINGAN TIMUR", "12950"),
        ),
        streets=(
            "JL. HR. RASUNA SAID",
            "JL. PROF. DR. SATRIO",
            "JL. KARET PEDURENAN",
            "JL. MENTENG PULO",
            "JL. GUNTUR",
            "GG. KELINCI",
        ),
    ),
    District(
        code="317407",
        name="KEBAYORAN BARU",
        regency=_JAKSEL,
        province="DKI JAKARTA",
        birth_city="JAKARTA",
        registry_office=_JAKSEL_OFFICE,
        weight=2,
        villages=(
            Village("1001", "MELAWAI", "12160"),
            Village("1002", "GUNUNG", "12120"),
            Village("1003", "KRAMAT PELA", "12130"),
            Village("1004", "SELONG", "12110"),
            Village("1005", "RAWA BARAT", "12180"),
            Village("1006", "SENAYAN", "12190"),
            Village("1007", "PULO", "12160"),
            Village("1008", "PETOGOGAN", "12170"),
            Village("1009", "GANDARIA UTARA", "12140"),
            Village("1010", "CIPETE UTARA", "12150"),
        ),
        streets=(
            "JL. WOLTER MONGINSIDI",
            "JL. SENOPATI",
            "JL. GUNAWARMAN",
            "JL. PANGLIMA POLIM",
            "JL. CIPETE RAYA",
            "JL. KRAMAT PELA",
        ),
    ),
    District(
        code="327302",
        name="COBLONG",
        regency="KOTA BANDUNG",
        province="JAWA BARAT",
        birth_city="BANDUNG",
        registry_office="DISDUKCAPIL KOTA BANDUNG",
        weight=3,
        villages=(
            Village("1001", "CIPAGANTI", "40131"),
            Village("1002", "LEBAK GEDE", "40132"),
            Village("1003", "SADANG SERANG", "40133"),
            Village("1004", "DAGO", "40135"),
            Village("1005", "SEKELOA", "40134"),
            Village("1006", "LEBAK SILIWANGI", "40132"),
        ),
        streets=(
            "JL. IR. H. JUANDA",
            "JL. DIPATI UKUR",
            "JL. SEKELOA",
            "JL. TUBAGUS ISMAIL",
            "JL. CISITU LAMA",
            "GG. SADANG TENGAH",
        ),
    ),
    District(
        code="357808",
        name="GUBENG",
        regency="KOTA SURABAYA",
        province="JAWA TIMUR",
        birth_city="SURABAYA",
        registry_office="DISPENDUKCAPIL KOTA SURABAYA",
        weight=3,
        villages=(
            Village("1001", "GUBENG", "60281"),
            Village("1002", "MOJO", "60285"),
            Village("1003", "AIRLANGGA", "60286"),
            Village("1004", "KERTAJAYA", "60282"),
            Village("1005", "BARATAJAYA", "60284"),
            Village("1006", "PUCANG SEWU", "60283"),
        ),
        streets=(
            "JL. DHARMAWANGSA",
            "JL. KERTAJAYA",
            "JL. PUCANG ANOM",
            "JL. BARATAJAYA",
            "JL. GUBENG KERTAJAYA",
            "GG. MOJO KIDUL",
        ),
    ),
)
