"""Signed consent notifications from a durable outbox.

When a consent is paused, resumed, revoked or expires, the consumer (and each provider of a
granted service) that registered a ``webhook`` gets an RFC 9421-signed ``POST``. The rows are
written in the same transaction that marks the consent's event dispatched (see
:meth:`consent.ConsentStore.dispatch`), so a notification is queued exactly when its cause is
committed, and survives any restart until delivered. Delivery is at least once: receivers
de-duplicate on ``X-Simpul-Notification-Id``. Where a row goes is decided when it is sent, by
the registry the sending broker runs with: a webhook dropped or moved since the row was queued
is never called again, and a row with no webhook listed fails once its attempts are spent.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    select,
    update,
)

from broker._threads import finished_even_if_cancelled
from broker.logs import get_logger
from broker.registry import Registry
from broker.signatures import sign_request
from consent import ConsentEvent

__all__ = [
    "NOTIFICATION_COMPONENTS",
    "NOTIFIED_EVENTS",
    "Delivery",
    "Notifier",
    "Post",
    "fan_out",
    "install",
    "list_deliveries",
    "metadata",
    "notification_outbox",
]

_log = get_logger("simpul.notifications")

#: Sends one notification: ``post(url, body, headers)``, the HTTP status of the answer; raises
#: if none came (the broker's is :class:`broker._webhooks.WebhookClient`).
Post = Callable[[str, bytes, Mapping[str, str]], Awaitable[int]]

#: The consent events that are notified (creation and approval are not: the consumer polls).
NOTIFIED_EVENTS: Final = frozenset(
    {"consent.pause", "consent.resume", "consent.revoke", "consent.expire"}
)
#: What a notification's signature covers.
NOTIFICATION_COMPONENTS: Final = (
    "@method",
    "@target-uri",
    "content-digest",
    "x-simpul-notification-id",
)
STATES: Final = ("PENDING", "DELIVERED", "FAILED")

metadata = MetaData()

notification_outbox = Table(
    "notification_outbox",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("event_id", String(36), nullable=False),
    Column("event", String(64), nullable=False),
    Column("consent_id", String(36), nullable=True),
    Column("recipient", String(255), nullable=False),
    Column("url", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("delivered_at", Float, nullable=True),
    UniqueConstraint("event_id", "recipient", name="uq_notification_event_recipient"),
    Index("ix_notification_due", "state", "next_attempt_at"),
)


def install(engine: Engine) -> None:
    """Create the outbox table if it does not exist yet."""
    metadata.create_all(engine, checkfirst=True)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row as operators see it.

    ``url`` is where it was last sent (before its first attempt, the webhook it was queued
    for); ``last_error`` says why it failed, e.g. that the registry no longer lists the webhook.
    """

    id: str
    event: str
    consent_id: str | None
    recipient: str
    url: str
    state: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    created_at: int
    delivered_at: float | None


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat().replace("+00:00", "Z")


def fan_out(registry: Registry) -> Callable[[Connection, ConsentEvent], None]:
    """The dispatch handler: one outbox row per recipient with a webhook, for notified events."""

    def handle(conn: Connection, event: ConsentEvent) -> None:
        if event.event not in NOTIFIED_EVENTS:
            return
        recipients = [event.client_id]
        for service_id in event.services:
            service = registry.services.get(service_id)
            if service is not None:
                recipients.append(service.provider)
        now = time.time()
        for recipient in dict.fromkeys(recipients):
            subsystem = registry.subsystems.get(recipient)
            if subsystem is None or subsystem.webhook is None:
                continue
            # No NIK, no token: what changed, for whom it matters, and when.
            payload = {
                "id": event.id,
                "type": event.event,
                "consent_id": event.consent_id,
                "status": event.to_status,
                "previous_status": event.from_status,
                "client": event.client_id,
                "services": list(event.services),
                "purpose": event.purpose_code,
                "occurred_at": _iso(event.at),
                "recipient": recipient,
                "role": "consumer" if recipient == event.client_id else "provider",
            }
            conn.execute(
                insert(notification_outbox).values(
                    id=str(uuid.uuid4()),
                    event_id=event.id,
                    event=event.event,
                    consent_id=event.consent_id,
                    recipient=recipient,
                    url=subsystem.webhook,
                    payload=json.dumps(payload, sort_keys=True, separators=(",", ":")),
                    state="PENDING",
                    attempts=0,
                    next_attempt_at=now,
                    last_error=None,
                    created_at=int(now),
                    delivered_at=None,
                )
            )

    return handle


