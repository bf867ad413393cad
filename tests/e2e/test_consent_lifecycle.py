"""The consent lifecycle end to end on real processes: pause, resume and revoke take effect on
the very next exchange; use limits hold under concurrent requests; the citizen's access log;
signed notifications that survive a broker restart."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.client import ExchangeResult, SimpulClient
from broker.db import create_db_engine
from broker.keys import jwks_resolver
from broker.notifications import NOTIFICATION_COMPONENTS, list_deliveries
from broker.sandbox_env import KK, KTP, PERMIT_OFFICE, SandboxWorld, free_port
from broker.signatures import CONSENT_REQUEST_COMPONENTS, verify_request
from tests.e2e.conftest import KTP_FIELDS, PURPOSE, running

PROVIDER = "ID/GOV/DUKCAPIL/adminduk"


@dataclass
class Sink:
    """A webhook receiver on a thread: records every POST, answers ``status``."""

    port: int
    status: int = 200
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if sink.status == 200:
                    sink.received.append((self.path, dict(self.headers.items()), body))
                self.send_response(sink.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def wait_for(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        """The first ``count`` notifications' payloads, once they have arrived."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= count, self.received
        return [json.loads(body) for _, _, body in self.received[:count]]


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    receiver = Sink(port=free_port())
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory, sink: Sink) -> Iterator[SandboxWorld]:
    """A world whose permit office and Dukcapil receive consent notifications at ``sink``."""
    data_dir: Path = tmp_path_factory.mktemp("hooked")
    world = SandboxWorld.create(
        data_dir, webhooks={PERMIT_OFFICE: sink.url("/permit"), PROVIDER: sink.url("/dukcapil")}
    )
    world.extra_env = {
        "SIMPUL_CONSENT_WORKER_SECONDS": "0.1",
        "SIMPUL_NOTIFY_BACKOFF_SECONDS": "0.1",
        "SIMPUL_NOTIFY_MAX_BACKOFF_SECONDS": "0.5",
        "SIMPUL_NOTIFY_MAX_ATTEMPTS": "100",
    }
    with running(world):
        yield world


@pytest.fixture(scope="module")
def desk(hooked: SandboxWorld) -> Iterator[SimpulClient]:
    with SimpulClient(
        base_url=hooked.broker_url, client_id=PERMIT_OFFICE, key=hooked.permit_key
    ) as c:
        yield c


@pytest.fixture
def fresh_sink(sink: Sink) -> Sink:
    sink.received.clear()
    sink.status = 200
    return sink


@dataclass(frozen=True)
class Held:
    """An approved consent: its id and token, and the citizen it is about."""

    nik: str
    consent_id: str
    token: str


def consent(world: SandboxWorld, desk: SimpulClient, nik: str, **options: Any) -> Held:
    """Ask (with ``options`` such as fetch_type, max_uses, grants), approve, collect."""
    body = {
        "subject_nik": nik,
        "grants": options.pop("grants", [{"service": KTP, "fields": list(KTP_FIELDS)}]),
        "purpose": PURPOSE,
        "procedure_ref": f"PB/{uuid.uuid4().hex[:8]}",
        **options,
    }
    created = desk.send(
        "POST",
        "/v1/consent-requests",
        json.dumps(body).encode(),
        components=CONSENT_REQUEST_COMPONENTS,
    )
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]
    approved = citizen(world, nik, "POST", f"/v1/me/consent-requests/{request_id}/approve")
    assert approved.status_code == 200, approved.text
    polled = desk.consent_request(request_id)
    return Held(nik=nik, consent_id=polled["consent_id"], token=polled["consent_token"])


