"""The consent checks of every exchange: the live status and the use count.

Mixed into :class:`~consent.store.ConsentStore`. Both run on every exchange, so they read and
write through :class:`~consent._live.LiveReader` (driver-level SQL) and fall back to the
transactional Core path only to settle a consent found past its expiry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, Engine, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from consent._events import consent_event
from consent._live import LiveReader
from consent._log import TransitionLog
from consent._tables import consent_from_row, consent_uses, consents
from consent.errors import (
    ConsentExhausted,
    ConsentExpired,
    ConsentNotActive,
    ConsentNotFound,
    ConsentNotYetValid,
    ConsentRevoked,
    Error,
)
from consent.models import Consent, ConsentStatus, FetchType

__all__ = ["LIVE_STATUSES", "LiveChecks"]

#: The statuses of a consent that has not ended.
LIVE_STATUSES = (ConsentStatus.ACTIVE, ConsentStatus.PAUSED)


def _judged(consent: Consent, *, used: bool, at: int) -> Consent:
    """``consent`` if it allows an exchange at ``at``; else the error that says why not."""
    if consent.status is not ConsentStatus.ACTIVE:
        raise _inactive(consent)
    if at < consent.nbf:
        raise ConsentNotYetValid()
    if used or (consent.max_uses is not None and consent.use_count >= consent.max_uses):
        raise ConsentExhausted()
    return consent


def _inactive(consent: Consent) -> Error:
    """The error that explains why ``consent`` (not ACTIVE) allows nothing."""
    if consent.status is ConsentStatus.REVOKED:
        return ConsentRevoked()
    if consent.status is ConsentStatus.EXPIRED:
        return ConsentExpired()
    return ConsentNotActive(f"consent is {consent.status.value.lower()}")


class LiveChecks(TransitionLog):
    """The live status and use count of a consent, as every exchange checks them."""

    _engine: Engine
    _clock: Callable[[], int]
    _live: LiveReader

    def require_active(
        self, consent_id: str, *, service: str | None = None, now: int | None = None
    ) -> Consent:
        """The live check on every exchange: the consent exists, is ACTIVE, valid and not used up.

        With ``service``, a ONETIME consent already used for that service is exhausted too.
        A consent found past its ``exp`` is marked EXPIRED on the way.
        """
        at = self._clock() if now is None else now
        if not self._live.available:
            return self._require_active_core(consent_id, service=service, at=at)
        read = self._live.read(consent_id, service)
        if read is None:
            raise ConsentNotFound()
        consent, used = read
        if consent.status in LIVE_STATUSES and at >= consent.exp:
            # Past exp but not yet marked: the transactional path marks it and logs the event.
            return self._require_active_core(consent_id, service=service, at=at)
        used = used and service is not None and consent.fetch_type is FetchType.ONETIME
        return _judged(consent, used=used, at=at)

    def _require_active_core(self, consent_id: str, *, service: str | None, at: int) -> Consent:
        """:meth:`require_active` through SQLAlchemy Core, settling an expired consent."""
        with self._engine.begin() as conn:
            row = self._consent_row(conn, consent_id)
            if row is None:
                raise ConsentNotFound()
            consent = self._settle_consent(conn, consent_from_row(row), at)
            used = (
                service is not None
                and consent.fetch_type is FetchType.ONETIME
                and conn.execute(
                    select(consent_uses.c.service).where(
                        consent_uses.c.consent_id == consent_id, consent_uses.c.service == service
                    )
                ).first()
                is not None
            )
        return _judged(consent, used=used, at=at)

    def record_use(
        self, consent_id: str, *, service: str | None = None, now: int | None = None
    ) -> Consent:
        """Count one use of an ACTIVE consent, atomically refusing one past its limits.

        The count is a conditional UPDATE (``use_count < max_uses``) and a ONETIME consent's
        use of ``service`` an INSERT on a primary key, both in one transaction: of two
        exchanges racing for the last use, exactly one wins and the other is ConsentExhausted.
        """
        at = self._clock() if now is None else now
        if self._live.available:
            try:
                counted = self._live.count_use(consent_id, service, at)
            except self._live.integrity_error as exc:
                raise ConsentExhausted("consent was already used for this service") from exc
            if counted is None:
                self.require_active(consent_id, now=at)  # raises the precise reason
                raise ConsentExhausted()  # it was usable when checked: lost a race
            return counted
        return self._record_use_core(consent_id, service=service, at=at)

    def _record_use_core(self, consent_id: str, *, service: str | None, at: int) -> Consent:
        """:meth:`record_use` through SQLAlchemy Core."""
        c = consents.c
        try:
            with self._engine.begin() as conn:
                counted = conn.execute(
                    update(consents)
                    .where(
                        c.id == consent_id,
                        c.status == ConsentStatus.ACTIVE.value,
                        c.nbf <= at,
                        c.exp > at,
                        (c.max_uses.is_(None)) | (c.use_count < c.max_uses),
                    )
                    .values(use_count=c.use_count + 1)
                ).rowcount
                row = self._consent_row(conn, consent_id) if counted == 1 else None
                if row is not None and row.fetch_type == FetchType.ONETIME.value:
                    if service is None:
                        raise ValueError("a ONETIME consent's use must name the service")
                    conn.execute(
                        insert(consent_uses).values(
                            consent_id=consent_id, service=service, used_at=at
                        )
                    )
        except IntegrityError as exc:
            raise ConsentExhausted("consent was already used for this service") from exc
        if row is None:
            self.require_active(consent_id, now=at)  # raises the precise reason
            raise ConsentExhausted()  # it was usable when checked: lost a race for the last use
        return consent_from_row(row)

    @staticmethod
    def _consent_row(conn: Connection, consent_id: str) -> Row[Any] | None:
        return conn.execute(select(consents).where(consents.c.id == consent_id)).first()

    @staticmethod
    def _settle_consent(conn: Connection, consent: Consent, now: int) -> Consent:
        """Mark a live consent past its ``exp`` EXPIRED; return it as it now stands."""
        if consent.status not in LIVE_STATUSES or now < consent.exp:
            return consent
        changed = conn.execute(
            update(consents)
            .where(consents.c.id == consent.id, consents.c.status == consent.status.value)
            .values(status=ConsentStatus.EXPIRED.value, status_changed_at=now)
        ).rowcount
        if changed == 1:
            consent_event(
                conn,
                consent,
                event="consent.expire",
                to_status=ConsentStatus.EXPIRED.value,
                actor="broker",
                at=consent.exp,
            )
        return replace(consent, status=ConsentStatus.EXPIRED, status_changed_at=now)
