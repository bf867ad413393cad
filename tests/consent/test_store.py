"""The consent store: a request's life, a consent's life, and the live check on every exchange."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, inspect

from consent.checks import check_exchange
from consent.errors import (
    ConsentExhausted,
    ConsentExpired,
    ConsentNotActive,
    ConsentNotBound,
    ConsentNotFound,
    ConsentNotYetValid,
    ConsentRequestInvalid,
    ConsentRequestNotFound,
    ConsentRequestNotPending,
    ConsentRevoked,
    ConsentTransitionRefused,
    Error,
)
from consent.models import Consent, ConsentRequest, ConsentStatus, RequestStatus
from consent.store import ConsentStore, install
from consent.tokens import Grant, Purpose, TokenVerifier
from tests.consent.conftest import (
    CLIENT,
    DAY,
    ISSUER,
    KK,
    KTP,
    NIK,
    OTHER_CLIENT,
    OTHER_NIK,
    T0,
    Clock,
)

OTHER_JKT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
PURPOSE = Purpose(code="izin-usaha", text="Penerbitan izin usaha mikro")


@pytest.fixture
def make_request(store: ConsentStore, client_jkt: str) -> Callable[..., ConsentRequest]:
    """Create a request from CLIENT about NIK, valid 30 days; keywords override."""

    def create(**changes: Any) -> ConsentRequest:
        arguments: dict[str, Any] = {
            "client_id": CLIENT,
            "client_jkt": client_jkt,
            "subject_nik": NIK,
            "grants": (Grant(service=KTP, fields=("nik", "nama")),),
            "purpose": PURPOSE,
            "procedure_ref": "PERMIT-2027-000123",
            "valid_for_seconds": 30 * DAY,
        }
        arguments.update(changes)
        return store.create_request(**arguments)

    return create


@pytest.fixture
def consent(store: ConsentStore, make_request: Callable[..., ConsentRequest]) -> Consent:
    """An approved, ACTIVE consent."""
    return store.approve(make_request().id, subject_nik=NIK)


def consent_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM consents").scalar_one())


class TestInstall:
    def test_is_idempotent(self, engine: Engine) -> None:
        install(engine)
        install(engine)
        tables = set(inspect(engine).get_table_names())
        assert {"consent_requests", "consents"} <= tables


class TestCreateRequest:
    def test_pending_with_the_consent_window_fixed(
        self, store: ConsentStore, make_request: Callable[..., ConsentRequest], client_jkt: str
    ) -> None:
        request = make_request(request_ttl_seconds=2 * DAY, max_uses=5)
        assert request.status is RequestStatus.PENDING
        assert (request.created_at, request.expires_at) == (T0, T0 + 2 * DAY)
        assert (request.consent_not_before, request.consent_expires_at) == (T0, T0 + 30 * DAY)
        assert request.consent_id is None
        assert store.get_request(request.id, client_id=CLIENT) == request

    def test_deadline_never_outlives_the_consent(
        self, make_request: Callable[..., ConsentRequest]
    ) -> None:
        request = make_request(valid_for_seconds=3600, request_ttl_seconds=2 * DAY)
        assert request.expires_at == T0 + 3600

    def test_grant_fields_become_tuples(self, make_request: Callable[..., ConsentRequest]) -> None:
        grants = [Grant(service=KK, fields=["no_kk", "anggota"])]  # type: ignore[arg-type]
        assert make_request(grants=grants).grants == (Grant(KK, ("no_kk", "anggota")),)

    @pytest.mark.parametrize(
        "changes",
        [
            pytest.param({"grants": ()}, id="no-grants"),
            pytest.param({"grants": (Grant(KTP, ()),)}, id="no-fields"),
            pytest.param({"grants": (Grant(KTP, ("nik", "nik")),)}, id="duplicate-field"),
            pytest.param({"grants": (Grant(KTP, ("",)),)}, id="empty-field"),
            pytest.param({"grants": (Grant("", ("nik",)),)}, id="empty-service"),
            pytest.param({"grants": (Grant(KTP, ("nik",)),) * 2}, id="duplicate-service"),
            pytest.param({"grants": ({"service": KTP, "fields": ["nik"]},)}, id="grant-not-grant"),
            pytest.param({"valid_for_seconds": 0}, id="validity-zero"),
            pytest.param({"valid_for_seconds": -DAY}, id="validity-negative"),
            pytest.param({"valid_for_seconds": 367 * DAY}, id="validity-too-long"),
            pytest.param({"valid_for_seconds": True}, id="validity-bool"),
            pytest.param({"request_ttl_seconds": 0}, id="ttl-zero"),
            pytest.param({"request_ttl_seconds": 31 * DAY}, id="ttl-too-long"),
            pytest.param({"max_uses": 0}, id="max-uses-zero"),
            pytest.param({"subject_nik": "317101450190000"}, id="nik-short"),
            pytest.param({"subject_nik": "३१७१०१४५०१९०००१"}, id="nik-non-ascii-digits"),
            pytest.param({"client_jkt": "thumbprint"}, id="jkt-malformed"),
            pytest.param({"client_id": ""}, id="client-empty"),
            pytest.param({"purpose": Purpose(code="", text="x")}, id="purpose-code-empty"),
            pytest.param({"purpose": Purpose(code="x", text=" ")}, id="purpose-text-blank"),
            pytest.param({"procedure_ref": ""}, id="procedure-empty"),
        ],
    )
    def test_refused(
        self,
        engine: Engine,
        make_request: Callable[..., ConsentRequest],
        changes: dict[str, Any],
    ) -> None:
        with pytest.raises(ConsentRequestInvalid) as caught:
            make_request(**changes)
        assert NIK not in caught.value.detail
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM consent_requests").scalar() == 0

    def test_repr_does_not_show_the_nik(self, make_request: Callable[..., ConsentRequest]) -> None:
        assert NIK not in repr(make_request())


class TestPoll:
    def test_another_client_cannot_see_it(
        self, store: ConsentStore, make_request: Callable[..., ConsentRequest]
    ) -> None:
        request = make_request()
        with pytest.raises(ConsentRequestNotFound):
            store.get_request(request.id, client_id=OTHER_CLIENT)

    def test_unknown_request(self, store: ConsentStore) -> None:
        with pytest.raises(ConsentRequestNotFound):
            store.get_request("00000000-0000-4000-8000-000000000000", client_id=CLIENT)

    def test_approved_request_leads_to_its_token(
        self,
        store: ConsentStore,
        make_request: Callable[..., ConsentRequest],
        verifier: TokenVerifier,
        clock: Clock,
    ) -> None:
        request = make_request()
        clock.advance(3600)
        given = store.approve(request.id, subject_nik=NIK)
        polled = store.get_request(request.id, client_id=CLIENT)
        assert polled.status is RequestStatus.APPROVED
        assert (polled.consent_id, polled.decided_at) == (given.id, T0 + 3600)
        assert polled.consent_id is not None
        consent = store.get_consent(polled.consent_id, client_id=CLIENT)
        assert consent == given
        claims = verifier.verify(store.token_for(consent), now=clock.now)
        assert (claims.jti, claims.sub, claims.aud) == (given.id, NIK, CLIENT)

    def test_another_client_cannot_fetch_the_consent(
        self, store: ConsentStore, consent: Consent
    ) -> None:
        with pytest.raises(ConsentNotFound):
            store.get_consent(consent.id, client_id=OTHER_CLIENT)


class TestApprove:
    def test_creates_an_active_consent_whose_token_binds_the_client(
        self,
        store: ConsentStore,
        make_request: Callable[..., ConsentRequest],
        verifier: TokenVerifier,
        client_jkt: str,
        clock: Clock,
    ) -> None:
        request = make_request(max_uses=2)
        clock.advance(600)
        consent = store.approve(request.id, subject_nik=NIK)
        assert consent.status is ConsentStatus.ACTIVE
        assert (consent.request_id, consent.iat, consent.nbf) == (request.id, T0 + 600, T0 + 600)
        assert consent.exp == request.consent_expires_at
        assert (consent.grants, consent.purpose, consent.max_uses) == (
            request.grants,
            request.purpose,
            2,
        )

        claims = verifier.verify(store.token_for(consent), now=clock.now)
        assert claims == consent.claims(ISSUER)
        released = check_exchange(
            claims,
            client_id=CLIENT,
            client_jkt=client_jkt,
            service_id=KTP,
            subject_nik=NIK,
            fields=["nama"],
            purpose_code=PURPOSE.code,
        )
        assert released == ("nama",)
        with pytest.raises(ConsentNotBound):
            check_exchange(
                claims,
                client_id=CLIENT,
                client_jkt=OTHER_JKT,
                service_id=KTP,
                subject_nik=NIK,
                fields=None,
            )

    def test_token_is_reissued_identically(self, store: ConsentStore, consent: Consent) -> None:
        first = store.token_for(consent)
        assert store.token_for(store.get_consent(consent.id, client_id=CLIENT)) == first

    def test_twice_returns_the_same_consent_and_creates_one(
        self, store: ConsentStore, engine: Engine, consent: Consent
    ) -> None:
        assert store.approve(consent.request_id, subject_nik=NIK) == consent
        assert consent_rows(engine) == 1
        assert [e.event for e in store.events(target=consent.request_id)] == [
            "consent.request",
            "consent.approve",
        ]

    def test_someone_elses_request_is_not_found(
        self, store: ConsentStore, engine: Engine, make_request: Callable[..., ConsentRequest]
    ) -> None:
        request = make_request()
        with pytest.raises(ConsentRequestNotFound):
            store.approve(request.id, subject_nik=OTHER_NIK)
        with pytest.raises(ConsentRequestNotFound):
            store.reject(request.id, subject_nik=OTHER_NIK)
        assert store.get_request(request.id, client_id=CLIENT).status is RequestStatus.PENDING
        assert consent_rows(engine) == 0

    def test_after_the_deadline_the_request_expires(
        self,
        store: ConsentStore,
        engine: Engine,
        make_request: Callable[..., ConsentRequest],
        clock: Clock,
    ) -> None:
        request = make_request(request_ttl_seconds=DAY)
        clock.advance(DAY)
        with pytest.raises(ConsentRequestNotPending, match="expired"):
            store.approve(request.id, subject_nik=NIK)
        assert consent_rows(engine) == 0
        expired = store.get_request(request.id, client_id=CLIENT)
        assert (expired.status, expired.decided_at) == (RequestStatus.EXPIRED, T0 + DAY)
        # stored, not just computed: the citizen's EXPIRED filter finds it
        assert store.list_requests(subject_nik=NIK, status=RequestStatus.EXPIRED) == [expired]

    def test_a_second_before_the_deadline_is_in_time(
        self, store: ConsentStore, make_request: Callable[..., ConsentRequest], clock: Clock
    ) -> None:
        request = make_request(request_ttl_seconds=DAY)
        clock.advance(DAY - 1)
        assert store.approve(request.id, subject_nik=NIK).status is ConsentStatus.ACTIVE

    def test_concurrent_approvals_create_one_consent(
        self,
        engine: Engine,
        store: ConsentStore,
        make_request: Callable[..., ConsentRequest],
    ) -> None:
        request = make_request()
        racers = 8
        barrier = threading.Barrier(racers)
        won: list[Consent] = []
        lost: list[BaseException] = []

        def race() -> None:
            barrier.wait()
            try:
                won.append(store.approve(request.id, subject_nik=NIK))
            except BaseException as exc:  # noqa: BLE001 - every outcome is asserted below
                lost.append(exc)

        threads = [threading.Thread(target=race) for _ in range(racers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        # approving is idempotent: every racer gets the one consent, none an error
        assert not lost, lost
        assert len({c.id for c in won}) == 1
        assert consent_rows(engine) == 1
        assert store.get_request(request.id, client_id=CLIENT).consent_id == won[0].id
        approvals = [e for e in store.events(target=request.id) if e.event == "consent.approve"]
        assert len(approvals) == 1


class TestReject:
    def test_rejects_once(
        self,
        store: ConsentStore,
        engine: Engine,
        make_request: Callable[..., ConsentRequest],
        clock: Clock,
    ) -> None:
        request = make_request()
        clock.advance(60)
        rejected = store.reject(request.id, subject_nik=NIK)
        assert (rejected.status, rejected.decided_at) == (RequestStatus.REJECTED, T0 + 60)
        assert store.get_request(request.id, client_id=CLIENT) == rejected
        with pytest.raises(ConsentRequestNotPending, match="rejected"):
            store.approve(request.id, subject_nik=NIK)
        assert store.reject(request.id, subject_nik=NIK) == rejected  # idempotent
        assert consent_rows(engine) == 0
        assert [e.event for e in store.events(target=request.id)] == [
            "consent.request",
            "consent.reject",
        ]


class TestLists:
    def test_requests_newest_first_and_filtered(
        self, store: ConsentStore, make_request: Callable[..., ConsentRequest], clock: Clock
    ) -> None:
        first = make_request()
        clock.advance(10)
        second = make_request()
        make_request(subject_nik=OTHER_NIK)
        store.reject(first.id, subject_nik=NIK)
        listed = store.list_requests(subject_nik=NIK)
        assert [r.id for r in listed] == [second.id, first.id]
        pending = store.list_requests(subject_nik=NIK, status="PENDING")
        assert [r.id for r in pending] == [second.id]

    def test_consents_of_the_citizen_only(
        self, store: ConsentStore, make_request: Callable[..., ConsentRequest], clock: Clock
    ) -> None:
        mine = store.approve(make_request().id, subject_nik=NIK)
        clock.advance(10)
        newer = store.approve(make_request().id, subject_nik=NIK)
        store.approve(make_request(subject_nik=OTHER_NIK).id, subject_nik=OTHER_NIK)
        assert [c.id for c in store.list_consents(subject_nik=NIK)] == [newer.id, mine.id]

    def test_consents_listed_past_exp_are_expired(
        self, store: ConsentStore, consent: Consent, clock: Clock
    ) -> None:
        clock.advance(30 * DAY)
        [listed] = store.list_consents(subject_nik=NIK)
        assert listed.status is ConsentStatus.EXPIRED


class TestRequireActive:
    def test_active(self, store: ConsentStore, consent: Consent) -> None:
        assert store.require_active(consent.id) == consent

    def test_revoked_stops_the_next_exchange(self, store: ConsentStore, consent: Consent) -> None:
        revoked = store.revoke(consent.id, subject_nik=NIK)
        assert revoked.status is ConsentStatus.REVOKED
        with pytest.raises(ConsentRevoked):
            store.require_active(consent.id)

    def test_expired_is_refused_and_recorded(
        self, store: ConsentStore, consent: Consent, clock: Clock
    ) -> None:
        with pytest.raises(ConsentExpired):
            store.require_active(consent.id, now=consent.exp)
        # now marked EXPIRED for good, whatever the time
        with pytest.raises(ConsentExpired):
            store.require_active(consent.id, now=consent.iat)
        assert store.list_consents(subject_nik=NIK)[0].status is ConsentStatus.EXPIRED

    def test_not_yet_valid(self, store: ConsentStore, consent: Consent) -> None:
        with pytest.raises(ConsentNotYetValid):
            store.require_active(consent.id, now=consent.nbf - 1)

    def test_unknown(self, store: ConsentStore) -> None:
        with pytest.raises(ConsentNotFound):
            store.require_active("00000000-0000-4000-8000-000000000000")

    @pytest.mark.parametrize(
        ("action", "error", "detail"),
        [
            pytest.param("revoke", ConsentRevoked, "revoked", id="revoked"),
            pytest.param("pause", ConsentNotActive, "paused", id="paused"),
        ],
    )
    def test_citizen_actions_take_effect_at_once(
        self, store: ConsentStore, consent: Consent, action: str, error: type[Error], detail: str
    ) -> None:
        getattr(store, action)(consent.id, subject_nik=NIK)
        with pytest.raises(error, match=detail):
            store.require_active(consent.id)


class TestCitizenActions:
    def test_revoke_is_idempotent(self, store: ConsentStore, consent: Consent) -> None:
        first = store.revoke(consent.id, subject_nik=NIK)
        assert store.revoke(consent.id, subject_nik=NIK) == first

    def test_revoke_a_paused_consent(self, store: ConsentStore, consent: Consent) -> None:
        store.pause(consent.id, subject_nik=NIK)
        assert store.revoke(consent.id, subject_nik=NIK).status is ConsentStatus.REVOKED

    def test_pause_and_resume(self, store: ConsentStore, consent: Consent, clock: Clock) -> None:
        clock.advance(5)
        paused = store.pause(consent.id, subject_nik=NIK)
        assert (paused.status, paused.status_changed_at) == (ConsentStatus.PAUSED, T0 + 5)
        assert store.pause(consent.id, subject_nik=NIK) == paused
        resumed = store.resume(consent.id, subject_nik=NIK)
        assert resumed.status is ConsentStatus.ACTIVE
        assert store.require_active(consent.id) == resumed

    @pytest.mark.parametrize(
        ("action", "error"),
        [
            pytest.param("pause", ConsentTransitionRefused, id="pause-revoked"),
            pytest.param("resume", ConsentTransitionRefused, id="resume-revoked"),
        ],
    )
    def test_a_revoked_consent_stays_revoked(
        self, store: ConsentStore, consent: Consent, action: str, error: type[Error]
    ) -> None:
        store.revoke(consent.id, subject_nik=NIK)
        with pytest.raises(error):
            getattr(store, action)(consent.id, subject_nik=NIK)
        assert store.list_consents(subject_nik=NIK)[0].status is ConsentStatus.REVOKED

    def test_an_expired_consent_cannot_be_resumed(
        self, store: ConsentStore, consent: Consent, clock: Clock
    ) -> None:
        store.pause(consent.id, subject_nik=NIK)
        clock.advance(30 * DAY)
        with pytest.raises(ConsentTransitionRefused, match="expired"):
            store.resume(consent.id, subject_nik=NIK)
        assert [e.event for e in store.events(target=consent.id)][-2:] == [
            "consent.pause",
            "consent.expire",
        ]

    @pytest.mark.parametrize("action", ["revoke", "pause", "resume"])
    @pytest.mark.parametrize(
        ("consent_id", "nik"),
        [
            pytest.param(None, OTHER_NIK, id="someone-elses"),
            pytest.param("00000000-0000-4000-8000-000000000000", NIK, id="unknown"),
        ],
    )
    def test_only_the_citizens_own(
        self,
        store: ConsentStore,
        consent: Consent,
        action: str,
        consent_id: str | None,
        nik: str,
    ) -> None:
        with pytest.raises(ConsentNotFound):
            getattr(store, action)(consent_id or consent.id, subject_nik=nik)
        assert store.require_active(consent.id).status is ConsentStatus.ACTIVE


class TestMaxUses:
    def test_uses_are_counted_and_capped(
        self, store: ConsentStore, make_request: Callable[..., ConsentRequest]
    ) -> None:
        consent = store.approve(make_request(max_uses=2).id, subject_nik=NIK)
        assert store.record_use(consent.id).use_count == 1
        assert store.record_use(consent.id).use_count == 2
        with pytest.raises(ConsentExhausted):
            store.record_use(consent.id)
        with pytest.raises(ConsentExhausted):
            store.require_active(consent.id)

    def test_unlimited_consents_are_counted(self, store: ConsentStore, consent: Consent) -> None:
        for _ in range(3):
            store.record_use(consent.id)
        assert store.require_active(consent.id).use_count == 3

    def test_an_inactive_consent_is_not_used(self, store: ConsentStore, consent: Consent) -> None:
        store.revoke(consent.id, subject_nik=NIK)
        with pytest.raises(ConsentRevoked):
            store.record_use(consent.id)
