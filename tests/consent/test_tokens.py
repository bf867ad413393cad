"""Consent tokens: issue, verify, and every way a token is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import KeySet, OctKey, OKPKey

from consent.errors import (
    ConsentAlgorithmRefused,
    ConsentExpired,
    ConsentInvalid,
    ConsentMissing,
    ConsentNotYetValid,
    Error,
)
from consent.tokens import (
    TOKEN_TYPE,
    ConsentClaims,
    TokenIssuer,
    TokenVerifier,
    claims_to_payload,
)
from tests.consent.conftest import DAY, ISSUER, NIK, T0, public


def b64(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    """base64url of compact JSON."""
    return b64(json.dumps(value, separators=(",", ":")).encode())


@dataclass
class Forge:
    """Builds tokens, good and deliberately broken, signed with the broker's key by default."""

    key: OKPKey
    claims: ConsentClaims

    def payload(self, **changes: Any) -> dict[str, Any]:
        return claims_to_payload(replace(self.claims, **changes))

    def header(self, **changes: Any) -> dict[str, Any]:
        header: dict[str, Any] = {"alg": "Ed25519", "kid": self.key.kid, "typ": TOKEN_TYPE}
        header.update(changes)
        return {k: v for k, v in header.items() if v is not None}

    def sign(
        self,
        payload: dict[str, Any] | None = None,
        *,
        header: dict[str, Any] | None = None,
        key: OKPKey | None = None,
    ) -> str:
        header = header or self.header()
        body = json.dumps(self.payload() if payload is None else payload).encode()
        alg = header["alg"]
        return jws.serialize_compact(header, body, key or self.key, algorithms=[alg])

    def without(self, claim: str) -> str:
        payload = self.payload()
        if "." in claim:
            outer, inner = claim.split(".")
            del payload[outer][inner]
        else:
            del payload[claim]
        return self.sign(payload)

    def with_claim(self, claim: str, value: Any) -> str:
        payload = self.payload()
        payload[claim] = value
        return self.sign(payload)

    def unsigned(self, header: dict[str, Any], signature: str = "") -> str:
        return f"{b64json(header)}.{b64json(self.payload())}.{signature}"

    def hmac_with_public_key(self) -> str:
        # The classic confusion attack: HS256 keyed with the verifier's *public* key bytes.
        secret = self.key.as_bytes(private=False)
        signing_input = f"{b64json(self.header(alg='HS256'))}.{b64json(self.payload())}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(mac)}"

    def hmac_with_x(self) -> str:
        secret = base64.urlsafe_b64decode(str(self.key.as_dict()["x"]) + "=")
        signing_input = f"{b64json(self.header(alg='HS256'))}.{b64json(self.payload())}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(mac)}"

    def tampered_payload(self) -> str:
        head, _, sig = self.sign().split(".")
        return f"{head}.{b64json(self.payload(aud='ID/GOV/EVIL/corp'))}.{sig}"

    def tampered_signature(self) -> str:
        head, body, sig = self.sign().split(".")
        raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
        raw[0] ^= 0x01
        return f"{head}.{body}.{b64(bytes(raw))}"


@pytest.fixture
def forge(signing_key: OKPKey, claims: ConsentClaims) -> Forge:
    """Token forge around the broker's key and valid claims."""
    return Forge(key=signing_key, claims=claims)


