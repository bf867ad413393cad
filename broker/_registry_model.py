"""The registry's model: members, subsystems, services, purposes, and the checks on them.

What :mod:`broker.registry` loads; the identifiers' grammar lives here too, so the parser
and the rest of the broker agree on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker.errors import AccessDenied, PurposeNotAllowed, UnknownClient, UnknownService
from broker.keys import jwk_to_public_key

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_TIMEOUT",
    "ROLES",
    "Member",
    "Purpose",
    "Registry",
    "Service",
    "Subsystem",
    "is_client_id",
    "is_id_part",
    "is_purpose_code",
    "is_service_id",
    "shorten",
]

DEFAULT_TIMEOUT = 5.0
MAX_TIMEOUT = 60.0

# One part of an X-Road identifier. Only URL-unreserved characters, starting with a letter or
# digit: a service id is a path in `/r1/{service id}`, so no part may need percent-encoding
# (the signed @target-uri must survive the server's decoding unchanged) or be `.`/`..`.
_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_CLIENT_ID = re.compile(rf"\A{_PART}(?:/{_PART}){{3}}\Z")
_SERVICE_ID = re.compile(rf"\A{_PART}(?:/{_PART}){{4}}\Z")
_PART_ONLY = re.compile(rf"\A{_PART}\Z")
_PURPOSE_CODE = re.compile(r"\A[a-z0-9][a-z0-9._-]{0,63}\Z")


def shorten(value: object, limit: int = 120) -> str:
    """``repr(value)``, cut to ``limit`` characters: untrusted input quoted in an error."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def is_client_id(value: str) -> bool:
    """Whether ``value`` is a subsystem id ``INSTANCE/CLASS/MEMBER/SUBSYSTEM``."""
    return bool(_CLIENT_ID.match(value))


def is_id_part(value: str) -> bool:
    """Whether ``value`` is one part of an identifier (an instance, class or member code)."""
    return bool(_PART_ONLY.match(value))


def is_purpose_code(value: str) -> bool:
    """Whether ``value`` is a purpose code: lower-case letters, digits, ``.``, ``_``, ``-``."""
    return bool(_PURPOSE_CODE.match(value))


def is_service_id(value: str) -> bool:
    """Whether ``value`` is a service id ``INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE``."""
    return bool(_SERVICE_ID.match(value))


#: Roles beyond calling services (which access rights decide): ``auditor`` may read the
#: audit log through the auditor API.
ROLES = frozenset({"auditor"})


@dataclass(frozen=True, slots=True)
class Subsystem:
    """A member's subsystem: a client, a provider or both; ``keys`` maps kid → public JWK."""

    id: str
    keys: Mapping[str, Mapping[str, str]]
    roles: frozenset[str] = frozenset()
    webhook: str | None = None

    @property
    def member_id(self) -> str:
        """``INSTANCE/CLASS/MEMBER`` of the owning member."""
        return self.id.rsplit("/", 1)[0]


@dataclass(frozen=True, slots=True)
class Member:
    """An organisation (``INSTANCE/CLASS/CODE``) and its subsystems."""

    id: str
    member_class: str
    code: str
    name: str
    subsystems: tuple[Subsystem, ...]


@dataclass(frozen=True, slots=True)
class Service:
    """A service a provider subsystem offers, and which clients may call it."""

    id: str
    code: str
    provider: str
    schema: str
    adapter: str
    backend: str
    timeout: float
    clients: frozenset[str]
    description: str = ""


@dataclass(frozen=True, slots=True)
class Purpose:
    """A purpose a consent request can name, in Indonesian and English."""

    code: str
    text_id: str
    text_en: str
    legal_basis: str = ""
    clients: frozenset[str] = frozenset()


class Registry:
    """The validated registry, indexed for the look-ups of every request.

    Attributes: ``instance``; ``members`` (tuple, file order); ``subsystems`` and
    ``services`` (read-only mappings by id); ``purposes`` (tuple, file order).
    """

    def __init__(
        self,
        *,
        instance: str,
        members: Iterable[Member],
        services: Iterable[Service],
        purposes: Iterable[Purpose] = (),
    ) -> None:
        self.instance = instance
        self.members: tuple[Member, ...] = tuple(members)
        self.subsystems: Mapping[str, Subsystem] = MappingProxyType(
            {sub.id: sub for member in self.members for sub in member.subsystems}
        )
        self.services: Mapping[str, Service] = MappingProxyType({s.id: s for s in services})
        self.purposes: tuple[Purpose, ...] = tuple(purposes)
        self._purposes = {p.code: p for p in self.purposes}
        # Converted once here, not per request.
        self._public_keys: dict[tuple[str, str], Ed25519PublicKey] = {
            (sub.id, kid): jwk_to_public_key(jwk)
            for sub in self.subsystems.values()
            for kid, jwk in sub.keys.items()
        }

    def subsystem(self, client_id: str) -> Subsystem:
        """The registered subsystem ``client_id``, or :class:`UnknownClient`."""
        try:
            return self.subsystems[client_id]
        except KeyError:
            raise UnknownClient("the X-Road-Client is not a registered subsystem") from None

    def service(self, service_id: str) -> Service:
        """The registered service ``service_id``, or :class:`UnknownService`."""
        try:
            return self.services[service_id]
        except KeyError:
            raise UnknownService("no such service is registered") from None

    def client_key(self, client_id: str, kid: str) -> Ed25519PublicKey | None:
        """The public key ``kid`` of subsystem ``client_id``; None unless it is that client's."""
        return self._public_keys.get((client_id, kid))

    def is_allowed(self, client_id: str, service_id: str) -> bool:
        """Whether the registry grants ``client_id`` access to ``service_id`` (deny by default)."""
        service = self.services.get(service_id)
        return service is not None and client_id in service.clients

    def require_access(self, client_id: str, service_id: str) -> Service:
        """The service, if ``client_id`` may call it; else UnknownService or AccessDenied."""
        service = self.service(service_id)
        if client_id not in service.clients:
            raise AccessDenied(
                f"client {shorten(client_id)} has no access right to service {service.id}"
            )
        return service

    def purpose(self, code: str) -> Purpose | None:
        """The purpose ``code``, or None."""
        return self._purposes.get(code)

    def require_purpose(self, client_id: str, code: str) -> Purpose:
        """The catalogued purpose ``code``, if ``client_id`` may name it; else PurposeNotAllowed."""
        purpose = self._purposes.get(code)
        if purpose is None or client_id not in purpose.clients:
            raise PurposeNotAllowed(
                f"purpose {shorten(code)} is not in the catalogue for client {shorten(client_id)}"
            )
        return purpose
