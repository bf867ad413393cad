"""The sandbox backends speak their own dialects, as the adapters expect them to."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters.sandbox import create_capil_app, create_dukcapil_app
from adapters.sandbox.population import Population

CALL_NIK = "http://dukcapil.test/dukcapil/api/v1/CALL_NIK"
CALL_KK = "http://dukcapil.test/dukcapil/api/v1/CALL_KK"
BIRTHS = "http://capil.test/registry/v2/births"
DMY = re.compile(r"\d{2}-\d{2}-\d{4}")
SHORT_STALL = 0.05


@pytest.fixture
async def quick_dukcapil(population: Population) -> AsyncIterator[httpx.AsyncClient]:
    """The Dukcapil sandbox with a short stall for the slow NIK."""
    app = create_dukcapil_app(population, slow_delay=SHORT_STALL)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        yield client


@pytest.fixture
async def quick_capil(population: Population) -> AsyncIterator[httpx.AsyncClient]:
    """The birth registry sandbox with a short stall for the slow NIK."""
    app = create_capil_app(population, slow_delay=SHORT_STALL)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        yield client


class TestDukcapil:
    async def test_call_nik(
        self, dukcapil_client: httpx.AsyncClient, population: Population
    ) -> None:
        citizen = population.demo_citizen()
        response = await dukcapil_client.post(CALL_NIK, json={"NIK": citizen.nik})
        assert response.status_code == 200
        body = response.json()
        assert (body["lastPage"], body["numberOfElements"]) == (True, 1)
        (element,) = body["content"]
        assert element["NIK"] == citizen.nik
        assert element["NO_KK"] == citizen.no_kk
        assert element["TGL_LHR"] == citizen.tanggal_lahir.strftime("%d-%m-%Y")
        assert element["JENIS_KLMIN"] in ("Laki-laki", "Perempuan")
        assert isinstance(element["NO_RT"], int)
        assert isinstance(element["KODE_POS"], int)
        assert element["MASA_BERLAKU_KTP"] == "SEUMUR HIDUP"
        assert element["AGAMA"] == element["AGAMA"].title()

    async def test_call_kk_repeats_the_family_fields(
        self, dukcapil_client: httpx.AsyncClient, population: Population
    ) -> None:
        household = population.households[0]
        response = await dukcapil_client.post(CALL_KK, json={"NO_KK": household.no_kk})
        content = response.json()["content"]
        assert [e["NIK"] for e in content] == [m.nik for m in household.members]
        family = {"NO_KK", "NAMA_KEP", "ALAMAT", "NO_RT", "NO_RW", "KEL_NAME", "KODE_POS"}
        assert all({k: e[k] for k in family} == {k: content[0][k] for k in family} for e in content)
        assert {"STAT_HBKEL", "PDDK_AKH", "NAMA_LGKP_AYAH", "NAMA_LGKP_IBU"} <= set(content[0])
        assert content[0]["STAT_HBKEL"] == "Kepala Keluarga"

    @pytest.mark.parametrize(
        ("url", "body"),
        [(CALL_NIK, {"NIK": "3174010101010001"}), (CALL_KK, {"NO_KK": "3174010101200001"})],
        ids=["nik", "kk"],
    )
    async def test_not_found_is_http_200(
        self, dukcapil_client: httpx.AsyncClient, url: str, body: dict[str, str]
    ) -> None:
        response = await dukcapil_client.post(url, json=body)
        assert response.status_code == 200
        assert response.json()["content"] == [{"RESPON": "Data Tidak Ditemukan"}]

    async def test_child_has_no_ktp_validity(
        self, dukcapil_client: httpx.AsyncClient, population: Population
    ) -> None:
        child = next(p for p in population.people if not p.has_ktp)
        response = await dukcapil_client.post(CALL_NIK, json={"NIK": child.nik})
        assert response.json()["content"][0]["MASA_BERLAKU_KTP"] is None

    async def test_faults(self, quick_dukcapil: httpx.AsyncClient, population: Population) -> None:
        corrupt = await quick_dukcapil.post(CALL_NIK, json={"NIK": population.fault_nik("corrupt")})
        assert corrupt.json()["content"][0]["TGL_LHR"].startswith("31-02-")
        error = await quick_dukcapil.post(CALL_NIK, json={"NIK": population.fault_nik("error")})
        assert error.status_code == 500
        started = time.perf_counter()
        slow = await quick_dukcapil.post(CALL_NIK, json={"NIK": population.fault_nik("slow")})
        assert time.perf_counter() - started >= SHORT_STALL
        assert slow.status_code == 200
        assert DMY.fullmatch(slow.json()["content"][0]["TGL_LHR"])

    async def test_card_of_an_erring_member_errs(
        self, dukcapil_client: httpx.AsyncClient, population: Population
    ) -> None:
        person = population.person(population.fault_nik("error"))
        assert person is not None
        no_kk = person.no_kk
        response = await dukcapil_client.post(CALL_KK, json={"NO_KK": no_kk})
        assert response.status_code == 500


class TestCapil:
    async def test_by_child(self, capil_client: httpx.AsyncClient, population: Population) -> None:
        citizen = population.demo_citizen()
        response = await capil_client.get(BIRTHS, params={"child_nik": citizen.nik})
        assert response.status_code == 200
        data = response.json()["data"]
        assert data["child"]["identity"] == {"nik": citizen.nik}
        assert data["child"]["sex"] in ("M", "F")
        assert data["certificate"]["issued_at"].endswith("+07:00")
        assert [p["role"] for p in data["parents"]] == ["father", "mother"]

    async def test_by_number(self, capil_client: httpx.AsyncClient, population: Population) -> None:
        birth = population.birth_records[3]
        params = {"certificate_no": birth.no_akta, "office": birth.kantor_penerbit}
        response = await capil_client.get(BIRTHS, params=params)
        assert response.json()["data"]["child"]["identity"]["nik"] == birth.anak_nik

    async def test_not_found(self, capil_client: httpx.AsyncClient) -> None:
        response = await capil_client.get(BIRTHS, params={"child_nik": "3174010101010001"})
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"

    @pytest.mark.parametrize(
        "params",
        [
            {},
            {"certificate_no": "3174-LU-01012020-0001"},
            {"office": "DISDUKCAPIL KOTA BANDUNG"},
            {"child_nik": "3174010101010001", "certificate_no": "3174-LU-01012020-0001"},
        ],
        ids=["nothing", "number-only", "office-only", "both"],
    )
    async def test_bad_query(self, capil_client: httpx.AsyncClient, params: dict[str, Any]) -> None:
        response = await capil_client.get(BIRTHS, params=params)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_query"

    async def test_faults(self, quick_capil: httpx.AsyncClient, population: Population) -> None:
        corrupt = await quick_capil.get(
            BIRTHS, params={"child_nik": population.fault_nik("corrupt")}
        )
        assert "name" not in corrupt.json()["data"]["child"]
        error = await quick_capil.get(BIRTHS, params={"child_nik": population.fault_nik("error")})
        assert (error.status_code, error.json()["error"]["code"]) == (500, "internal")
        started = time.perf_counter()
        slow = await quick_capil.get(BIRTHS, params={"child_nik": population.fault_nik("slow")})
        assert time.perf_counter() - started >= SHORT_STALL
        assert slow.json()["data"]["child"]["name"]["full"]
