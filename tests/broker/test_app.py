"""The broker's ASGI app in-process: operations endpoints, the consent API, citizen endpoints."""

from __future__ import annotations

import errno
import json
import sqlite3
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from joserfc.jwk import OKPKey
from sqlalchemy.exc import OperationalError

import audit
import broker.context
from adapters import Adapter, create_adapter
from adapters.sandbox import create_dukcapil_app, generate
from adapters.sandbox.idp import DevIdentityProvider
from audit import subject_ref
from broker.app import MAX_BODY_BYTES, create_app
from broker.keys import generate_key, load_private_jwk, public_jwk, to_private_key
from broker.replay import ReplayCache
from broker.runtime import Broker
from broker.sandbox_env import KK, KTP, PERMIT_OFFICE, TAX_OFFICE, SandboxWorld
from broker.settings import Settings
from broker.signatures import CONSENT_REQUEST_COMPONENTS, request_components, sign_request
from schemas import SchemaSet

pytestmark = pytest.mark.usefixtures("clean_env")

BASE_URL = "http://testserver"
PURPOSE = "perizinan-berusaha"
SECRET = "5e" * 32
BAD_NIK = "3174011913860001"  # Jakarta Selatan, day 19, month 13


@pytest.fixture(scope="module")
def niks() -> tuple[str, str]:
    """Two real citizens of the sandbox population: the demo citizen and another."""
    population = generate()
    first = population.demo_citizen().nik
    second = next(p.nik for p in population.people if p.nik != first)
    return first, second