class TestIssue:
    def test_round_trip(
        self, issuer: TokenIssuer, verifier: TokenVerifier, claims: ConsentClaims
    ) -> None:
        assert verifier.verify(issuer.issue(claims), now=T0) == claims

    def test_round_trip_with_max_uses(
        self, issuer: TokenIssuer, verifier: TokenVerifier, claims: ConsentClaims
    ) -> None:
        limited = replace(claims, max_uses=3)
        assert verifier.verify(issuer.issue(limited), now=T0).max_uses == 3

    def test_header_and_confirmation_claim(
        self, issuer: TokenIssuer, signing_key: OKPKey, claims: ConsentClaims, client_jkt: str
    ) -> None:
        token = issuer.issue(claims)
        obj = jws.extract_compact(token.encode())
        assert obj.headers() == {"alg": "Ed25519", "kid": signing_key.kid, "typ": "consent+jwt"}
        payload = json.loads(obj.payload)
        assert payload["cnf"] == {"jkt": client_jkt}
        assert payload["sub"] == NIK
        assert "max_uses" not in payload

    def test_reissue_is_byte_identical(self, signing_key: OKPKey, claims: ConsentClaims) -> None:
        # The store keeps claims, not tokens, and relies on this.
        first = TokenIssuer(key=signing_key, issuer=ISSUER).issue(claims)
        again = TokenIssuer(key=signing_key, issuer=ISSUER).issue(replace(claims))
        assert first == again

    def test_refuses_claims_for_another_issuer(
        self, issuer: TokenIssuer, claims: ConsentClaims
    ) -> None:
        with pytest.raises(ValueError, match="another issuer"):
            issuer.issue(replace(claims, iss="https://elsewhere.test"))

    def test_refuses_claims_a_verifier_would_refuse(
        self, issuer: TokenIssuer, claims: ConsentClaims
    ) -> None:
        with pytest.raises(ValueError, match="cannot be issued"):
            issuer.issue(replace(claims, grants=()))

    @pytest.mark.parametrize(
        "key",
        [
            pytest.param(lambda: public(OKPKey.generate_key("Ed25519")), id="public-only"),
            pytest.param(lambda: OKPKey.generate_key("Ed448"), id="ed448"),
            pytest.param(lambda: OKPKey.generate_key("X25519"), id="x25519"),
        ],
    )
    def test_refuses_unsuitable_keys(self, key: Callable[[], OKPKey]) -> None:
        with pytest.raises(ValueError, match="private Ed25519"):
            TokenIssuer(key=key(), issuer=ISSUER)

    def test_repr_does_not_show_the_nik(self, claims: ConsentClaims) -> None:
        assert NIK not in repr(claims)


class TestVerify:
    def test_accepts_eddsa_name_without_warning(
        self, forge: Forge, verifier: TokenVerifier
    ) -> None:
        # Signed outside joserfc's "EdDSA" model (which warns); pytest turns warnings into errors.
        header = forge.header(alg="EdDSA")
        signing_input = f"{b64json(header)}.{b64json(forge.payload())}"
        private = forge.key.private_key
        assert isinstance(private, Ed25519PrivateKey)
        signature = private.sign(signing_input.encode())
        token = f"{signing_input}.{b64(signature)}"
        assert verifier.verify(token, now=T0) == forge.claims

    @pytest.mark.parametrize("typ", ["consent+jwt", "application/consent+jwt", "Consent+JWT"])
    def test_accepts_typ_spellings(self, forge: Forge, verifier: TokenVerifier, typ: str) -> None:
        assert verifier.verify(forge.sign(header=forge.header(typ=typ)), now=T0) == forge.claims

    def test_picks_the_key_by_kid(self, signing_key: OKPKey, claims: ConsentClaims) -> None:
        old = OKPKey.generate_key("Ed25519", auto_kid=True)
        keys = KeySet([public(old), public(signing_key)])
        verifier = TokenVerifier(keys=keys, issuer=ISSUER)
        token = TokenIssuer(key=old, issuer=ISSUER).issue(claims)
        assert verifier.verify(token, now=T0) == claims

    @pytest.mark.parametrize(
        ("now", "leeway"),
        [(T0 - 30, 30), (T0 + DAY + 29, 30), (T0, 0), (T0 + DAY - 1, 0)],
    )
    def test_validity_window_edges(
        self, signing_key: OKPKey, forge: Forge, now: int, leeway: int
    ) -> None:
        verifier = TokenVerifier(
            keys=KeySet([public(signing_key)]), issuer=ISSUER, leeway_seconds=leeway
        )
        assert verifier.verify(forge.sign(), now=now) == forge.claims

    @pytest.mark.parametrize(
        ("nbf", "error"),
        [(4_000_000_000, ConsentNotYetValid), (1_000_000_000, ConsentExpired)],
        ids=["in-2096", "in-2001"],
    )
    def test_default_now_is_the_current_time(
        self, forge: Forge, verifier: TokenVerifier, nbf: int, error: type[Error]
    ) -> None:
        token = forge.sign(forge.payload(iat=nbf, nbf=nbf, exp=nbf + DAY))
        with pytest.raises(error):
            verifier.verify(token)

    @pytest.mark.parametrize(
        "keys",
        [
            pytest.param(lambda: KeySet([OKPKey.generate_key("Ed448")]), id="ed448"),
            pytest.param(lambda: KeySet([OctKey.generate_key(256)]), id="hmac-secret"),
        ],
    )
    def test_refuses_keys_other_than_ed25519(self, keys: Callable[[], KeySet]) -> None:
        with pytest.raises(ValueError, match="Ed25519"):
            TokenVerifier(keys=keys(), issuer=ISSUER)

    def test_refuses_negative_leeway(self, signing_key: OKPKey) -> None:
        with pytest.raises(ValueError, match="leeway"):
            TokenVerifier(keys=KeySet([signing_key]), issuer=ISSUER, leeway_seconds=-1)


