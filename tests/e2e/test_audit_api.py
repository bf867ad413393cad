"""The auditor API on a running broker: roles, checkpoints, proofs, search, offline export check."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import OKPKey

from audit import merkle
from audit.notes import open_checkpoint
from broker.client import SimpulClient
from broker.keys import public_jwk, to_private_key
from broker.sandbox_env import AUDITOR, SandboxWorld
from broker.signatures import CONSENT_REQUEST_COMPONENTS
from tests.e2e.conftest import KTP, Granted, grant

HUGE = 10**30  # past any sequence number or id a log can hold

pytestmark = pytest.mark.e2e

ORIGIN = "simpul.go.id/audit"


@pytest.fixture(scope="module")
def auditor(world: SandboxWorld) -> Iterator[SimpulClient]:
    """The audit board's subsystem (role "auditor")."""
    assert world.auditor_key is not None
    with SimpulClient(base_url=world.broker_url, client_id=AUDITOR, key=world.auditor_key) as c:
        yield c


def _get(client: SimpulClient, path: str, expect: int = 200) -> Any:
    response = client.send("GET", path, components=CONSENT_REQUEST_COMPONENTS)
    assert response.status_code == expect, response.text
    return response.json() if response.headers["content-type"].endswith("json") else response


def _post(client: SimpulClient, path: str, body: Any = None) -> Any:
    raw = json.dumps(body).encode() if body is not None else b""
    response = client.send("POST", path, raw, components=CONSENT_REQUEST_COMPONENTS)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def exchanged(world: SandboxWorld, office: SimpulClient, people: Any) -> tuple[Granted, int]:
    """One allowed KTP exchange; its audit sequence number."""
    granted = grant(world, office, people.demo_citizen().nik)
    result = office.fetch(KTP, {"nik": granted.nik}, consent_token=granted.token)
    assert result.ok
    assert result.audit_seq is not None
    return granted, result.audit_seq


class TestAccess:
    def test_a_consumer_is_not_an_auditor(self, office: SimpulClient) -> None:
        response = office.send(
            "GET", "/v1/audit/checkpoints/latest", components=CONSENT_REQUEST_COMPONENTS
        )
        assert response.status_code == 403
        assert response.headers["x-road-error"] == "auditor-required"

    def test_unsigned_requests_are_refused(self, world: SandboxWorld) -> None:
        response = httpx.get(f"{world.broker_url}/v1/audit/checkpoints/latest")
        assert response.status_code in (400, 401)
        assert "x-road-error" in response.headers


class TestProofs:
    def test_latest_checkpoint_is_signed_by_the_broker(
        self, auditor: SimpulClient, broker_key: OKPKey, exchanged: tuple[Granted, int]
    ) -> None:
        _, seq = exchanged
        signed = _post(auditor, "/v1/audit/checkpoints")
        assert signed["tree_size"] >= seq
        assert signed["kid"] == broker_key.kid
        opened = open_checkpoint(signed["note"], to_private_key(broker_key).public_key())
        assert opened.origin == ORIGIN
        assert opened.root.hex() == signed["root_hash"]
        assert _get(auditor, "/v1/audit/checkpoints/latest")["tree_size"] >= signed["tree_size"]

    def test_inclusion_proof_of_an_exchange_verifies(
        self, auditor: SimpulClient, broker_key: OKPKey, exchanged: tuple[Granted, int]
    ) -> None:
        _, seq = exchanged
        proof = _get(auditor, f"/v1/audit/proofs/inclusion?seq={seq}")
        opened = open_checkpoint(
            proof["checkpoint"]["note"], to_private_key(broker_key).public_key()
        )
        assert merkle.verify_inclusion(
            bytes.fromhex(proof["leaf_hash"]),
            seq - 1,
            opened.size,
            [bytes.fromhex(h) for h in proof["proof"]],
            opened.root,
        )

    def test_consistency_between_two_checkpoints_verifies(
        self,
        auditor: SimpulClient,
        office: SimpulClient,
        exchanged: tuple[Granted, int],
    ) -> None:
        granted, _ = exchanged
        old = _post(auditor, "/v1/audit/checkpoints")
        assert office.fetch(KTP, {"nik": granted.nik}, consent_token=granted.token).ok
        new = _post(auditor, "/v1/audit/checkpoints")
        assert new["tree_size"] > old["tree_size"]
        body = _get(auditor, f"/v1/audit/proofs/consistency?from={old['id']}&to={new['id']}")
        assert merkle.verify_consistency(
            old["tree_size"],
            new["tree_size"],
            bytes.fromhex(old["root_hash"]),
            bytes.fromhex(new["root_hash"]),
            [bytes.fromhex(h) for h in body["proof"]],
        )

    @pytest.mark.parametrize(
        ("path", "status", "problem"),
        [
            (
                "/v1/audit/proofs/inclusion?seq=999999999&checkpoint=1",
                404,
                "audit-record-not-found",
            ),
            ("/v1/audit/checkpoints/999999", 404, "checkpoint-not-found"),
            ("/v1/audit/export?first_seq=5&last_seq=2", 400, "audit-query-invalid"),
            # Beyond any sequence number the log can hold: refused, not a database error.
            (f"/v1/audit/proofs/inclusion?seq={HUGE}", 400, "bad-request"),
            (f"/v1/audit/checkpoints/{HUGE}", 400, "bad-request"),
            (f"/v1/audit/checkpoints?after_id={HUGE}", 400, "bad-request"),
            (f"/v1/audit/proofs/consistency?from=1&to={HUGE}", 400, "bad-request"),
            (f"/v1/audit/export?first_seq={HUGE}", 400, "bad-request"),
            (f"/v1/audit/records?after_seq={HUGE}", 400, "bad-request"),
        ],
    )
    def test_refusals(
        self,
        auditor: SimpulClient,
        exchanged: tuple[Granted, int],
        path: str,
        status: int,
        problem: str,
    ) -> None:
        response = auditor.send("GET", path, components=CONSENT_REQUEST_COMPONENTS)
        assert response.status_code == status, response.text
        assert response.headers["x-road-error"] == problem