def citizen(world: SandboxWorld, nik: str, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {world.citizen_token(nik)}"}
    return httpx.request(method, world.broker_url + path, headers=headers, timeout=10, **kw)


def ktp(desk: SimpulClient, held: Held, **kw: Any) -> ExchangeResult:
    return desk.fetch(KTP, {"nik": held.nik}, consent_token=held.token, **kw)


def usable(people: Any) -> list[Any]:
    """Adults with a KTP whose backends answer normally (no designated faults)."""
    return [p for p in people.people if p.has_ktp and p.nik not in people.faults]


def nik_of(people: Any, index: int) -> str:
    return str(usable(people)[index].nik)


class TestTakesEffectAtOnce:
    def test_pause_refuses_the_next_exchange_and_resume_restores_it(
        self, hooked: SandboxWorld, desk: SimpulClient, people: Any
    ) -> None:
        held = consent(hooked, desk, nik_of(people, 1))
        assert ktp(desk, held).status == 200
        paused = citizen(hooked, held.nik, "POST", f"/v1/me/consents/{held.consent_id}/pause")
        assert paused.json()["status"] == "PAUSED"
        refused = ktp(desk, held)
        assert (refused.status, refused.problem_type) == (403, "consent-not-active")
        citizen(hooked, held.nik, "POST", f"/v1/me/consents/{held.consent_id}/resume")
        assert ktp(desk, held).status == 200

    def test_revoke_refuses_the_next_exchange_for_good(
        self, hooked: SandboxWorld, desk: SimpulClient, people: Any
    ) -> None:
        held = consent(hooked, desk, nik_of(people, 2))
        assert ktp(desk, held).status == 200
        citizen(hooked, held.nik, "POST", f"/v1/me/consents/{held.consent_id}/revoke")
        refused = ktp(desk, held)
        assert (refused.status, refused.problem_type) == (403, "consent-revoked")
        resumed = citizen(hooked, held.nik, "POST", f"/v1/me/consents/{held.consent_id}/resume")
        assert resumed.headers["x-road-error"] == "consent-transition-refused"
        assert ktp(desk, held).problem_type == "consent-revoked"


class TestUseLimits:
    def test_onetime_is_spent_per_service(
        self, hooked: SandboxWorld, desk: SimpulClient, people: Any
    ) -> None:
        person = usable(people)[3]
        held = consent(
            hooked,
            desk,
            person.nik,
            fetch_type="ONETIME",
            grants=[
                {"service": KTP, "fields": list(KTP_FIELDS)},
                {"service": KK, "fields": ["no_kk"]},
            ],
        )
        assert ktp(desk, held).status == 200
        again = ktp(desk, held)
        assert (again.status, again.problem_type) == (403, "consent-exhausted")
        kk = desk.fetch(KK, {"nik": person.nik}, consent_token=held.token)
        assert kk.status == 200  # the other granted service has its own one use
        assert desk.fetch(KK, {"nik": person.nik}, consent_token=held.token).status == 403

    def test_a_replay_is_refused_as_a_replay_even_once_the_consent_is_spent(
        self, hooked: SandboxWorld, desk: SimpulClient, people: Any
    ) -> None:
        # The replay commit overlaps the consent checks; its verdict must still come first.
        held = consent(hooked, desk, nik_of(people, 6), fetch_type="ONETIME")
        xroad_id = str(uuid.uuid4())
        body = json.dumps({"nik": held.nik}).encode()
        token = {"Consent-Token": held.token}
        first = desk.send("POST", f"/r1/{KTP}", body, extra_headers=token, xroad_id=xroad_id)
        assert first.status_code == 200
        again = desk.send("POST", f"/r1/{KTP}", body, extra_headers=token, xroad_id=xroad_id)
        assert (again.status_code, again.headers["x-road-error"]) == (409, "replay")

    def test_max_uses(self, hooked: SandboxWorld, desk: SimpulClient, people: Any) -> None:
        held = consent(hooked, desk, nik_of(people, 4), max_uses=2)
        assert [ktp(desk, held).status for _ in range(2)] == [200, 200]
        assert ktp(desk, held).problem_type == "consent-exhausted"
        shown = citizen(hooked, held.nik, "GET", f"/v1/me/consents/{held.consent_id}")
        assert shown.json()["use_count"] == 2

    def test_a_refused_exchange_uses_nothing(
        self, hooked: SandboxWorld, desk: SimpulClient, people: Any
    ) -> None:
        held = consent(hooked, desk, nik_of(people, 5), fetch_type="ONETIME")
        not_granted = desk.fetch(
            KTP, {"nik": held.nik, "fields": ["agama"]}, consent_token=held.token
        )
        assert not_granted.problem_type == "field-not-granted"
        assert ktp(desk, held).status == 200

    @pytest.mark.parametrize(
        ("person", "options"),
        [(7, {"max_uses": 1}), (8, {"fetch_type": "ONETIME"})],
        ids=["max_uses", "onetime"],
    )
    def test_concurrent_requests_cannot_both_take_the_last_use(
        self,
        hooked: SandboxWorld,
        desk: SimpulClient,
        people: Any,
        person: int,
        options: dict[str, Any],
    ) -> None:
        held = consent(hooked, desk, nik_of(people, person), **options)
        racers = 6
        barrier = threading.Barrier(racers)

        def race(_: int) -> ExchangeResult:
            with SimpulClient(
                base_url=hooked.broker_url, client_id=PERMIT_OFFICE, key=hooked.permit_key
            ) as own:
                barrier.wait()
                return ktp(own, held)

        with ThreadPoolExecutor(racers) as pool:
            results = list(pool.map(race, range(racers)))
        assert sorted(r.status for r in results) == [200] + [403] * (racers - 1)
        assert {r.problem_type for r in results if r.status == 403} == {"consent-exhausted"}


class TestAccessLog:
    def test_the_citizen_sees_who_read_what_and_why(
        self, hooked: SandboxWorld, desk: SimpulClient, people: Any
    ) -> None:
        held = consent(hooked, desk, nik_of(people, 20))
        assert ktp(desk, held, officer="petugas-0042", issue="PB-UMKU/2026/7").status == 200
        refused = desk.fetch(KTP, {"nik": held.nik, "fields": ["agama"]}, consent_token=held.token)
        assert refused.status == 403
        log = citizen(hooked, held.nik, "GET", "/v1/me/access-log").json()["entries"]
        exchanges = [e for e in log if e["event"] == "exchange"]
        assert [e["decision"] for e in exchanges] == ["refused", "allowed"]  # newest first
        allowed = exchanges[1]
        assert allowed["officer"] == "petugas-0042"
        assert allowed["procedure_ref"] == "PB-UMKU/2026/7"
        assert allowed["service"] == KTP
        assert allowed["fields"] == list(KTP_FIELDS)
        assert allowed["provider"] == "Direktorat Jenderal Kependudukan dan Pencatatan Sipil"
        assert allowed["purpose_code"] == PURPOSE["code"]
        assert exchanges[0]["reason"] == "field-not-granted"
        other = citizen(hooked, nik_of(people, 21), "GET", "/v1/me/access-log").json()
        assert other["entries"] == []


def _verified(hooked: SandboxWorld, sink: Sink) -> Callable[[int], None]:
    jwks = httpx.get(f"{hooked.broker_url}/.well-known/jwks.json").json()
    resolve = jwks_resolver(jwks)

    def check(index: int) -> None:
        path, headers, body = sink.received[index]
        verify_request(
            method="POST",
            url=sink.url(path),
            headers=list(headers.items()),
            body=body,
            resolve_key=resolve,
            required=NOTIFICATION_COMPONENTS,
        )

    return check


class TestNotifications:
    def test_pause_resume_revoke_notify_consumer_and_provider_signed(
        self, hooked: SandboxWorld, desk: SimpulClient, people: Any, fresh_sink: Sink
    ) -> None:
        held = consent(hooked, desk, nik_of(people, 30))
        for what in ("pause", "resume", "revoke"):
            citizen(hooked, held.nik, "POST", f"/v1/me/consents/{held.consent_id}/{what}")
        payloads = fresh_sink.wait_for(6)
        seen = {(p["type"], p["role"]) for p in payloads}
        assert seen == {
            (f"consent.{what}", role)
            for what in ("pause", "resume", "revoke")
            for role in ("consumer", "provider")
        }
        assert {p["consent_id"] for p in payloads} == {held.consent_id}
        assert all(held.nik not in json.dumps(p) for p in payloads)
        check = _verified(hooked, fresh_sink)
        for index in range(6):
            check(index)

    def test_a_changed_notification_does_not_verify(
        self, hooked: SandboxWorld, desk: SimpulClient, people: Any, fresh_sink: Sink
    ) -> None:
        held = consent(hooked, desk, nik_of(people, 31))
        citizen(hooked, held.nik, "POST", f"/v1/me/consents/{held.consent_id}/pause")
        fresh_sink.wait_for(2)
        path, headers, body = fresh_sink.received[0]
        fresh_sink.received[0] = (path, headers, body.replace(b"PAUSED", b"ACTIVE"))
        with pytest.raises(Exception, match=r"[Dd]igest"):
            _verified(hooked, fresh_sink)(0)

    def test_survives_a_broker_restart_before_delivery(
        self, hooked: SandboxWorld, desk: SimpulClient, people: Any, fresh_sink: Sink
    ) -> None:
        held = consent(hooked, desk, nik_of(people, 32))
        fresh_sink.status = 503  # the receivers are down when the consent is revoked
        citizen(hooked, held.nik, "POST", f"/v1/me/consents/{held.consent_id}/revoke")
        engine = create_db_engine(hooked.state_database_url)
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                rows = [r for r in list_deliveries(engine) if r.consent_id == held.consent_id]
                if len(rows) == 2 and all(r.attempts >= 1 for r in rows):
                    break
                time.sleep(0.05)
            assert {(r.state, r.last_error) for r in rows} == {("PENDING", "HTTP 503")}
            hooked.restart_broker()
            fresh_sink.status = 200
            payloads = fresh_sink.wait_for(2)
            assert {p["type"] for p in payloads} == {"consent.revoke"}
            _verified(hooked, fresh_sink)(0)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                rows = [r for r in list_deliveries(engine) if r.consent_id == held.consent_id]
                if all(r.state == "DELIVERED" for r in rows):
                    break
                time.sleep(0.05)
            assert {r.state for r in rows} == {"DELIVERED"}
        finally:
            engine.dispose()
        # and the revocation itself held across the restart
        assert ktp(desk, held).problem_type == "consent-revoked"
