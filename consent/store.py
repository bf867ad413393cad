"""The consent store: requests, the citizen's decisions, consents and their live status.

SQLAlchemy Core on a sync Engine. Every state change is a conditional UPDATE whose row count
says whether this caller made it, so two racing decisions cannot both win.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace

from sqlalchemy import Connection, Engine, insert, select, update

from consent._citizen import CitizenMoves, same_subject
from consent._events import request_event
from consent._live import LiveReader
from consent._live_checks import LIVE_STATUSES
from consent._tables import (
    consent_from_row,
    consent_requests,
    consent_values,
    consents,
    install,
    metadata,
    request_from_row,
    request_values,
)
from consent._validation import (
    DEFAULT_REQUEST_TTL_SECONDS,
    MAX_REQUEST_TTL_SECONDS,
    MAX_VALIDITY_SECONDS,
    checked_grants,
    checked_jkt,
    checked_nik,
    checked_positive,
    checked_purpose,
    checked_text,
)
from consent.errors import (
    ConsentNotFound,
    ConsentRequestInvalid,
    ConsentRequestNotFound,
    ConsentRequestNotPending,
)
from consent.models import (
    Consent,
    ConsentEvent,
    ConsentRequest,
    ConsentStatus,
    FetchType,
    RequestStatus,
)
from consent.tokens import Grant, Purpose, TokenIssuer

__all__ = [
    "DEFAULT_REQUEST_TTL_SECONDS",
    "MAX_REQUEST_TTL_SECONDS",
    "MAX_VALIDITY_SECONDS",
    "Consent",
    "ConsentEvent",
    "ConsentRequest",
    "ConsentStatus",
    "ConsentStore",
    "FetchType",
    "RequestStatus",
    "install",
    "metadata",
]


def _unix_now() -> int:
    return int(time.time())


class ConsentStore(CitizenMoves):
    """Consent requests and consents in a database; ``issuer`` signs the consents' tokens.

    Every transition is logged in the same transaction as the change (see
    :class:`~consent._log.TransitionLog` for reading and draining that log).
    """

    def __init__(
        self,
        *,
        engine: Engine,
        issuer: TokenIssuer,
        clock: Callable[[], int] = _unix_now,
    ) -> None:
        self._engine = engine
        self._issuer = issuer
        self._clock = clock
        self._live = LiveReader(engine)

    def close(self) -> None:
        """Close the connection the live checks keep (SQLite); call before disposing of the
        engine. The store keeps working: later checks go through the engine's pool."""
        self._live.close()

    # --- the client's side ---

    def create_request(
        self,
        *,
        client_id: str,
        client_jkt: str,
        subject_nik: str,
        grants: Sequence[Grant],
        purpose: Purpose,
        procedure_ref: str,
        valid_for_seconds: int,
        request_ttl_seconds: int = DEFAULT_REQUEST_TTL_SECONDS,
        max_uses: int | None = None,
        fetch_type: FetchType | str = FetchType.PERIODIC,
        xroad_id: str | None = None,
    ) -> ConsentRequest:
        """Record a PENDING request; raises ConsentRequestInvalid if it is malformed.

        ``xroad_id`` is the client's request id, kept with the logged event.
        """
        valid_for = checked_positive("valid_for_seconds", valid_for_seconds, MAX_VALIDITY_SECONDS)
        ttl = checked_positive("request_ttl_seconds", request_ttl_seconds, MAX_REQUEST_TTL_SECONDS)
        now = self._clock()
        request = ConsentRequest(
            id=str(uuid.uuid4()),
            client_id=checked_text("client_id", client_id, 255),
            client_jkt=checked_jkt(client_jkt),
            subject_nik=checked_nik(subject_nik),
            grants=checked_grants(grants),
            purpose=checked_purpose(purpose),
            procedure_ref=checked_text("procedure_ref", procedure_ref, 255),
            consent_not_before=now,
            consent_expires_at=now + valid_for,
            # deciding after the consent would have ended is pointless, so the deadline is capped
            expires_at=min(now + ttl, now + valid_for),
            max_uses=None if max_uses is None else checked_positive("max_uses", max_uses),
            status=RequestStatus.PENDING,
            created_at=now,
            decided_at=None,
            consent_id=None,
            fetch_type=_fetch_type(fetch_type),
        )
        with self._engine.begin() as conn:
            conn.execute(insert(consent_requests).values(request_values(request)))
            request_event(
                conn,
                request,
                event="consent.request",
                from_status=None,
                to_status=RequestStatus.PENDING.value,
                actor="client",
                at=now,
                xroad_id=xroad_id,
            )
        return request

    def get_request(self, request_id: str, *, client_id: str) -> ConsentRequest:
        """The client's own request (another client's is ConsentRequestNotFound, not denied)."""
        now = self._clock()
        with self._engine.begin() as conn:
            row = conn.execute(
                select(consent_requests).where(
                    consent_requests.c.id == request_id, consent_requests.c.client_id == client_id
                )
            ).first()
            if row is None:
                raise ConsentRequestNotFound()
            return self._settle_request(conn, request_from_row(row), now)

    def get_consent(self, consent_id: str, *, client_id: str) -> Consent:
        """The client's own consent, whatever its status (for handing out its token)."""
        now = self._clock()
        with self._engine.begin() as conn:
            row = self._consent_row(conn, consent_id)
            if row is None or row.client_id != client_id:
                raise ConsentNotFound()
            return self._settle_consent(conn, consent_from_row(row), now)

    def token_for(self, consent: Consent) -> str:
        """The consent's token, re-issued from its stored claims (byte-identical every time)."""
        return self._issuer.issue(consent.claims(self._issuer.issuer))

    # --- the citizen's side ---

    def list_requests(
        self, *, subject_nik: str, status: RequestStatus | str | None = None
    ) -> list[ConsentRequest]:
        """The citizen's requests, newest first, optionally only those in ``status``.

        ``status`` is compared as it stands after deadlines are applied (a PENDING request
        past its deadline is listed as EXPIRED).
        """
        now = self._clock()
        with self._engine.begin() as conn:
            rows = conn.execute(
                select(consent_requests)
                .where(consent_requests.c.subject_nik == subject_nik)
                .order_by(consent_requests.c.created_at.desc(), consent_requests.c.id)
            ).all()
            requests = [self._settle_request(conn, request_from_row(row), now) for row in rows]
        return [r for r in requests if status is None or r.status == status]

    def approve(self, request_id: str, *, subject_nik: str) -> Consent:
        """Approve the citizen's own PENDING request: creates the ACTIVE consent, exactly once.

        Approving an approved request again returns its consent (idempotent); a rejected or
        expired request raises ConsentRequestNotPending.
        """
        now = self._clock()
        with self._engine.begin() as conn:
            request = self._own_request(conn, request_id, subject_nik, now)
            if request.status is RequestStatus.PENDING:
                consent = _consent_for(request, now)
                if self._decide(conn, request, RequestStatus.APPROVED, now, consent.id):
                    conn.execute(insert(consents).values(consent_values(consent)))
                    request_event(
                        conn,
                        request,
                        event="consent.approve",
                        from_status=RequestStatus.PENDING.value,
                        to_status=RequestStatus.APPROVED.value,
                        actor="citizen",
                        at=now,
                        consent_id=consent.id,
                    )
                    return consent
                request = self._own_request(conn, request_id, subject_nik, now)
            if request.status is RequestStatus.APPROVED and request.consent_id is not None:
                row = self._consent_row(conn, request.consent_id)
                if row is not None:
                    return self._settle_consent(conn, consent_from_row(row), now)
        # Outside the transaction: a request found past its deadline stays EXPIRED.
        raise ConsentRequestNotPending(f"consent request is {_status_word(request)}")

    def reject(self, request_id: str, *, subject_nik: str) -> ConsentRequest:
        """Reject the citizen's own PENDING request (rejecting again changes nothing)."""
        now = self._clock()
        with self._engine.begin() as conn:
            request = self._own_request(conn, request_id, subject_nik, now)
            if request.status is RequestStatus.PENDING:
                if self._decide(conn, request, RequestStatus.REJECTED, now, None):
                    request_event(
                        conn,
                        request,
                        event="consent.reject",
                        from_status=RequestStatus.PENDING.value,
                        to_status=RequestStatus.REJECTED.value,
                        actor="citizen",
                        at=now,
                    )
                    return replace(request, status=RequestStatus.REJECTED, decided_at=now)
                request = self._own_request(conn, request_id, subject_nik, now)
            if request.status is RequestStatus.REJECTED:
                return request
        raise ConsentRequestNotPending(f"consent request is {_status_word(request)}")

    def expire_due(self, *, limit: int = 500) -> int:
        """Mark live consents past ``exp`` and PENDING requests past their deadline EXPIRED.

        Not needed for correctness (every read applies deadlines); it makes the stored status
        and the EXPIRED events (and so the notifications) happen without anyone reading.
        Returns how many were marked.
        """
        now = self._clock()
        marked = 0
        with self._engine.begin() as conn:
            rows = conn.execute(
                select(consents)
                .where(
                    consents.c.status.in_([s.value for s in LIVE_STATUSES]), consents.c.exp <= now
                )
                .limit(limit)
            ).all()
            for row in rows:
                before = consent_from_row(row)
                marked += self._settle_consent(conn, before, now) != before
            rows = conn.execute(
                select(consent_requests)
                .where(
                    consent_requests.c.status == RequestStatus.PENDING.value,
                    consent_requests.c.expires_at <= now,
                )
                .limit(limit)
            ).all()
            for row in rows:
                pending = request_from_row(row)
                marked += self._settle_request(conn, pending, now) != pending
        return marked

    # --- internals ---

    def _own_request(
        self, conn: Connection, request_id: str, subject_nik: str, now: int
    ) -> ConsentRequest:
        row = conn.execute(
            select(consent_requests).where(consent_requests.c.id == request_id)
        ).first()
        if row is None or not same_subject(row.subject_nik, subject_nik):
            raise ConsentRequestNotFound()
        return self._settle_request(conn, request_from_row(row), now)

    @staticmethod
    def _settle_request(conn: Connection, request: ConsentRequest, now: int) -> ConsentRequest:
        """Mark a PENDING request past its deadline EXPIRED; return it as it now stands."""
        if request.status is not RequestStatus.PENDING or now < request.expires_at:
            return request
        changed = conn.execute(
            update(consent_requests)
            .where(
                consent_requests.c.id == request.id,
                consent_requests.c.status == RequestStatus.PENDING.value,
            )
            .values(status=RequestStatus.EXPIRED.value, decided_at=now)
        ).rowcount
        if changed == 1:  # whoever marks it writes the event, so it is logged once
            request_event(
                conn,
                request,
                event="consent.request_expire",
                from_status=RequestStatus.PENDING.value,
                to_status=RequestStatus.EXPIRED.value,
                actor="broker",
                at=request.expires_at,
            )
        return replace(request, status=RequestStatus.EXPIRED, decided_at=now)

    @staticmethod
    def _decide(
        conn: Connection,
        request: ConsentRequest,
        status: RequestStatus,
        now: int,
        consent_id: str | None,
    ) -> bool:
        # The WHERE on status and deadline is the lock: of two racing decisions one matches.
        c = consent_requests.c
        result = conn.execute(
            update(consent_requests)
            .where(
                c.id == request.id,
                c.status == RequestStatus.PENDING.value,
                c.expires_at > now,
            )
            .values(status=status.value, decided_at=now, consent_id=consent_id)
        )
        return result.rowcount == 1


def _fetch_type(value: FetchType | str) -> FetchType:
    try:
        return FetchType(value)
    except ValueError:
        raise ConsentRequestInvalid("fetch_type must be ONETIME or PERIODIC") from None


def _status_word(request: ConsentRequest) -> str:
    if request.status is RequestStatus.PENDING:
        return "already decided"  # it was PENDING when read, and lost the race
    return request.status.value.lower()


def _consent_for(request: ConsentRequest, now: int) -> Consent:
    return Consent(
        id=str(uuid.uuid4()),
        request_id=request.id,
        client_id=request.client_id,
        client_jkt=request.client_jkt,
        subject_nik=request.subject_nik,
        grants=request.grants,
        purpose=request.purpose,
        procedure_ref=request.procedure_ref,
        iat=now,
        # consent cannot be valid before it is given; it ends when the request said it would
        nbf=max(now, request.consent_not_before),
        exp=request.consent_expires_at,
        max_uses=request.max_uses,
        use_count=0,
        status=ConsentStatus.ACTIVE,
        status_changed_at=now,
        fetch_type=request.fetch_type,
    )
