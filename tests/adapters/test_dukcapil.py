"""The Dukcapil adapter maps Dukcapil's answers (mocked with respx) to the shared records."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from adapters import Adapter, create_adapter
from adapters.errors import (
    Error,
    RecordNotFound,
    UpstreamError,
    UpstreamInvalid,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tests.adapters.samples import (
    CALL_KK,
    CALL_NIK,
    DUKCAPIL_URL,
    EXPECTED_KK,
    EXPECTED_KTP,
    HUSBAND_NIK,
    KK_FIELDS,
    KK_MEMBER_FIELDS,
    KTP_FIELDS,
    NIK,
    NO_KK,
    NOT_FOUND_PAGE,
    dukcapil_element,
    husband_element,
    page,
)

TIMEOUT = 0.2


@pytest.fixture
async def adapter() -> AsyncIterator[Adapter]:
    """A Dukcapil adapter on an httpx client, which respx intercepts.

    (An adapter-owned client is adapters/_wire.py; tests/adapters/test_transport.py runs it on
    sockets.)
    """
    async with httpx.AsyncClient() as client:
        adapter = create_adapter("dukcapil", base_url=DUKCAPIL_URL, timeout=TIMEOUT, client=client)
        yield adapter
        await adapter.aclose()


def _sent(route: respx.Route) -> Any:
    return json.loads(route.calls.last.request.content)


class TestKtp:
    async def test_maps_every_field(self, adapter: Adapter) -> None:
        with respx.mock(assert_all_called=True) as mock:
            route = mock.post(CALL_NIK).respond(json=page(dukcapil_element()))
            record = await adapter.fetch("ktp", {"nik": NIK})
        assert _sent(route) == {"NIK": NIK}
        assert list(record) == KTP_FIELDS
        assert record == EXPECTED_KTP

    @pytest.mark.parametrize(
        ("given", "shared"),
        [
            ("Islam", "ISLAM"),
            ("Kristen", "KRISTEN"),
            ("Katholik", "KATOLIK"),
            ("KATOLIK", "KATOLIK"),
            ("Hindu", "HINDU"),
            ("Budha", "BUDDHA"),
            ("Buddha", "BUDDHA"),
            ("Khonghucu", "KONGHUCU"),
            ("Konghucu", "KONGHUCU"),
            ("Kepercayaan Terhadap Tuhan YME", "KEPERCAYAAN"),
        ],
    )
    async def test_religion_vocabulary(self, adapter: Adapter, given: str, shared: str) -> None:
        with respx.mock(assert_all_called=True) as mock:
            mock.post(CALL_NIK).respond(json=page(dukcapil_element(AGAMA=given)))
            record = await adapter.fetch("ktp", {"nik": NIK})
        assert record["agama"] == shared

    @pytest.mark.parametrize(
        ("overrides", "field", "shared"),
        [
            ({"GOL_DARAH": "Tidak Tahu"}, "golongan_darah", "TIDAK TAHU"),
            ({"GOL_DARAH": "ab-"}, "golongan_darah", "AB-"),
            ({"STATUS_KAWIN": "Cerai  Mati"}, "status_perkawinan", "CERAI MATI"),
            ({"JENIS_KLMIN": "Laki-laki"}, "jenis_kelamin", "LAKI-LAKI"),
            ({"NO_RT": "4", "NO_RW": 12}, "rt", "004"),
            ({"NO_RW": 12}, "rw", "012"),
            ({"NO_RT": "004"}, "rt", "004"),
            ({"JENIS_PKRJN": "Pelajar/Mahasiswa"}, "pekerjaan", "PELAJAR/MAHASISWA"),
            ({"TGL_LHR": "29-02-1992"}, "tanggal_lahir", "1992-02-29"),
            ({"MASA_BERLAKU_KTP": "12-05-2017"}, "berlaku_hingga", "2017-05-12"),
            ({"MASA_BERLAKU_KTP": "Seumur Hidup"}, "berlaku_hingga", "SEUMUR HIDUP"),
            ({"NIK": int(NIK)}, "nik", NIK),
        ],
    )
    async def test_dialect(
        self, adapter: Adapter, overrides: dict[str, Any], field: str, shared: str
    ) -> None:
        with respx.mock(assert_all_called=True) as mock:
            mock.post(CALL_NIK).respond(json=page(dukcapil_element(**overrides)))
            record = await adapter.fetch("ktp", {"nik": NIK})
        assert record[field] == shared

    async def test_person_without_ktp_is_not_found(self, adapter: Adapter) -> None:
        with respx.mock(assert_all_called=True) as mock:
            mock.post(CALL_NIK).respond(json=page(dukcapil_element(MASA_BERLAKU_KTP=None)))
            with pytest.raises(RecordNotFound, match="no KTP"):
                await adapter.fetch("ktp", {"nik": NIK})


class _Trickle(httpx.AsyncByteStream):
    """A body that takes far longer than the adapter's timeout to arrive."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        await asyncio.sleep(10 * TIMEOUT)
        yield b"{}"


