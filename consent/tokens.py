"""Consent tokens: the compact JWS (Ed25519) the broker issues and every exchange presents.

A token never changes once issued; whether its consent is still ACTIVE lives in the store.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwa import JWSAlgModel
from joserfc.jwk import KeySet, OKPKey
from joserfc.util import urlsafe_b64decode

from consent._sigcache import DEFAULT_CACHE_SIZE, VerifiedTokenCache
from consent.errors import (
    ConsentAlgorithmRefused,
    ConsentExpired,
    ConsentInvalid,
    ConsentMissing,
    ConsentNotYetValid,
)

__all__ = [
    "ALGORITHMS",
    "FETCH_TYPES",
    "SIGNING_ALGORITHM",
    "TOKEN_TYPE",
    "ConsentClaims",
    "Grant",
    "Purpose",
    "TokenIssuer",
    "TokenVerifier",
    "claims_from_payload",
    "claims_to_payload",
]

#: ONETIME: one successful exchange per granted service; PERIODIC: any number (up to max_uses).
FETCH_TYPES: Final = frozenset({"ONETIME", "PERIODIC"})
#: The algorithm the issuer signs with (RFC 9864 fully-specified name).
SIGNING_ALGORITHM: Final = "Ed25519"
#: Algorithms a token may name; ``EdDSA`` only for interoperability, never issued.
ALGORITHMS: Final = frozenset({"Ed25519", "EdDSA"})
#: The ``typ`` header of a consent token (RFC 8725 explicit typing).
TOKEN_TYPE: Final = "consent+jwt"  # noqa: S105 - a media type, not a secret

_HEADER_PARAMETERS: Final = frozenset({"alg", "kid", "typ"})
_MAX_TOKEN_LENGTH: Final = 16_384
_MAX_HEADER_LENGTH: Final = 512


@dataclass(frozen=True, slots=True)
class Grant:
    """Permission to read ``fields`` (top-level response properties) of one service."""

    service: str
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Purpose:
    """Why the data is wanted: a code stated on each exchange, and a text for people."""

    code: str
    text: str


@dataclass(frozen=True, slots=True)
class ConsentClaims:
    """The claims of a consent token; ``jti`` is the consent id and ``sub`` the citizen's NIK."""

    jti: str
    iss: str
    sub: str = field(repr=False)  # a NIK: kept out of reprs so it cannot slip into logs
    aud: str
    iat: int
    nbf: int
    exp: int
    jkt: str
    grants: tuple[Grant, ...]
    purpose: Purpose
    procedure_ref: str
    max_uses: int | None = None
    fetch_type: str = "PERIODIC"

    def grant_for(self, service: str) -> Grant | None:
        """The grant for ``service``, or None if the consent grants nothing for it."""
        return next((grant for grant in self.grants if grant.service == service), None)


class _VerifyRegistry(jws.JWSRegistry):
    # joserfc's generic "EdDSA" model also accepts Ed448 keys and warns on every use (RFC 9864
    # deprecates the name). For an Ed25519 key both names denote the same signature, so both
    # map to the curve-pinned Ed25519 model.
    algorithms: dict[str, JWSAlgModel] = dict.fromkeys(
        ALGORITHMS, jws.JWSRegistry.algorithms[SIGNING_ALGORITHM]
    )
    max_header_length = _MAX_HEADER_LENGTH
    max_payload_length = _MAX_TOKEN_LENGTH


_VERIFY_REGISTRY: Final = _VerifyRegistry(algorithms=sorted(ALGORITHMS))
_SIGN_REGISTRY: Final = jws.JWSRegistry(algorithms=[SIGNING_ALGORITHM])


def _is_ed25519(key: object) -> bool:
    return isinstance(key, OKPKey) and key.curve_name == "Ed25519"


class TokenIssuer:
    """Signs consent tokens with the broker's Ed25519 key.

    Ed25519 signatures are deterministic and the payload is serialised canonically, so issuing
    the same claims again yields the same token byte for byte: the store keeps claims, not tokens.
    """

    def __init__(self, *, key: OKPKey, issuer: str) -> None:
        if not _is_ed25519(key) or not key.is_private:
            raise ValueError("the consent token issuer needs a private Ed25519 key")
        if not issuer:
            raise ValueError("issuer must not be empty")
        key.ensure_kid()
        self._key = key
        self.issuer = issuer
        self.kid: str = key.kid or ""

    def issue(self, claims: ConsentClaims) -> str:
        """Sign ``claims`` as a compact JWS; refuses claims that a verifier would not accept."""
        if claims.iss != self.issuer:
            raise ValueError("claims name another issuer")
        payload = claims_to_payload(claims)
        try:
            claims_from_payload(payload)
        except ConsentInvalid as exc:
            raise ValueError(f"claims cannot be issued: {exc.detail}") from exc
        header = {"alg": SIGNING_ALGORITHM, "kid": self.kid, "typ": TOKEN_TYPE}
        body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return jws.serialize_compact(header, body, self._key, registry=_SIGN_REGISTRY)


