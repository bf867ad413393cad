"""A sandbox of a regional civil registry's birth certificate API (its own REST dialect).

``GET /registry/v2/births?child_nik=...`` or ``?certificate_no=...&office=...`` answers::

    {"data": {"certificate": {"number": "3174-LU-13052010-0001",
                              "issued_at": "2010-05-13T14:10:00+07:00",
                              "office": {"name": "DISDUKCAPIL KOTA ADM. JAKARTA SELATAN",
                                         "code": "3174"}},
              "child": {"identity": {"nik": "..."}, "name": {"full": "..."}, "sex": "F",
                        "birth": {"place": "JAKARTA", "date": "2010-03-29"}, "order": 1},
              "parents": [{"role": "father", "identity": {"nik": "..."}, "name": {"full": ...}},
                          {"role": "mother", "identity": null, "name": {"full": ...}}]},
     "meta": {"api_version": "2.3"}}

``identity`` is ``null`` for a parent the registry holds no NIK for. Errors are
``{"error": {"code": ..., "message": ...}}``: 404 ``not_found``, 400 ``invalid_query``,
500 ``internal``. The office is matched regardless of case and spacing.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from adapters.sandbox._faults import SLOW_DELAY, fault_for, stall
from adapters.sandbox.population import BirthRecord, Population

__all__ = ["BIRTHS_PATH", "create_capil_app"]

BIRTHS_PATH = "/registry/v2/births"
_SEX = {"LAKI-LAKI": "M", "PEREMPUAN": "F"}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _parent(role: str, nik: str | None, name: str) -> dict[str, object]:
    return {"role": role, "identity": None if nik is None else {"nik": nik}, "name": {"full": name}}


def _payload(record: BirthRecord, *, corrupt: bool) -> dict[str, object]:
    child: dict[str, object] = {
        "identity": {"nik": record.anak_nik},
        "name": {"full": record.anak_nama},
        "sex": _SEX[record.jenis_kelamin],
        "birth": {"place": record.tempat_lahir, "date": record.tanggal_lahir.isoformat()},
        "order": record.anak_ke,
    }
    if corrupt:  # a record that lost a required part, as real registries sometimes answer
        del child["name"]
    return {
        "data": {
            "certificate": {
                "number": record.no_akta,
                "issued_at": record.issued_at.isoformat(),
                "office": {"name": record.kantor_penerbit, "code": record.no_akta[:4]},
            },
            "child": child,
            "parents": [
                _parent("father", record.ayah_nik, record.ayah_nama),
                _parent("mother", record.ibu_nik, record.ibu_nama),
            ],
        },
        "meta": {"api_version": "2.3"},
    }


def create_capil_app(population: Population, *, slow_delay: float = SLOW_DELAY) -> FastAPI:
    """The birth registry sandbox serving ``population``; fault NIKs misbehave."""
    app = FastAPI(title="Simpul sandbox: regional birth registry", version="2.3")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(BIRTHS_PATH)
    async def births(
        child_nik: str | None = None,
        certificate_no: str | None = None,
        office: str | None = None,
    ) -> JSONResponse:
        if child_nik is not None and certificate_no is None and office is None:
            record = population.birth_record(child_nik)
        elif child_nik is None and certificate_no is not None and office is not None:
            record = population.birth_record_by_number(certificate_no, office)
        else:
            return _error(
                400, "invalid_query", "give child_nik, or certificate_no together with office"
            )
        if record is None:
            return _error(404, "not_found", "no birth record matches the query")
        fault = fault_for(population, [record.anak_nik])
        await stall(fault, slow_delay)
        if fault == "error":
            return _error(500, "internal", "registry database unavailable")
        return JSONResponse(_payload(record, corrupt=fault == "corrupt"))

    return app
