"""Adapter for a regional civil registry's birth certificates: serves ``akta-lahir``.

The registry answers ``GET {base}/registry/v2/births?child_nik=...`` or
``?certificate_no=...&office=...`` with ``{"data": {"certificate": {...}, "child": {...},
"parents": [{"role": "father", ...}, {"role": "mother", ...}]}}``: ISO dates, an ISO
date-time for the issue, sex ``M``/``F``, a parent's ``identity`` ``null`` when the registry
holds no NIK for them. Not found is HTTP 404 ``{"error": {"code": "not_found"}}``; any other
404 (a wrong base URL, say) is an upstream error, not a missing record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters._answer import Fields, json_of, parse_iso_date, parse_iso_datetime
from adapters._http import Answer, HttpAdapter
from adapters._query import identifier, query_shape, text
from adapters._vocabulary import JENIS_KELAMIN
from adapters.errors import RecordNotFound, UpstreamError, UpstreamInvalid

__all__ = ["CapilAdapter"]

_BIRTHS = "/registry/v2/births"
_BY_CHILD = frozenset({"nik"})
_BY_NUMBER = frozenset({"no_akta", "kantor_penerbit"})
_SEX_ALIASES = {"M": "LAKI-LAKI", "F": "PEREMPUAN"}


def _same_office(left: str, right: str) -> bool:
    return " ".join(left.split()).casefold() == " ".join(right.split()).casefold()


def _parent(parent: Fields) -> dict[str, Any]:
    identity = parent.optional_obj("identity")
    return {
        "nik": None if identity is None else identity.optional_digits("nik", 16),
        "nama": parent.obj("name").text("full"),
    }


def _akta(data: Fields) -> dict[str, Any]:
    certificate = data.obj("certificate")
    child = data.obj("child")
    birth = child.obj("birth")
    parents: dict[str, Fields] = {}
    for parent in data.objects("parents"):
        role = parent.text("role").casefold()
        if role in parents:
            raise UpstreamInvalid("capil answer names a parent role twice")
        parents[role] = parent
    if "father" not in parents or "mother" not in parents:
        raise UpstreamInvalid("capil answer lacks the father or the mother")
    issued = parse_iso_datetime(certificate.text("issued_at"), "capil certificate.issued_at")
    born = parse_iso_date(birth.text("date"), "capil child.birth.date")
    return {
        "no_akta": certificate.text("number"),
        "kantor_penerbit": certificate.obj("office").text("name"),
        "tanggal_terbit": issued.date().isoformat(),
        "anak": {
            "nik": child.obj("identity").digits("nik", 16),
            "nama": child.obj("name").text("full"),
            "jenis_kelamin": child.choice("sex", JENIS_KELAMIN, _SEX_ALIASES),
            "tempat_lahir": birth.text("place"),
            "tanggal_lahir": born.isoformat(),
            "anak_ke": child.integer("order", minimum=1),
        },
        "ayah": _parent(parents["father"]),
        "ibu": _parent(parents["mother"]),
    }


def _not_found(response: Answer) -> Exception:
    """The registry's own not-found error, or an upstream error for any other 404."""
    try:
        error = Fields(json_of(response, "capil 404 answer"), "capil 404 answer").obj("error")
        if error.text("code") == "not_found":
            return RecordNotFound("the registry holds no such birth certificate")
    except UpstreamInvalid:
        pass
    return UpstreamError("capil answered HTTP 404 without its not-found error")


class CapilAdapter(HttpAdapter):
    """Serves ``akta-lahir`` by the child's NIK or by certificate number and issuing office."""

    name = "capil"
    services = frozenset({"akta-lahir"})

    async def _fetch(self, service: str, query: Mapping[str, Any]) -> dict[str, Any]:
        if query_shape(query, service, (_BY_CHILD, _BY_NUMBER)) == _BY_CHILD:
            nik = identifier(query, "nik")
            record = await self._births({"child_nik": nik})
            if record["anak"]["nik"] != nik:
                raise UpstreamInvalid("capil answered the birth certificate of another child")
            return record
        number, office = text(query, "no_akta"), text(query, "kantor_penerbit")
        record = await self._births({"certificate_no": number, "office": office})
        if record["no_akta"] != number or not _same_office(record["kantor_penerbit"], office):
            raise UpstreamInvalid("capil answered another birth certificate than asked for")
        return record

    async def _births(self, params: Mapping[str, str]) -> dict[str, Any]:
        response = await self._request("GET", _BIRTHS, params=params)
        if response.status_code == 404:
            raise _not_found(response)
        if response.status_code != 200:
            raise UpstreamError(f"capil answered HTTP {response.status_code}")
        return _akta(Fields(json_of(response, "capil answer"), "capil answer").obj("data"))
