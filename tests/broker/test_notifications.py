"""The notification outbox: fan-out from consent events, signed delivery, retries, listing."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import Engine
from typer.testing import CliRunner

import consent.store
from broker import notifications
from broker.cli import app as cli
from broker.keys import generate_key, jwks, jwks_resolver, to_private_key
from broker.notifications import (
    NOTIFICATION_COMPONENTS,
    Notifier,
    Post,
    fan_out,
    list_deliveries,
)
from broker.registry import Registry, parse_registry
from broker.signatures import verify_request
from consent import ConsentStore, Grant, Purpose, TokenIssuer

CLIENT = "ID/GOV/DPMPTSP-DKI/perizinan"
KTP = "ID/GOV/DUKCAPIL/adminduk/ktp"
NIK = "3171014501900001"
HOOK = "https://perizinan.example.go.id/simpul/notifications"
PROVIDER_HOOK = "https://dukcapil.example.go.id/hooks"


def _registry(*, provider_hook: str | None = PROVIDER_HOOK, consumer: bool = True) -> Registry:
    """The registry, as queued by or as reloaded later: the provider's webhook moved or dropped
    (``provider_hook``), or the consumer no longer a member (``consumer=False``)."""
    provider: dict[str, object] = {"code": "adminduk"}
    if provider_hook is not None:
        provider["webhook"] = provider_hook
    members: list[dict[str, object]] = [
        {"class": "GOV", "code": "DUKCAPIL", "name": "Dukcapil", "subsystems": [provider]}
    ]
    if consumer:
        members.append(
            {
                "class": "GOV",
                "code": "DPMPTSP-DKI",
                "name": "DPMPTSP",
                "subsystems": [{"code": "perizinan", "webhook": HOOK}],
            }
        )
    return parse_registry(
        {
            "instance": "ID",
            "members": members,
            "services": [
                {
                    "id": KTP,
                    "schema": "ktp",
                    "adapter": "dukcapil",
                    "backend": "http://127.0.0.1:9",
                    "clients": [CLIENT] if consumer else [],
                }
            ],
        },
        schema_codes=("ktp",),
        adapter_names=("dukcapil",),
    )


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    engine: Engine
    store: ConsentStore
    clock: Clock
    key_set: dict[str, list[dict[str, str]]]
    notifier: Notifier
    http: httpx.AsyncClient
    restarted: Callable[[Registry], Notifier]  # the notifier of a broker restarted on a registry

    def consent_id(self) -> str:
        request = self.store.create_request(
            client_id=CLIENT,
            client_jkt="A" * 43,
            subject_nik=NIK,
            grants=(Grant(service=KTP, fields=("nama",)),),
            purpose=Purpose(code="perizinan-berusaha", text="izin"),
            procedure_ref="PB/1",
            valid_for_seconds=3600,
        )
        return self.store.approve(request.id, subject_nik=NIK).id


def _posting(http: httpx.AsyncClient) -> Post:
    """The notifier's ``post`` over httpx, so that respx can stand in for the recipients (the
    broker's own, on the adapters' client, is tested in ``test_webhooks.py``)."""

    async def post(url: str, body: bytes, headers: Mapping[str, str]) -> int:
        return (await http.post(url, content=body, headers=dict(headers))).status_code

    return post


@pytest.fixture
async def world(engine: Engine) -> AsyncIterator[World]:
    consent.store.install(engine)
    notifications.install(engine)
    key = generate_key("simpul-broker-1")
    store = ConsentStore(engine=engine, issuer=TokenIssuer(key=key, issuer="urn:simpul:broker"))
    clock = Clock()
    async with httpx.AsyncClient() as http:

        def notifier(registry: Registry) -> Notifier:
            return Notifier(
                engine=engine,
                registry=registry,
                key=to_private_key(key),
                kid="simpul-broker-1",
                post=_posting(http),
                backoff_seconds=10,
                max_backoff_seconds=40,
                max_attempts=4,
                clock=clock,
            )

        yield World(engine, store, clock, jwks([key]), notifier(_registry()), http, notifier)
    store.close()


def _dispatch(world: World, *, provider_hook: bool = True) -> int:
    registry = _registry(provider_hook=PROVIDER_HOOK if provider_hook else None)
    return world.store.dispatch(fan_out(registry))


def _verify_sent(world: World, sent: httpx.Request, *, url: str) -> None:
    """The notification's signature, checked as its receiver checks it, against ``url``."""
    verify_request(
        method="POST",
        url=url,
        headers=list(sent.headers.items()),
        body=sent.content,
        resolve_key=jwks_resolver(world.key_set),
        required=NOTIFICATION_COMPONENTS,
        now=None,
        max_skew_seconds=300,
    )