class TokenVerifier:
    """Checks a consent token and returns its claims, or raises the one error that explains why not.

    The order is deliberate: presence; the header, read before any cryptography, so a token
    naming ``none``, an HMAC or any other algorithm off the allow-list is refused without
    touching a key (no RS/HS confusion); the key by ``kid``; the signature; ``typ``; the
    claims and their types; ``iss``; and the validity window at ``now``.

    A PERIODIC consent presents the same token on every exchange, so the steps that depend on
    the token and its key alone (the signature, ``typ``, the claims and their types) are
    remembered for a token that passed them (see :class:`~consent._sigcache.VerifiedTokenCache`,
    ``cache_size`` tokens, 0 to turn it off); the header's rules, the key, ``iss`` and the
    window are checked on every call.
    """

    def __init__(
        self,
        *,
        keys: KeySet,
        issuer: str,
        leeway_seconds: int = 0,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if not issuer:
            raise ValueError("issuer must not be empty")
        if leeway_seconds < 0:
            raise ValueError("leeway_seconds must not be negative")
        by_kid: dict[str, OKPKey] = {}
        for key in keys:
            if not isinstance(key, OKPKey) or not _is_ed25519(key):
                raise ValueError("consent tokens are verified with Ed25519 keys only")
            kid = key.kid or ""
            if kid in by_kid:
                raise ValueError("two verification keys share a kid")
            by_kid[kid] = key
        if not by_kid:
            raise ValueError("at least one verification key is needed")
        self._keys: Mapping[str, OKPKey] = MappingProxyType(by_kid)
        self._issuer = issuer
        self._leeway = leeway_seconds
        self._verified: VerifiedTokenCache[ConsentClaims] = VerifiedTokenCache(cache_size)

    def verify(self, token: str | None, *, now: int | None = None) -> ConsentClaims:
        """Verify ``token`` at ``now`` (unix seconds; default: the current time)."""
        if not token:
            raise ConsentMissing()
        if len(token) > _MAX_TOKEN_LENGTH or not token.isascii():
            raise ConsentInvalid("token is not a compact JWS")
        header = _read_header(token)
        key = self._key_for(header)
        claims = self._verified.verified(token, key, _verified_claims)
        if claims.iss != self._issuer:
            raise ConsentInvalid("token was issued by an unknown issuer")
        self._check_window(claims, int(time.time()) if now is None else now)
        return claims

    def _key_for(self, header: dict[str, Any]) -> OKPKey:
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            raise ConsentAlgorithmRefused("token algorithm is not allowed; only Ed25519 is")
        if not header.keys() <= _HEADER_PARAMETERS:
            # b64/crit, jku/jwk/x5u and friends: nothing a consent token needs, so none is honoured
            raise ConsentInvalid("token header carries unsupported parameters")
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise ConsentInvalid("token is signed with an unknown key")
        return key

    def _check_window(self, claims: ConsentClaims, now: int) -> None:
        if now - self._leeway >= claims.exp:
            raise ConsentExpired()
        if now + self._leeway < claims.nbf:
            raise ConsentNotYetValid()


def _read_header(token: str) -> dict[str, Any]:
    segments = token.split(".")
    if len(segments) != 3 or len(segments[0]) > _MAX_HEADER_LENGTH:
        raise ConsentInvalid("token is not a compact JWS")
    try:
        header = json.loads(urlsafe_b64decode(segments[0].encode()))
    except ValueError as exc:
        raise ConsentInvalid("token header is not base64url-encoded JSON") from exc
    if not isinstance(header, dict):
        raise ConsentInvalid("token header is not a JSON object")
    return header


def _verified_payload(token: str, key: OKPKey) -> bytes:
    # joserfc gets the explicit allow-list too (through the registry), not just our pre-check.
    try:
        obj = jws.extract_compact(token.encode(), registry=_VERIFY_REGISTRY)
        valid = jws.validate_compact(obj, key, registry=_VERIFY_REGISTRY)
    except (JoseError, ValueError) as exc:
        raise ConsentInvalid("token signature does not verify") from exc
    if not valid:
        raise ConsentInvalid("token signature does not verify")
    return obj.payload


def _verified_claims(token: str, key: OKPKey) -> ConsentClaims:
    """The signature, ``typ``, and the claims with their types: what depends on the token alone."""
    payload = _verified_payload(token, key)
    if not _is_consent_type(_read_header(token).get("typ")):
        raise ConsentInvalid(f"token type must be {TOKEN_TYPE}")
    return claims_from_payload(_decode_payload(payload))


def _decode_payload(payload: bytes) -> dict[str, Any]:
    try:
        claims = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise ConsentInvalid("token payload is not JSON") from exc
    if not isinstance(claims, dict):
        raise ConsentInvalid("token payload is not a JSON object")
    return claims


def _is_consent_type(typ: object) -> bool:
    # RFC 7515 4.1.9: media types compare case-insensitively, "application/" may be left off.
    return isinstance(typ, str) and typ.lower().removeprefix("application/") == TOKEN_TYPE


def claims_to_payload(claims: ConsentClaims) -> dict[str, Any]:
    """The JSON payload of ``claims`` (``max_uses`` left out when unlimited, ``fetch_type``
    when PERIODIC, so tokens issued before either existed re-issue byte for byte)."""
    payload: dict[str, Any] = {
        "iss": claims.iss,
        "jti": claims.jti,
        "sub": claims.sub,
        "aud": claims.aud,
        "iat": claims.iat,
        "nbf": claims.nbf,
        "exp": claims.exp,
        "cnf": {"jkt": claims.jkt},
        "grants": [{"service": g.service, "fields": list(g.fields)} for g in claims.grants],
        "purpose": {"code": claims.purpose.code, "text": claims.purpose.text},
        "procedure_ref": claims.procedure_ref,
    }
    if claims.max_uses is not None:
        payload["max_uses"] = claims.max_uses
    if claims.fetch_type != "PERIODIC":
        payload["fetch_type"] = claims.fetch_type
    return payload


def claims_from_payload(payload: Mapping[str, Any]) -> ConsentClaims:
    """Read and type-check the claims of a payload; ConsentInvalid names the first bad claim."""
    nbf, exp = _int(payload, "nbf"), _int(payload, "exp")
    if exp <= nbf:
        raise ConsentInvalid("claim 'exp' must be after 'nbf'")
    cnf = _object(payload, "cnf")
    purpose = _object(payload, "purpose")
    max_uses = payload.get("max_uses")
    if max_uses is not None and (not _is_int(max_uses) or max_uses < 1):
        raise ConsentInvalid("claim 'max_uses' must be a positive integer")
    fetch_type = payload.get("fetch_type", "PERIODIC")
    if fetch_type not in FETCH_TYPES:
        raise ConsentInvalid("claim 'fetch_type' must be ONETIME or PERIODIC")
    return ConsentClaims(
        jti=_str(payload, "jti"),
        iss=_str(payload, "iss"),
        sub=_str(payload, "sub"),
        aud=_str(payload, "aud"),
        iat=_int(payload, "iat"),
        nbf=nbf,
        exp=exp,
        jkt=_str(cnf, "jkt", "cnf.jkt"),
        grants=_grants(payload.get("grants")),
        purpose=Purpose(
            code=_str(purpose, "code", "purpose.code"), text=_str(purpose, "text", "purpose.text")
        ),
        procedure_ref=_str(payload, "procedure_ref"),
        max_uses=max_uses,
        fetch_type=fetch_type,
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _str(obj: Mapping[str, Any], name: str, label: str | None = None) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise ConsentInvalid(f"claim {label or name!r} must be a non-empty string")
    return value


def _int(obj: Mapping[str, Any], name: str) -> int:
    value = obj.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConsentInvalid(f"claim {name!r} must be an integer")
    return value


def _object(obj: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = obj.get(name)
    if not isinstance(value, dict):
        raise ConsentInvalid(f"claim {name!r} must be an object")
    return value


def _grants(value: object) -> tuple[Grant, ...]:
    if not isinstance(value, list) or not value:
        raise ConsentInvalid("claim 'grants' must be a non-empty array")
    grants: list[Grant] = []
    for item in value:
        if not isinstance(item, dict):
            raise ConsentInvalid("claim 'grants' must hold objects")
        service = _str(item, "service", "grants.service")
        fields = item.get("fields")
        if (
            not isinstance(fields, list)
            or not fields
            or not all(isinstance(f, str) and f for f in fields)
            or len(set(fields)) != len(fields)
        ):
            raise ConsentInvalid("claim 'grants.fields' must be a non-empty array of unique names")
        grants.append(Grant(service=service, fields=tuple(fields)))
    if len({grant.service for grant in grants}) != len(grants):
        raise ConsentInvalid("claim 'grants' names a service twice")
    return tuple(grants)
