"""Fixtures for the consent tests: keys, an issuer and verifier, claims, a store on a fake clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from joserfc.jwk import KeySet, OKPKey
from sqlalchemy import Engine

from consent.store import ConsentStore, install
from consent.tokens import ConsentClaims, Grant, Purpose, TokenIssuer, TokenVerifier

ISSUER = "https://simpul.test/consent"
CLIENT = "ID/GOV/DPMPTSP-DKI/perizinan"
OTHER_CLIENT = "ID/GOV/DINSOS-DKI/bansos"
KTP = "ID/GOV/DUKCAPIL/adminduk/ktp"
KK = "ID/GOV/DUKCAPIL/adminduk/kk"
NIK = "3171014501900001"  # synthetic: Jakarta Pusat, a woman born 05-01-1990
OTHER_NIK = "3171010101850002"
T0 = 1_800_000_000
DAY = 86_400


def public(key: OKPKey) -> OKPKey:
    """The public half of ``key``, with the same kid."""
    return OKPKey.import_key(key.as_dict(private=False))


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: int = T0

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += seconds


@pytest.fixture
def signing_key() -> OKPKey:
    """The broker's consent-token key."""
    return OKPKey.generate_key("Ed25519", auto_kid=True)


@pytest.fixture
def client_key() -> OKPKey:
    """The consumer's request-signing key (the one the token is bound to)."""
    return OKPKey.generate_key("Ed25519", auto_kid=True)


@pytest.fixture
def client_jkt(client_key: OKPKey) -> str:
    """RFC 7638 thumbprint of the consumer's key."""
    return client_key.thumbprint()


@pytest.fixture
def issuer(signing_key: OKPKey) -> TokenIssuer:
    """Issues tokens with the broker's key."""
    return TokenIssuer(key=signing_key, issuer=ISSUER)


@pytest.fixture
def verifier(signing_key: OKPKey) -> TokenVerifier:
    """Verifies tokens against the broker's public key only."""
    return TokenVerifier(keys=KeySet([public(signing_key)]), issuer=ISSUER)


@pytest.fixture
def make_claims(client_jkt: str) -> Callable[..., ConsentClaims]:
    """Build claims valid from T0 for a day; keyword arguments replace fields."""
    base = ConsentClaims(
        jti="6f1c2a52-5d1e-4c39-9d0e-2b0b1c7e9a11",
        iss=ISSUER,
        sub=NIK,
        aud=CLIENT,
        iat=T0,
        nbf=T0,
        exp=T0 + DAY,
        jkt=client_jkt,
        grants=(
            Grant(service=KTP, fields=("nik", "nama", "alamat")),
            Grant(service=KK, fields=("no_kk", "anggota")),
        ),
        purpose=Purpose(code="izin-usaha", text="Penerbitan izin usaha mikro"),
        procedure_ref="PERMIT-2027-000123",
        max_uses=None,
    )

    def build(**changes: Any) -> ConsentClaims:
        return replace(base, **changes)

    return build


@pytest.fixture
def claims(make_claims: Callable[..., ConsentClaims]) -> ConsentClaims:
    """Valid claims (see ``make_claims``)."""
    return make_claims()


@pytest.fixture
def clock() -> Clock:
    """A hand-driven clock starting at T0."""
    return Clock()


@pytest.fixture
def store(engine: Engine, issuer: TokenIssuer, clock: Clock) -> Iterator[ConsentStore]:
    """A consent store on a fresh database (closed after the test)."""
    install(engine)
    opened = ConsentStore(engine=engine, issuer=issuer, clock=clock)
    yield opened
    opened.close()
