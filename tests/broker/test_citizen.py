"""Citizen sign-in: ID tokens from the configured identity provider, or nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, OKPKey

from adapters.sandbox.idp import DevIdentityProvider
from broker.citizen import Citizen, CitizenVerifier
from broker.errors import CitizenUnauthenticated
from broker.keys import generate_key, to_private_key

ISSUER = "urn:simpul:dev-idp"
AUDIENCE = "simpul-citizen"
NIK = "3174011901860001"

IDP_KEY = generate_key("dev-idp-1")
OTHER_KEY = generate_key("other-1")
IMPOSTOR_KEY = generate_key("dev-idp-1")  # another key under the IdP's kid


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    out: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "pairwise-subject-1",
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
        "nik": NIK,
    }
    for name, value in overrides.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def signed(key: OKPKey = IDP_KEY, **overrides: Any) -> str:
    header = {"alg": "Ed25519", "kid": key.kid}
    return jwt.encode(header, claims(**overrides), key, algorithms=["Ed25519"])


def unsigned(header: Any, body: dict[str, Any], signature: bytes = b"") -> str:
    head = b64(json.dumps(header).encode())
    payload = b64(json.dumps(body).encode())
    return f"{head}.{payload}.{b64(signature)}"


def hand_signed(header: dict[str, Any], body: dict[str, Any], key: OKPKey = IDP_KEY) -> str:
    head = b64(json.dumps(header).encode())
    payload = b64(json.dumps(body).encode())
    signature = to_private_key(key).sign(f"{head}.{payload}".encode())
    return f"{head}.{payload}.{b64(signature)}"


def alg_none() -> str:
    return unsigned({"alg": "none", "typ": "JWT"}, claims())


def hs256(secret: bytes) -> str:
    # The classic confusion attack: an HMAC keyed with material the attacker knows.
    head = b64(json.dumps({"alg": "HS256", "kid": IDP_KEY.kid}).encode())
    payload = b64(json.dumps(claims()).encode())
    mac = hmac.new(secret, f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return f"{head}.{payload}.{b64(mac)}"


def public_x() -> bytes:
    x = str(IDP_KEY.as_dict(private=False)["x"])
    return base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))


def tampered_nik() -> str:
    head, _, signature = signed().split(".")
    payload = b64(json.dumps(claims(nik="3174015205900002")).encode())
    return f"{head}.{payload}.{signature}"


@pytest.fixture(scope="module")
def idp() -> DevIdentityProvider:
    return DevIdentityProvider(key=IDP_KEY, issuer=ISSUER)


@pytest.fixture(scope="module")
def verifier(idp: DevIdentityProvider) -> CitizenVerifier:
    return CitizenVerifier(keys=KeySet.import_key_set(idp.jwks()), issuer=ISSUER, audience=AUDIENCE)


class TestAccepted:
    def test_dev_idp_token(self, idp: DevIdentityProvider, verifier: CitizenVerifier) -> None:
        token = idp.id_token(nik=NIK, name="Budi Santoso", audience=AUDIENCE)
        assert verifier.verify(f"Bearer {token}") == Citizen(nik=NIK, name="Budi Santoso")

    def test_without_a_name(self, idp: DevIdentityProvider, verifier: CitizenVerifier) -> None:
        token = idp.id_token(nik=NIK, name=None, audience=AUDIENCE)
        assert verifier.verify(f"Bearer {token}") == Citizen(nik=NIK, name=None)

    def test_nik_comes_from_the_token_not_the_subject(self, verifier: CitizenVerifier) -> None:
        assert verifier.verify(f"Bearer {signed(sub='someone-else')}").nik == NIK

    def test_non_string_name_is_dropped(self, verifier: CitizenVerifier) -> None:
        assert verifier.verify(f"Bearer {signed(name=42)}").name is None

    def test_audience_list_containing_ours(self, verifier: CitizenVerifier) -> None:
        assert verifier.verify(f"Bearer {signed(aud=[AUDIENCE, 'portal'])}").nik == NIK

    def test_eddsa_name_accepted_without_warning(self, verifier: CitizenVerifier) -> None:
        # Signed by hand: joserfc's own "EdDSA" model warns, and warnings are errors here.
        token = hand_signed({"alg": "EdDSA", "kid": IDP_KEY.kid}, claims())
        assert verifier.verify(f"Bearer {token}").nik == NIK

    def test_hand_signed_ed25519(self, verifier: CitizenVerifier) -> None:
        token = hand_signed({"alg": "Ed25519", "kid": IDP_KEY.kid}, claims())
        assert verifier.verify(f"Bearer {token}").nik == NIK

    def test_from_jwks_file(self, idp: DevIdentityProvider, tmp_path: Path) -> None:
        path = tmp_path / "jwks.json"
        path.write_text(json.dumps(idp.jwks()))
        loaded = CitizenVerifier.from_jwks_file(path, issuer=ISSUER, audience=AUDIENCE)
        assert loaded.verify(f"Bearer {signed()}").nik == NIK


REFUSALS: dict[str, Callable[[], str | None]] = {
    "missing header": lambda: None,
    "empty header": lambda: "",
    "not bearer": lambda: f"Basic {signed()}",
    "bearer without a token": lambda: "Bearer ",
    "bare token": lambda: signed(),
    "garbage token": lambda: "Bearer not.a.jwt",
    "four parts": lambda: f"Bearer {signed()}.AAAA",
    "header is a list": lambda: f"Bearer {unsigned([], claims())}",
    "unknown critical header": lambda: (
        "Bearer "
        + hand_signed({"alg": "Ed25519", "kid": IDP_KEY.kid, "crit": ["x"], "x": 1}, claims())
    ),
    "wrong issuer": lambda: f"Bearer {signed(iss='urn:evil:idp')}",
    "no issuer": lambda: f"Bearer {signed(iss=None)}",
    "wrong audience": lambda: f"Bearer {signed(aud='some-other-app')}",
    "no audience": lambda: f"Bearer {signed(aud=None)}",
    "expired": lambda: f"Bearer {signed(exp=int(time.time()) - 5)}",
    "no expiry": lambda: f"Bearer {signed(exp=None)}",
    "not yet valid": lambda: f"Bearer {signed(nbf=int(time.time()) + 600)}",
    "issued in the future": lambda: f"Bearer {signed(iat=int(time.time()) + 600)}",
    "no subject": lambda: f"Bearer {signed(sub=None)}",
    "no nik claim": lambda: f"Bearer {signed(nik=None)}",
    "nik too short": lambda: f"Bearer {signed(nik='317401190186')}",
    "nik with letters": lambda: f"Bearer {signed(nik='31740119018600AB')}",
    "nik as a number": lambda: f"Bearer {signed(nik=3174011901860001)}",
    "nik with a newline": lambda: f"Bearer {signed(nik=NIK + chr(10))}",
    "nik in arabic-indic digits": lambda: f"Bearer {signed(nik='٣' * 16)}",
    "signed by another key": lambda: f"Bearer {signed(OTHER_KEY)}",
    "another key under the idp kid": lambda: f"Bearer {signed(IMPOSTOR_KEY)}",
    "eddsa by another key": lambda: (
        "Bearer " + hand_signed({"alg": "EdDSA", "kid": IDP_KEY.kid}, claims(), IMPOSTOR_KEY)
    ),
    "payload changed after signing": lambda: f"Bearer {tampered_nik()}",
    "alg none": lambda: f"Bearer {alg_none()}",
    "alg none with a signature": lambda: f"Bearer {alg_none()}AAAA",
    "hs256 keyed with the public key": lambda: f"Bearer {hs256(public_x())}",
    "hs256 keyed with the jwks text": lambda: (
        f"Bearer {hs256(json.dumps(IDP_KEY.as_dict(private=False)).encode())}"
    ),
}


class TestRefused:
    @pytest.mark.parametrize("make", REFUSALS.values(), ids=REFUSALS.keys())
    def test_refused(self, verifier: CitizenVerifier, make: Callable[[], str | None]) -> None:
        authorization = make()
        with pytest.raises(CitizenUnauthenticated) as info:
            verifier.verify(authorization)
        assert info.value.problem_type == "citizen-unauthenticated"
        assert info.value.status == 401
        assert NIK not in info.value.detail
        token = (authorization or "").removeprefix("Bearer ").strip()
        if token:
            assert token not in info.value.detail

    def test_token_for_another_issuers_verifier(self, idp: DevIdentityProvider) -> None:
        strict = CitizenVerifier(
            keys=KeySet.import_key_set(idp.jwks()), issuer="urn:other", audience=AUDIENCE
        )
        with pytest.raises(CitizenUnauthenticated):
            strict.verify(f"Bearer {idp.id_token(nik=NIK, name=None, audience=AUDIENCE)}")


class TestJwksFile:
    @pytest.mark.parametrize(
        "content",
        [
            "",
            "not json",
            "null",
            "[]",
            "{}",
            '"keys"',
            '{"keys": 5}',
            '{"keys": [{"kty": "nope"}]}',
        ],
        ids=repr,
    )
    def test_unreadable_jwks_refused_with_the_file_name(self, tmp_path: Path, content: str) -> None:
        path = tmp_path / "idp-jwks.json"
        path.write_text(content)
        with pytest.raises(ValueError, match=r"idp-jwks\.json"):
            CitizenVerifier.from_jwks_file(path, issuer=ISSUER, audience=AUDIENCE)

    def test_missing_file_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match=r"missing\.json"):
            CitizenVerifier.from_jwks_file(
                tmp_path / "missing.json", issuer=ISSUER, audience=AUDIENCE
            )

    def test_a_small_order_key_is_refused(self, idp: DevIdentityProvider, tmp_path: Path) -> None:
        # The identity point as a key: OpenSSL accepts R = identity, S = 0 as its signature
        # over anything, so a JWKS holding it would let anyone sign in as any NIK.
        identity = (1).to_bytes(32, "little")
        rogue = {"kty": "OKP", "crv": "Ed25519", "x": b64(identity), "kid": "rogue"}
        key_set = {"keys": [*idp.jwks()["keys"], rogue]}
        forged = unsigned({"alg": "Ed25519", "kid": "rogue"}, claims(), identity + bytes(32))
        unchecked = CitizenVerifier(
            keys=KeySet.import_key_set(key_set), issuer=ISSUER, audience=AUDIENCE
        )
        assert unchecked.verify(f"Bearer {forged}").nik == NIK
        path = tmp_path / "idp-jwks.json"
        path.write_text(json.dumps(key_set))
        with pytest.raises(ValueError, match=r"idp-jwks\.json: keys\[1\]: .*small-order"):
            CitizenVerifier.from_jwks_file(path, issuer=ISSUER, audience=AUDIENCE)
