"""A sandbox of Dukcapil's national civil registry web service (KTP biodata and family cards).

It speaks the way the real service does:

- ``POST /dukcapil/api/v1/CALL_NIK`` with ``{"NIK": "..."}`` answers the person's biodata;
- ``POST /dukcapil/api/v1/CALL_KK`` with ``{"NO_KK": "..."}`` answers one element per family
  member, the family's fields repeated in each.

Both answer HTTP 200 with a Spring-style page ``{"content": [...], "lastPage": true,
"numberOfElements": n, ...}``, and an unknown number also with HTTP 200:
``{"content": [{"RESPON": "Data Tidak Ditemukan"}], ...}``. Dates are ``DD-MM-YYYY``, RT, RW
and postal codes are numbers, vocabularies are title case in SIAK spelling (``"Katholik"``,
``"Budha"``, ``"Khonghucu"``). ``MASA_BERLAKU_KTP`` is ``"SEUMUR HIDUP"``, or ``null`` for a
person with no KTP. There is no KK lookup by a member's NIK: ask ``CALL_NIK`` for the
member's ``NO_KK``, then ``CALL_KK``.
"""

from __future__ import annotations

from datetime import date

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from adapters.sandbox._faults import SLOW_DELAY, fault_for, stall
from adapters.sandbox.population import SEUMUR_HIDUP, Household, Person, Population

__all__ = ["CALL_KK_PATH", "CALL_NIK_PATH", "create_dukcapil_app"]

CALL_NIK_PATH = "/dukcapil/api/v1/CALL_NIK"
CALL_KK_PATH = "/dukcapil/api/v1/CALL_KK"
NOT_FOUND = "Data Tidak Ditemukan"

_SEX = {"LAKI-LAKI": "Laki-laki", "PEREMPUAN": "Perempuan"}
_BLOOD = {"TIDAK TAHU": "Tidak Tahu"}
_RELIGION = {
    "ISLAM": "Islam",
    "KRISTEN": "Kristen",
    "KATOLIK": "Katholik",
    "HINDU": "Hindu",
    "BUDDHA": "Budha",
    "KONGHUCU": "Khonghucu",
    "KEPERCAYAAN": "Kepercayaan Terhadap Tuhan YME",
}
_EDUCATION = {
    "TIDAK/BELUM SEKOLAH": "Tidak/Belum Sekolah",
    "BELUM TAMAT SD/SEDERAJAT": "Belum Tamat SD/Sederajat",
    "TAMAT SD/SEDERAJAT": "Tamat SD/Sederajat",
    "SLTP/SEDERAJAT": "SLTP/Sederajat",
    "SLTA/SEDERAJAT": "SLTA/Sederajat",
    "DIPLOMA I/II": "Diploma I/II",
    "AKADEMI/DIPLOMA III/S. MUDA": "Akademi/Diploma III/S. Muda",
    "DIPLOMA IV/STRATA I": "Diploma IV/Strata I",
    "STRATA II": "Strata II",
    "STRATA III": "Strata III",
}


class NikRequest(BaseModel):
    """Body of ``CALL_NIK``."""

    NIK: str


class KkRequest(BaseModel):
    """Body of ``CALL_KK``."""

    NO_KK: str


def _ddmmyyyy(day: date) -> str:
    return day.strftime("%d-%m-%Y")


def _element(person: Person, household: Household, *, corrupt: bool) -> dict[str, object]:
    address = household.address
    code = address.kode_kelurahan
    born = _ddmmyyyy(person.tanggal_lahir)
    if corrupt:  # an impossible date, as a backend with a broken migration might send
        born = f"31-02-{person.tanggal_lahir.year}"
    return {
        "NIK": person.nik,
        "NO_KK": household.no_kk,
        "NAMA_LGKP": person.nama,
        "TMPT_LHR": person.tempat_lahir,
        "TGL_LHR": born,
        "JENIS_KLMIN": _SEX[person.jenis_kelamin],
        "GOL_DARAH": _BLOOD.get(person.golongan_darah, person.golongan_darah),
        "AGAMA": _RELIGION[person.agama],
        "STATUS_KAWIN": person.status_perkawinan.title(),
        "STAT_HBKEL": person.hubungan_keluarga.title(),
        "PDDK_AKH": _EDUCATION[person.pendidikan],
        "JENIS_PKRJN": person.pekerjaan.title(),
        "KEWARGANEGARAAN": person.kewarganegaraan,
        "NAMA_LGKP_AYAH": person.nama_ayah,
        "NAMA_LGKP_IBU": person.nama_ibu,
        "MASA_BERLAKU_KTP": SEUMUR_HIDUP if person.has_ktp else None,
        "NAMA_KEP": household.head.nama,
        "TGL_TERBIT_KK": _ddmmyyyy(household.tanggal_terbit),
        "ALAMAT": address.alamat,
        "NO_RT": address.rt,
        "NO_RW": address.rw,
        "NO_PROP": int(code[0:2]),
        "NO_KAB": int(code[2:4]),
        "NO_KEC": int(code[4:6]),
        "NO_KEL": int(code[6:10]),
        "PROP_NAME": address.provinsi,
        "KAB_NAME": address.kabupaten_kota,
        "KEC_NAME": address.kecamatan,
        "KEL_NAME": address.kelurahan_desa,
        "KODE_POS": int(address.kode_pos),
    }


def _page(content: list[dict[str, object]]) -> JSONResponse:
    size = len(content)
    return JSONResponse(
        {
            "content": content,
            "lastPage": True,
            "firstPage": True,
            "numberOfElements": size,
            "totalElements": size,
            "totalPages": 1,
            "size": size,
            "number": 0,
            "sort": None,
        }
    )


def _server_error(path: str) -> JSONResponse:
    body = {"status": 500, "error": "Internal Server Error", "path": path}
    return JSONResponse(body, status_code=500)


def create_dukcapil_app(population: Population, *, slow_delay: float = SLOW_DELAY) -> FastAPI:
    """The Dukcapil sandbox serving ``population``; fault NIKs misbehave (see ``faults``)."""
    app = FastAPI(title="Simpul sandbox: Dukcapil NIK web service", version="1.0")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(CALL_NIK_PATH)
    async def call_nik(body: NikRequest) -> JSONResponse:
        person = population.person(body.NIK)
        if person is None:
            return _page([{"RESPON": NOT_FOUND}])
        fault = fault_for(population, [person.nik])
        await stall(fault, slow_delay)
        if fault == "error":
            return _server_error(CALL_NIK_PATH)
        household = population.household_of(person.nik)
        if household is None:  # every person is on a family card; guards the sandbox itself
            return _server_error(CALL_NIK_PATH)
        return _page([_element(person, household, corrupt=fault == "corrupt")])

    @app.post(CALL_KK_PATH)
    async def call_kk(body: KkRequest) -> JSONResponse:
        household = population.household(body.NO_KK)
        if household is None:
            return _page([{"RESPON": NOT_FOUND}])
        fault = fault_for(population, (member.nik for member in household.members))
        await stall(fault, slow_delay)
        if fault == "error":
            return _server_error(CALL_KK_PATH)
        return _page(
            [
                _element(member, household, corrupt=population.faults.get(member.nik) == "corrupt")
                for member in household.members
            ]
        )

    return app