def _other_key_same_kid(forge: Forge) -> str:
    impostor = OKPKey.generate_key("Ed25519", parameters={"kid": str(forge.key.kid)})
    return forge.sign(key=impostor)


def _unknown_kid(forge: Forge) -> str:
    other = OKPKey.generate_key("Ed25519", auto_kid=True)
    return forge.sign(header=forge.header(kid=other.kid), key=other)


DENIALS: list[Any] = [
    # presence and shape
    pytest.param(lambda f: None, T0, ConsentMissing, id="absent"),
    pytest.param(lambda f: "", T0, ConsentMissing, id="empty"),
    pytest.param(lambda f: "not-a-token", T0, ConsentInvalid, id="one-segment"),
    pytest.param(lambda f: "a.b", T0, ConsentInvalid, id="two-segments"),
    pytest.param(lambda f: f.sign() + ".x", T0, ConsentInvalid, id="four-segments"),
    pytest.param(lambda f: "é" + f.sign(), T0, ConsentInvalid, id="non-ascii"),
    pytest.param(lambda f: f.sign() + "A" * 20_000, T0, ConsentInvalid, id="oversized"),
    pytest.param(lambda f: "!!!." + f.sign().split(".", 1)[1], T0, ConsentInvalid, id="bad-b64"),
    pytest.param(
        lambda f: b64json(["alg"]) + "." + f.sign().split(".", 1)[1],
        T0,
        ConsentInvalid,
        id="header-not-object",
    ),
    # the algorithm, refused before any key is touched
    pytest.param(
        lambda f: f"eyJhbGciOiJub25lIn0.{b64json(f.payload())}.",
        T0,
        ConsentAlgorithmRefused,
        id="alg-none",
    ),
    pytest.param(
        lambda f: f.unsigned(f.header(alg="none")), T0, ConsentAlgorithmRefused, id="alg-none-kid"
    ),
    pytest.param(
        lambda f: f.unsigned(f.header(alg="NONE")), T0, ConsentAlgorithmRefused, id="alg-NONE"
    ),
    pytest.param(
        lambda f: f.hmac_with_public_key(), T0, ConsentAlgorithmRefused, id="hs256-public-pem"
    ),
    pytest.param(lambda f: f.hmac_with_x(), T0, ConsentAlgorithmRefused, id="hs256-public-x"),
    pytest.param(
        lambda f: f.unsigned(f.header(alg="RS256"), "c2ln"), T0, ConsentAlgorithmRefused, id="rs256"
    ),
    pytest.param(
        lambda f: f.unsigned(f.header(alg="ES256"), "c2ln"), T0, ConsentAlgorithmRefused, id="es256"
    ),
    pytest.param(
        lambda f: f.unsigned(f.header(alg="Ed448"), "c2ln"), T0, ConsentAlgorithmRefused, id="ed448"
    ),
    pytest.param(
        lambda f: f.unsigned(f.header(alg="ed25519"), "c2ln"),
        T0,
        ConsentAlgorithmRefused,
        id="alg-wrong-case",
    ),
    pytest.param(
        lambda f: f.unsigned({"kid": f.key.kid, "typ": TOKEN_TYPE}, "c2ln"),
        T0,
        ConsentAlgorithmRefused,
        id="alg-absent",
    ),
    pytest.param(
        lambda f: f.unsigned(f.header(alg=["Ed25519"]), "c2ln"),
        T0,
        ConsentAlgorithmRefused,
        id="alg-list",
    ),
    # header parameters and key
    pytest.param(
        lambda f: f.sign(header=f.header(jku="https://evil.test/jwks.json")),
        T0,
        ConsentInvalid,
        id="header-jku",
    ),
    pytest.param(
        lambda f: f.unsigned(f.header(b64=False, crit=["b64"]), "c2ln"),
        T0,
        ConsentInvalid,
        id="header-b64",
    ),
    pytest.param(_unknown_kid, T0, ConsentInvalid, id="unknown-kid"),
    pytest.param(
        lambda f: f.unsigned(f.header(kid=None), "c2ln"), T0, ConsentInvalid, id="kid-absent"
    ),
    pytest.param(_other_key_same_kid, T0, ConsentInvalid, id="right-kid-wrong-key"),
    pytest.param(lambda f: f.tampered_payload(), T0, ConsentInvalid, id="tampered-payload"),
    pytest.param(lambda f: f.tampered_signature(), T0, ConsentInvalid, id="tampered-signature"),
    pytest.param(
        lambda f: f.sign().rsplit(".", 1)[0] + ".", T0, ConsentInvalid, id="signature-stripped"
    ),
    # typ
    pytest.param(lambda f: f.sign(header=f.header(typ="JWT")), T0, ConsentInvalid, id="typ-jwt"),
    pytest.param(lambda f: f.sign(header=f.header(typ=None)), T0, ConsentInvalid, id="typ-absent"),
    # claims
    pytest.param(
        lambda f: jws.serialize_compact(f.header(), b"[1,2]", f.key, algorithms=["Ed25519"]),
        T0,
        ConsentInvalid,
        id="payload-not-object",
    ),
    pytest.param(
        lambda f: jws.serialize_compact(f.header(), b"not json", f.key, algorithms=["Ed25519"]),
        T0,
        ConsentInvalid,
        id="payload-not-json",
    ),
    pytest.param(lambda f: f.with_claim("exp", str(T0 + DAY)), T0, ConsentInvalid, id="exp-str"),
    pytest.param(lambda f: f.with_claim("iat", True), T0, ConsentInvalid, id="iat-bool"),
    pytest.param(lambda f: f.with_claim("nbf", 1.5), T0, ConsentInvalid, id="nbf-float"),
    pytest.param(lambda f: f.with_claim("aud", [f.claims.aud]), T0, ConsentInvalid, id="aud-list"),
    pytest.param(lambda f: f.with_claim("sub", ""), T0, ConsentInvalid, id="sub-empty"),
    pytest.param(lambda f: f.with_claim("grants", []), T0, ConsentInvalid, id="grants-empty"),
    pytest.param(
        lambda f: f.with_claim("grants", [{"service": "s", "fields": []}]),
        T0,
        ConsentInvalid,
        id="grant-no-fields",
    ),
    pytest.param(
        lambda f: f.with_claim("grants", [{"service": "s", "fields": ["a", "a"]}]),
        T0,
        ConsentInvalid,
        id="grant-duplicate-field",
    ),
    pytest.param(
        lambda f: f.with_claim("grants", [{"service": "s", "fields": ["a"]}] * 2),
        T0,
        ConsentInvalid,
        id="grant-duplicate-service",
    ),
    pytest.param(lambda f: f.with_claim("grants", ["s"]), T0, ConsentInvalid, id="grant-not-obj"),
    pytest.param(lambda f: f.with_claim("cnf", "jkt"), T0, ConsentInvalid, id="cnf-not-object"),
    pytest.param(lambda f: f.with_claim("purpose", "x"), T0, ConsentInvalid, id="purpose-str"),
    pytest.param(lambda f: f.with_claim("max_uses", 0), T0, ConsentInvalid, id="max-uses-zero"),
    pytest.param(lambda f: f.with_claim("max_uses", "1"), T0, ConsentInvalid, id="max-uses-str"),
    pytest.param(lambda f: f.with_claim("exp", T0), T0, ConsentInvalid, id="exp-not-after-nbf"),
    # issuer
    pytest.param(
        lambda f: f.sign(f.payload(iss="https://evil.test")), T0, ConsentInvalid, id="wrong-issuer"
    ),
    # the validity window
    pytest.param(lambda f: f.sign(), T0 + DAY, ConsentExpired, id="expired-at-exp"),
    pytest.param(lambda f: f.sign(), T0 + 10 * DAY, ConsentExpired, id="expired-long-ago"),
    pytest.param(lambda f: f.sign(), T0 - 1, ConsentNotYetValid, id="not-yet-valid"),
]