def _too_slow(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, stream=_Trickle())


FAILURES = [
    pytest.param({"side_effect": httpx.ConnectTimeout("t")}, UpstreamTimeout, id="connect-timeout"),
    pytest.param({"side_effect": httpx.ReadTimeout("t")}, UpstreamTimeout, id="read-timeout"),
    pytest.param({"side_effect": httpx.PoolTimeout("t")}, UpstreamTimeout, id="pool-timeout"),
    pytest.param({"side_effect": _too_slow}, UpstreamTimeout, id="past-the-deadline"),
    pytest.param({"side_effect": httpx.ConnectError("c")}, UpstreamUnavailable, id="refused"),
    pytest.param({"side_effect": httpx.ReadError("r")}, UpstreamUnavailable, id="reset"),
    pytest.param(
        {"side_effect": httpx.RemoteProtocolError("p")}, UpstreamUnavailable, id="cut-short"
    ),
    pytest.param({"side_effect": httpx.TooManyRedirects("x")}, UpstreamError, id="other-httpx"),
    pytest.param({"status_code": 500, "json": {"status": 500}}, UpstreamError, id="http-500"),
    pytest.param({"status_code": 503, "text": "busy"}, UpstreamError, id="http-503"),
    pytest.param({"status_code": 401, "json": {}}, UpstreamError, id="http-401"),
    pytest.param({"status_code": 200, "text": "<html>"}, UpstreamInvalid, id="not-json"),
    pytest.param({"status_code": 200, "json": [NIK]}, UpstreamInvalid, id="not-an-object"),
    pytest.param({"status_code": 200, "json": {"rows": []}}, UpstreamInvalid, id="no-content"),
    pytest.param({"status_code": 200, "json": page()}, UpstreamInvalid, id="empty-content"),
    pytest.param({"status_code": 200, "json": NOT_FOUND_PAGE}, RecordNotFound, id="not-found"),
    pytest.param(
        {"status_code": 200, "json": page({"RESPON": "Kuota Akses Habis"})},
        UpstreamError,
        id="dukcapil-refuses",
    ),
]

