"""The birth registry adapter maps the registry's answers (mocked with respx) to ``akta-lahir``."""

from __future__ import annotations

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
    AKTA_CHILD_FIELDS,
    AKTA_FIELDS,
    BIRTHS,
    CAPIL_URL,
    CHILD_NIK,
    EXPECTED_AKTA,
    NO_AKTA,
    OFFICE,
    capil_answer,
)

BY_CHILD = {"nik": CHILD_NIK}
BY_NUMBER = {"no_akta": NO_AKTA, "kantor_penerbit": OFFICE}


@pytest.fixture
async def adapter() -> AsyncIterator[Adapter]:
    """A birth registry adapter on an httpx client, which respx intercepts."""
    async with httpx.AsyncClient() as client:
        adapter = create_adapter("capil", base_url=CAPIL_URL, timeout=0.2, client=client)
        yield adapter
        await adapter.aclose()


def _params(route: respx.Route) -> dict[str, str]:
    return dict(route.calls.last.request.url.params)


class TestMapping:
    async def test_by_child_maps_every_field(self, adapter: Adapter) -> None:
        with respx.mock(assert_all_called=True) as mock:
            route = mock.get(BIRTHS).respond(json=capil_answer())
            record = await adapter.fetch("akta-lahir", BY_CHILD)
        assert _params(route) == {"child_nik": CHILD_NIK}
        assert list(record) == AKTA_FIELDS
        assert list(record["anak"]) == AKTA_CHILD_FIELDS
        assert list(record["ayah"]) == list(record["ibu"]) == ["nik", "nama"]
        assert record == EXPECTED_AKTA

    async def test_by_number_and_office(self, adapter: Adapter) -> None:
        with respx.mock(assert_all_called=True) as mock:
            route = mock.get(BIRTHS).respond(json=capil_answer())
            record = await adapter.fetch("akta-lahir", BY_NUMBER)
        assert _params(route) == {"certificate_no": NO_AKTA, "office": OFFICE}
        assert record == EXPECTED_AKTA

    async def test_office_may_differ_in_case_and_spacing(self, adapter: Adapter) -> None:
        query = {
            "no_akta": f" {NO_AKTA} ",
            "kantor_penerbit": "Disdukcapil  Kota Adm. Jakarta Selatan",
        }
        with respx.mock(assert_all_called=True) as mock:
            mock.get(BIRTHS).respond(json=capil_answer())
            record = await adapter.fetch("akta-lahir", query)
        assert record["kantor_penerbit"] == OFFICE

    @pytest.mark.parametrize(
        ("issued_at", "tanggal_terbit"),
        [
            ("2010-05-20T09:30:00+07:00", "2010-05-20"),
            ("2010-05-20T23:30:00+07:00", "2010-05-20"),
            ("2010-05-20", "2010-05-20"),
            ("2010-05-20T02:30:00Z", "2010-05-20"),
        ],
    )
    async def test_issue_date_is_the_office_date(
        self, adapter: Adapter, issued_at: str, tanggal_terbit: str
    ) -> None:
        answer = capil_answer()
        answer["data"]["certificate"]["issued_at"] = issued_at
        with respx.mock(assert_all_called=True) as mock:
            mock.get(BIRTHS).respond(json=answer)
            record = await adapter.fetch("akta-lahir", BY_CHILD)
        assert record["tanggal_terbit"] == tanggal_terbit

    @pytest.mark.parametrize(
        "identity",
        [None, {"nik": None}, {}],
        ids=["identity-null", "nik-null", "nik-absent"],
    )
    async def test_parent_without_nik(self, adapter: Adapter, identity: Any) -> None:
        answer = capil_answer()
        answer["data"]["parents"][0]["identity"] = identity
        with respx.mock(assert_all_called=True) as mock:
            mock.get(BIRTHS).respond(json=answer)
            record = await adapter.fetch("akta-lahir", BY_CHILD)
        assert record["ayah"] == {"nik": None, "nama": "BUDI SANTOSO"}

    async def test_parents_in_any_order(self, adapter: Adapter) -> None:
        answer = capil_answer()
        answer["data"]["parents"].reverse()
        with respx.mock(assert_all_called=True) as mock:
            mock.get(BIRTHS).respond(json=answer)
            record = await adapter.fetch("akta-lahir", BY_CHILD)
        assert record == EXPECTED_AKTA


