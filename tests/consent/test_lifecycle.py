"""ONETIME use per service, the expiry sweep, the transition log, and consent receipts."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import pytest
from joserfc.jwk import KeySet, OKPKey
from sqlalchemy import update

from consent import ConsentStore, Grant, ReceiptContext, ReceiptIssuer, verify_receipt
from consent._tables import consents
from consent.errors import ConsentExhausted, ConsentRequestInvalid, ReceiptInvalid
from consent.models import Consent, ConsentRequest, ConsentStatus, FetchType, RequestStatus
from consent.receipts import mask_nik
from tests.consent import test_store as _store_tests
from tests.consent.conftest import DAY, ISSUER, KK, KTP, NIK, Clock, public

# the store tests' fixtures, shared (pytest finds fixtures by module attribute)
consent = _store_tests.consent
make_request = _store_tests.make_request

BOTH = (Grant(service=KTP, fields=("nik", "nama")), Grant(service=KK, fields=("no_kk",)))


@pytest.fixture
def onetime(store: ConsentStore, make_request: Callable[..., ConsentRequest]) -> Consent:
    return store.approve(make_request(grants=BOTH, fetch_type="ONETIME").id, subject_nik=NIK)


class TestOnetime:
    def test_one_use_per_granted_service(self, store: ConsentStore, onetime: Consent) -> None:
        assert onetime.fetch_type is FetchType.ONETIME
        assert store.token_for(onetime)  # the claim is issued too
        store.require_active(onetime.id, service=KTP)
        store.record_use(onetime.id, service=KTP)
        with pytest.raises(ConsentExhausted):
            store.require_active(onetime.id, service=KTP)
        with pytest.raises(ConsentExhausted):
            store.record_use(onetime.id, service=KTP)
        store.require_active(onetime.id, service=KK)
        assert store.record_use(onetime.id, service=KK).use_count == 2

    def test_racing_uses_of_one_service_one_wins(
        self, store: ConsentStore, onetime: Consent
    ) -> None:
        racers = 8
        barrier = threading.Barrier(racers)
        outcomes: list[str] = []

        def race() -> None:
            barrier.wait()
            try:
                store.record_use(onetime.id, service=KTP)
                outcomes.append("won")
            except ConsentExhausted:
                outcomes.append("exhausted")

        threads = [threading.Thread(target=race) for _ in range(racers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["exhausted"] * (racers - 1) + ["won"]
        assert store.get_consent(onetime.id, client_id=onetime.client_id).use_count == 1

    def test_an_unknown_fetch_type_is_refused(
        self, make_request: Callable[..., ConsentRequest]
    ) -> None:
        with pytest.raises(ConsentRequestInvalid, match="fetch_type"):
            make_request(fetch_type="SOMETIMES")


class TestExpirySweep:
    def test_marks_each_once_and_logs_it(
        self,
        store: ConsentStore,
        consent: Consent,
        make_request: Callable[..., ConsentRequest],
        clock: Clock,
    ) -> None:
        pending = make_request(request_ttl_seconds=DAY)
        clock.advance(DAY)
        assert store.expire_due() == 1  # the request; the consent runs 30 days
        clock.advance(30 * DAY)
        assert store.expire_due() == 1
        assert store.expire_due() == 0
        assert store.get_request(pending.id, client_id=pending.client_id).status is (
            RequestStatus.EXPIRED
        )
        names = [e.event for e in store.events()]
        assert names.count("consent.expire") == names.count("consent.request_expire") == 1
        expired = next(e for e in store.events() if e.event == "consent.expire")
        assert (expired.from_status, expired.to_status, expired.actor) == (
            "ACTIVE",
            "EXPIRED",
            "broker",
        )
        assert expired.at == consent.exp  # when it expired, not when it was noticed


class TestTransitionLog:
    def test_unaudited_until_marked(
        self,
        store: ConsentStore,
        consent: Consent,
    ) -> None:
        first, second = store.unaudited()
        assert [first.event, second.event] == ["consent.request", "consent.approve"]
        store.mark_audited(first.id, 7)
        store.mark_audited(first.id, 8)  # once set, kept
        assert [e.id for e in store.unaudited()] == [second.id]
        assert store.events(target=consent.id)[0].audit_seq is None
        assert store.events()[0].audit_seq == 7

    def test_a_claimed_event_goes_to_one_drainer_at_a_time(
        self, store: ConsentStore, consent: Consent
    ) -> None:
        now = 2_000_000_000
        first = store.claim_unaudited(now=now, lease_seconds=60)
        assert [e.event for e, _ in first] == ["consent.request", "consent.approve"]
        assert store.claim_unaudited(now=now + 1) == []  # another node finds nothing to take
        event, claim = first[0]
        store.mark_audited(event.id, 11, claim=claim - 1)  # not the holder: nothing changes
        assert store.events()[0].audit_seq == claim
        store.mark_audited(event.id, 11, claim=claim)
        assert store.events()[0].audit_seq == 11
        # The second claim's holder died: after its lease the event is claimed again.
        again = store.claim_unaudited(now=now + 61)
        assert [e.id for e, _ in again] == [first[1][0].id]

    def test_dispatch_hands_each_event_over_once(
        self,
        store: ConsentStore,
        consent: Consent,
    ) -> None:
        seen: list[str] = []
        assert store.dispatch(lambda _conn, event: seen.append(event.event)) == 2
        store.pause(consent.id, subject_nik=NIK)
        assert store.dispatch(lambda _conn, event: seen.append(event.event)) == 1
        assert seen == ["consent.request", "consent.approve", "consent.pause"]

    def test_a_failing_handler_leaves_the_event_undispatched(
        self,
        store: ConsentStore,
        consent: Consent,
    ) -> None:
        def fail(_conn: object, _event: object) -> None:
            raise RuntimeError("outbox down")

        with pytest.raises(RuntimeError):
            store.dispatch(fail)
        assert store.dispatch(lambda _conn, _event: None) == 2


CONTEXT = ReceiptContext(
    consumer_name="DPMPTSP DKI",
    purpose_text_id="Izin usaha",
    purpose_text_en="Business permit",
    legal_basis="PP 5/2021",
    providers={KTP: "ID/GOV/DUKCAPIL/adminduk"},
    agencies={"ID/GOV/DUKCAPIL/adminduk": "Dukcapil"},
    revoke_url="/v1/me/consents/x/revoke",
)


class TestReceipts:
    def test_signed_deterministic_and_verifiable(
        self,
        signing_key: OKPKey,
        consent: Consent,
    ) -> None:
        issuer = ReceiptIssuer(key=signing_key, issuer=ISSUER)
        receipt = issuer.issue(consent, CONTEXT)
        assert issuer.issue(consent, CONTEXT) == receipt
        claims = verify_receipt(receipt, KeySet([public(signing_key)]))
        assert claims["piiPrincipalId"] == mask_nik(NIK)
        assert NIK not in receipt
        assert claims["services"][0]["piiController"] == "Dukcapil"
        assert claims["fetchType"] == "PERIODIC"

    def test_tampered_or_foreign_key_fails(
        self,
        signing_key: OKPKey,
        consent: Consent,
    ) -> None:
        receipt = ReceiptIssuer(key=signing_key, issuer=ISSUER).issue(consent, CONTEXT)
        head, payload, signature = receipt.split(".")
        tampered = f"{head}.{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}"
        with pytest.raises(ReceiptInvalid):
            verify_receipt(f"{tampered}.{signature}", KeySet([public(signing_key)]))
        other = OKPKey.generate_key("Ed25519", parameters={"kid": signing_key.kid})
        with pytest.raises(ReceiptInvalid):
            verify_receipt(receipt, KeySet([public(other)]))

    def test_a_public_key_cannot_sign(self, signing_key: OKPKey) -> None:
        with pytest.raises(ValueError, match="private"):
            ReceiptIssuer(key=public(signing_key), issuer=ISSUER)

    def test_mask(self) -> None:
        assert mask_nik("3171014501900001") == "************0001"


class TestRacingMoves:
    @pytest.mark.skipif(
        os.environ.get("SIMPUL_TEST_DATABASE", "sqlite") != "postgresql",
        reason="needs READ COMMITTED: SQLite lets no other writer in between a read and a write",
    )
    def test_a_revoke_racing_a_pause_still_revokes(
        self, store: ConsentStore, consent: Consent, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        settle = store._settle_consent

        def settle_then_paused_elsewhere(conn: Any, before: Consent, now: int) -> Consent:
            judged = settle(conn, before, now)
            # Another node's pause commits between this revoke's read and its UPDATE.
            with store._engine.begin() as other:
                other.execute(
                    update(consents).where(consents.c.id == before.id).values(status="PAUSED")
                )
            return judged

        monkeypatch.setattr(store, "_settle_consent", settle_then_paused_elsewhere)
        revoked = store.revoke(consent.id, subject_nik=NIK)
        assert revoked.status is ConsentStatus.REVOKED
        monkeypatch.undo()
        assert store.citizen_consent(consent.id, subject_nik=NIK).status is ConsentStatus.REVOKED
