"""Adapter for Dukcapil's NIK web service: serves ``ktp`` and ``kk``.

Dukcapil answers ``POST {base}/dukcapil/api/v1/CALL_NIK`` (``{"NIK"}``) and ``CALL_KK``
(``{"NO_KK"}``) with a page ``{"content": [...]}`` of upper-snake-case elements: dates
``DD-MM-YYYY``, RT/RW and postal codes as numbers, vocabularies in SIAK's title-case spelling.
A number it does not know comes back as HTTP 200 with ``{"content": [{"RESPON": "Data Tidak
Ditemukan"}]}``. A KK asked for by a member's NIK takes two calls: ``CALL_NIK`` for the
member's ``NO_KK``, then ``CALL_KK``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters._answer import Fields, json_of
from adapters._http import HttpAdapter
from adapters._query import identifier, query_shape
from adapters._vocabulary import (
    AGAMA,
    GOLONGAN_DARAH,
    HUBUNGAN_KELUARGA,
    JENIS_KELAMIN,
    KEWARGANEGARAAN,
    PENDIDIKAN,
    SEUMUR_HIDUP,
    STATUS_PERKAWINAN,
)
from adapters.errors import RecordNotFound, UpstreamError, UpstreamInvalid

__all__ = ["DukcapilAdapter"]

_API = "/dukcapil/api/v1"
_DMY = "%d-%m-%Y"
_NIK = frozenset({"nik"})
_NO_KK = frozenset({"no_kk"})
# SIAK spells some religions its own way.
_AGAMA_ALIASES = {
    "KATHOLIK": "KATOLIK",
    "BUDHA": "BUDDHA",
    "KHONGHUCU": "KONGHUCU",
    "KEPERCAYAAN TERHADAP TUHAN YME": "KEPERCAYAAN",
}


def _person(element: Fields) -> dict[str, Any]:
    return {
        "nik": element.digits("NIK", 16),
        "nama": element.text("NAMA_LGKP"),
        "jenis_kelamin": element.choice("JENIS_KLMIN", JENIS_KELAMIN),
        "tempat_lahir": element.text("TMPT_LHR"),
        "tanggal_lahir": element.date("TGL_LHR", _DMY),
        "agama": element.choice("AGAMA", AGAMA, _AGAMA_ALIASES),
        "status_perkawinan": element.choice("STATUS_KAWIN", STATUS_PERKAWINAN),
        "pekerjaan": " ".join(element.text("JENIS_PKRJN").upper().split()),
        "kewarganegaraan": element.choice("KEWARGANEGARAAN", KEWARGANEGARAAN),
    }


def _address(element: Fields) -> dict[str, Any]:
    return {
        "alamat": element.text("ALAMAT"),
        "rt": element.digits("NO_RT", 3, pad=True),
        "rw": element.digits("NO_RW", 3, pad=True),
        "kelurahan_desa": element.text("KEL_NAME"),
        "kecamatan": element.text("KEC_NAME"),
        "kabupaten_kota": element.text("KAB_NAME"),
        "provinsi": element.text("PROP_NAME"),
    }


def _ktp(element: Fields) -> dict[str, Any]:
    validity = element.get("MASA_BERLAKU_KTP")
    if validity is None:
        raise RecordNotFound("no KTP has been issued to this person")
    if isinstance(validity, str) and " ".join(validity.upper().split()) == SEUMUR_HIDUP:
        valid_until = SEUMUR_HIDUP
    else:
        valid_until = element.date("MASA_BERLAKU_KTP", _DMY)
    person = _person(element)
    return {
        "nik": person["nik"],
        "nama": person["nama"],
        "tempat_lahir": person["tempat_lahir"],
        "tanggal_lahir": person["tanggal_lahir"],
        "jenis_kelamin": person["jenis_kelamin"],
        "golongan_darah": element.choice("GOL_DARAH", GOLONGAN_DARAH),
        **_address(element),
        "agama": person["agama"],
        "status_perkawinan": person["status_perkawinan"],
        "pekerjaan": person["pekerjaan"],
        "kewarganegaraan": person["kewarganegaraan"],
        "berlaku_hingga": valid_until,
    }


def _member(element: Fields) -> dict[str, Any]:
    person = _person(element)
    return {
        "nik": person["nik"],
        "nama": person["nama"],
        "jenis_kelamin": person["jenis_kelamin"],
        "tempat_lahir": person["tempat_lahir"],
        "tanggal_lahir": person["tanggal_lahir"],
        "agama": person["agama"],
        "pendidikan": element.choice("PDDK_AKH", PENDIDIKAN),
        "pekerjaan": person["pekerjaan"],
        "status_perkawinan": person["status_perkawinan"],
        "hubungan_keluarga": element.choice("STAT_HBKEL", HUBUNGAN_KELUARGA),
        "kewarganegaraan": person["kewarganegaraan"],
        "nama_ayah": element.text("NAMA_LGKP_AYAH"),
        "nama_ibu": element.text("NAMA_LGKP_IBU"),
    }


def _kk(no_kk: str, elements: list[Fields]) -> dict[str, Any]:
    if any(element.digits("NO_KK", 16) != no_kk for element in elements):
        raise UpstreamInvalid("dukcapil CALL_KK answered members of another family card")
    family = elements[0]
    return {
        "no_kk": no_kk,
        "kepala_keluarga": family.text("NAMA_KEP"),
        **_address(family),
        "kode_pos": family.digits("KODE_POS", 5, pad=True),
        "tanggal_terbit": family.date("TGL_TERBIT_KK", _DMY),
        "anggota": [_member(element) for element in elements],
    }


class DukcapilAdapter(HttpAdapter):
    """Serves ``ktp`` (by NIK) and ``kk`` (by No. KK or a member's NIK) from Dukcapil."""

    name = "dukcapil"
    services = frozenset({"ktp", "kk"})

    async def _fetch(self, service: str, query: Mapping[str, Any]) -> dict[str, Any]:
        if service == "ktp":
            query_shape(query, service, (_NIK,))
            return _ktp(await self._biodata(identifier(query, "nik")))
        if query_shape(query, service, (_NO_KK, _NIK)) == _NIK:
            nik = identifier(query, "nik")
            no_kk = (await self._biodata(nik)).digits("NO_KK", 16)
            record = _kk(no_kk, await self._call("CALL_KK", {"NO_KK": no_kk}, "family card"))
            if nik not in {member["nik"] for member in record["anggota"]}:
                raise UpstreamInvalid("dukcapil's family card does not list the person asked for")
            return record
        no_kk = identifier(query, "no_kk")
        return _kk(no_kk, await self._call("CALL_KK", {"NO_KK": no_kk}, "family card"))

    async def _biodata(self, nik: str) -> Fields:
        elements = await self._call("CALL_NIK", {"NIK": nik}, "person")
        if len(elements) != 1:
            raise UpstreamInvalid("dukcapil CALL_NIK answered more than one person")
        if elements[0].digits("NIK", 16) != nik:
            raise UpstreamInvalid("dukcapil CALL_NIK answered about another person")
        return elements[0]

    async def _call(self, function: str, body: Mapping[str, str], what: str) -> list[Fields]:
        # A lookup, though a POST: it changes nothing, so it may be sent again.
        response = await self._request("POST", f"{_API}/{function}", json=body, idempotent=True)
        if response.status_code != 200:
            raise UpstreamError(f"dukcapil {function} answered HTTP {response.status_code}")
        where = f"dukcapil {function} answer"
        content = Fields(json_of(response, where), where).objects("content")
        if len(content) == 1 and content[0].has("RESPON"):
            respon = content[0].get("RESPON")
            if isinstance(respon, str) and "tidak ditemukan" in respon.casefold():
                raise RecordNotFound(f"dukcapil holds no such {what}")
            raise UpstreamError(f"dukcapil {function} refused the call")
        return content