REQUIRED_CLAIMS = [
    "iss",
    "jti",
    "sub",
    "aud",
    "iat",
    "nbf",
    "exp",
    "cnf",
    "cnf.jkt",
    "grants",
    "purpose",
    "purpose.code",
    "purpose.text",
    "procedure_ref",
]


class TestDenials:
    @pytest.mark.parametrize(("build", "now", "error"), DENIALS)
    def test_refused(
        self,
        forge: Forge,
        verifier: TokenVerifier,
        build: Callable[[Forge], str | None],
        now: int,
        error: type[Error],
    ) -> None:
        token = build(forge)
        with pytest.raises(error) as caught:
            verifier.verify(token, now=now)
        assert type(caught.value) is error  # the precise cause, not a sibling
        assert NIK not in caught.value.detail
        if token:
            assert token not in caught.value.detail

    @pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
    def test_missing_claim(self, forge: Forge, verifier: TokenVerifier, claim: str) -> None:
        with pytest.raises(ConsentInvalid, match=claim.split(".")[0]):
            verifier.verify(forge.without(claim), now=T0)

    def test_joserfc_errors_are_wrapped(self, forge: Forge, verifier: TokenVerifier) -> None:
        with pytest.raises(ConsentInvalid) as caught:
            verifier.verify(forge.tampered_signature(), now=T0)
        assert not isinstance(caught.value.__cause__, Error)

    def test_expiry_is_checked_after_the_signature(
        self, forge: Forge, verifier: TokenVerifier
    ) -> None:
        # An expired *forgery* is a forgery: the error must not confirm anything about claims.
        with pytest.raises(ConsentInvalid):
            verifier.verify(_unknown_kid(forge), now=T0 + 10 * DAY)