class TestRecords:
    def test_search_by_subject_nik(
        self, auditor: SimpulClient, exchanged: tuple[Granted, int]
    ) -> None:
        granted, seq = exchanged
        page = _post(
            auditor, "/v1/audit/records/search", {"subject_nik": granted.nik, "limit": 1000}
        )
        seqs = [record["seq"] for record in page["records"]]
        assert seq in seqs
        assert all(granted.nik not in json.dumps(record) for record in page["records"])

    def test_filters(self, auditor: SimpulClient, exchanged: tuple[Granted, int]) -> None:
        granted, seq = exchanged
        page = _get(
            auditor,
            f"/v1/audit/records?consent_id={granted.consent_id}&decision=allowed&service={KTP}",
        )
        assert seq in [r["seq"] for r in page["records"]]
        assert {r["consent_id"] for r in page["records"]} == {granted.consent_id}
        none = _get(auditor, f"/v1/audit/records?consent_id={granted.consent_id}&decision=refused")
        assert none["records"] == []


class TestExport:
    def test_export_verifies_offline_with_the_cli(
        self,
        auditor: SimpulClient,
        broker_key: OKPKey,
        exchanged: tuple[Granted, int],
        tmp_path: Path,
    ) -> None:
        _, seq = exchanged
        response = _get(auditor, f"/v1/audit/export?first_seq={max(1, seq - 3)}")
        lines = response.text.splitlines(keepends=True)
        header = json.loads(lines[0])
        export = tmp_path / "export.jsonl"
        export.write_text(response.text)
        note = tmp_path / "checkpoint.txt"
        note.write_text(header["checkpoint"])
        key = tmp_path / "broker.jwk"
        key.write_text(json.dumps(public_jwk(broker_key)))
        cli = [sys.executable, "-m", "broker.cli", "audit", "verify"]
        ok = subprocess.run(
            [*cli, str(export), "--checkpoint", str(note), "--key", str(key)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert ok.returncode == 0, ok.stderr
        assert "audit log OK" in ok.stdout
        # One changed byte in a record: the verifier names it.
        changed = [lines[0], lines[1].replace('"decision":"', '"decision":"x', 1), *lines[2:]]
        export.write_text("".join(changed))
        bad = subprocess.run(
            [*cli, str(export), "--checkpoint", str(note), "--key", str(key)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert bad.returncode == 1
        assert f"BROKEN at seq {header['first_seq']}" in bad.stderr


class TestCitizenProofs:
    def test_access_log_entries_carry_verifiable_proofs(
        self, world: SandboxWorld, broker_key: OKPKey, exchanged: tuple[Granted, int]
    ) -> None:
        granted, seq = exchanged
        me = {"Authorization": f"Bearer {world.citizen_token(granted.nik)}"}
        response = httpx.get(f"{world.broker_url}/v1/me/access-log?proofs=true", headers=me)
        assert response.status_code == 200, response.text
        entries = response.json()["entries"]
        assert seq in [entry["seq"] for entry in entries]
        public = to_private_key(broker_key).public_key()
        for entry in entries:
            proof = entry["proof"]
            opened = open_checkpoint(proof["checkpoint"]["note"], public)
            assert merkle.verify_inclusion(
                bytes.fromhex(proof["leaf_hash"]),
                entry["seq"] - 1,
                opened.size,
                [bytes.fromhex(h) for h in proof["proof"]],
                opened.root,
            )
        plain = httpx.get(f"{world.broker_url}/v1/me/access-log", headers=me).json()
        assert all(entry["proof"] is None for entry in plain["entries"])
        huge = httpx.get(f"{world.broker_url}/v1/me/access-log?before={HUGE}", headers=me)
        assert huge.status_code == 400
        assert huge.headers["x-road-error"] == "bad-request"


def test_a_nik_in_a_url_is_refused(auditor: SimpulClient) -> None:
    response = auditor.send(
        "GET",
        "/v1/audit/records?subject_nik=3171234567890123",
        components=CONSENT_REQUEST_COMPONENTS,
    )
    assert response.status_code == 400
    assert response.headers["x-road-error"] == "audit-query-invalid"
    assert "3171234567890123" not in response.text