async def _trickle(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("read timed out", request=request)


FAILURES = [
    pytest.param({"side_effect": httpx.ConnectTimeout("t")}, UpstreamTimeout, id="timeout"),
    pytest.param({"side_effect": _trickle}, UpstreamTimeout, id="read-timeout"),
    pytest.param({"side_effect": httpx.ConnectError("c")}, UpstreamUnavailable, id="refused"),
    pytest.param({"side_effect": httpx.ReadError("r")}, UpstreamUnavailable, id="reset"),
    pytest.param(
        {"status_code": 500, "json": {"error": {"code": "internal"}}}, UpstreamError, id="500"
    ),
    pytest.param({"status_code": 400, "json": {"error": {}}}, UpstreamError, id="400"),
    pytest.param(
        {"status_code": 404, "json": {"error": {"code": "not_found", "message": "none"}}},
        RecordNotFound,
        id="not-found",
    ),
    pytest.param(
        {"status_code": 404, "json": {"detail": "Not Found"}}, UpstreamError, id="404-wrong-path"
    ),
    pytest.param({"status_code": 404, "text": "<html>"}, UpstreamError, id="404-not-json"),
    pytest.param({"status_code": 200, "text": "<html>"}, UpstreamInvalid, id="not-json"),
    pytest.param({"status_code": 200, "json": {"certificate": {}}}, UpstreamInvalid, id="no-data"),
]


def _answer_with(path: str, value: Any) -> dict[str, Any]:
    """:func:`capil_answer` with the value at a dotted ``path`` replaced (``...`` deletes)."""
    answer = capil_answer()
    *parents, last = path.split(".")
    node: Any = answer["data"]
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return answer


MALFORMED = [
    pytest.param("child.name", ..., "name", id="missing-child-name"),
    pytest.param("child.birth.date", "2010-02-30", "birth.date", id="impossible-date"),
    pytest.param("child.birth.date", "12-05-2010", "birth.date", id="not-iso-date"),
    pytest.param("child.sex", "X", "sex", id="unknown-sex"),
    pytest.param("child.order", 0, "order", id="order-zero"),
    pytest.param("child.order", "2", "order", id="order-string"),
    pytest.param("child.order", True, "order", id="order-boolean"),
    pytest.param("child.identity", None, "identity", id="child-without-nik"),
    pytest.param("child.identity.nik", "12345", "nik", id="child-short-nik"),
    pytest.param("certificate.issued_at", "kemarin", "issued_at", id="bad-issue-time"),
    pytest.param("certificate.office", {"code": "3174"}, "name", id="office-unnamed"),
    pytest.param("parents", [], "parents", id="no-parents"),
    pytest.param("parents.1.role", "father", "twice", id="two-fathers"),
    pytest.param("parents.1.role", "guardian", "mother", id="no-mother"),
    pytest.param("parents.0.name", {"first": "BUDI"}, "full", id="father-unnamed"),
    pytest.param("parents.0.identity.nik", "3174O10803880007", "nik", id="father-nik-letter"),
]


class TestFailures:
    @pytest.mark.parametrize(("mock_kwargs", "error"), FAILURES)
    async def test_failure_is_mapped(
        self, adapter: Adapter, mock_kwargs: dict[str, Any], error: type[Error]
    ) -> None:
        with respx.mock(assert_all_called=True) as mock:
            route = mock.get(BIRTHS)
            if "side_effect" in mock_kwargs:
                route.side_effect = mock_kwargs["side_effect"]
            else:
                route.respond(**mock_kwargs)
            with pytest.raises(error) as caught:
                await adapter.fetch("akta-lahir", BY_CHILD)
        assert type(caught.value) is error
        assert CHILD_NIK not in caught.value.detail

    @pytest.mark.parametrize(("path", "value", "named"), MALFORMED)
    async def test_malformed_record_is_invalid(
        self, adapter: Adapter, path: str, value: Any, named: str
    ) -> None:
        with respx.mock(assert_all_called=True) as mock:
            mock.get(BIRTHS).respond(json=_answer_with(path, value))
            with pytest.raises(UpstreamInvalid) as caught:
                await adapter.fetch("akta-lahir", BY_CHILD)
        assert named in caught.value.detail
        assert CHILD_NIK not in caught.value.detail
        assert "SANTOSO" not in caught.value.detail

    @pytest.mark.parametrize(
        ("query", "path", "value"),
        [
            pytest.param(BY_CHILD, "child.identity.nik", "3174011205100003", id="another-child"),
            pytest.param(BY_NUMBER, "certificate.number", "3174-LT-20052010-0013", id="another-no"),
            pytest.param(
                BY_NUMBER, "certificate.office", {"name": "DISDUKCAPIL KOTA BANDUNG"}, id="office"
            ),
        ],
    )
    async def test_answer_about_something_else_is_invalid(
        self, adapter: Adapter, query: dict[str, str], path: str, value: Any
    ) -> None:
        with respx.mock(assert_all_called=True) as mock:
            mock.get(BIRTHS).respond(json=_answer_with(path, value))
            with pytest.raises(UpstreamInvalid, match="another"):
                await adapter.fetch("akta-lahir", query)
