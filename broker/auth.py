"""Who is calling: the signed-request check shared by every consumer-facing endpoint."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker.errors import BadRequest, Replay, ReplayUnavailable, UnknownClient
from broker.keys import thumbprint
from broker.logs import get_logger
from broker.registry import Registry
from broker.replay import ReplayCache
from broker.signatures import verify_request

__all__ = ["Caller", "RequestAuthenticator", "claimed_headers"]

_log = get_logger("simpul.auth")

_CLIENT_ID = re.compile(r"\A[A-Za-z0-9._-]+/[A-Za-z0-9._-]+/[A-Za-z0-9._-]+/[A-Za-z0-9._-]+\Z")


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated client subsystem and the key it signed with."""

    client_id: str
    key_id: str
    jkt: str
    xroad_id: str
    request_hash: str = ""


def header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    """The value of header ``name`` (case-insensitive), or None."""
    lowered = name.lower()
    for key, value in headers:
        if key.lower() == lowered:
            return value
    return None


def claimed_headers(headers: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """``(X-Road-Client, X-Road-Id)`` as sent, unverified, for the audit record of a refusal.

    Only printable ASCII is kept: the id is echoed in the signed response's headers, and a
    byte that cannot be signed there must not turn a refusal into an unsigned 500.
    """
    return (
        _printable(header(headers, "x-road-client"))[:255],
        _printable(header(headers, "x-road-id"))[:64],
    )


def _printable(value: str | None) -> str:
    return value if value and value.isascii() and value.isprintable() else ""


class RequestAuthenticator:
    """Checks an RFC 9421 signed request: who, with which registered key, never twice."""

    def __init__(self, *, registry: Registry, replay: ReplayCache, max_skew_seconds: int) -> None:
        self._registry = registry
        self._replay = replay
        self._max_skew = max_skew_seconds
        self._jkts: dict[tuple[object, object, object], str] = {}

    async def authenticate(
        self,
        *,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        components: Sequence[str],
    ) -> Caller:
        """Return the caller, or raise the broker error that names why not.

        The id goes through the replay cache's group commit, as an exchange's does: its
        commit (a wait for the write lock, an fsync) never runs on the event loop's thread.
        """
        caller = self.verify(
            method=method, url=url, headers=headers, body=body, components=components
        )
        # Replay is checked only after the signature verifies, so nobody can burn another
        # client's request ids with unsigned traffic.
        await self.remembered(caller, self.remember_soon(caller))
        return caller

    def close(self) -> None:
        """Release what the replay cache holds open (see :meth:`ReplayCache.close`)."""
        self._replay.close()

    def remember_soon(self, caller: Caller, *, alone: bool = False) -> asyncio.Future[bool]:
        """Start recording the caller's ``X-Road-Id``; pass the future to :meth:`remembered`.

        ``alone``: nothing else is in flight (see :meth:`ReplayCache.remember_soon`).
        """
        return self._replay.remember_soon(caller.client_id, caller.xroad_id, alone=alone)

    @staticmethod
    async def remembered(caller: Caller, recording: asyncio.Future[bool]) -> None:
        """Wait until the id is committed; raise :class:`Replay` if it was not new, and
        :class:`ReplayUnavailable` if the store failed to record it."""
        try:
            fresh = await recording
        except Exception as exc:
            _log.exception("replay_unavailable", xroad_id=caller.xroad_id)
            raise ReplayUnavailable("the request's X-Road-Id could not be recorded") from exc
        if not fresh:
            raise Replay(f"X-Road-Id {caller.xroad_id} was already used by this client")

    async def durable(self) -> None:
        """Wait until the ids recorded so far are durable (see :meth:`ReplayCache.durable`);
        raise :class:`ReplayUnavailable` if they could not be made so."""
        try:
            await self._replay.durable()
        except Exception as exc:
            _log.exception("replay_unavailable")
            raise ReplayUnavailable("the request's X-Road-Id could not be made durable") from exc

    def verify(
        self,
        *,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        components: Sequence[str],
    ) -> Caller:
        """The signature check alone; the X-Road-Id still has to pass the replay cache
        (:meth:`remember_soon`, or :meth:`authenticate`, which does both)."""
        client_id = header(headers, "x-road-client")
        if not client_id or not _CLIENT_ID.match(client_id):
            raise BadRequest("X-Road-Client must be INSTANCE/CLASS/MEMBER/SUBSYSTEM")
        xroad_id = header(headers, "x-road-id")
        try:
            parsed_id = uuid.UUID(xroad_id or "")
        except ValueError as exc:
            raise BadRequest("X-Road-Id must be a UUID") from exc
        if str(parsed_id) != (xroad_id or "").lower():
            raise BadRequest("X-Road-Id must be a UUID in its canonical form")
        self._registry.subsystem(client_id)  # UnknownClient before any key lookup

        def resolve(key_id: str) -> Ed25519PublicKey | None:
            return self._registry.client_key(client_id, key_id)

        verified = verify_request(
            method=method,
            url=url,
            headers=headers,
            body=body,
            resolve_key=resolve,
            required=components,
            max_skew_seconds=self._max_skew,
        )
        jwk = self._registry.subsystem(client_id).keys.get(verified.key_id)
        if jwk is None:  # pragma: no cover - verify_request resolved this very key
            raise UnknownClient("signing key is not registered for this client")
        # An OKP thumbprint depends on the public key alone, so it is cached by that key.
        public = (jwk.get("kty"), jwk.get("crv"), jwk.get("x"))
        jkt = self._jkts.get(public)
        if jkt is None:
            jkt = self._jkts[public] = thumbprint(jwk)
        return Caller(
            client_id=client_id,
            key_id=verified.key_id,
            jkt=jkt,
            xroad_id=str(parsed_id),
            request_hash=verified.request_hash,
        )
