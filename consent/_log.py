"""Reading and draining the transition log: the store's half that the broker's worker uses."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, select, update

from consent._tables import consent_events, event_from_row
from consent.models import ConsentEvent

__all__ = ["TransitionLog"]


class TransitionLog:
    """Mixed into the store: logged transitions, to the audit log and on to notifications."""

    _engine: Engine

    def events(self, *, target: str | None = None, limit: int = 1000) -> list[ConsentEvent]:
        """Logged transitions in order, optionally of one request or consent."""
        query = select(consent_events).order_by(consent_events.c.seq).limit(limit)
        if target is not None:
            query = query.where(
                (consent_events.c.target == target) | (consent_events.c.consent_id == target)
            )
        with self._engine.connect() as conn:
            return [event_from_row(row) for row in conn.execute(query).all()]

    def claim_unaudited(
        self, *, now: int, lease_seconds: int = 60, limit: int = 100
    ) -> list[tuple[ConsentEvent, int]]:
        """Claim events not yet in the audit log, oldest first, for ``lease_seconds``.

        Every broker node drains the log; the claim stops two of them from writing the same
        transition twice. A claim is a negative ``audit_seq`` (minus its expiry time), set by
        a conditional UPDATE, so only one node wins each event; a claim left by a node that
        died expires and the event is claimed again (at least once, never twice at a time).
        Returns each claimed event with its claim token for :meth:`mark_audited`.
        """
        c = consent_events.c
        claimable = c.audit_seq.is_(None) | ((c.audit_seq < 0) & (c.audit_seq > -now))
        with self._engine.begin() as conn:
            rows = conn.execute(
                select(consent_events).where(claimable).order_by(c.seq).limit(limit)
            ).all()
            claimed: list[tuple[ConsentEvent, int]] = []
            token = -(now + lease_seconds)
            for row in rows:
                previous = (
                    c.audit_seq.is_(None)
                    if row.audit_seq is None
                    else (c.audit_seq == row.audit_seq)
                )
                won = conn.execute(
                    update(consent_events).where(c.seq == row.seq, previous).values(audit_seq=token)
                ).rowcount
                if won == 1:
                    claimed.append((event_from_row(row), token))
        return claimed

    def unaudited(self, *, limit: int = 100) -> list[ConsentEvent]:
        """Events not yet in the audit log (claimed or not), oldest first."""
        query = (
            select(consent_events)
            .where(consent_events.c.audit_seq.is_(None) | (consent_events.c.audit_seq < 0))
            .order_by(consent_events.c.seq)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [event_from_row(row) for row in conn.execute(query).all()]

    def mark_audited(self, event_id: str, audit_seq: int, *, claim: int | None = None) -> None:
        """Record that the event is in the audit log as record ``audit_seq``."""
        c = consent_events.c
        unclaimed = c.audit_seq.is_(None) | (c.audit_seq < 0)
        held = unclaimed if claim is None else (c.audit_seq == claim)
        with self._engine.begin() as conn:
            conn.execute(
                update(consent_events).where(c.id == event_id, held).values(audit_seq=audit_seq)
            )

    def dispatch(
        self, handle: Callable[[Connection, ConsentEvent], None], *, limit: int = 100
    ) -> int:
        """Hand undispatched events to ``handle``, each in the transaction that marks it done.

        ``handle`` writes with the connection it is given (e.g. notification rows in the same
        database), so an event is dispatched exactly when its effects are committed.
        """
        done = 0
        with self._engine.begin() as conn:
            rows = conn.execute(
                select(consent_events)
                .where(consent_events.c.dispatched == 0)
                .order_by(consent_events.c.seq)
                .limit(limit)
            ).all()
            for row in rows:
                claimed = conn.execute(
                    update(consent_events)
                    .where(consent_events.c.seq == row.seq, consent_events.c.dispatched == 0)
                    .values(dispatched=1)
                ).rowcount
                if claimed == 1:
                    handle(conn, event_from_row(row))
                    done += 1
        return done
