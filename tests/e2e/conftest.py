"""One sandbox world per test session: two backends and a broker as real processes."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import OKPKey
from sqlalchemy import Engine, select

from adapters.sandbox import generate
from audit import AuditRecord
from audit.store import audit_records, record_from_row
from broker.client import SimpulClient
from broker.db import create_db_engine
from broker.keys import load_private_jwk
from broker.sandbox_env import AKTA, KK, KTP, PERMIT_OFFICE, TAX_OFFICE, SandboxWorld
from consent import ConsentClaims, Grant, Purpose, TokenIssuer
from tests.conftest import DATABASE, PostgresSchema

OFFLINE = "ID/GOV/DUKCAPIL/adminduk/ktp-cadangan"
PURPOSE = {"code": "perizinan-berusaha", "text": "Permohonan izin usaha"}
KTP_FIELDS = ("nama", "tanggal_lahir", "alamat")


def attach_run_database(world: SandboxWorld) -> PostgresSchema | None:
    """On the PostgreSQL pass, give ``world`` a fresh schema (the caller drops it)."""
    if DATABASE != "postgresql":
        return None
    # One schema for consent state and the audit log, as a cluster shares one database.
    schema = PostgresSchema()
    world.database_url = world.external_audit_database_url = schema.create()
    return schema


@contextmanager
def running(world: SandboxWorld, *, nodes: int = 1) -> Iterator[SandboxWorld]:
    """``world`` on this run's database with ``nodes`` brokers; stopped, its schema dropped."""
    schema = attach_run_database(world)
    try:
        world.start(nodes=nodes)
        yield world
    finally:
        try:
            world.stop()
        finally:
            if schema is not None:
                schema.drop()


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxWorld]:
    """Sandbox backends and broker, running; a service whose backend is down is registered too."""
    data_dir: Path = tmp_path_factory.mktemp("world")
    # The down backend's port stays bound, never listening, for the whole session: a
    # connection is refused, and no server of the world can be handed that port.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as down:
        down.bind(("127.0.0.1", 0))
        offline = {
            "id": OFFLINE,
            "schema": "ktp",
            "adapter": "dukcapil",
            "backend": f"http://127.0.0.1:{down.getsockname()[1]}",
            "timeout": 2.0,
            "clients": [PERMIT_OFFICE],
        }
        with running(SandboxWorld.create(data_dir, extra_services=[offline])) as sandbox:
            yield sandbox


@pytest.fixture(scope="session")
def office(world: SandboxWorld) -> Iterator[SimpulClient]:
    """The Jakarta one-stop permit office (has access rights)."""
    with SimpulClient(
        base_url=world.broker_url, client_id=PERMIT_OFFICE, key=world.permit_key
    ) as c:
        yield c


@pytest.fixture(scope="session")
def tax_office(world: SandboxWorld) -> Iterator[SimpulClient]:
    """The regional tax office (registered, but no access rights)."""
    with SimpulClient(base_url=world.broker_url, client_id=TAX_OFFICE, key=world.tax_key) as c:
        yield c


@pytest.fixture(scope="session")
def audit_engine(world: SandboxWorld) -> Iterator[Engine]:
    """A reader on the broker's audit database."""
    engine = create_db_engine(world.audit_database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def broker_key(world: SandboxWorld) -> OKPKey:
    """The broker's own signing key, to mint tokens the broker will find validly signed."""
    return load_private_jwk(world.data_dir / "broker-key.jwk")


@dataclass(frozen=True)
class Granted:
    """A consent the citizen approved, as the office holds it."""

    nik: str
    consent_id: str
    token: str


def grant(
    world: SandboxWorld,
    office: SimpulClient,
    nik: str,
    grants: Sequence[tuple[str, Sequence[str]]] = ((KTP, KTP_FIELDS),),
) -> Granted:
    """Ask, approve as the citizen (through the real API), collect the token."""
    created = office.request_consent(
        subject_nik=nik,
        grants=[{"service": s, "fields": list(f)} for s, f in grants],
        purpose=PURPOSE,
        procedure_ref=f"PB/{uuid.uuid4().hex[:8]}",
    )
    me = {"Authorization": f"Bearer {world.citizen_token(nik)}"}
    approved = httpx.post(
        f"{world.broker_url}/v1/me/consent-requests/{created['id']}/approve", headers=me
    )
    assert approved.status_code == 200, approved.text
    polled = office.consent_request(created["id"])
    assert polled["status"] == "APPROVED"
    return Granted(nik=nik, consent_id=polled["consent_id"], token=polled["consent_token"])


def revoke(world: SandboxWorld, granted: Granted) -> None:
    """Revoke as the citizen."""
    me = {"Authorization": f"Bearer {world.citizen_token(granted.nik)}"}
    revoked = httpx.post(
        f"{world.broker_url}/v1/me/consents/{granted.consent_id}/revoke", headers=me
    )
    assert revoked.status_code == 200, revoked.text


def forge(
    broker_key: OKPKey,
    *,
    sub: str,
    aud: str = PERMIT_OFFICE,
    jkt: str,
    jti: str | None = None,
    grants: Sequence[tuple[str, Sequence[str]]] = ((KTP, KTP_FIELDS),),
    iat_offset: int = 0,
    nbf_offset: int = 0,
    exp_offset: int = 3600,
) -> str:
    """A token signed with the broker's real key, with whatever claims a test needs."""
    now = int(time.time())
    claims = ConsentClaims(
        jti=jti or str(uuid.uuid4()),
        iss="urn:simpul:broker",
        sub=sub,
        aud=aud,
        iat=now + iat_offset,
        nbf=now + nbf_offset,
        exp=now + exp_offset,
        jkt=jkt,
        grants=tuple(Grant(service=s, fields=tuple(f)) for s, f in grants),
        purpose=Purpose(code="perizinan-berusaha", text="Permohonan izin usaha"),
        procedure_ref="PB/forged",
        max_uses=None,
    )
    return TokenIssuer(key=broker_key, issuer="urn:simpul:broker").issue(claims)


def audit_for(engine: Engine, xroad_id: str) -> list[AuditRecord]:
    """Every audit record of one request id, in log order."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_records)
            .where(audit_records.c.xroad_id == xroad_id)
            .order_by(audit_records.c.seq)
        ).all()
    return [record_from_row(row._mapping) for row in rows]


@pytest.fixture(scope="session")
def people() -> Any:
    """The sandbox population (the backends generate the same one)."""
    return generate()


__all__ = [
    "AKTA",
    "KK",
    "KTP",
    "KTP_FIELDS",
    "OFFLINE",
    "TAX_OFFICE",
    "Granted",
    "audit_for",
    "forge",
    "grant",
    "revoke",
]
