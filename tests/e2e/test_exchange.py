"""The exchange over real HTTP between real processes: the story, and every refusal cause.

Each refusal must come back with its own problem type (and ``X-Road-Error``), signed by the
broker, and leave an audit record that says why.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import httpx
import pytest
from joserfc.jwk import OKPKey
from sqlalchemy import Engine

from audit.subjects import body_ref, body_ref_key, subject_ref
from broker.client import ExchangeResult, SimpulClient
from broker.keys import thumbprint, to_private_key
from broker.sandbox_env import PERMIT_OFFICE, SandboxWorld
from broker.signatures import (
    request_components,
    sign_request,
)
from consent.people import is_adult
from schemas.identifiers import make_nik
from tests.e2e.conftest import (
    AKTA,
    KK,
    KTP,
    KTP_FIELDS,
    OFFLINE,
    PURPOSE,
    TAX_OFFICE,
    Granted,
    audit_for,
    forge,
    grant,
    revoke,
)

pytestmark = pytest.mark.e2e


def _result(response: httpx.Response) -> ExchangeResult:
    return ExchangeResult(
        status=response.status_code,
        body=response.json() if response.content else {},
        headers={k.lower(): v for k, v in response.headers.items()},
    )


def assert_refused(
    engine: Engine, result: ExchangeResult, xroad_id: str, problem: str, status: int
) -> None:
    """The refusal names its cause on the wire and in the audit log."""
    assert result.status == status, result.body
    assert result.problem_type == problem, result.body
    assert result.headers["content-type"].startswith("application/problem+json")
    assert result.body["type"] == f"urn:simpul:problem:{problem}"
    assert result.body["status"] == status
    # The exchange's own records (a refused record about several people is also filed under
    # each of the others: see TestRecordsAboutSeveralPeople).
    records = [r for r in audit_for(engine, xroad_id) if r.event == "exchange"]
    assert records, f"no audit record for {xroad_id}"
    last = records[-1]
    assert last.decision == "refused"
    assert last.reason == problem
    assert last.status == status
    assert last.released_fields == ()
    assert result.audit_seq == last.seq


@pytest.fixture(scope="module")
def citizen(people: Any) -> Any:
    """The demo citizen: a Jakarta adult with KTP, KK and akta."""
    return people.demo_citizen()


@pytest.fixture(scope="module")
def granted(world: SandboxWorld, office: SimpulClient, citizen: Any) -> Granted:
    """An ACTIVE consent for KTP (name, birth date, address), KK and akta."""
    return grant(
        world,
        office,
        citizen.nik,
        ((KTP, KTP_FIELDS), (KK, ("no_kk", "anggota")), (AKTA, ("no_akta", "anak"))),
    )


class TestAllowed:
    def test_ktp_releases_exactly_the_granted_fields(
        self, office: SimpulClient, granted: Granted, audit_engine: Engine
    ) -> None:
        xroad_id = str(uuid.uuid4())
        response = office.send(
            "POST",
            f"/r1/{KTP}",
            json.dumps({"nik": granted.nik}).encode(),
            extra_headers={"Consent-Token": granted.token, "X-Road-UserId": "petugas-7"},
            xroad_id=xroad_id,
        )
        assert response.status_code == 200
        body = response.json()
        assert sorted(body) == sorted(KTP_FIELDS)
        assert response.headers["x-road-id"] == xroad_id
        assert len(response.headers["x-road-request-hash"]) == 64
        (record,) = audit_for(audit_engine, xroad_id)
        assert record.decision == "allowed"
        assert record.officer == "petugas-7"
        assert record.consent_id == granted.consent_id
        assert sorted(record.released_fields) == sorted(KTP_FIELDS)
        assert str(record.seq) == response.headers["x-simpul-audit-seq"]

    def test_the_response_is_recorded_by_a_keyed_hash(
        self, world: SandboxWorld, office: SimpulClient, granted: Granted, audit_engine: Engine
    ) -> None:
        # One released field makes a small body: a plain hash of it could be guessed.
        xroad_id = str(uuid.uuid4())
        response = office.send(
            "POST",
            f"/r1/{KTP}",
            json.dumps({"nik": granted.nik, "fields": ["nama"]}).encode(),
            extra_headers={"Consent-Token": granted.token},
            xroad_id=xroad_id,
        )
        assert response.status_code == 200, response.text
        (record,) = audit_for(audit_engine, xroad_id)
        key = body_ref_key(world.subject_secret.encode())
        assert record.response_hash == body_ref(response.content, key)
        assert record.response_hash != hashlib.sha256(response.content).hexdigest()

    def test_subset_of_fields_on_request(self, office: SimpulClient, granted: Granted) -> None:
        result = office.fetch(
            KTP, {"nik": granted.nik, "fields": ["nama"]}, consent_token=granted.token
        )
        assert result.ok
        assert list(result.body) == ["nama"]

    @pytest.mark.parametrize(
        ("service", "query", "fields"),
        [
            (KK, "nik", ["anggota", "no_kk"]),
            (AKTA, "nik", ["anak", "no_akta"]),
        ],
    )
    def test_kk_and_akta(
        self,
        office: SimpulClient,
        granted: Granted,
        service: str,
        query: str,
        fields: list[str],
    ) -> None:
        result = office.fetch(service, {query: granted.nik}, consent_token=granted.token)
        assert result.ok, result.body
        assert sorted(result.body) == fields

    def test_kk_by_number(self, office: SimpulClient, granted: Granted, people: Any) -> None:
        no_kk = people.household_of(granted.nik).no_kk
        result = office.fetch(KK, {"no_kk": no_kk}, consent_token=granted.token)
        assert result.ok, result.body
        assert granted.nik in [m["nik"] for m in result.body["anggota"]]

    def test_response_signature_is_checked_by_the_client(
        self, world: SandboxWorld, granted: Granted
    ) -> None:
        # A client holding a different "broker" key must refuse the genuine answer.
        with SimpulClient(
            base_url=world.broker_url, client_id=PERMIT_OFFICE, key=world.permit_key
        ) as client:
            impostor = OKPKey.generate_key("Ed25519", parameters={"kid": "simpul-broker-1"})
            client._broker_keys = {"simpul-broker-1": impostor.as_dict(private=False)}
            with pytest.raises(Exception, match="signature refused"):
                client.fetch(KTP, {"nik": granted.nik}, consent_token=granted.token)


Send = Callable[..., tuple[ExchangeResult, str]]


@pytest.fixture
def send(office: SimpulClient) -> Send:
    """Send one signed exchange as the permit office; returns the result and its X-Road-Id."""

    def _send(
        service: str,
        query: dict[str, Any],
        token: str | None,
        *,
        client: SimpulClient | None = None,
        officer: str | None = None,
    ) -> tuple[ExchangeResult, str]:
        xroad_id = str(uuid.uuid4())
        sender = client or office
        extra = {"Consent-Token": token} if token is not None else {}
        if officer is not None:
            extra["X-Road-UserId"] = officer
        response = sender.send(
            "POST",
            f"/r1/{service}",
            json.dumps(query).encode(),
            extra_headers=extra,
            components=request_components(extra, consent=token is not None),
            xroad_id=xroad_id,
        )
        return _result(response), xroad_id

    return _send


class TestAuthenticationRefusals:
    def _signed(
        self,
        world: SandboxWorld,
        granted: Granted,
        extra: dict[str, str] | None = None,
        **overrides: Any,
    ) -> tuple[str, dict[str, str], bytes]:
        """A request signed as a client signs it (``extra`` headers covered too)."""
        url = f"{world.broker_url}/r1/{KTP}"
        body = json.dumps({"nik": granted.nik}).encode()
        headers = {
            "X-Road-Client": PERMIT_OFFICE,
            "X-Road-Id": str(uuid.uuid4()),
            "Consent-Token": granted.token,
            "Content-Type": "application/json",
            **(extra or {}),
        }
        signed = sign_request(
            method="POST",
            url=url,
            headers=headers,
            body=body,
            key=to_private_key(world.permit_key),
            key_id=str(world.permit_key.kid),
            components=request_components(headers),
            **overrides,
        )
        return url, signed, body

    def test_missing_signature(
        self, world: SandboxWorld, granted: Granted, audit_engine: Engine
    ) -> None:
        xroad_id = str(uuid.uuid4())
        response = httpx.post(
            f"{world.broker_url}/r1/{KTP}",
            content=json.dumps({"nik": granted.nik}),
            headers={
                "X-Road-Client": PERMIT_OFFICE,
                "X-Road-Id": xroad_id,
                "Consent-Token": granted.token,
            },
        )
        assert_refused(audit_engine, _result(response), xroad_id, "signature-missing", 401)

    def test_key_not_registered_for_the_client(
        self, world: SandboxWorld, granted: Granted, send: Send, audit_engine: Engine
    ) -> None:
        # The tax office's key, claiming to be the permit office.
        with SimpulClient(
            base_url=world.broker_url, client_id=PERMIT_OFFICE, key=world.tax_key
        ) as liar:
            result, xroad_id = send(KTP, {"nik": granted.nik}, granted.token, client=liar)
        assert_refused(audit_engine, result, xroad_id, "signature-invalid", 401)

    def test_body_changed_after_signing(
        self, world: SandboxWorld, granted: Granted, audit_engine: Engine
    ) -> None:
        url, headers, _ = self._signed(world, granted)
        tampered = json.dumps({"nik": granted.nik, "fields": ["nama"]}).encode()
        response = httpx.post(url, content=tampered, headers=headers)
        assert_refused(
            audit_engine, _result(response), headers["X-Road-Id"], "digest-mismatch", 400
        )

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("X-Road-UserId", "someone-else"),
            ("X-Road-Issue", "PB-UMKU/2026/000666"),
            ("X-Road-Purpose", "perizinan-berusaha"),
        ],
    )
    def test_an_audited_header_added_after_signing(
        self, world: SandboxWorld, granted: Granted, audit_engine: Engine, name: str, value: str
    ) -> None:
        # Officer and case number go into the audit record, the purpose into the consent
        # check: whenever they are sent, the signature must cover them.
        url, headers, body = self._signed(world, granted)
        response = httpx.post(url, content=body, headers={**headers, name: value})
        assert_refused(
            audit_engine, _result(response), headers["X-Road-Id"], "signature-invalid", 401
        )

    def test_an_audited_header_changed_after_signing(
        self, world: SandboxWorld, granted: Granted, audit_engine: Engine
    ) -> None:
        url, headers, body = self._signed(world, granted, extra={"X-Road-UserId": "petugas-7"})
        response = httpx.post(url, content=body, headers={**headers, "X-Road-UserId": "budi"})
        assert_refused(
            audit_engine, _result(response), headers["X-Road-Id"], "signature-invalid", 401
        )

    def test_consent_token_swapped_after_signing(
        self, world: SandboxWorld, granted: Granted, broker_key: OKPKey, audit_engine: Engine
    ) -> None:
        url, headers, body = self._signed(world, granted)
        headers["Consent-Token"] = forge(
            broker_key, sub=granted.nik, jkt=thumbprint(world.permit_key)
        )
        response = httpx.post(url, content=body, headers=headers)
        assert_refused(
            audit_engine, _result(response), headers["X-Road-Id"], "signature-invalid", 401
        )

    # The exact ±300 s boundary is unit-tested with a fixed clock; over real HTTP, a margin.
    @pytest.mark.parametrize("seconds", [-330, 330])
    def test_created_outside_the_allowed_skew(
        self, world: SandboxWorld, granted: Granted, audit_engine: Engine, seconds: int
    ) -> None:
        created = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
        url, headers, body = self._signed(world, granted, created=created)
        response = httpx.post(url, content=body, headers=headers)
        assert_refused(
            audit_engine, _result(response), headers["X-Road-Id"], "signature-stale", 401
        )

    def test_replayed_request_id(
        self, world: SandboxWorld, granted: Granted, audit_engine: Engine
    ) -> None:
        url, headers, body = self._signed(world, granted)
        first = httpx.post(url, content=body, headers=headers)
        assert first.status_code == 200
        again = httpx.post(url, content=body, headers=headers)
        assert_refused(audit_engine, _result(again), headers["X-Road-Id"], "replay", 409)
        assert [r.decision for r in audit_for(audit_engine, headers["X-Road-Id"])] == [
            "allowed",
            "refused",
        ]

    def test_unknown_client(
        self, world: SandboxWorld, granted: Granted, send: Send, audit_engine: Engine
    ) -> None:
        with SimpulClient(
            base_url=world.broker_url, client_id="ID/GOV/NOBODY/apa", key=world.tax_key
        ) as stranger:
            result, xroad_id = send(KTP, {"nik": granted.nik}, granted.token, client=stranger)
        assert_refused(audit_engine, result, xroad_id, "unknown-client", 401)

    def test_request_id_not_a_uuid(
        self, world: SandboxWorld, granted: Granted, audit_engine: Engine
    ) -> None:
        url = f"{world.broker_url}/r1/{KTP}"
        headers = {
            "X-Road-Client": PERMIT_OFFICE,
            "X-Road-Id": "not-a-uuid",
            "Consent-Token": granted.token,
        }
        body = json.dumps({"nik": granted.nik}).encode()
        signed = sign_request(
            method="POST",
            url=url,
            headers=headers,
            body=body,
            key=to_private_key(world.permit_key),
            key_id=str(world.permit_key.kid),
        )
        response = httpx.post(url, content=body, headers=signed)
        assert_refused(audit_engine, _result(response), "not-a-uuid", "bad-request", 400)

    def test_request_id_that_cannot_be_echoed(self, world: SandboxWorld, granted: Granted) -> None:
        # A byte the HTTP parser accepts but a signed header cannot carry: still a signed
        # problem, still audited (under an empty id), never an unsigned 500.
        response = httpx.post(
            f"{world.broker_url}/r1/{KTP}",
            content=json.dumps({"nik": granted.nik}),
            headers={"X-Road-Client": PERMIT_OFFICE, "X-Road-Id": b"\xe9t\xe9"},
        )
        result = _result(response)
        assert result.status == 400
        assert result.problem_type == "bad-request"
        assert "signature" in {k.lower() for k in response.headers}

    def test_body_nested_too_deeply(
        self, office: SimpulClient, granted: Granted, audit_engine: Engine
    ) -> None:
        xroad_id = str(uuid.uuid4())
        response = office.send(
            "POST",
            f"/r1/{KTP}",
            b"[" * 30_000 + b"]" * 30_000,  # deep, yet within the 64 KiB the broker reads
            extra_headers={"Consent-Token": granted.token},
            xroad_id=xroad_id,
        )
        assert_refused(audit_engine, _result(response), xroad_id, "bad-request", 400)


class TestAccessRefusals:
    def test_no_access_right(
        self, tax_office: SimpulClient, granted: Granted, send: Send, audit_engine: Engine
    ) -> None:
        result, xroad_id = send(KTP, {"nik": granted.nik}, granted.token, client=tax_office)
        assert_refused(audit_engine, result, xroad_id, "access-denied", 403)
        # The attempt is findable by the person it concerned.
        (record,) = audit_for(audit_engine, xroad_id)
        assert record.subject_ref is not None
        assert record.client == TAX_OFFICE

    def test_unknown_service(self, granted: Granted, send: Send, audit_engine: Engine) -> None:
        result, xroad_id = send(
            "ID/GOV/DUKCAPIL/adminduk/paspor", {"nik": granted.nik}, granted.token
        )
        assert_refused(audit_engine, result, xroad_id, "unknown-service", 404)


def _unsigned_token(header: dict[str, str], payload: dict[str, Any], signature: bytes) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)]
    )


class TestConsentRefusals:
    def test_missing_token(self, granted: Granted, send: Send, audit_engine: Engine) -> None:
        result, xroad_id = send(KTP, {"nik": granted.nik}, None)
        assert_refused(audit_engine, result, xroad_id, "consent-missing", 401)

    @pytest.mark.parametrize(
        ("offsets", "problem"),
        [
            ({"iat_offset": -7200, "nbf_offset": -7200, "exp_offset": -60}, "consent-expired"),
            ({"nbf_offset": 600, "exp_offset": 3600}, "consent-not-yet-valid"),
        ],
    )
    def test_token_time(
        self,
        world: SandboxWorld,
        granted: Granted,
        broker_key: OKPKey,
        send: Send,
        audit_engine: Engine,
        offsets: dict[str, int],
        problem: str,
    ) -> None:
        token = forge(
            broker_key,
            sub=granted.nik,
            jkt=thumbprint(world.permit_key),
            jti=granted.consent_id,
            **offsets,
        )
        result, xroad_id = send(KTP, {"nik": granted.nik}, token)
        assert_refused(audit_engine, result, xroad_id, problem, 403)

    def test_token_for_another_consumer(
        self,
        world: SandboxWorld,
        granted: Granted,
        broker_key: OKPKey,
        send: Send,
        audit_engine: Engine,
    ) -> None:
        token = forge(
            broker_key,
            sub=granted.nik,
            aud=TAX_OFFICE,
            jkt=thumbprint(world.permit_key),
            jti=granted.consent_id,
        )
        result, xroad_id = send(KTP, {"nik": granted.nik}, token)
        assert_refused(audit_engine, result, xroad_id, "consent-wrong-audience", 403)

    def test_token_not_bound_to_the_callers_key(
        self,
        world: SandboxWorld,
        granted: Granted,
        broker_key: OKPKey,
        send: Send,
        audit_engine: Engine,
    ) -> None:
        token = forge(
            broker_key, sub=granted.nik, jkt=thumbprint(world.tax_key), jti=granted.consent_id
        )
        result, xroad_id = send(KTP, {"nik": granted.nik}, token)
        assert_refused(audit_engine, result, xroad_id, "consent-not-bound", 403)

    def test_token_for_another_citizen(
        self, granted: Granted, people: Any, send: Send, audit_engine: Engine
    ) -> None:
        other = next(p for p in people.people if p.nik != granted.nik and people.person(p.nik))
        result, xroad_id = send(KTP, {"nik": other.nik}, granted.token)
        assert_refused(audit_engine, result, xroad_id, "consent-wrong-subject", 403)

    def test_field_not_granted(self, granted: Granted, send: Send, audit_engine: Engine) -> None:
        result, xroad_id = send(
            KTP, {"nik": granted.nik, "fields": ["nama", "agama"]}, granted.token
        )
        assert_refused(audit_engine, result, xroad_id, "field-not-granted", 403)
        assert "agama" not in result.body

    def test_service_not_granted(
        self,
        world: SandboxWorld,
        office: SimpulClient,
        people: Any,
        send: Send,
        audit_engine: Engine,
    ) -> None:
        ktp_only = grant(world, office, people.demo_citizen().nik)
        result, xroad_id = send(KK, {"nik": ktp_only.nik}, ktp_only.token)
        assert_refused(audit_engine, result, xroad_id, "service-not-granted", 403)

    def test_consent_not_in_the_store(
        self,
        world: SandboxWorld,
        granted: Granted,
        broker_key: OKPKey,
        send: Send,
        audit_engine: Engine,
    ) -> None:
        token = forge(broker_key, sub=granted.nik, jkt=thumbprint(world.permit_key))
        result, xroad_id = send(KTP, {"nik": granted.nik}, token)
        assert_refused(audit_engine, result, xroad_id, "consent-not-found", 403)

    @pytest.mark.parametrize("alg", ["none", "HS256"])
    def test_refused_algorithms(
        self, world: SandboxWorld, granted: Granted, send: Send, audit_engine: Engine, alg: str
    ) -> None:
        import hashlib
        import hmac

        header = {"alg": alg, "typ": "consent+jwt", "kid": "simpul-broker-1"}
        payload_b64 = granted.token.split(".")[1]
        payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
        signature = b""
        if alg == "HS256":
            # The classic confusion attack: the broker's public key used as an HMAC secret.
            public = json.dumps(world.permit_key.as_dict(private=False)).encode()
            unsigned = _unsigned_token(header, payload, b"").rsplit(".", 1)[0]
            signature = hmac.new(public, unsigned.encode(), hashlib.sha256).digest()
        token = _unsigned_token(header, payload, signature)
        result, xroad_id = send(KTP, {"nik": granted.nik}, token)
        assert_refused(audit_engine, result, xroad_id, "consent-algorithm-refused", 401)

    def test_revoked_consent_stops_the_very_next_request(
        self,
        world: SandboxWorld,
        office: SimpulClient,
        citizen: Any,
        send: Send,
        audit_engine: Engine,
    ) -> None:
        mine = grant(world, office, citizen.nik)
        before, _ = send(KTP, {"nik": mine.nik}, mine.token)
        assert before.ok
        revoke(world, mine)
        result, xroad_id = send(KTP, {"nik": mine.nik}, mine.token)
        assert_refused(audit_engine, result, xroad_id, "consent-revoked", 403)


class TestContractAndBackendRefusals:
    def test_schema_invalid_request(
        self, granted: Granted, send: Send, audit_engine: Engine
    ) -> None:
        result, xroad_id = send(KTP, {"nik": granted.nik, "warna": "merah"}, granted.token)
        assert_refused(audit_engine, result, xroad_id, "schema-invalid", 400)

    @pytest.mark.parametrize(
        "body",
        [
            b"{not json",
            b'{"nik": 1' + b"0" * 5000 + b"}",  # past the digits Python converts: no JSON error
            b'{"nik": "317401\\ud80019018600"}',  # half a surrogate pair: JSON, not Unicode
            '{"nik": "3174011901860001"}'.encode("utf-16"),  # JSON, but not UTF-8
        ],
        ids=["not-json", "huge-integer", "lone-surrogate", "utf-16"],
    )
    def test_malformed_json_body(
        self,
        world: SandboxWorld,
        office: SimpulClient,
        granted: Granted,
        audit_engine: Engine,
        body: bytes,
    ) -> None:
        xroad_id = str(uuid.uuid4())
        response = office.send(
            "POST",
            f"/r1/{KTP}",
            body,
            extra_headers={"Consent-Token": granted.token},
            xroad_id=xroad_id,
        )
        assert_refused(audit_engine, _result(response), xroad_id, "bad-request", 400)

    def test_backend_down(
        self,
        world: SandboxWorld,
        office: SimpulClient,
        citizen: Any,
        send: Send,
        audit_engine: Engine,
    ) -> None:
        mine = grant(world, office, citizen.nik, ((OFFLINE, KTP_FIELDS),))
        result, xroad_id = send(OFFLINE, {"nik": mine.nik}, mine.token)
        assert_refused(audit_engine, result, xroad_id, "upstream-unavailable", 502)

    @pytest.mark.parametrize(
        ("fault", "problem", "status"),
        [
            ("corrupt", "upstream-invalid", 502),
            ("error", "upstream-error", 502),
            ("slow", "upstream-timeout", 504),
        ],
    )
    def test_backend_misbehaves(
        self,
        world: SandboxWorld,
        office: SimpulClient,
        people: Any,
        send: Send,
        audit_engine: Engine,
        fault: str,
        problem: str,
        status: int,
    ) -> None:
        mine = grant(world, office, people.fault_nik(fault))
        result, xroad_id = send(KTP, {"nik": mine.nik}, mine.token)
        assert_refused(audit_engine, result, xroad_id, problem, status)
        assert set(result.body) == {"type", "title", "status", "detail", "instance"}

    def test_record_not_found(
        self,
        world: SandboxWorld,
        office: SimpulClient,
        people: Any,
        send: Send,
        audit_engine: Engine,
    ) -> None:
        nik = make_nik("317401", date(1991, 3, 9), "PEREMPUAN", 9876)
        assert people.person(nik) is None
        mine = grant(world, office, nik)
        result, xroad_id = send(KTP, {"nik": nik}, mine.token)
        assert_refused(audit_engine, result, xroad_id, "record-not-found", 404)


class TestFailClosed:
    @pytest.mark.sqlite_only
    def test_no_release_while_the_audit_log_cannot_be_written(
        self, world: SandboxWorld, granted: Granted, send: Send, audit_engine: Engine
    ) -> None:
        import sqlite3

        # Another process holds the audit database's write lock past the broker's busy timeout.
        blocker = sqlite3.connect(world.data_dir / "audit.db", isolation_level=None)
        try:
            blocker.execute("BEGIN EXCLUSIVE")
            result, xroad_id = send(KTP, {"nik": granted.nik}, granted.token)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert result.status == 503
        assert result.problem_type == "audit-unavailable"
        assert "nama" not in result.body
        assert audit_for(audit_engine, xroad_id) == []
        # The writer recovers once the database is writable again.
        after, after_id = send(KTP, {"nik": granted.nik}, granted.token)
        assert after.ok
        assert [r.decision for r in audit_for(audit_engine, after_id)] == ["allowed"]


def _today() -> date:
    return dt.datetime.now(dt.UTC).date()


def _adult(person: Any) -> bool:
    married = person.status_perkawinan != "BELUM KAWIN"
    return is_adult(person.tanggal_lahir.isoformat(), _today(), married=married)


def _access_log(world: SandboxWorld, nik: str) -> list[dict[str, Any]]:
    me = {"Authorization": f"Bearer {world.citizen_token(nik)}"}
    response = httpx.get(f"{world.broker_url}/v1/me/access-log", headers=me)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def _family_with_a_minor(people: Any) -> tuple[Any, Any, Any]:
    """A household's minor child with a birth certificate naming both parents, and that
    certificate; skips (saying why) once the sandbox population has grown up."""
    for household in people.households:
        for child in household.members:
            birth = people.birth_record(child.nik)
            if (
                not _adult(child)
                and birth is not None
                and people.person(birth.ayah_nik or "")
                and people.person(birth.ibu_nik or "")
            ):
                return household, child, birth
    pytest.skip("the sandbox population (born before 2025-07-01) holds no minor any more")


def _adult_child_with_a_parent(people: Any) -> tuple[Any, Any]:
    """An adult with a birth certificate whose father or mother is a citizen, and that parent."""
    for person in people.people:
        birth = people.birth_record(person.nik)
        if birth is None or not _adult(person):
            continue
        for nik in (birth.ayah_nik, birth.ibu_nik):
            if nik and people.person(nik) and _adult(people.person(nik)):
                return birth, people.person(nik)
    pytest.skip("no adult in the sandbox population has a parent on record")


class TestRecordsAboutSeveralPeople:
    """A KK is about every member, an Akta about the child and the parents: each finds the
    exchange in their access log, and only an adult (an Akta: the child once adult, a minor's
    parent) may consent for the others (consent.people)."""

    def test_a_family_card_read_is_filed_under_every_member(
        self,
        world: SandboxWorld,
        granted: Granted,
        people: Any,
        send: Send,
        audit_engine: Engine,
    ) -> None:
        household = people.household_of(granted.nik)
        others = [m.nik for m in household.members if m.nik != granted.nik]
        assert others, "the demo citizen's family card names others"
        result, xroad_id = send(
            KK, {"nik": granted.nik, "fields": ["no_kk"]}, granted.token, officer="petugas-9"
        )
        assert result.status == 200, result.body
        main, *filed = audit_for(audit_engine, xroad_id)
        secret = world.subject_secret.encode()
        assert (main.event, main.subject_ref) == ("exchange", subject_ref(granted.nik, secret))
        assert result.audit_seq == main.seq
        assert [r.subject_ref for r in filed] == [subject_ref(nik, secret) for nik in others]
        for record in filed:
            assert record.event == "exchange.co_subject"
            assert (record.decision, record.status, record.released_fields) == (
                "allowed",
                200,
                ("no_kk",),
            )
            assert (record.consent_id, record.request_hash, record.response_hash) == (
                main.consent_id,
                main.request_hash,
                main.response_hash,
            )
        theirs = _access_log(world, others[0])
        seen = [
            e
            for e in theirs
            if e["event"] == "exchange.co_subject" and e["seq"] in {r.seq for r in filed}
        ]
        assert [(e["service"], e["fields"], e["decision"]) for e in seen] == [
            (KK, ["no_kk"], "allowed")
        ]
        # Who read it and why is theirs to see; the consent holder's case and consent are not.
        (entry,) = seen
        assert (entry["agency"], entry["purpose_code"]) == (
            "Dinas Penanaman Modal dan PTSP Provinsi DKI Jakarta",
            PURPOSE["code"],
        )
        assert (entry["officer"], entry["procedure_ref"], entry["consent_id"]) == (None,) * 3
        mine = [e for e in _access_log(world, granted.nik) if e["seq"] == main.seq]
        assert [(e["event"], e["consent_id"]) for e in mine] == [("exchange", granted.consent_id)]
        outsider = next(p.nik for p in people.people if p.no_kk != household.no_kk)
        assert not [e for e in _access_log(world, outsider) if e["seq"] == filed[0].seq]

    def test_a_ktp_read_names_no_one_else(
        self, granted: Granted, send: Send, audit_engine: Engine
    ) -> None:
        result, xroad_id = send(KTP, {"nik": granted.nik}, granted.token)
        assert result.status == 200, result.body
        assert [r.event for r in audit_for(audit_engine, xroad_id)] == ["exchange"]

    def test_a_minors_consent_releases_no_family_card(
        self,
        world: SandboxWorld,
        office: SimpulClient,
        people: Any,
        send: Send,
        audit_engine: Engine,
    ) -> None:
        household, child, birth = _family_with_a_minor(people)
        held = grant(world, office, child.nik, ((KK, ("no_kk", "anggota")),))
        result, xroad_id = send(KK, {"nik": child.nik}, held.token)
        assert_refused(audit_engine, result, xroad_id, "consent-not-entitled", 403)
        # The parents see the attempt on their family card; nothing was released to anyone.
        father_log = _access_log(world, birth.ayah_nik)
        filed = {r.seq for r in audit_for(audit_engine, xroad_id) if r.event != "exchange"}
        attempt = [e for e in father_log if e["seq"] in filed]
        assert [(e["decision"], e["reason"], e["fields"]) for e in attempt] == [
            ("refused", "consent-not-entitled", [])
        ]
        assert len(audit_for(audit_engine, xroad_id)) == len(household.members)

    def test_a_minors_own_birth_certificate_needs_a_parent(
        self,
        world: SandboxWorld,
        office: SimpulClient,
        people: Any,
        send: Send,
        audit_engine: Engine,
    ) -> None:
        _, child, birth = _family_with_a_minor(people)
        own = grant(world, office, child.nik, ((AKTA, ("no_akta", "anak")),))
        result, xroad_id = send(AKTA, {"nik": child.nik}, own.token)
        assert_refused(audit_engine, result, xroad_id, "consent-not-entitled", 403)

        mother = grant(world, office, birth.ibu_nik, ((AKTA, ("no_akta", "anak")),))
        by_number = {"no_akta": birth.no_akta, "kantor_penerbit": birth.kantor_penerbit}
        result, xroad_id = send(AKTA, by_number, mother.token)
        assert result.status == 200, result.body
        assert result.body["anak"]["nik"] == child.nik
        secret = world.subject_secret.encode()
        main, *filed = audit_for(audit_engine, xroad_id)
        assert main.subject_ref == subject_ref(birth.ibu_nik, secret)
        assert sorted(r.subject_ref for r in filed) == sorted(
            subject_ref(nik, secret) for nik in (child.nik, birth.ayah_nik)
        )
        child_log = _access_log(world, child.nik)
        assert [e["decision"] for e in child_log if e["seq"] in {r.seq for r in filed}] == [
            "allowed"
        ]

    def test_an_adults_birth_certificate_is_theirs_to_release(
        self,
        world: SandboxWorld,
        office: SimpulClient,
        people: Any,
        send: Send,
        audit_engine: Engine,
    ) -> None:
        birth, parent = _adult_child_with_a_parent(people)
        held = grant(world, office, parent.nik, ((AKTA, ("no_akta", "anak")),))
        by_number = {"no_akta": birth.no_akta, "kantor_penerbit": birth.kantor_penerbit}
        result, xroad_id = send(AKTA, by_number, held.token)
        assert_refused(audit_engine, result, xroad_id, "consent-not-entitled", 403)
        own = grant(world, office, birth.anak_nik, ((AKTA, ("no_akta", "anak")),))
        result, xroad_id = send(AKTA, {"nik": birth.anak_nik}, own.token)
        assert result.status == 200, result.body
