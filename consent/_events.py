"""Writing and reading the transition log (``consent_events``) inside the store's transactions."""

from __future__ import annotations

import uuid
from typing import Final

from sqlalchemy import Connection, insert

from consent._tables import consent_events
from consent.models import Consent, ConsentRequest

__all__ = ["ACTORS", "EVENTS", "consent_event", "request_event"]

#: Every event name the store writes (the audit log's ``event`` field).
EVENTS: Final = frozenset(
    {
        "consent.request",
        "consent.approve",
        "consent.reject",
        "consent.request_expire",
        "consent.pause",
        "consent.resume",
        "consent.revoke",
        "consent.expire",
    }
)
#: Who can cause a transition: the citizen, the consuming client, or the broker (deadlines).
ACTORS: Final = frozenset({"citizen", "client", "broker"})


def _write(conn: Connection, **values: object) -> None:
    if values["event"] not in EVENTS or values["actor"] not in ACTORS:
        raise ValueError("unknown event or actor")  # a programming error, never user input
    values.setdefault("xroad_id", None)
    conn.execute(
        insert(consent_events).values(id=str(uuid.uuid4()), audit_seq=None, dispatched=0, **values)
    )


def request_event(
    conn: Connection,
    request: ConsentRequest,
    *,
    event: str,
    from_status: str | None,
    to_status: str,
    actor: str,
    at: int,
    consent_id: str | None = None,
    xroad_id: str | None = None,
) -> None:
    """Log a request's transition (creation, approval, rejection, deadline)."""
    _write(
        conn,
        event=event,
        target=request.id,
        consent_id=consent_id,
        client_id=request.client_id,
        subject_nik=request.subject_nik,
        purpose_code=request.purpose.code,
        services=[g.service for g in request.grants],
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        at=at,
        xroad_id=xroad_id,
    )


def consent_event(
    conn: Connection, consent: Consent, *, event: str, to_status: str, actor: str, at: int
) -> None:
    """Log a consent's transition from the status ``consent`` had before it."""
    _write(
        conn,
        event=event,
        target=consent.id,
        consent_id=consent.id,
        client_id=consent.client_id,
        subject_nik=consent.subject_nik,
        purpose_code=consent.purpose.code,
        services=[g.service for g in consent.grants],
        from_status=consent.status.value,
        to_status=to_status,
        actor=actor,
        at=at,
    )