class TestFanOut:
    def test_notified_events_only_to_subscribers(self, world: World) -> None:
        consent_id = world.consent_id()
        world.store.pause(consent_id, subject_nik=NIK)
        assert _dispatch(world) == 3  # request, approve, pause
        rows = list_deliveries(world.engine)
        assert {(r.event, r.recipient) for r in rows} == {
            ("consent.pause", CLIENT),
            ("consent.pause", "ID/GOV/DUKCAPIL/adminduk"),
        }
        assert _dispatch(world) == 0  # each event is dispatched once

    def test_a_provider_without_a_webhook_is_skipped(self, world: World) -> None:
        world.store.revoke(world.consent_id(), subject_nik=NIK)
        _dispatch(world, provider_hook=False)
        assert [r.recipient for r in list_deliveries(world.engine)] == [CLIENT]


class TestDelivery:
    async def test_signed_post_without_the_nik(self, world: World) -> None:
        consent_id = world.consent_id()
        world.store.revoke(consent_id, subject_nik=NIK)
        _dispatch(world, provider_hook=False)
        with respx.mock(assert_all_called=True) as mock:
            route = mock.post(HOOK).respond(204)
            assert await world.notifier.run_once() == 1
        sent = route.calls.last.request
        payload = json.loads(sent.content)
        assert payload["type"] == "consent.revoke"
        assert (payload["status"], payload["previous_status"]) == ("REVOKED", "ACTIVE")
        assert payload["consent_id"] == consent_id
        assert NIK not in sent.content.decode()
        _verify_sent(world, sent, url=str(sent.url))
        (row,) = list_deliveries(world.engine)
        assert (row.state, row.attempts) == ("DELIVERED", 1)

    async def test_retries_with_exponential_backoff_then_gives_up(self, world: World) -> None:
        world.store.pause(world.consent_id(), subject_nik=NIK)
        _dispatch(world, provider_hook=False)
        waits = []
        with respx.mock(assert_all_called=True) as mock:
            mock.post(HOOK).respond(503)
            for _ in range(4):
                assert await world.notifier.run_once() == 0
                (row,) = list_deliveries(world.engine)
                waits.append(row.next_attempt_at - world.clock.now)
                assert await world.notifier.run_once() == 0  # not due yet: nothing sent
                world.clock.now = row.next_attempt_at
        (row,) = list_deliveries(world.engine)
        assert (row.state, row.attempts, row.last_error) == ("FAILED", 4, "HTTP 503")
        # 10, 20, 40 (capped at 40), with +-20 % jitter
        for wait, base in zip(waits[:3], (10, 20, 40), strict=True):
            assert 0.8 * base <= wait <= 1.2 * base

    async def test_a_connection_error_is_retried(self, world: World) -> None:
        world.store.pause(world.consent_id(), subject_nik=NIK)
        _dispatch(world, provider_hook=False)
        with respx.mock(assert_all_called=True) as mock:
            mock.post(HOOK).mock(side_effect=httpx.ConnectError("refused"))
            await world.notifier.run_once()
        (row,) = list_deliveries(world.engine)
        assert (row.state, row.last_error) == ("PENDING", "ConnectError")

    async def test_a_claimed_row_is_not_sent_twice(self, world: World) -> None:
        world.store.pause(world.consent_id(), subject_nik=NIK)
        _dispatch(world, provider_hook=False)
        claimed = world.notifier._claim()
        assert len(claimed) == 1
        assert world.notifier._claim() == []  # leased to the first claimant

    async def test_a_lost_lease_leaves_the_new_claimants_outcome(self, world: World) -> None:
        world.store.pause(world.consent_id(), subject_nik=NIK)
        _dispatch(world, provider_hook=False)
        (slow,) = world.notifier._claim()
        world.clock.now += 61  # the first claimant's 60 s lease runs out mid-delivery
        (fast,) = world.notifier._claim()
        world.notifier._settle(fast, None)
        world.notifier._settle(slow, "ReadTimeout")  # late: must not undo the delivery
        (row,) = list_deliveries(world.engine)
        assert (row.state, row.attempts, row.last_error) == ("DELIVERED", 1, None)

    async def test_a_delivery_cut_short_by_a_stop_is_due_again_at_once(self, world: World) -> None:
        world.store.pause(world.consent_id(), subject_nik=NIK)
        _dispatch(world, provider_hook=False)
        sending = asyncio.Event()

        async def hang(request: httpx.Request) -> httpx.Response:
            sending.set()
            await asyncio.Event().wait()  # the receiver never answers
            raise AssertionError("unreachable")

        # A call cut short is never recorded as made, so respx must not insist on one.
        with respx.mock(assert_all_called=False) as mock:
            mock.post(HOOK).mock(side_effect=hang)
            task = asyncio.create_task(world.notifier.run_once())
            await sending.wait()
            task.cancel()  # what ConsentWorker.stop does when the broker stops
            with pytest.raises(asyncio.CancelledError):
                await task
        (row,) = list_deliveries(world.engine)
        # Not leased for another 60 s: the next start (this node or another) sends it now.
        assert (row.state, row.attempts, row.next_attempt_at) == ("PENDING", 0, world.clock.now)
        assert len(world.notifier._claim()) == 1

    async def test_a_stop_while_claiming_gives_the_claim_back(
        self, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        world.store.pause(world.consent_id(), subject_nik=NIK)
        _dispatch(world, provider_hook=False)
        claiming, go_on, claimed = threading.Event(), threading.Event(), threading.Event()
        claim = world.notifier._claim

        def slow_claim() -> list[dict[str, Any]]:
            claiming.set()
            go_on.wait(5)
            try:
                return claim()
            finally:
                claimed.set()

        monkeypatch.setattr(world.notifier, "_claim", slow_claim)
        task = asyncio.create_task(world.notifier.run_once())
        await asyncio.to_thread(claiming.wait, 5)
        task.cancel()  # the stop arrives while the claim's transaction is on its thread
        await asyncio.sleep(0)
        go_on.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.to_thread(claimed.wait, 5)  # committed, whoever waited for it
        (row,) = list_deliveries(world.engine)
        assert (row.state, row.attempts, row.next_attempt_at) == ("PENDING", 0, world.clock.now)

    async def test_a_stop_while_settling_lets_the_settle_finish_first(
        self, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        world.store.pause(world.consent_id(), subject_nik=NIK)
        _dispatch(world, provider_hook=False)
        settling, go_on = threading.Event(), threading.Event()
        settle = world.notifier._settle

        def slow_settle(row: dict[str, Any], error: str | None) -> None:
            settling.set()
            go_on.wait(5)
            settle(row, error)

        monkeypatch.setattr(world.notifier, "_settle", slow_settle)
        with respx.mock(assert_all_called=True) as mock:
            mock.post(HOOK).respond(204)
            task = asyncio.create_task(world.notifier.run_once())
            await asyncio.to_thread(settling.wait, 5)
            task.cancel()  # the stop arrives while the delivery's outcome is being written
            await asyncio.sleep(0)
            go_on.set()
            with pytest.raises(asyncio.CancelledError):
                await task
        # Delivered and recorded so: not given back to be sent a second time.
        (row,) = list_deliveries(world.engine)
        assert (row.state, row.attempts) == ("DELIVERED", 1)

    def test_a_failed_give_back_leaves_the_lease_to_run_out(
        self, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def down(rows: list[dict[str, Any]]) -> None:
            raise OSError("database gone")

        monkeypatch.setattr(world.notifier, "_release_now", down)
        world.notifier._release([{"id": "x"}])  # logged, not raised: the broker is stopping

    @pytest.mark.parametrize("error", [None, "HTTP 503"], ids=["delivered", "failed"])
    async def test_a_row_settled_before_the_stop_is_not_given_back(
        self, world: World, error: str | None
    ) -> None:
        world.store.pause(world.consent_id(), subject_nik=NIK)
        _dispatch(world, provider_hook=False)
        (row,) = world.notifier._claim()
        world.notifier._settle(row, error)
        (settled,) = list_deliveries(world.engine)
        world.notifier._release([row])
        (stored,) = list_deliveries(world.engine)
        # A failed attempt keeps its backoff: the give-back only takes rows still leased.
        assert stored == settled
        assert stored.next_attempt_at != world.clock.now


class TestRegistryAtSendTime:
    """Rows queued under one registry and sent by a broker restarted on another."""

    async def test_a_moved_webhook_is_called_at_its_new_url(self, world: World) -> None:
        world.store.revoke(world.consent_id(), subject_nik=NIK)
        _dispatch(world)
        moved = "https://dukcapil.example.go.id/v2/hooks"
        notifier = world.restarted(_registry(provider_hook=moved))
        with respx.mock(assert_all_called=True) as mock:
            mock.post(HOOK).respond(204)
            route = mock.post(moved).respond(204)
            assert await notifier.run_once() == 2
        sent = route.calls.last.request
        _verify_sent(world, sent, url=moved)  # it covers the URL it went to, not the old one
        rows = {r.recipient: r for r in list_deliveries(world.engine)}
        provider = rows["ID/GOV/DUKCAPIL/adminduk"]
        assert (provider.state, provider.url) == ("DELIVERED", moved)

    @pytest.mark.parametrize(
        ("registry", "recipient", "reason"),
        [
            (
                _registry(provider_hook=None),
                "ID/GOV/DUKCAPIL/adminduk",
                "webhook no longer in the registry",
            ),
            (_registry(consumer=False), CLIENT, "recipient no longer in the registry"),
        ],
        ids=["webhook-dropped", "recipient-gone"],
    )
    async def test_a_recipient_no_longer_listed_is_not_called(
        self, world: World, registry: Registry, recipient: str, reason: str
    ) -> None:
        world.store.revoke(world.consent_id(), subject_nik=NIK)
        _dispatch(world)
        notifier = world.restarted(registry)
        with respx.mock(assert_all_called=False) as mock:
            routes = [mock.post(HOOK).respond(503), mock.post(PROVIDER_HOOK).respond(503)]
            for _ in range(3):
                await notifier.run_once()
                world.clock.now += 100  # past every backoff: both rows are tried again
            row = next(r for r in list_deliveries(world.engine) if r.recipient == recipient)
            # Failed attempts, not a verdict: during a rolling restart another broker's
            # registry may list the webhook. Nothing was sent.
            assert (row.state, row.attempts, row.last_error) == ("PENDING", 3, reason)
            await notifier.run_once()  # the fourth and last attempt (the world's notifiers')
        row = next(r for r in list_deliveries(world.engine) if r.recipient == recipient)
        assert (row.state, row.attempts, row.last_error) == ("FAILED", 4, reason)
        called = [str(call.request.url) for route in routes for call in route.calls]
        assert row.url not in called  # kept: the webhook it was queued for
        assert len(called) == 4  # the other recipient's row, still listed, sent each time

    async def test_a_webhook_another_broker_lists_is_sent_by_it(self, world: World) -> None:
        """A rolling restart: a broker on the old registry claims the row first."""
        world.store.revoke(world.consent_id(), subject_nik=NIK)
        _dispatch(world)
        old = world.restarted(_registry(provider_hook=None))
        with respx.mock(assert_all_called=False) as mock:
            mock.post(HOOK).respond(204)
            await old.run_once()
        world.clock.now += 100
        new = world.restarted(_registry())
        with respx.mock(assert_all_called=True) as mock:
            mock.post(PROVIDER_HOOK).respond(204)
            assert await new.run_once() == 1
        rows = {r.recipient: r for r in list_deliveries(world.engine)}
        assert (rows["ID/GOV/DUKCAPIL/adminduk"].state, rows[CLIENT].state) == (
            "DELIVERED",
            "DELIVERED",
        )


class TestOperators:
    def test_cli_lists_the_outbox(self, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
        world.store.pause(world.consent_id(), subject_nik=NIK)
        _dispatch(world)
        monkeypatch.setenv("SIMPUL_ENVIRONMENT", "dev")
        monkeypatch.setenv(
            "SIMPUL_DATABASE_URL", world.engine.url.render_as_string(hide_password=False)
        )
        result = CliRunner().invoke(cli, ["notifications", "list", "--json"])
        assert result.exit_code == 0, result.output
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        assert {r["state"] for r in rows} == {"PENDING"}
        assert {r["recipient"] for r in rows} == {CLIENT, "ID/GOV/DUKCAPIL/adminduk"}
        none = CliRunner().invoke(cli, ["notifications", "list", "--state", "FAILED"])
        assert none.exit_code == 0
        assert "no notifications" in none.output

    async def test_cli_says_why_a_row_was_not_sent(
        self, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        world.store.pause(world.consent_id(), subject_nik=NIK)
        _dispatch(world)
        notifier = world.restarted(_registry(provider_hook=None))
        with respx.mock(assert_all_called=True) as mock:
            mock.post(HOOK).respond(204)
            assert await notifier.run_once() == 1
        monkeypatch.setenv("SIMPUL_ENVIRONMENT", "dev")
        monkeypatch.setenv(
            "SIMPUL_DATABASE_URL", world.engine.url.render_as_string(hide_password=False)
        )
        result = CliRunner().invoke(cli, ["notifications", "list", "--state", "PENDING"])
        assert result.exit_code == 0, result.output
        (line,) = result.stdout.splitlines()
        assert "ID/GOV/DUKCAPIL/adminduk" in line
        assert line.endswith("webhook no longer in the registry")