@dataclass
class Harness:
    """A running broker app, the world it was built from, and helpers to call it."""

    world: SandboxWorld
    app: FastAPI
    http: httpx.AsyncClient
    nik: str
    other_nik: str

    @property
    def broker(self) -> Broker:
        running: Broker = self.app.state.broker
        return running

    async def signed(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        client_id: str = PERMIT_OFFICE,
        key: OKPKey | None = None,
        xroad_id: str | None = None,
        created: datetime | None = None,
        send_body: bytes | None = None,
    ) -> httpx.Response:
        """Sign like a consumer does; ``send_body`` sends other bytes than were signed."""
        key = key or self.world.permit_key
        headers = {
            "Content-Type": "application/json",
            "X-Road-Client": client_id,
            "X-Road-Id": xroad_id or str(uuid.uuid4()),
        }
        signed = sign_request(
            method=method,
            url=BASE_URL + path,
            headers=headers,
            body=body,
            key=to_private_key(key),
            key_id=str(key.kid),
            components=CONSENT_REQUEST_COMPONENTS,
            created=created,
        )
        content = body if send_body is None else send_body
        return await self.http.request(method, path, content=content, headers=signed)

    async def ask(self, body: Mapping[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        """POST a consent request (the default one for ``self.nik`` unless ``body`` is given)."""
        payload = json.dumps(body if body is not None else request_body(self.nik)).encode()
        return await self.signed("POST", "/v1/consent-requests", payload, **kwargs)

    async def pending(self) -> dict[str, Any]:
        """A new PENDING consent request for ``self.nik``."""
        response = await self.ask()
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def consent_token(self) -> str:
        """The token of a consent the citizen approved (the default consent request's)."""
        consent = await self.approved()
        listed = await self.http.get("/v1/me/consent-requests", headers=self.citizen())
        (request,) = (r for r in listed.json() if r.get("consent_id") == consent["id"])
        polled = await self.signed("GET", f"/v1/consent-requests/{request['id']}")
        token: str = polled.json()["consent_token"]
        return token

    async def exchange(self, token: str, nik: str | None = None) -> httpx.Response:
        """A KTP exchange for ``nik`` (``self.nik``) with the consent ``token``, signed like a
        consumer."""
        key = self.world.permit_key
        body = json.dumps({"nik": nik or self.nik}).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Road-Client": PERMIT_OFFICE,
            "X-Road-Id": str(uuid.uuid4()),
            "Consent-Token": token,
        }
        path = f"/r1/{KTP}"
        signed = sign_request(
            method="POST",
            url=BASE_URL + path,
            headers=headers,
            body=body,
            key=to_private_key(key),
            key_id=str(key.kid),
            components=request_components(headers),
        )
        return await self.http.post(path, content=body, headers=signed)

    def citizen(self, nik: str | None = None) -> dict[str, str]:
        """The Authorization header of a signed-in citizen."""
        return {"Authorization": f"Bearer {self.world.citizen_token(nik or self.nik)}"}

    async def approved(self) -> dict[str, Any]:
        """A consent the citizen approved (the ConsentOut)."""
        created = await self.pending()
        response = await self.http.post(
            f"/v1/me/consent-requests/{created['id']}/approve", headers=self.citizen()
        )
        assert response.status_code == 200, response.text
        consent: dict[str, Any] = response.json()
        return consent


@asynccontextmanager
async def dukcapil_sandbox(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[None]:
    """The KTP service's adapter calling the Dukcapil sandbox in-process."""
    app = create_dukcapil_app(generate())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        adapter = create_adapter(
            "dukcapil", base_url="http://dukcapil.test", timeout=10.0, client=client
        )
        by_service = harness.broker.exchange._adapters.by_service
        monkeypatch.setitem(by_service, KTP, adapter)
        yield


def audit_records(harness: Harness, xroad_id: str) -> list[Any]:
    """The audit log's records of the exchange ``xroad_id``."""
    return [r for r in audit.read_records(harness.broker.audit_engine) if r.xroad_id == xroad_id]


def request_body(nik: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject_nik": nik,
        "grants": [{"service": KTP, "fields": ["nik", "nama", "alamat"]}],
        "purpose": {"code": PURPOSE},
        "procedure_ref": "PB-UMKU/2026/0001",
    }
    body.update(overrides)
    return body


@pytest.fixture(scope="module")
def schema_set() -> SchemaSet:
    return SchemaSet.load()


@pytest.fixture(scope="module")
def tls() -> ssl.SSLContext:
    return httpx.create_ssl_context()


@pytest.fixture
async def harness(
    tmp_path: Path,
    database_url: str,
    niks: tuple[str, str],
    schema_set: SchemaSet,
    tls: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Harness]:
    # Start-up work that is the same for every test is done once per module: checking and
    # compiling the packaged schemas, and loading the CA bundle for each adapter's HTTP client
    # (the adapters are never called here). Everything else is built afresh for each test.
    monkeypatch.setattr(SchemaSet, "load", lambda: schema_set)
    backends = httpx.AsyncClient(verify=tls)
    real_create_adapter = broker.context.create_adapter

    def create_adapter(name: str, **options: Any) -> Adapter:
        return real_create_adapter(name, client=backends, **options)

    monkeypatch.setattr(broker.context, "create_adapter", create_adapter)
    world = SandboxWorld.create(tmp_path)
    settings = Settings(
        environment="dev",
        data_dir=tmp_path,
        # On the PostgreSQL run both live in the test's schema; on SQLite, the default files.
        database_url=None if database_url.startswith("sqlite") else database_url,
        audit_database_url=None if database_url.startswith("sqlite") else database_url,
        subject_hash_secret=SECRET,
        citizen_idp_jwks_file=tmp_path / "idp-jwks.json",
        citizen_idp_issuer=world.idp.issuer,
        citizen_audience="simpul-citizen",
        log_level="warning",
    )
    app = create_app(settings)
    async with backends, app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            yield Harness(world=world, app=app, http=http, nik=niks[0], other_nik=niks[1])


def assert_problem(response: httpx.Response, status: int, problem_type: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["x-road-error"] == problem_type
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:simpul:problem:{problem_type}"
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


class TestOperations:
    async def test_healthz(self, harness: Harness) -> None:
        response = await harness.http.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "database": "ok", "audit_database": "ok"}

    @pytest.mark.sqlite_only
    async def test_healthz_reports_a_lost_database(self, harness: Harness) -> None:
        harness.broker.audit_engine.dispose()
        (harness.world.data_dir / "audit.db").unlink()
        (harness.world.data_dir / "audit.db").mkdir()  # a path SQLite cannot open
        response = await harness.http.get("/healthz")
        assert response.status_code == 503
        assert response.json() == {
            "status": "degraded",
            "database": "ok",
            "audit_database": "unavailable",
        }

    async def test_jwks_publishes_the_public_signing_key(self, harness: Harness) -> None:
        response = await harness.http.get("/.well-known/jwks.json")
        assert response.status_code == 200
        keys = response.json()["keys"]
        assert len(keys) == 1
        (key,) = keys
        assert key["kty"] == "OKP"
        assert key["crv"] == "Ed25519"
        assert key["kid"]
        assert "d" not in key
        stored = load_private_jwk(harness.world.data_dir / "broker-key.jwk")
        assert key == public_jwk(stored)

    async def test_docs(self, harness: Harness) -> None:
        response = await harness.http.get("/docs")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "/openapi.json" in response.text

    async def test_openapi(self, harness: Harness) -> None:
        response = await harness.http.get("/openapi.json")
        assert response.status_code == 200
        paths = response.json()["paths"]
        for path in (
            "/healthz",
            "/v1/consent-requests",
            "/v1/consent-requests/{request_id}",
            "/v1/me/consent-requests/{request_id}/approve",
            "/v1/me/consents/{consent_id}/revoke",
        ):
            assert path in paths
        schema = paths["/v1/consent-requests"]["post"]["requestBody"]["content"]
        assert "subject_nik" in schema["application/json"]["schema"]["properties"]


class TestCreateConsentRequest:
    async def test_happy_path(self, harness: Harness) -> None:
        response = await harness.ask()
        assert response.status_code == 201, response.text
        body = response.json()
        assert response.headers["location"] == f"/v1/consent-requests/{body['id']}"
        assert body["status"] == "PENDING"
        assert body["client_id"] == PERMIT_OFFICE
        assert body["grants"] == [{"service": KTP, "fields": ["nik", "nama", "alamat"]}]
        assert body["purpose_code"] == PURPOSE
        assert body["purpose_text"]  # taken from the registry's catalogue
        assert body["consent_token"] is None
        assert body["expires_at"] > body["created_at"]
        assert harness.nik not in response.text

    async def test_location_can_be_polled(self, harness: Harness) -> None:
        created = await harness.ask()
        response = await harness.signed("GET", created.headers["location"])
        assert response.status_code == 200, response.text
        assert response.json()["id"] == created.json()["id"]
        assert response.json()["status"] == "PENDING"

    async def test_several_grants_and_repeated_fields(self, harness: Harness) -> None:
        body = request_body(
            harness.nik,
            grants=[
                {"service": KTP, "fields": ["nama", "nama", "nik"]},
                {"service": KK, "fields": ["no_kk", "anggota"]},
            ],
        )
        response = await harness.ask(body)
        assert response.status_code == 201, response.text
        assert response.json()["grants"] == [
            {"service": KTP, "fields": ["nama", "nik"]},
            {"service": KK, "fields": ["no_kk", "anggota"]},
        ]

    async def test_recorded_in_the_audit_log_without_the_nik(self, harness: Harness) -> None:
        created = await harness.ask(xroad_id="0b9f4a1e-7c62-4d55-9a36-2f6f1a0c8e11")
        assert created.status_code == 201
        records = list(audit.read_records(harness.broker.audit_engine))
        assert [r.event for r in records] == ["consent.request"]
        (record,) = records
        assert record.xroad_id == "0b9f4a1e-7c62-4d55-9a36-2f6f1a0c8e11"
        assert record.client == PERMIT_OFFICE
        assert record.purpose == PURPOSE
        assert record.subject_ref == subject_ref(harness.nik, SECRET.encode())
        assert harness.nik not in json.dumps(record.as_dict())


async def _unknown_purpose(h: Harness) -> httpx.Response:
    return await h.ask(request_body(h.nik, purpose={"code": "pemasaran-produk"}))


async def _unknown_service(h: Harness) -> httpx.Response:
    grants = [{"service": "ID/GOV/DUKCAPIL/adminduk/paspor", "fields": ["nik"]}]
    return await h.ask(request_body(h.nik, grants=grants))


async def _unknown_field(h: Harness) -> httpx.Response:
    return await h.ask(request_body(h.nik, grants=[{"service": KTP, "fields": ["nik", "hobi"]}]))


async def _invalid_nik(h: Harness) -> httpx.Response:
    return await h.ask(request_body(BAD_NIK))


async def _nik_not_digits(h: Harness) -> httpx.Response:
    return await h.ask(request_body("31740119018600AB"))


async def _no_grants(h: Harness) -> httpx.Response:
    return await h.ask(request_body(h.nik, grants=[]))


async def _extra_property(h: Harness) -> httpx.Response:
    return await h.ask(request_body(h.nik, officer="budi"))


async def _no_access_right(h: Harness) -> httpx.Response:
    return await h.ask(client_id=TAX_OFFICE, key=h.world.tax_key)


async def _unsigned(h: Harness) -> httpx.Response:
    body = json.dumps(request_body(h.nik)).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Road-Client": PERMIT_OFFICE,
        "X-Road-Id": str(uuid.uuid4()),
    }
    return await h.http.post("/v1/consent-requests", content=body, headers=headers)


async def _malformed_json(h: Harness) -> httpx.Response:
    return await h.signed("POST", "/v1/consent-requests", b'{"subject_nik": ')


async def _json_array(h: Harness) -> httpx.Response:
    return await h.signed("POST", "/v1/consent-requests", b"[]")


async def _signed_by_another_clients_key(h: Harness) -> httpx.Response:
    return await h.ask(key=h.world.tax_key)


async def _unknown_client(h: Harness) -> httpx.Response:
    return await h.ask(client_id="ID/GOV/NOBODY/nothing")


async def _body_changed_after_signing(h: Harness) -> httpx.Response:
    signed = json.dumps(request_body(h.nik)).encode()
    sent = json.dumps(request_body(h.other_nik)).encode()
    return await h.signed("POST", "/v1/consent-requests", signed, send_body=sent)


async def _stale_signature(h: Harness) -> httpx.Response:
    return await h.ask(created=datetime.now(UTC) - timedelta(hours=1))


async def _replayed(h: Harness) -> httpx.Response:
    xroad_id = str(uuid.uuid4())
    first = await h.ask(xroad_id=xroad_id)
    assert first.status_code == 201
    return await h.ask(xroad_id=xroad_id)


async def _xroad_id_not_a_uuid(h: Harness) -> httpx.Response:
    return await h.ask(xroad_id="request-1")


Refusal = Callable[[Harness], Awaitable[httpx.Response]]

REFUSALS: list[tuple[Refusal, int, str]] = [
    (_unknown_purpose, 400, "consent-request-invalid"),
    (_unknown_service, 404, "unknown-service"),
    (_unknown_field, 400, "consent-request-invalid"),
    (_invalid_nik, 400, "consent-request-invalid"),
    (_nik_not_digits, 400, "consent-request-invalid"),
    (_no_grants, 400, "consent-request-invalid"),
    (_extra_property, 400, "consent-request-invalid"),
    (_no_access_right, 403, "access-denied"),
    (_unsigned, 401, "signature-missing"),
    (_malformed_json, 400, "consent-request-invalid"),
    (_json_array, 400, "consent-request-invalid"),
    (_signed_by_another_clients_key, 401, "signature-invalid"),
    (_unknown_client, 401, "unknown-client"),
    (_body_changed_after_signing, 400, "digest-mismatch"),
    (_stale_signature, 401, "signature-stale"),
    (_replayed, 409, "replay"),
    (_xroad_id_not_a_uuid, 400, "bad-request"),
]


class TestCreateConsentRequestRefused:
    @pytest.mark.parametrize(
        ("make", "status", "problem_type"),
        REFUSALS,
        ids=[make.__name__.strip("_").replace("_", " ") for make, _, _ in REFUSALS],
    )
    async def test_refused(
        self, harness: Harness, make: Refusal, status: int, problem_type: str
    ) -> None:
        response = await make(harness)
        assert_problem(response, status, problem_type)
        assert "location" not in response.headers

    async def test_refusal_stores_nothing(self, harness: Harness) -> None:
        assert_problem(await _unknown_field(harness), 400, "consent-request-invalid")
        listed = await harness.http.get("/v1/me/consent-requests", headers=harness.citizen())
        assert listed.json() == []
        assert audit.count(harness.broker.audit_engine) == 0

    async def test_problem_names_the_request(self, harness: Harness) -> None:
        xroad_id = str(uuid.uuid4())
        response = await harness.ask(request_body(BAD_NIK), xroad_id=xroad_id)
        body = assert_problem(response, 400, "consent-request-invalid")
        assert body["instance"] == xroad_id
        assert response.headers["x-road-id"] == xroad_id

    @pytest.mark.parametrize(
        "make_body",
        [
            lambda nik: request_body(nik, officer="budi"),
            lambda nik: request_body(nik, grants=[{"service": KTP, "fields": ["hobi"]}]),
            lambda nik: request_body(nik, purpose={"code": "pemasaran"}),
            lambda nik: request_body(nik, procedure_ref=""),
            lambda nik: request_body(nik + "7"),
            lambda nik: request_body(int(nik)),
            lambda nik: request_body(nik[:6] + "19" + "13" + nik[10:]),
        ],
        ids=[
            "extra property",
            "unknown field",
            "unknown purpose",
            "empty procedure",
            "17 digits",
            "number",
            "month 13",
        ],
    )
    async def test_never_echoes_the_nik(
        self, harness: Harness, make_body: Callable[[str], dict[str, Any]]
    ) -> None:
        body = make_body(harness.nik)
        submitted = str(body["subject_nik"])
        response = await harness.ask(body)
        assert 400 <= response.status_code < 500, response.text
        # Twelve digits are enough to be personal data (area code and date of birth).
        for fragment in {harness.nik[:12], submitted[:12], submitted[-12:]}:
            assert fragment not in response.text
            for name, value in response.headers.items():
                assert fragment not in value, name

    async def test_unparseable_body_does_not_echo_it(self, harness: Harness) -> None:
        raw = f'{{"subject_nik": "{harness.nik}", '.encode()
        response = await harness.signed("POST", "/v1/consent-requests", raw)
        assert_problem(response, 400, "consent-request-invalid")
        assert harness.nik not in response.text


class TestPollConsentRequest:
    async def test_another_client_cannot_see_it(self, harness: Harness) -> None:
        created = await harness.pending()
        response = await harness.signed(
            "GET",
            f"/v1/consent-requests/{created['id']}",
            client_id=TAX_OFFICE,
            key=harness.world.tax_key,
        )
        refused = assert_problem(response, 404, "consent-request-not-found")
        unknown = await harness.signed(
            "GET",
            f"/v1/consent-requests/{uuid.uuid4()}",
            client_id=TAX_OFFICE,
            key=harness.world.tax_key,
        )
        # Indistinguishable from an id that does not exist: nothing leaks about the request.
        assert {k: v for k, v in refused.items() if k != "instance"} == {
            k: v for k, v in unknown.json().items() if k != "instance"
        }

    async def test_unknown_id_looks_the_same(self, harness: Harness) -> None:
        response = await harness.signed("GET", f"/v1/consent-requests/{uuid.uuid4()}")
        assert_problem(response, 404, "consent-request-not-found")

    async def test_unsigned_poll_refused(self, harness: Harness) -> None:
        created = await harness.pending()
        response = await harness.http.get(
            f"/v1/consent-requests/{created['id']}",
            headers={"X-Road-Client": PERMIT_OFFICE, "X-Road-Id": str(uuid.uuid4())},
        )
        assert_problem(response, 401, "signature-missing")

    async def test_approved_request_carries_the_token(self, harness: Harness) -> None:
        consent = await harness.approved()
        listed = await harness.http.get("/v1/me/consent-requests", headers=harness.citizen())
        (request,) = listed.json()
        response = await harness.signed("GET", f"/v1/consent-requests/{request['id']}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "APPROVED"
        assert body["consent_id"] == consent["id"]
        assert body["consent_token"]
        claims = harness.broker.tokens.verify(body["consent_token"])
        assert claims.jti == consent["id"]


class TestCitizen:
    async def test_lists_own_requests_only(self, harness: Harness) -> None:
        created = await harness.pending()
        mine = await harness.http.get("/v1/me/consent-requests", headers=harness.citizen())
        assert mine.status_code == 200
        assert [r["id"] for r in mine.json()] == [created["id"]]
        theirs = await harness.http.get(
            "/v1/me/consent-requests", headers=harness.citizen(harness.other_nik)
        )
        assert theirs.status_code == 200
        assert theirs.json() == []

    @pytest.mark.parametrize(("status", "count"), [("PENDING", 1), ("APPROVED", 0)])
    async def test_filters_by_status(self, harness: Harness, status: str, count: int) -> None:
        await harness.pending()
        response = await harness.http.get(
            "/v1/me/consent-requests", params={"status": status}, headers=harness.citizen()
        )
        assert response.status_code == 200
        assert len(response.json()) == count

    async def test_unknown_status_filter(self, harness: Harness) -> None:
        response = await harness.http.get(
            "/v1/me/consent-requests", params={"status": "pending"}, headers=harness.citizen()
        )
        assert_problem(response, 400, "bad-request")

    async def test_approve(self, harness: Harness) -> None:
        created = await harness.pending()
        response = await harness.http.post(
            f"/v1/me/consent-requests/{created['id']}/approve", headers=harness.citizen()
        )
        assert response.status_code == 200, response.text
        consent = response.json()
        assert consent["status"] == "ACTIVE"
        assert consent["client_id"] == PERMIT_OFFICE
        assert consent["grants"] == created["grants"]
        assert consent["expires_at"] > consent["not_before"]
        consents = await harness.http.get("/v1/me/consents", headers=harness.citizen())
        assert [c["id"] for c in consents.json()] == [consent["id"]]

    async def test_approve_twice(self, harness: Harness) -> None:
        created = await harness.pending()
        path = f"/v1/me/consent-requests/{created['id']}/approve"
        first = await harness.http.post(path, headers=harness.citizen())
        assert first.status_code == 200
        again = await harness.http.post(path, headers=harness.citizen())
        assert again.status_code == 200  # idempotent: the same consent, not a second one
        assert again.json()["id"] == first.json()["id"]
        consents = await harness.http.get("/v1/me/consents", headers=harness.citizen())
        assert len(consents.json()) == 1

    async def test_reject(self, harness: Harness) -> None:
        created = await harness.pending()
        path = f"/v1/me/consent-requests/{created['id']}"
        response = await harness.http.post(f"{path}/reject", headers=harness.citizen())
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "REJECTED"
        approve = await harness.http.post(f"{path}/approve", headers=harness.citizen())
        assert_problem(approve, 409, "consent-request-not-pending")
        polled = await harness.signed("GET", f"/v1/consent-requests/{created['id']}")
        assert polled.json()["status"] == "REJECTED"
        assert polled.json()["consent_token"] is None

    async def test_revoke(self, harness: Harness) -> None:
        consent = await harness.approved()
        path = f"/v1/me/consents/{consent['id']}/revoke"
        response = await harness.http.post(path, headers=harness.citizen())
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "REVOKED"
        again = await harness.http.post(path, headers=harness.citizen())
        assert again.status_code == 200
        assert again.json()["status"] == "REVOKED"
        listed = await harness.http.get("/v1/me/consents", headers=harness.citizen())
        assert [c["status"] for c in listed.json()] == ["REVOKED"]

    async def test_decisions_are_audited_without_the_nik(self, harness: Harness) -> None:
        consent = await harness.approved()
        await harness.http.post(
            f"/v1/me/consents/{consent['id']}/revoke", headers=harness.citizen()
        )
        rejected = await harness.pending()
        await harness.http.post(
            f"/v1/me/consent-requests/{rejected['id']}/reject", headers=harness.citizen()
        )
        records = list(audit.read_records(harness.broker.audit_engine))
        assert [r.event for r in records] == [
            "consent.request",
            "consent.approve",
            "consent.revoke",
            "consent.request",
            "consent.reject",
        ]
        assert {r.subject_ref for r in records} == {subject_ref(harness.nik, SECRET.encode())}
        assert records[1].consent_id == records[2].consent_id == consent["id"]
        assert all(harness.nik not in json.dumps(r.as_dict()) for r in records)
        assert audit.verify_log(harness.broker.audit_engine).ok


class TestAnotherCitizen:
    @pytest.mark.parametrize("action", ["approve", "reject"])
    async def test_cannot_decide(self, harness: Harness, action: str) -> None:
        created = await harness.pending()
        path = f"/v1/me/consent-requests/{created['id']}/{action}"
        response = await harness.http.post(path, headers=harness.citizen(harness.other_nik))
        assert_problem(response, 404, "consent-request-not-found")
        still = await harness.http.get("/v1/me/consent-requests", headers=harness.citizen())
        assert [r["status"] for r in still.json()] == ["PENDING"]

    async def test_cannot_revoke(self, harness: Harness) -> None:
        consent = await harness.approved()
        response = await harness.http.post(
            f"/v1/me/consents/{consent['id']}/revoke",
            headers=harness.citizen(harness.other_nik),
        )
        assert_problem(response, 403, "consent-not-found")
        mine = await harness.http.get("/v1/me/consents", headers=harness.citizen())
        assert [c["status"] for c in mine.json()] == ["ACTIVE"]

    async def test_sees_nothing(self, harness: Harness) -> None:
        await harness.approved()
        response = await harness.http.get(
            "/v1/me/consents", headers=harness.citizen(harness.other_nik)
        )
        assert response.status_code == 200
        assert response.json() == []

    async def test_an_attempt_on_their_data_with_my_consent_is_in_their_access_log(
        self, harness: Harness
    ) -> None:
        """The body names whom the exchange is about: refused as the wrong subject, the
        attempt is theirs to see, not the consent holder's."""
        token = await harness.consent_token()
        refused = await harness.exchange(token, nik=harness.other_nik)
        assert_problem(refused, 403, "consent-wrong-subject")
        theirs = await harness.http.get(
            "/v1/me/access-log", headers=harness.citizen(harness.other_nik)
        )
        mine = await harness.http.get("/v1/me/access-log", headers=harness.citizen())
        assert [e["reason"] for e in theirs.json()["entries"] if e["event"] == "exchange"] == [
            "consent-wrong-subject"
        ]
        assert not [e for e in mine.json()["entries"] if e["event"] == "exchange"]


CITIZEN_ENDPOINTS = [
    ("GET", "/v1/me/consent-requests"),
    ("GET", "/v1/me/consents"),
    ("POST", "/v1/me/consent-requests/{request}/approve"),
    ("POST", "/v1/me/consent-requests/{request}/reject"),
    ("POST", "/v1/me/consents/{consent}/revoke"),
]


class TestIdsAndDatabaseErrors:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/v1/me/consents/a%00b"),
            ("GET", "/v1/me/consents/a%00b/receipt"),
            ("POST", "/v1/me/consent-requests/a%00b/approve"),
            ("POST", "/v1/me/consent-requests/a%00b/reject"),
            ("POST", "/v1/me/consents/a%00b/pause"),
            ("POST", "/v1/me/consents/a%00b/resume"),
            ("POST", "/v1/me/consents/a%00b/revoke"),
        ],
    )
    async def test_an_id_with_a_nul_is_a_bad_request(
        self, harness: Harness, method: str, path: str
    ) -> None:
        """PostgreSQL holds no NUL in text, and failed the query (a 500)."""
        response = await harness.http.request(method, path, headers=harness.citizen())
        assert_problem(response, 400, "bad-request")

    async def test_a_poll_with_a_nul_is_a_bad_request(self, harness: Harness) -> None:
        assert_problem(
            await harness.signed("GET", "/v1/consent-requests/a%00b"), 400, "bad-request"
        )

    @pytest.mark.parametrize(
        ("error", "status", "problem_type"),
        [
            (sqlite3.OperationalError("database is locked"), 503, "database-unavailable"),
            (
                OperationalError("SELECT 1", {}, sqlite3.OperationalError("disk I/O error")),
                503,
                "database-unavailable",
            ),
            (RuntimeError("a bug"), 500, "internal-error"),
        ],
        ids=["driver-locked", "sqlalchemy-operational", "bug"],
    )
    async def test_a_failure_past_the_routes_is_a_problem(
        self,
        harness: Harness,
        monkeypatch: pytest.MonkeyPatch,
        error: Exception,
        status: int,
        problem_type: str,
    ) -> None:
        def failing(*_args: object, **_kwargs: object) -> None:
            raise error

        monkeypatch.setattr(harness.broker.consent_api, "citizen_consents", failing)
        transport = httpx.ASGITransport(app=harness.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            response = await http.get("/v1/me/consents", headers=harness.citizen())
        body = assert_problem(response, status, problem_type)
        assert "a bug" not in body["detail"]


class TestCitizenUnauthenticated:
    @pytest.mark.parametrize(("method", "path"), CITIZEN_ENDPOINTS)
    async def test_no_token(self, harness: Harness, method: str, path: str) -> None:
        consent = await harness.approved()
        request_id = (await harness.pending())["id"]
        url = path.format(request=request_id, consent=consent["id"])
        response = await harness.http.request(method, url)
        assert_problem(response, 401, "citizen-unauthenticated")
        listed = await harness.http.get("/v1/me/consent-requests", headers=harness.citizen())
        assert sorted(r["status"] for r in listed.json()) == ["APPROVED", "PENDING"]

    @pytest.mark.parametrize(
        "authorization",
        [
            lambda h: "Basic YWxpY2U6cGFzc3dvcmQ=",
            lambda h: "Bearer not-a-token",
            lambda h: (
                "Bearer " + h.world.idp.id_token(nik=h.nik, name=None, audience="another-app")
            ),
            lambda h: (
                "Bearer "
                + DevIdentityProvider(key=generate_key(h.world.idp.issuer)).id_token(
                    nik=h.nik, name=None, audience="simpul-citizen"
                )
            ),
        ],
        ids=["basic", "garbage", "wrong audience", "another idp key"],
    )
    async def test_bad_token(
        self, harness: Harness, authorization: Callable[[Harness], str]
    ) -> None:
        request_id = (await harness.pending())["id"]
        response = await harness.http.post(
            f"/v1/me/consent-requests/{request_id}/approve",
            headers={"Authorization": authorization(harness)},
        )
        assert_problem(response, 401, "citizen-unauthenticated")
        listed = await harness.http.get("/v1/me/consent-requests", headers=harness.citizen())
        assert [r["status"] for r in listed.json()] == ["PENDING"]


async def _failing_sync(_cache: ReplayCache) -> None:
    raise OSError(errno.EIO, "EIO: the disk failed")


class TestHttpEdges:
    """Refusals below the routes are problems too, and the body is bounded."""

    async def test_an_oversized_exchange_is_refused_unread(self, harness: Harness) -> None:
        body = b"{" + b" " * MAX_BODY_BYTES + b"}"
        response = await harness.signed("POST", "/r1/ID/GOV/DUKCAPIL/adminduk/ktp", body)
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["x-road-error"] == "content-too-large"
        assert response.json()["type"] == "urn:simpul:problem:content-too-large"

    async def test_an_oversized_consent_request_is_refused(self, harness: Harness) -> None:
        response = await harness.signed("POST", "/v1/consent-requests", b"x" * (MAX_BODY_BYTES + 1))
        assert response.status_code == 413
        assert response.headers["x-road-error"] == "content-too-large"

    async def test_an_exchange_at_the_limit_is_read(self, harness: Harness) -> None:
        body = b"{" + b" " * (MAX_BODY_BYTES - 2) + b"}"
        response = await harness.signed("POST", "/r1/ID/GOV/DUKCAPIL/adminduk/ktp", body)
        # Read and judged by the pipeline: refused for what it says, signed like every answer.
        assert response.status_code != 413
        assert "signature" in response.headers

    async def test_an_exchange_that_crashes_is_a_500_problem(
        self, harness: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A bug past the pipeline's own net: a logged 500, as a problem like every refusal."""

        async def crash(_request: object) -> object:
            raise RuntimeError("a bug")

        monkeypatch.setattr(harness.broker.exchange, "handle", crash)
        response = await harness.signed("POST", "/r1/ID/GOV/DUKCAPIL/adminduk/ktp", b"{}")
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["x-road-error"] == "internal-error"
        assert "a bug" not in response.text

    async def test_an_exchange_alone_commits_on_the_loop_on_sqlite(
        self, harness: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Nothing else in flight: the replay id and the audit record are committed on the
        event loop's thread (SQLite), or on the writers' threads as ever (PostgreSQL)."""
        inline: list[bool | None] = []
        real = ReplayCache._insert_now

        def spy(cache: ReplayCache, client_id: str, xroad_id: str) -> bool | None:
            inline.append(real(cache, client_id, xroad_id))
            return inline[-1]

        monkeypatch.setattr(ReplayCache, "_insert_now", spy)
        # Not idle long enough to index meanwhile: an indexing pass would take the writer.
        monkeypatch.setattr(harness.broker.audit_log, "_index_when_idle", 3600.0)
        for _ in range(2):
            response = await harness.signed("POST", "/r1/ID/GOV/DUKCAPIL/adminduk/ktp", b"{}")
            # Refused after the replay step (no consent token), and audited like any answer.
            assert response.json()["type"] == "urn:simpul:problem:consent-missing"
        sqlite = harness.broker.audit_engine.dialect.name == "sqlite"
        # The first replay commit purges old ids, which is left to the thread.
        assert inline == ([None, True] if sqlite else [])
        assert harness.broker.audit_log.written_inline == (2 if sqlite else 0)
        assert harness.broker.audit_log.records_written == 2

    async def test_an_answer_waits_until_its_replay_id_is_durable(
        self, harness: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The id may be committed without waiting for the disk (an exchange alone, on
        SQLite), so the answer waits for ``durable``: a failure there releases nothing."""
        token = await harness.consent_token()
        waits: list[str] = []
        real = harness.broker.authenticator.durable

        async def durable() -> None:
            waits.append("durable")
            await real()

        monkeypatch.setattr(harness.broker.authenticator, "durable", durable)
        async with dukcapil_sandbox(harness, monkeypatch):
            allowed = await harness.exchange(token)
            assert allowed.status_code == 200, allowed.text
            assert set(allowed.json()) == {"nik", "nama", "alamat"}
            assert waits == ["durable"]

            monkeypatch.setattr(ReplayCache, "durable", _failing_sync)
            refused = await harness.exchange(token)
        body = assert_problem(refused, 503, "replay-unavailable")
        assert harness.nik not in refused.text
        assert "nama" not in body
        (record,) = audit_records(harness, refused.headers["x-road-id"])
        assert (record.decision, record.reason, record.released_fields) == (
            "refused",
            "replay-unavailable",
            (),
        )

    async def test_a_refusal_waits_for_it_too(
        self, harness: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(ReplayCache, "durable", _failing_sync)
        response = await harness.signed("POST", f"/r1/{KTP}", b"{}")
        # Refused for want of a consent token, but not before the id was durable: it was not.
        assert_problem(response, 503, "replay-unavailable")
        (record,) = audit_records(harness, response.headers["x-road-id"])
        assert (record.decision, record.reason) == ("refused", "replay-unavailable")

    async def test_an_id_the_store_cannot_record_is_a_503(
        self, harness: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The write lock not had within the busy timeout (or, on PostgreSQL, a lock
        timeout): the request might be a replay, so nothing is done, and it may be retried."""

        def locked(_cache: ReplayCache, _batch: object) -> list[bool]:
            raise sqlite3.OperationalError("database is locked")

        monkeypatch.setattr(ReplayCache, "_insert_now", lambda *_args: None)  # to the thread
        monkeypatch.setattr(ReplayCache, "_insert_batch", locked)
        exchange = await harness.signed("POST", f"/r1/{KTP}", b"{}")
        assert_problem(exchange, 503, "replay-unavailable")
        (record,) = audit_records(harness, exchange.headers["x-road-id"])
        assert (record.decision, record.reason) == ("refused", "replay-unavailable")
        assert_problem(await harness.ask(), 503, "replay-unavailable")  # a consent request

    async def test_a_consent_requests_id_is_recorded_off_the_loop(
        self, harness: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Consent requests (and the auditor's) take the group commit too: the synchronous
        commit, which waits for the write lock and the disk, is never made on the loop."""

        def on_the_loop(*_args: object) -> None:
            raise AssertionError("ReplayCache.remember called")

        monkeypatch.setattr(ReplayCache, "remember", on_the_loop)
        xroad_id = str(uuid.uuid4())
        assert (await harness.ask(xroad_id=xroad_id)).status_code == 201
        assert_problem(await harness.ask(xroad_id=xroad_id), 409, "replay")

    async def test_control_characters_in_a_service_id_are_not_stored(
        self, harness: Harness
    ) -> None:
        """A NUL in the path (percent-decoded) would have failed its audit batch on
        PostgreSQL, and every exchange in it: the record keeps U+FFFD in its place."""
        xroad_id = str(uuid.uuid4())
        response = await harness.http.post(
            "/r1/ID%00/GOV%01x", content=b"{}", headers={"X-Road-Id": xroad_id}
        )
        assert_problem(response, 400, "bad-request")  # no X-Road-Client, before any key
        (record,) = audit_records(harness, xroad_id)
        assert record.service == "ID\ufffd/GOV\ufffdx"

    async def test_an_unknown_path_is_a_problem(self, harness: Harness) -> None:
        response = await harness.http.get("/no/such/thing")
        assert response.status_code == 404
        assert response.headers["x-road-error"] == "not-found"
        assert response.json()["status"] == 404

    async def test_a_wrong_method_is_a_problem_naming_the_right_one(self, harness: Harness) -> None:
        response = await harness.http.get("/r1/ID/GOV/DUKCAPIL/adminduk/ktp")
        assert response.status_code == 405
        assert response.headers["x-road-error"] == "method-not-allowed"
        assert response.headers["allow"] == "POST"

    async def test_the_exchange_stays_in_the_openapi_document(self, harness: Harness) -> None:
        paths = (await harness.http.get("/openapi.json")).json()["paths"]
        assert "post" in paths["/r1/{service_id}"]

    @pytest.mark.parametrize("path", ["/r1/ID/GOV/DUKCAPIL/adminduk/ktp", "/v1/consent-requests"])
    async def test_an_oversized_body_without_a_length_is_refused(
        self, harness: Harness, path: str
    ) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(MAX_BODY_BYTES // 1024 + 1):
                yield b" " * 1024

        response = await harness.http.post(path, content=chunks())
        assert response.status_code == 413
        assert response.headers["x-road-error"] == "content-too-large"