MALFORMED = [
    pytest.param({"NAMA_LGKP": ...}, "NAMA_LGKP", id="missing-name"),
    pytest.param({"NAMA_LGKP": "  "}, "NAMA_LGKP", id="blank-name"),
    pytest.param({"TGL_LHR": "31-02-1990"}, "TGL_LHR", id="impossible-date"),
    pytest.param({"TGL_LHR": "1990-05-12"}, "TGL_LHR", id="iso-date"),
    pytest.param({"TGL_LHR": 12051990}, "TGL_LHR", id="date-as-number"),
    pytest.param({"AGAMA": "Jedi"}, "AGAMA", id="unknown-religion"),
    pytest.param({"JENIS_KLMIN": "L"}, "JENIS_KLMIN", id="unknown-sex"),
    pytest.param({"GOL_DARAH": "C"}, "GOL_DARAH", id="unknown-blood-type"),
    pytest.param({"NO_RT": "abc"}, "NO_RT", id="rt-letters"),
    pytest.param({"NO_RT": 1234}, "NO_RT", id="rt-too-long"),
    pytest.param({"NO_RW": True}, "NO_RW", id="rw-boolean"),
    pytest.param({"NO_RW": -1}, "NO_RW", id="rw-negative"),
    pytest.param({"NIK": "3174015205900013"}, "another person", id="another-person"),
    pytest.param({"NIK": NIK[:-1]}, "NIK", id="short-nik"),
    pytest.param({"MASA_BERLAKU_KTP": ...}, "MASA_BERLAKU_KTP", id="missing-validity"),
    pytest.param({"MASA_BERLAKU_KTP": "kadaluarsa"}, "MASA_BERLAKU_KTP", id="bad-validity"),
]


class TestKtpFailures:
    @pytest.mark.parametrize(("mock_kwargs", "error"), FAILURES)
    async def test_failure_is_mapped(
        self, adapter: Adapter, mock_kwargs: dict[str, Any], error: type[Error]
    ) -> None:
        with respx.mock(assert_all_called=True) as mock:
            route = mock.post(CALL_NIK)
            if "side_effect" in mock_kwargs:
                route.side_effect = mock_kwargs["side_effect"]
            else:
                route.respond(**mock_kwargs)
            with pytest.raises(error) as caught:
                await adapter.fetch("ktp", {"nik": NIK})
        assert type(caught.value) is error
        assert NIK not in caught.value.detail

    @pytest.mark.parametrize(("overrides", "named"), MALFORMED)
    async def test_malformed_record_is_invalid(
        self, adapter: Adapter, overrides: dict[str, Any], named: str
    ) -> None:
        element = dukcapil_element(**overrides)
        with respx.mock(assert_all_called=True) as mock:
            mock.post(CALL_NIK).respond(json=page(element))
            with pytest.raises(UpstreamInvalid) as caught:
                await adapter.fetch("ktp", {"nik": NIK})
        assert named in caught.value.detail
        assert NIK not in caught.value.detail
        # No value of the record leaks into the detail (short codes aside: "L" is in "TGL").
        assert all(
            str(value) not in caught.value.detail
            for value in element.values()
            if len(str(value)) >= 4
        )

    async def test_two_people_for_one_nik_is_invalid(self, adapter: Adapter) -> None:
        with respx.mock(assert_all_called=True) as mock:
            mock.post(CALL_NIK).respond(json=page(dukcapil_element(), dukcapil_element()))
            with pytest.raises(UpstreamInvalid, match="more than one"):
                await adapter.fetch("ktp", {"nik": NIK})


