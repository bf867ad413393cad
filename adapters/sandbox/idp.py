"""A development identity provider: mints citizens' ID tokens for the demo and tests only."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, OKPKey

__all__ = ["DevIdentityProvider"]


class DevIdentityProvider:
    """Signs ID tokens with a local Ed25519 key. Never configure its key in production."""

    def __init__(self, *, key: OKPKey, issuer: str = "urn:simpul:dev-idp") -> None:
        self._key = key
        self.issuer = issuer

    def jwks(self) -> dict[str, Any]:
        """The public key set a broker is configured with."""
        return dict(KeySet([self._key]).as_dict(private=False))

    def id_token(self, *, nik: str, name: str | None, audience: str, ttl_seconds: int = 600) -> str:
        """An OpenID Connect-style ID token naming the citizen by NIK."""
        now = int(time.time())
        claims: dict[str, object] = {
            "iss": self.issuer,
            # A pairwise, opaque subject, as real providers issue; the NIK is a separate claim.
            "sub": hashlib.sha256(f"{self.issuer}|{nik}".encode()).hexdigest()[:32],
            "aud": audience,
            "iat": now,
            "exp": now + ttl_seconds,
            "nik": nik,
        }
        if name:
            claims["name"] = name
        header = {"alg": "Ed25519", "kid": self._key.kid}
        return jwt.encode(header, claims, self._key, algorithms=["Ed25519"])
