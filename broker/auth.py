"""Who is calling: the signed-request check shared by every consumer-facing endpoint."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from broker.errors import BadRequest, UnknownClient
from broker.keys import thumbprint
from broker.registry import Registry
from broker.replay import ReplayCache
from broker.signatures import verify_request

__all__ = ["Caller", "RequestAuthenticator", "claimed_headers"]

_CLIENT_ID = re.compile(r"\A[A-Za-z0-9._-]+/[A-Za-z0-9._-]+/[A-Za-z0-9._-]+/[A-Za-z0-9._-]+\Z")


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated client subsystem and the key it signed with."""

    client_id: str
    key_id: str
    jkt: str
    xroad_id: str


def header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    """The value of header ``name`` (case-insensitive), or None."""
    lowered = name.lower()
    for key, value in headers:
        if key.lower() == lowered:
            return value
    return None


def claimed_headers(headers: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """``(X-Road-Client, X-Road-Id)`` as sent, unverified, for the audit record of a refusal."""
    return (header(headers, "x-road-client") or "")[:255], (header(headers, "x-road-id") or "")[:64]


class RequestAuthenticator:
    """Checks an RFC 9421 signed request: who, with which registered key, never twice."""

    def __init__(self, *, registry: Registry, replay: ReplayCache, max_skew_seconds: int) -> None:
        self._registry = registry
        self._replay = replay
        self._max_skew = max_skew_seconds

    def authenticate(
        self,
        *,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        components: Sequence[str],
    ) -> Caller:
        """Return the caller, or raise the broker error that names why not."""
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

        def resolve(key_id: str) -> object:
            return self._registry.client_key(client_id, key_id)

        verified = verify_request(
            method=method,
            url=url,
            headers=headers,
            body=body,
            resolve_key=resolve,  # type: ignore[arg-type]  # the resolver returns a public key or None
            required=components,
            max_skew_seconds=self._max_skew,
        )
        # Replay is checked only after the signature verifies, so nobody can burn another
        # client's request ids with unsigned traffic.
        self._replay.remember(client_id, str(parsed_id))
        jwk = self._registry.subsystem(client_id).keys.get(verified.key_id)
        if jwk is None:  # pragma: no cover - verify_request resolved this very key
            raise UnknownClient("signing key is not registered for this client")
        return Caller(
            client_id=client_id,
            key_id=verified.key_id,
            jkt=thumbprint(jwk),
            xroad_id=str(parsed_id),
        )