def list_deliveries(engine: Engine, *, state: str | None = None, limit: int = 50) -> list[Delivery]:
    """Outbox rows, newest first, optionally in one ``state``."""
    query = (
        select(notification_outbox)
        .order_by(notification_outbox.c.created_at.desc(), notification_outbox.c.id)
        .limit(limit)
    )
    if state is not None:
        query = query.where(notification_outbox.c.state == state)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [Delivery(**{k: row[k] for k in Delivery.__dataclass_fields__}) for row in rows]


class Notifier:
    """Delivers due outbox rows: signed POSTs (by ``post``), retried with exponential backoff.

    A row is claimed by pushing its ``next_attempt_at`` past a lease with a conditional
    UPDATE, so several broker nodes on one database never send the same row at once.

    Each row goes to the recipient's webhook in ``registry`` at the time of sending, not to the
    URL copied when it was queued: rows wait through retries and restarts, and a registry
    reloaded meanwhile (SIGHUP) is the operator's word on where a member may be called. A
    recipient or webhook not listed is a failed attempt without a call: retried (another
    broker's registry may list it), and failed for good once the attempts are spent.
    """

    def __init__(
        self,
        *,
        engine: Engine,
        registry: Registry,
        key: Ed25519PrivateKey,
        kid: str,
        post: Post,
        backoff_seconds: float = 2.0,
        max_backoff_seconds: float = 600.0,
        max_attempts: int = 12,
        lease_seconds: float = 60.0,
        batch: int = 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._registry = registry
        self._key = key
        self._kid = kid
        self._post = post
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._max_attempts = max_attempts
        self._lease = lease_seconds
        self._batch = batch
        self._clock = clock

    def _claim(self) -> list[dict[str, Any]]:
        now = self._clock()
        t = notification_outbox.c
        claimed: list[dict[str, Any]] = []
        with self._engine.begin() as conn:
            rows = (
                conn.execute(
                    select(notification_outbox)
                    .where(t.state == "PENDING", t.next_attempt_at <= now)
                    .order_by(t.next_attempt_at)
                    .limit(self._batch)
                )
                .mappings()
                .all()
            )
            for row in rows:
                lease = now + self._lease
                won = conn.execute(
                    update(notification_outbox)
                    .where(t.id == row["id"], t.next_attempt_at == row["next_attempt_at"])
                    .values(next_attempt_at=lease)
                ).rowcount
                if won == 1:
                    # The lease is the claim: settling checks it is still ours.
                    claimed.append(dict(row) | {"next_attempt_at": lease})
        return claimed

    async def run_once(self) -> int:
        """Try every due row once; returns how many were delivered.

        Cancelled (the broker stopping), it gives back the rows it claimed and did not settle,
        so the next start, here or on another node, sends them at once rather than after the
        lease. The recipient may then see one twice; the notification id makes that harmless.
        """
        rows = await finished_even_if_cancelled(
            asyncio.to_thread(self._claim),
            # The claim commits on its thread all the same: give it back once it has.
            then=self._release,
        )
        try:
            # A delivery cut short still finishes settling its row (see _deliver), so by the
            # time the gather ends, every row that was settled is settled.
            results = await asyncio.gather(*(self._deliver(row) for row in rows))
        except asyncio.CancelledError:
            self._release(rows)  # on the loop: it is stopping, and this is one short UPDATE
            raise
        return sum(results)

    def _release(self, rows: list[dict[str, Any]]) -> None:
        """Make claimed rows due now, unless settled meanwhile (their lease no longer held).

        Never raises: if the database is unreachable, the leases simply run out as before.
        """
        try:
            self._release_now(rows)
        except Exception:  # noqa: BLE001 - stopping anyway; the lease is the fallback
            _log.warning("notification_release_failed", rows=len(rows), exc_info=True)

    def _release_now(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        now = self._clock()
        t = notification_outbox.c
        with self._engine.begin() as conn:
            for row in rows:
                conn.execute(
                    update(notification_outbox)
                    .where(
                        t.id == row["id"],
                        t.state == "PENDING",
                        t.next_attempt_at == row["next_attempt_at"],
                    )
                    .values(next_attempt_at=now)
                )

    async def _deliver(self, row: dict[str, Any]) -> bool:
        subsystem = self._registry.subsystems.get(row["recipient"])
        if subsystem is None or subsystem.webhook is None:
            reason = (
                "recipient no longer in the registry"
                if subsystem is None
                else "webhook no longer in the registry"
            )
            # An attempt that failed, not a verdict: during a rolling restart (SIGHUP, or one
            # node after another) a broker still on the old registry may claim a row queued
            # for a webhook only the new one lists. So the row backs off and is tried again,
            # by whichever broker claims it next, and fails for good only once its attempts
            # are spent, with this reason; nothing is sent to a URL the registry does not list.
            _log.warning(
                "notification_not_sent", id=row["id"], recipient=row["recipient"], reason=reason
            )
            await finished_even_if_cancelled(asyncio.to_thread(self._settle, row, reason))
            return False
        row = row | {"url": subsystem.webhook}  # settled with the URL it was sent to
        body = row["payload"].encode()
        error: str | None = None
        try:
            headers = sign_request(
                method="POST",
                url=row["url"],
                headers={
                    "Content-Type": "application/json",
                    "X-Simpul-Notification-Id": row["id"],
                    "X-Simpul-Event": row["event"],
                },
                body=body,
                key=self._key,
                key_id=self._kid,
                components=NOTIFICATION_COMPONENTS,
            )
            status = await self._post(row["url"], body, headers)
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except Exception as exc:  # noqa: BLE001 - any failure (a bad URL too) settles the row
            error = type(exc).__name__
        await finished_even_if_cancelled(asyncio.to_thread(self._settle, row, error))
        return error is None

    def _settle(self, row: dict[str, Any], error: str | None) -> None:
        now = self._clock()
        attempts = int(row["attempts"]) + 1
        values: dict[str, Any] = {"attempts": attempts, "last_error": error, "url": row["url"]}
        if error is None:
            values |= {"state": "DELIVERED", "delivered_at": now}
            _log.info("notification_delivered", id=row["id"], recipient=row["recipient"])
        elif attempts >= self._max_attempts:
            values |= {"state": "FAILED"}
            _log.warning("notification_failed", id=row["id"], recipient=row["recipient"])
        else:
            delay = min(self._backoff * 2 ** (attempts - 1), self._max_backoff)
            # jitter, so many failed rows do not all come back in the same instant
            values |= {"next_attempt_at": now + delay * random.uniform(0.8, 1.2)}  # noqa: S311
        self._write(row, values)

    def _write(self, row: dict[str, Any], values: dict[str, Any]) -> bool:
        """Record a claimed row's outcome, if its lease is still ours; whether it was."""
        t = notification_outbox.c
        with self._engine.begin() as conn:
            settled = conn.execute(
                update(notification_outbox)
                .where(
                    t.id == row["id"],
                    t.state == "PENDING",
                    t.next_attempt_at == row["next_attempt_at"],
                )
                .values(**values)
            ).rowcount
        if settled != 1:
            # The lease ran out mid-delivery and another worker claimed the row: its outcome
            # stands (the recipient may see the notification twice; ids make that harmless).
            _log.warning("notification_lease_lost", id=row["id"], recipient=row["recipient"])
        return settled == 1
