"""The citizen's moves on their own consent: pause, resume, revoke; and reading it.

Mixed into :class:`~consent.store.ConsentStore`. Each move is a conditional UPDATE from the
status the citizen saw; if another move won the race, the consent is judged again and the
move retried while it still applies.
"""

from __future__ import annotations

import hmac
from dataclasses import replace

from sqlalchemy import select, update

from consent._events import consent_event
from consent._live_checks import LIVE_STATUSES, LiveChecks
from consent._tables import consent_from_row, consents
from consent.errors import ConsentNotFound, ConsentTransitionRefused
from consent.models import Consent, ConsentStatus

__all__ = ["CitizenMoves", "same_subject"]

# The citizen's moves on a consent: verb -> (target, statuses it may leave, statuses where the
# move is already done and repeating it changes nothing). Anything else is refused.
_MOVES: dict[str, tuple[ConsentStatus, frozenset[ConsentStatus], frozenset[ConsentStatus]]] = {
    "pause": (
        ConsentStatus.PAUSED,
        frozenset({ConsentStatus.ACTIVE}),
        frozenset({ConsentStatus.PAUSED}),
    ),
    "resume": (
        ConsentStatus.ACTIVE,
        frozenset({ConsentStatus.PAUSED}),
        frozenset({ConsentStatus.ACTIVE}),
    ),
    "revoke": (
        ConsentStatus.REVOKED,
        frozenset(LIVE_STATUSES),
        frozenset({ConsentStatus.REVOKED}),
    ),
}
_PAST = {"pause": "paused", "resume": "resumed", "revoke": "revoked"}
_MOVE_ATTEMPTS = 3


def same_subject(a: str, b: str) -> bool:
    """Whether two NIKs are the same, in constant time."""
    return hmac.compare_digest(a.encode(), b.encode())


class CitizenMoves(LiveChecks):
    """What a signed-in citizen does to their own consents."""

    def list_consents(self, *, subject_nik: str) -> list[Consent]:
        """The citizen's consents, newest first."""
        now = self._clock()
        with self._engine.begin() as conn:
            rows = conn.execute(
                select(consents)
                .where(consents.c.subject_nik == subject_nik)
                .order_by(consents.c.iat.desc(), consents.c.id)
            ).all()
            return [self._settle_consent(conn, consent_from_row(row), now) for row in rows]

    def revoke(self, consent_id: str, *, subject_nik: str) -> Consent:
        """Revoke the citizen's own live consent for good (revoking again changes nothing)."""
        return self._change(consent_id, subject_nik, "revoke")

    def pause(self, consent_id: str, *, subject_nik: str) -> Consent:
        """Pause the citizen's own ACTIVE consent (idempotent); an ended one cannot be paused."""
        return self._change(consent_id, subject_nik, "pause")

    def resume(self, consent_id: str, *, subject_nik: str) -> Consent:
        """Make the citizen's own PAUSED consent ACTIVE again (idempotent)."""
        return self._change(consent_id, subject_nik, "resume")

    def citizen_consent(self, consent_id: str, *, subject_nik: str) -> Consent:
        """The citizen's own consent (someone else's is ConsentNotFound)."""
        now = self._clock()
        with self._engine.begin() as conn:
            row = self._consent_row(conn, consent_id)
            if row is None or not same_subject(row.subject_nik, subject_nik):
                raise ConsentNotFound()
            return self._settle_consent(conn, consent_from_row(row), now)

    def _change(self, consent_id: str, subject_nik: str, verb: str) -> Consent:
        """Make the citizen's move ``verb`` on their own consent, or refuse it."""
        target, sources, done = _MOVES[verb]
        now = self._clock()
        with self._engine.begin() as conn:
            row = self._consent_row(conn, consent_id)
            if row is None or not same_subject(row.subject_nik, subject_nik):
                raise ConsentNotFound()
            consent = self._settle_consent(conn, consent_from_row(row), now)
            # A concurrent move (a pause racing this revoke) makes the conditional UPDATE miss:
            # judge the consent anew and try again while the move still applies to it.
            for _ in range(_MOVE_ATTEMPTS):
                if consent.status not in sources:
                    break
                changed = conn.execute(
                    update(consents)
                    .where(consents.c.id == consent.id, consents.c.status == consent.status.value)
                    .values(status=target.value, status_changed_at=now)
                ).rowcount
                if changed == 1:
                    consent_event(
                        conn,
                        consent,
                        event=f"consent.{verb}",
                        to_status=target.value,
                        actor="citizen",
                        at=now,
                    )
                    return replace(consent, status=target, status_changed_at=now)
                row = self._consent_row(conn, consent_id)
                if row is None:  # pragma: no cover - consents are never deleted
                    raise ConsentNotFound()
                consent = consent_from_row(row)
            if consent.status in done:
                return consent
        raise ConsentTransitionRefused(
            f"consent is {consent.status.value.lower()}; it cannot be {_PAST[verb]}"
        )
