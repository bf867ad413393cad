"""Two broker nodes on one database under concurrent signed load.

On the PostgreSQL pass of the suite (``SIMPUL_TEST_DATABASE=postgresql``) the nodes share one
schema, as nodes on several hosts would. On the SQLite pass they are two processes on one host
sharing the world's database files, where an exchange alone in its node commits on the node's
event loop and the other node's commits must wait their turn without it.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from audit import verify_log
from audit.store import audit_records
from broker.client import ExchangeResult, SimpulClient
from broker.db import create_db_engine
from broker.keys import to_private_key
from broker.sandbox_env import KTP, PERMIT_OFFICE, SandboxWorld
from broker.signatures import REQUEST_COMPONENTS_WITHOUT_CONSENT, sign_request
from tests.e2e.conftest import KTP_FIELDS, grant, running

pytestmark = pytest.mark.e2e

EXCHANGES = 2000
THREADS = 16


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxWorld]:
    """Backends and two broker nodes sharing one PostgreSQL schema, or one set of SQLite files."""
    data_dir: Path = tmp_path_factory.mktemp("cluster")
    with running(SandboxWorld.create(data_dir), nodes=2) as world:
        yield world


@pytest.fixture(scope="module")
def cluster_audit(cluster: SandboxWorld) -> Iterator[Engine]:
    """A reader on the shared audit log."""
    engine = create_db_engine(cluster.audit_database_url)
    yield engine
    engine.dispose()


def _exchange(client: SimpulClient, nik: str, token: str) -> tuple[str, ExchangeResult]:
    xroad_id = str(uuid.uuid4())
    response = client.send(
        "POST",
        f"/r1/{KTP}",
        json.dumps({"nik": nik}).encode(),
        extra_headers={"Consent-Token": token},
        xroad_id=xroad_id,
    )
    return xroad_id, ExchangeResult(
        status=response.status_code,
        body=response.json(),
        headers={k.lower(): v for k, v in response.headers.items()},
    )


class TestTwoNodes:
    def test_concurrent_load_keeps_one_gap_free_verifiable_log(
        self, cluster: SandboxWorld, cluster_audit: Engine, people: Any
    ) -> None:
        with SimpulClient(
            base_url=cluster.broker_urls, client_id=PERMIT_OFFICE, key=cluster.permit_key
        ) as office:
            adults = _ktp_holders(people)[:5]
            consents = [grant(cluster, office, nik) for nik in adults]
            # A consent that may be used once, hit from both nodes at once.
            once = _grant_once(cluster, office, adults[0])

            jobs: list[tuple[str, str]] = [
                (c.nik, c.token) for _ in range(EXCHANGES // len(consents)) for c in consents
            ]
            jobs += [(once.nik, once.token)] * 40
            with ThreadPoolExecutor(THREADS) as pool:
                results = list(pool.map(lambda job: _exchange(office, *job), jobs))

        acknowledged = {xid: r for xid, r in results if r.audit_seq is not None}
        assert len(acknowledged) == len(results), "every answer names its audit record"
        periodic = [
            r for (_, token), (_, r) in zip(jobs, results, strict=True) if token != once.token
        ]
        assert all(r.ok for r in periodic), "every exchange on a standing consent was answered"
        once_allowed = [
            r
            for (nik, token), (_, r) in zip(jobs, results, strict=True)
            if token == once.token and r.ok
        ]
        assert len(once_allowed) == 1, "a consent for one use was used exactly once"

        with cluster_audit.connect() as conn:
            rows = conn.execute(
                select(audit_records.c.seq, audit_records.c.xroad_id).where(
                    audit_records.c.event == "exchange"
                )
            ).all()
            total, low, high = conn.execute(
                select(func.count(), func.min(audit_records.c.seq), func.max(audit_records.c.seq))
            ).one()
        per_id = Counter(xid for _, xid in rows)
        assert all(per_id[xid] == 1 for xid in acknowledged), "exactly one record per exchange"
        seq_of = {xid: seq for seq, xid in rows}
        assert all(seq_of[xid] == r.audit_seq for xid, r in acknowledged.items())
        assert (low, high) == (1, total), "sequence numbers have no gaps or duplicates"
        report = verify_log(cluster_audit)
        assert report.ok, report

    def test_one_request_id_sent_to_both_nodes_is_accepted_at_most_once(
        self, cluster: SandboxWorld, people: Any
    ) -> None:
        nik = _ktp_holders(people)[0]
        with SimpulClient(
            base_url=cluster.broker_url, client_id=PERMIT_OFFICE, key=cluster.permit_key
        ) as office:
            mine = grant(cluster, office, nik)
        outcomes: Counter[int] = Counter()
        for _ in range(20):
            xroad_id = str(uuid.uuid4())
            # The same request id, signed once for each node's URL (@target-uri is covered),
            # as a client retrying on another node would send it.
            signed = [
                _presigned(cluster, url, xroad_id, nik, mine.token) for url in cluster.broker_urls
            ]
            barrier = threading.Barrier(len(signed))

            def fire(
                request: tuple[str, dict[str, str], bytes], barrier: threading.Barrier = barrier
            ) -> int:
                url, headers, body = request
                barrier.wait()
                return httpx.post(url, content=body, headers=headers).status_code

            with ThreadPoolExecutor(len(signed)) as pool:
                statuses = list(pool.map(fire, signed))
            assert sorted(statuses) == [200, 409], statuses
            outcomes.update(statuses)
        assert outcomes == Counter({200: 20, 409: 20})


def _ktp_holders(people: Any) -> list[str]:
    """Citizens with a KTP whose backend records are sound (not the sandbox's fault NIKs)."""
    return [p.nik for p in people.people if p.has_ktp and p.nik not in people.faults]


def _grant_once(world: SandboxWorld, office: SimpulClient, nik: str) -> Any:
    from tests.e2e.conftest import Granted

    created = office.send(
        "POST",
        "/v1/consent-requests",
        json.dumps(
            {
                "subject_nik": nik,
                "grants": [{"service": KTP, "fields": list(KTP_FIELDS)}],
                "purpose": {"code": "perizinan-berusaha"},
                "procedure_ref": "PB/once",
                "max_uses": 1,
            }
        ).encode(),
        components=REQUEST_COMPONENTS_WITHOUT_CONSENT,
    ).json()
    me = {"Authorization": f"Bearer {world.citizen_token(nik)}"}
    approved = httpx.post(
        f"{world.broker_url}/v1/me/consent-requests/{created['id']}/approve", headers=me
    )
    assert approved.status_code == 200, approved.text
    polled = office.consent_request(created["id"])
    return Granted(nik=nik, consent_id=polled["consent_id"], token=polled["consent_token"])


def _presigned(
    world: SandboxWorld, node: str, xroad_id: str, nik: str, token: str
) -> tuple[str, dict[str, str], bytes]:
    url = f"{node}/r1/{KTP}"
    body = json.dumps({"nik": nik}).encode()
    headers = {
        "X-Road-Client": PERMIT_OFFICE,
        "X-Road-Id": xroad_id,
        "Consent-Token": token,
        "Content-Type": "application/json",
    }
    signed = sign_request(
        method="POST",
        url=url,
        headers=headers,
        body=body,
        key=to_private_key(world.permit_key),
        key_id=str(world.permit_key.kid),
    )
    return url, signed, body
