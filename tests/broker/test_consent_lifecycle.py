"""The consent lifecycle through HTTP, in-process: every transition, every refused one,
idempotent repeats, the audit trail of each, receipts, the data tracker and purposes."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from joserfc.jwk import KeySet

import audit
from audit import subject_ref
from broker.sandbox_env import TAX_OFFICE
from consent import verify_receipt
from consent.errors import ReceiptInvalid
from tests.broker import test_app as _app
from tests.broker.test_app import SECRET, Harness, assert_problem, request_body

# The in-process broker of test_app, shared (pytest finds fixtures by module attribute).
harness = _app.harness
niks = _app.niks
schema_set = _app.schema_set
tls = _app.tls

pytestmark = pytest.mark.usefixtures("clean_env")

DAY = 86_400


def shift_clock(h: Harness, monkeypatch: pytest.MonkeyPatch, seconds: int) -> None:
    """Make the consent store see a time ``seconds`` from now."""
    monkeypatch.setattr(h.broker.consents, "_clock", lambda: int(time.time()) + seconds)


async def act(h: Harness, what: str, ident: str, nik: str | None = None) -> httpx.Response:
    """A citizen action: approve/reject a request, pause/resume/revoke a consent."""
    kind = "consent-requests" if what in {"approve", "reject"} else "consents"
    return await h.http.post(f"/v1/me/{kind}/{ident}/{what}", headers=h.citizen(nik))


def events(h: Harness) -> list[str]:
    return [r.event for r in audit.read_records(h.broker.audit_engine)]


class TestRequestLifecycle:
    async def test_pending_to_approved(self, harness: Harness) -> None:
        created = await harness.pending()
        assert created["status"] == "PENDING"
        approved = await act(harness, "approve", created["id"])
        assert approved.status_code == 200
        assert approved.json()["status"] == "ACTIVE"
        assert approved.json()["receipt"]
        listed = await harness.http.get("/v1/me/consent-requests", headers=harness.citizen())
        assert [r["status"] for r in listed.json()] == ["APPROVED"]
        assert events(harness) == ["consent.request", "consent.approve"]

    async def test_pending_to_rejected_and_rejecting_again_is_harmless(
        self, harness: Harness
    ) -> None:
        created = await harness.pending()
        first = await act(harness, "reject", created["id"])
        again = await act(harness, "reject", created["id"])
        assert first.status_code == again.status_code == 200
        assert again.json()["status"] == "REJECTED"
        assert events(harness) == ["consent.request", "consent.reject"]

    async def test_pending_to_expired_after_its_deadline(
        self, harness: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        created = await harness.pending()
        shift_clock(harness, monkeypatch, 7 * DAY)  # the default deadline
        listed = await harness.http.get(
            "/v1/me/consent-requests", params={"status": "EXPIRED"}, headers=harness.citizen()
        )
        assert [r["id"] for r in listed.json()] == [created["id"]]
        assert_problem(
            await act(harness, "approve", created["id"]), 409, "consent-request-not-pending"
        )
        await harness.broker.consent_api.flush()
        assert events(harness) == ["consent.request", "consent.request_expire"]

    async def test_the_sweep_expires_a_request_nobody_reads(
        self, harness: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        created = await harness.pending()
        shift_clock(harness, monkeypatch, 7 * DAY)
        await harness.broker.consent_worker.run_once()
        assert events(harness) == ["consent.request", "consent.request_expire"]
        stored = harness.broker.consents.events(target=created["id"])
        assert [e.to_status for e in stored] == ["PENDING", "EXPIRED"]

    @pytest.mark.parametrize(
        ("first", "then"),
        [
            pytest.param("reject", "approve", id="approve-rejected"),
            pytest.param("approve", "reject", id="reject-approved"),
        ],
    )
    async def test_a_decided_request_cannot_be_decided_otherwise(
        self, harness: Harness, first: str, then: str
    ) -> None:
        created = await harness.pending()
        assert (await act(harness, first, created["id"])).status_code == 200
        assert_problem(await act(harness, then, created["id"]), 409, "consent-request-not-pending")

    @pytest.mark.parametrize("what", ["approve", "reject"])
    async def test_someone_elses_request_is_not_found(self, harness: Harness, what: str) -> None:
        created = await harness.pending()
        response = await act(harness, what, created["id"], nik=harness.other_nik)
        assert_problem(response, 404, "consent-request-not-found")
        assert events(harness) == ["consent.request"]


class TestConsentLifecycle:
    async def test_pause_resume_revoke_each_once_in_the_audit_log(self, harness: Harness) -> None:
        consent = await harness.approved()
        for what, status in (
            ("pause", "PAUSED"),
            ("pause", "PAUSED"),  # idempotent
            ("resume", "ACTIVE"),
            ("resume", "ACTIVE"),
            ("revoke", "REVOKED"),
            ("revoke", "REVOKED"),
        ):
            response = await act(harness, what, consent["id"])
            assert response.status_code == 200, (what, response.text)
            assert response.json()["status"] == status
        assert events(harness) == [
            "consent.request",
            "consent.approve",
            "consent.pause",
            "consent.resume",
            "consent.revoke",
        ]
        records = list(audit.read_records(harness.broker.audit_engine))
        assert {r.subject_ref for r in records} == {subject_ref(harness.nik, SECRET.encode())}
        assert all(r.consent_id == consent["id"] for r in records[1:])

    async def test_a_paused_consent_can_be_revoked(self, harness: Harness) -> None:
        consent = await harness.approved()
        await act(harness, "pause", consent["id"])
        response = await act(harness, "revoke", consent["id"])
        assert response.json()["status"] == "REVOKED"

    async def test_expires_at_exp(self, harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
        consent = await harness.approved()
        shift_clock(harness, monkeypatch, 30 * DAY)  # the default validity
        shown = await harness.http.get(
            f"/v1/me/consents/{consent['id']}", headers=harness.citizen()
        )
        assert shown.json()["status"] == "EXPIRED"
        await harness.broker.consent_worker.run_once()
        assert events(harness)[-1] == "consent.expire"

    async def test_a_second_before_exp_it_is_still_active(
        self, harness: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        consent = await harness.approved()
        shift_clock(harness, monkeypatch, consent["expires_at"] - int(time.time()) - 5)
        shown = await harness.http.get(
            f"/v1/me/consents/{consent['id']}", headers=harness.citizen()
        )
        assert shown.json()["status"] == "ACTIVE"

    @pytest.mark.parametrize(
        ("setup", "what"),
        [
            pytest.param("revoke", "pause", id="pause-revoked"),
            pytest.param("revoke", "resume", id="resume-revoked"),
            pytest.param("expire", "pause", id="pause-expired"),
            pytest.param("expire", "resume", id="resume-expired"),
            pytest.param("expire", "revoke", id="revoke-expired"),
        ],
    )
    async def test_illegal_transitions_are_refused(
        self, harness: Harness, monkeypatch: pytest.MonkeyPatch, setup: str, what: str
    ) -> None:
        consent = await harness.approved()
        if setup == "revoke":
            await act(harness, "revoke", consent["id"])
        else:
            shift_clock(harness, monkeypatch, 31 * DAY)
        before = events(harness)
        body = assert_problem(
            await act(harness, what, consent["id"]), 409, "consent-transition-refused"
        )
        assert harness.nik not in body["detail"]
        assert events(harness) == before  # nothing changed, nothing logged

    @pytest.mark.parametrize("what", ["pause", "resume", "revoke"])
    async def test_someone_elses_consent_is_not_found(self, harness: Harness, what: str) -> None:
        consent = await harness.approved()
        response = await act(harness, what, consent["id"], nik=harness.other_nik)
        assert_problem(response, 403, "consent-not-found")
        mine = await harness.http.get(f"/v1/me/consents/{consent['id']}", headers=harness.citizen())
        assert mine.json()["status"] == "ACTIVE"

    @pytest.mark.parametrize("path", ["", "/receipt"])
    async def test_someone_elses_consent_cannot_be_read(self, harness: Harness, path: str) -> None:
        consent = await harness.approved()
        response = await harness.http.get(
            f"/v1/me/consents/{consent['id']}{path}", headers=harness.citizen(harness.other_nik)
        )
        assert_problem(response, 403, "consent-not-found")

    async def test_list_filtered_by_status(self, harness: Harness) -> None:
        kept = await harness.approved()
        paused = await harness.approved()
        await act(harness, "pause", paused["id"])
        listed = await harness.http.get(
            "/v1/me/consents", params={"status": "PAUSED"}, headers=harness.citizen()
        )
        assert [c["id"] for c in listed.json()] == [paused["id"]]
        everything = await harness.http.get("/v1/me/consents", headers=harness.citizen())
        assert {c["id"] for c in everything.json()} == {kept["id"], paused["id"]}
        bad = await harness.http.get(
            "/v1/me/consents", params={"status": "GONE"}, headers=harness.citizen()
        )
        assert_problem(bad, 400, "bad-request")


def _flip(token: str, index: int) -> str:
    raw = bytearray(token.encode())
    raw[index] = ord("A") if raw[index] != ord("A") else ord("B")
    return raw.decode()


class TestReceipt:
    async def receipt(self, h: Harness) -> tuple[dict[str, Any], str, KeySet]:
        consent = await h.approved()
        response = await h.http.get(f"/v1/me/consents/{consent['id']}/receipt", headers=h.citizen())
        assert response.status_code == 200, response.text
        jwks = (await h.http.get("/.well-known/jwks.json")).json()
        return consent, response.json()["receipt"], KeySet.import_key_set(jwks)

    async def test_verifies_with_the_published_keys(self, harness: Harness) -> None:
        consent, receipt, keys = await self.receipt(harness)
        claims = verify_receipt(receipt, keys)
        assert claims["consentReceiptID"] == consent["id"]
        assert claims["version"] == "KI-CR-v1.1.0"
        assert claims["piiPrincipalId"].endswith(harness.nik[-4:])
        assert harness.nik not in receipt
        assert harness.nik not in str(claims)
        (service,) = claims["services"]
        assert service["purposes"][0]["piiCategory"] == ["nik", "nama", "alamat"]
        assert service["purposes"][0]["legalBasis"].startswith("PP 5/2021")
        assert claims["revocation"]["url"] == f"/v1/me/consents/{consent['id']}/revoke"
        assert claims["validity"]["expiresAt"] == consent["expires_at"]
        assert consent["receipt"] == receipt  # the one handed out on approval

    @pytest.mark.parametrize("where", ["header", "payload", "signature"])
    async def test_one_changed_byte_fails(self, harness: Harness, where: str) -> None:
        _, receipt, keys = await self.receipt(harness)
        header = receipt.split(".")[0]
        index = {"header": 5, "payload": len(header) + 20, "signature": len(receipt) - 10}[where]
        with pytest.raises(ReceiptInvalid):
            verify_receipt(_flip(receipt, index), keys)

    async def test_another_key_does_not_verify_it(self, harness: Harness) -> None:
        _, receipt, _ = await self.receipt(harness)
        other = KeySet.generate_key_set("OKP", "Ed25519", count=1)
        with pytest.raises(ReceiptInvalid):
            verify_receipt(receipt, other)

    async def test_a_consent_token_is_not_a_receipt(self, harness: Harness) -> None:
        created = await harness.pending()
        await act(harness, "approve", created["id"])
        polled = await harness.signed("GET", f"/v1/consent-requests/{created['id']}")
        jwks = (await harness.http.get("/.well-known/jwks.json")).json()
        with pytest.raises(ReceiptInvalid):
            verify_receipt(polled.json()["consent_token"], KeySet.import_key_set(jwks))


class TestAccessLog:
    async def test_own_entries_newest_first_and_paged(self, harness: Harness) -> None:
        consent = await harness.approved()
        await act(harness, "pause", consent["id"])
        await act(harness, "resume", consent["id"])
        first = await harness.http.get(
            "/v1/me/access-log", params={"limit": 2}, headers=harness.citizen()
        )
        assert first.status_code == 200, first.text
        page = first.json()
        assert [e["event"] for e in page["entries"]] == ["consent.resume", "consent.pause"]
        entry = page["entries"][0]
        assert entry["agency"] == "Dinas Penanaman Modal dan PTSP Provinsi DKI Jakarta"
        assert entry["purpose_text"] == "Verifikasi identitas pemohon perizinan berusaha"
        rest = await harness.http.get(
            "/v1/me/access-log",
            params={"limit": 2, "before": page["next_before"]},
            headers=harness.citizen(),
        )
        assert [e["event"] for e in rest.json()["entries"]] == [
            "consent.approve",
            "consent.request",
        ]

    async def test_another_citizen_sees_none_of_it(self, harness: Harness) -> None:
        await harness.approved()
        theirs = await harness.http.get(
            "/v1/me/access-log", headers=harness.citizen(harness.other_nik)
        )
        assert theirs.status_code == 200
        assert theirs.json() == {"entries": [], "next_before": None}

    async def test_requires_a_signed_in_citizen(self, harness: Harness) -> None:
        assert_problem(await harness.http.get("/v1/me/access-log"), 401, "citizen-unauthenticated")

    @pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1000}, {"before": 0}])
    async def test_bad_paging_is_refused(self, harness: Harness, params: dict[str, int]) -> None:
        response = await harness.http.get(
            "/v1/me/access-log", params=params, headers=harness.citizen()
        )
        assert_problem(response, 400, "bad-request")


class TestPurposes:
    async def test_a_purpose_of_another_client_is_refused(self, harness: Harness) -> None:
        response = await harness.ask(request_body(harness.nik, purpose={"code": "pajak-daerah"}))
        assert_problem(response, 403, "purpose-not-allowed")
        assert events(harness) == []

    async def test_the_catalogue_text_and_fetch_type_are_kept(self, harness: Harness) -> None:
        response = await harness.ask(request_body(harness.nik, fetch_type="ONETIME", max_uses=3))
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["fetch_type"], body["max_uses"]) == ("ONETIME", 3)
        assert body["purpose_text"] == "Verifikasi identitas pemohon perizinan berusaha"

    async def test_an_unknown_fetch_type_is_refused(self, harness: Harness) -> None:
        response = await harness.ask(request_body(harness.nik, fetch_type="ALWAYS"))
        assert_problem(response, 400, "consent-request-invalid")

    def test_the_tax_office_may_name_its_own(self, harness: Harness) -> None:
        purpose = harness.broker.registry.require_purpose(TAX_OFFICE, "pajak-daerah")
        assert purpose.legal_basis.startswith("UU 1/2022")
