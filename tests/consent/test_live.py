"""The driver-level live check decides as the SQLAlchemy Core path does, and reads live data."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

from broker.db import create_db_engine, is_sqlite
from consent.errors import ConsentNotActive, ConsentRevoked
from consent.models import Consent, ConsentRequest, ConsentStatus, FetchType
from consent.store import ConsentStore
from consent.tokens import Grant, Purpose, TokenIssuer
from tests.consent.conftest import CLIENT, DAY, KK, KTP, NIK, T0, Clock

UNKNOWN = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def make_consent(store: ConsentStore, client_jkt: str) -> Callable[..., Consent]:
    """Approve a request from CLIENT about NIK for KTP and KK, valid 30 days."""

    def create(**changes: Any) -> Consent:
        arguments: dict[str, Any] = {
            "client_id": CLIENT,
            "client_jkt": client_jkt,
            "subject_nik": NIK,
            "grants": (Grant(service=KTP, fields=("nik",)), Grant(service=KK, fields=("no_kk",))),
            "purpose": Purpose(code="izin-usaha", text="Izin usaha"),
            "procedure_ref": "PERMIT-1",
            "valid_for_seconds": 30 * DAY,
            **changes,
        }
        request: ConsentRequest = store.create_request(**arguments)
        return store.approve(request.id, subject_nik=NIK)

    return create


def _outcome(call: Callable[[], Consent]) -> Any:
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - the outcome is what is compared
        return type(exc), str(exc)


def _both(store: ConsentStore, consent_id: str, service: str | None, at: int) -> tuple[Any, Any]:
    fast = _outcome(lambda: store.require_active(consent_id, service=service, now=at))
    core = _outcome(lambda: store._require_active_core(consent_id, service=service, at=at))
    return fast, core


def _core_record_use(store: ConsentStore) -> Callable[..., Consent]:
    def count(consent_id: str, *, service: str | None, now: int) -> Consent:
        return store._record_use_core(consent_id, service=service, at=now)

    return count


class TestSameAsCore:
    def test_the_driver_path_is_used(self, store: ConsentStore) -> None:
        assert store._live.available

    @pytest.mark.parametrize("service", [None, KTP, KK])
    @pytest.mark.parametrize(
        "state",
        ["active", "paused", "revoked", "not-yet", "used-up", "onetime", "onetime-used", "unknown"],
    )
    def test_every_state(
        self,
        store: ConsentStore,
        make_consent: Callable[..., Consent],
        state: str,
        service: str | None,
    ) -> None:
        consent = make_consent(
            max_uses=1 if state == "used-up" else None,
            fetch_type=FetchType.ONETIME if state.startswith("onetime") else FetchType.PERIODIC,
        )
        at = T0 + 10
        if state == "paused":
            store.pause(consent.id, subject_nik=NIK)
        if state == "revoked":
            store.revoke(consent.id, subject_nik=NIK)
        if state == "not-yet":
            at = consent.nbf - 1
        if state in ("used-up", "onetime-used"):
            store.record_use(consent.id, service=KTP, now=at)
        consent_id = UNKNOWN if state == "unknown" else consent.id
        fast, core = _both(store, consent_id, service, at)
        assert fast == core

    @pytest.mark.parametrize("service", [None, KTP])
    @pytest.mark.parametrize(
        "state", ["active", "capped", "used-up", "onetime", "onetime-used", "revoked", "unknown"]
    )
    def test_counting_a_use(
        self,
        store: ConsentStore,
        make_consent: Callable[..., Consent],
        state: str,
        service: str | None,
    ) -> None:
        """The driver path and the Core path count (or refuse) alike, on twin consents."""
        outcomes = []
        for count in (store.record_use, _core_record_use(store)):
            consent = make_consent(
                max_uses={"capped": 2, "used-up": 1}.get(state),
                fetch_type=FetchType.ONETIME if state.startswith("onetime") else "PERIODIC",
            )
            if state in ("used-up", "onetime-used"):
                store.record_use(consent.id, service=KTP, now=T0 + 1)
            if state == "revoked":
                store.revoke(consent.id, subject_nik=NIK)
            consent_id = UNKNOWN if state == "unknown" else consent.id
            outcome = _outcome(lambda: count(consent_id, service=service, now=T0 + 2))  # noqa: B023 - called at once
            if isinstance(outcome, Consent):
                outcome = (outcome.use_count, outcome.status, outcome.max_uses)
            uses = store.events(target=consent.id)  # nothing else may have changed
            outcomes.append((outcome, [e.event for e in uses]))
        assert outcomes[0] == outcomes[1]

    def test_expiry_is_marked_and_logged_once(
        self, store: ConsentStore, make_consent: Callable[..., Consent], clock: Clock
    ) -> None:
        consent = make_consent()
        clock.advance(31 * DAY)
        with pytest.raises(Exception, match="expired"):
            store.require_active(consent.id)
        with pytest.raises(Exception, match="expired"):
            store.require_active(consent.id)
        events = [e.event for e in store.events(target=consent.id)]
        assert events.count("consent.expire") == 1
        assert store.list_consents(subject_nik=NIK)[0].status is ConsentStatus.EXPIRED


@pytest.fixture
def second_node(database_url: str, issuer: TokenIssuer, clock: Clock) -> Iterator[ConsentStore]:
    """Another broker process on the same database: its own engine and connection pool."""
    engine = create_db_engine(database_url)
    node = ConsentStore(engine=engine, issuer=issuer, clock=clock)
    yield node
    node.close()
    engine.dispose()


def _failing_write(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE consents SET use_count = 99")
        raise RuntimeError


class TestLive:
    def test_a_revoke_elsewhere_stops_the_next_check(
        self, store: ConsentStore, second_node: ConsentStore, make_consent: Callable[..., Consent]
    ) -> None:
        consent = make_consent()
        assert second_node.require_active(consent.id, service=KTP) == consent  # pool warmed
        store.revoke(consent.id, subject_nik=NIK)
        with pytest.raises(ConsentRevoked):
            second_node.require_active(consent.id, service=KTP)

    def test_a_pause_and_resume_elsewhere_are_seen(
        self, store: ConsentStore, second_node: ConsentStore, make_consent: Callable[..., Consent]
    ) -> None:
        consent = make_consent()
        second_node.require_active(consent.id)
        store.pause(consent.id, subject_nik=NIK)
        with pytest.raises(ConsentNotActive):
            second_node.require_active(consent.id)
        store.resume(consent.id, subject_nik=NIK)
        assert second_node.require_active(consent.id).status is ConsentStatus.ACTIVE

    def test_pooled_connections_come_back_transactional(
        self, store: ConsentStore, engine: Engine, make_consent: Callable[..., Consent]
    ) -> None:
        """Whatever mode the live read used, the next borrower gets a normal transaction."""
        consent = make_consent()
        for _ in range(3):
            store.require_active(consent.id)
        fairy = engine.raw_connection()
        try:
            assert getattr(fairy.driver_connection, "autocommit", False) is False
        finally:
            fairy.close()
        # A write that fails after the consent change rolls the change back.
        with pytest.raises(RuntimeError):
            _failing_write(engine)
        assert store.require_active(consent.id).use_count == 0


@pytest.fixture
def sqlite_only(engine: Engine) -> None:
    if not is_sqlite(engine):
        pytest.skip("SQLite only: on PostgreSQL the live read borrows from the pool")


@pytest.mark.usefixtures("sqlite_only")
class TestOwnConnection:
    """On SQLite the first thread to read keeps a connection of its own, outside the pool."""

    def test_the_first_reader_keeps_one_others_borrow(
        self, store: ConsentStore, engine: Engine, make_consent: Callable[..., Consent]
    ) -> None:
        consent = make_consent()
        checkouts: list[object] = []
        event.listen(engine, "checkout", lambda *_: checkouts.append(None))
        for _ in range(3):
            store.require_active(consent.id, service=KTP)
        assert len(checkouts) == 1  # the connection it keeps, taken once

        def twice() -> None:
            for _ in range(2):
                store.require_active(consent.id, service=KTP)

        worker = threading.Thread(target=twice)
        worker.start()
        worker.join()
        assert len(checkouts) == 3  # another thread borrows for each read, and gives back
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined] # QueuePool
        store.require_active(consent.id, service=KTP)
        assert len(checkouts) == 3  # the first reader still has its own

    def test_a_read_leaves_no_transaction_open(
        self, store: ConsentStore, database_url: str, make_consent: Callable[..., Consent]
    ) -> None:
        """A read transaction left open would stop every WAL checkpoint from completing."""
        consent = make_consent()
        store.require_active(consent.id, service=KTP)
        other = sqlite3.connect(make_url(database_url).database or "")
        try:
            busy, _, _ = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            other.close()
        assert busy == 0

    def test_close_closes_it_and_checks_go_on(
        self, store: ConsentStore, make_consent: Callable[..., Consent]
    ) -> None:
        consent = make_consent()
        store.require_active(consent.id)
        held = store._live._connection
        store.close()
        assert store._live._connection is None
        with pytest.raises(sqlite3.ProgrammingError):
            held.execute("SELECT 1")
        assert store.require_active(consent.id) == consent  # through the pool now
        assert store._live._connection is None

    def test_a_failed_read_starts_again_on_a_new_connection(
        self, store: ConsentStore, make_consent: Callable[..., Consent]
    ) -> None:
        consent = make_consent()
        store.require_active(consent.id)
        broken = store._live._connection
        broken.close()  # as if the connection had failed under the read
        with pytest.raises(sqlite3.ProgrammingError):
            store.require_active(consent.id)
        assert store.require_active(consent.id) == consent
        assert store._live._connection is not None
        assert store._live._connection is not broken

    def test_a_row_read_again_is_not_parsed_again(
        self, store: ConsentStore, make_consent: Callable[..., Consent], clock: Clock
    ) -> None:
        consent = make_consent()
        first = store.require_active(consent.id, service=KTP)
        assert store.require_active(consent.id, service=KTP) is first
        clock.advance(60)
        store.pause(consent.id, subject_nik=NIK)  # a changed row is a new key: never stale
        with pytest.raises(ConsentNotActive):
            store.require_active(consent.id, service=KTP)
        store.resume(consent.id, subject_nik=NIK)
        resumed = store.require_active(consent.id, service=KTP)
        assert resumed is not first
        assert resumed.status_changed_at == first.status_changed_at + 60

    def test_the_parsed_rows_are_bounded(
        self, store: ConsentStore, make_consent: Callable[..., Consent], monkeypatch: Any
    ) -> None:
        monkeypatch.setattr("consent._live._PARSED_ROWS", 2)
        consents = [make_consent(procedure_ref=f"P-{i}") for i in range(5)]
        for consent in consents:
            assert store.require_active(consent.id) == consent
        assert len(store._live._parsed) <= 2