class TestKk:
    async def test_by_number_maps_every_field(self, adapter: Adapter) -> None:
        with respx.mock(assert_all_called=True) as mock:
            route = mock.post(CALL_KK).respond(json=page(husband_element(), dukcapil_element()))
            record = await adapter.fetch("kk", {"no_kk": NO_KK})
        assert _sent(route) == {"NO_KK": NO_KK}
        assert list(record) == KK_FIELDS
        assert all(list(member) == KK_MEMBER_FIELDS for member in record["anggota"])
        assert record == EXPECTED_KK

    @pytest.mark.parametrize("member", [NIK, HUSBAND_NIK])
    async def test_by_member_nik_takes_two_calls(self, adapter: Adapter, member: str) -> None:
        asked = dukcapil_element() if member == NIK else husband_element()
        with respx.mock(assert_all_called=True) as mock:
            by_nik = mock.post(CALL_NIK).respond(json=page(asked))
            by_kk = mock.post(CALL_KK).respond(json=page(husband_element(), dukcapil_element()))
            record = await adapter.fetch("kk", {"nik": member})
        assert _sent(by_nik) == {"NIK": member}
        assert _sent(by_kk) == {"NO_KK": NO_KK}
        assert record == EXPECTED_KK

    async def test_unknown_number_is_not_found(self, adapter: Adapter) -> None:
        with respx.mock(assert_all_called=True) as mock:
            mock.post(CALL_KK).respond(json=NOT_FOUND_PAGE)
            with pytest.raises(RecordNotFound, match="family card"):
                await adapter.fetch("kk", {"no_kk": NO_KK})

    async def test_unknown_member_is_not_found_without_asking_for_a_kk(
        self, adapter: Adapter
    ) -> None:
        with respx.mock(assert_all_called=True) as mock:
            mock.post(CALL_NIK).respond(json=NOT_FOUND_PAGE)
            with pytest.raises(RecordNotFound, match="person"):
                await adapter.fetch("kk", {"nik": NIK})

    async def test_member_missing_from_the_card_is_invalid(self, adapter: Adapter) -> None:
        with respx.mock(assert_all_called=True) as mock:
            mock.post(CALL_NIK).respond(json=page(dukcapil_element()))
            mock.post(CALL_KK).respond(json=page(husband_element()))
            with pytest.raises(UpstreamInvalid, match="does not list"):
                await adapter.fetch("kk", {"nik": NIK})

    @pytest.mark.parametrize(
        ("members", "named"),
        [
            pytest.param(
                [husband_element(), dukcapil_element(NO_KK="3174010301150004")],
                "another family card",
                id="member-of-another-card",
            ),
            pytest.param(
                [husband_element(), dukcapil_element(STAT_HBKEL="Tetangga")],
                "STAT_HBKEL",
                id="unknown-relationship",
            ),
            pytest.param(
                [husband_element(), dukcapil_element(PDDK_AKH="S3")],
                "PDDK_AKH",
                id="unknown-education",
            ),
            pytest.param(
                [husband_element(TGL_TERBIT_KK="2015-01-03"), dukcapil_element()],
                "TGL_TERBIT_KK",
                id="iso-issue-date",
            ),
            pytest.param(
                [husband_element(KODE_POS=128100), dukcapil_element()],
                "KODE_POS",
                id="postal-code-too-long",
            ),
            pytest.param(
                [husband_element(NAMA_LGKP_IBU=None), dukcapil_element()],
                "NAMA_LGKP_IBU",
                id="mother-null",
            ),
            pytest.param(
                [husband_element(NAMA_KEP=...), dukcapil_element()], "NAMA_KEP", id="no-head"
            ),
            pytest.param([husband_element(), "BUDI"], "not a JSON object", id="member-string"),
        ],
    )
    async def test_malformed_card_is_invalid(
        self, adapter: Adapter, members: list[Any], named: str
    ) -> None:
        with respx.mock(assert_all_called=True) as mock:
            mock.post(CALL_KK).respond(json=page(*members))
            with pytest.raises(UpstreamInvalid) as caught:
                await adapter.fetch("kk", {"no_kk": NO_KK})
        assert named in caught.value.detail
        assert NO_KK not in caught.value.detail

    @pytest.mark.parametrize(("mock_kwargs", "error"), FAILURES)
    async def test_failure_of_the_second_call_is_mapped(
        self, adapter: Adapter, mock_kwargs: dict[str, Any], error: type[Error]
    ) -> None:
        with respx.mock(assert_all_called=True) as mock:
            mock.post(CALL_NIK).respond(json=page(dukcapil_element()))
            route = mock.post(CALL_KK)
            if "side_effect" in mock_kwargs:
                route.side_effect = mock_kwargs["side_effect"]
            else:
                route.respond(**mock_kwargs)
            with pytest.raises(error) as caught:
                await adapter.fetch("kk", {"nik": NIK})
        assert type(caught.value) is error
        assert NIK not in caught.value.detail
        assert NO_KK not in caught.value.detail
