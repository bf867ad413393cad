"""Citizen sign-in: ID tokens from a configured identity provider, verified on every call."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwa import JWSAlgModel
from joserfc.jwk import KeySet, OKPKey

from broker.errors import CitizenUnauthenticated, InvalidKey
from broker.keys import check_public_point

__all__ = ["Citizen", "CitizenVerifier"]

_NIK = re.compile(r"\A[0-9]{16}\Z")
# Identity providers sign with asymmetric keys only; a shared-secret or "none" token is refused.
_ALLOWED_ALGORITHMS = ("Ed25519", "EdDSA", "ES256", "RS256", "PS256")


def _models() -> dict[str, JWSAlgModel]:
    models = {name: jws.JWSRegistry.algorithms[name] for name in _ALLOWED_ALGORITHMS}
    models["EdDSA"] = models["Ed25519"]
    return models


class _Registry(jws.JWSRegistry):
    # joserfc's generic "EdDSA" model also accepts Ed448 keys and warns on every use (RFC 9864
    # deprecates the name); as in consent.tokens, both names map to the curve-pinned Ed25519.
    algorithms: dict[str, JWSAlgModel] = _models()


_REGISTRY = _Registry(algorithms=list(_ALLOWED_ALGORITHMS))


@dataclass(frozen=True, slots=True)
class Citizen:
    """A signed-in citizen. ``nik`` comes from the identity provider, never from the client."""

    nik: str
    name: str | None


class CitizenVerifier:
    """Verifies citizens' ID tokens against the identity provider's published keys."""

    def __init__(self, *, keys: KeySet, issuer: str, audience: str) -> None:
        self._keys = keys
        self._claims = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            sub={"essential": True},
            nik={"essential": True},
        )

    @classmethod
    def from_jwks_file(cls, path: Path, *, issuer: str, audience: str) -> CitizenVerifier:
        """Load the identity provider's JWKS from ``path``."""
        try:
            keys = KeySet.import_key_set(json.loads(path.read_text()))
        # TypeError and KeyError: JSON that is not an object with a "keys" array.
        except (OSError, ValueError, TypeError, KeyError, JoseError) as exc:
            raise ValueError(f"{path}: not a readable JWKS: {exc}") from exc
        for index, key in enumerate(keys.keys):
            if isinstance(key, OKPKey) and key.curve_name == "Ed25519":
                try:
                    check_public_point(key.public_key.public_bytes_raw())
                except InvalidKey as exc:
                    raise ValueError(f"{path}: keys[{index}]: {exc.detail}") from exc
        return cls(keys=keys, issuer=issuer, audience=audience)

    def verify(self, authorization: str | None) -> Citizen:
        """Return the citizen named by a ``Bearer`` ID token, or refuse."""
        if not authorization or not authorization.startswith("Bearer "):
            raise CitizenUnauthenticated("an ID token is required (Authorization: Bearer ...)")
        token = authorization.removeprefix("Bearer ").strip()
        try:
            decoded = jwt.decode(token, self._keys, registry=_REGISTRY)
            self._claims.validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise CitizenUnauthenticated(f"ID token refused: {type(exc).__name__}") from exc
        nik = decoded.claims.get("nik")
        if not isinstance(nik, str) or not _NIK.match(nik):
            raise CitizenUnauthenticated("ID token carries no valid NIK")
        name = decoded.claims.get("name")
        return Citizen(nik=nik, name=name if isinstance(name, str) else None)