_FUZZ_KEY = OKPKey.generate_key("Ed25519", auto_kid=True)
_FUZZ_VERIFIER = TokenVerifier(keys=KeySet([public(_FUZZ_KEY)]), issuer=ISSUER)


class TestNothingRawEscapes:
    @settings(max_examples=300)
    @given(st.text())
    def test_any_text(self, token: str) -> None:
        with pytest.raises(Error):
            _FUZZ_VERIFIER.verify(token, now=T0)

    @settings(max_examples=300)
    @given(
        st.one_of(st.dictionaries(st.text(max_size=8), st.none() | st.text() | st.integers())),
        st.binary(max_size=64),
    )
    def test_any_header_and_payload(self, header: dict[str, Any], payload: bytes) -> None:
        with pytest.raises(Error):
            _FUZZ_VERIFIER.verify(f"{b64json(header)}.{b64(payload)}.{b64(payload)}", now=T0)

    @settings(max_examples=200)
    @given(st.recursive(st.integers() | st.text(max_size=4), lambda c: st.lists(c, max_size=3)))
    def test_any_signed_json(self, value: Any) -> None:
        token = jws.serialize_compact(
            {"alg": "Ed25519", "kid": _FUZZ_KEY.kid, "typ": TOKEN_TYPE},
            json.dumps({"grants": value, "nbf": 1, "exp": value}),
            _FUZZ_KEY,
            algorithms=["Ed25519"],
        )
        with pytest.raises(ConsentInvalid):
            _FUZZ_VERIFIER.verify(token, now=T0)
