"""Ed25519 keys: generation, private key files, public JWKs and thumbprints."""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from joserfc.jwk import OKPKey

from broker.errors import InvalidKey
from broker.keys import (
    check_public_jwk,
    generate_key,
    jwk_to_public_key,
    jwks,
    jwks_resolver,
    load_private_jwk,
    public_jwk,
    save_private_jwk,
    thumbprint,
    to_private_key,
)

# RFC 8037 appendix A.1 (private key), A.2 (its public key) and A.3 (its thumbprint).
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_PUBLIC: dict[str, Any] = {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}
RFC8037_JKT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
# RFC 8032 section 7.1, TEST 2: another key's public half.
OTHER_X = "PUAXw-hDiVqStwqnTRt-vJyYLM8uxJaMwM1V8Sr0Zgw"
# Points no key pair has: the identity (y = 1), the same written as y = p + 1 (not
# canonical), the point of order 2 (y = -1) and one of order 4 (y = 0).
SMALL_ORDER_X = {
    "identity": "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "identity-non-canonical": "7v_______________________________________38",
    "order-2": "7P_______________________________________38",
    "order-4": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
}


class TestGenerate:
    def test_kid_defaults_to_thumbprint(self) -> None:
        key = generate_key()
        assert key.is_private
        assert key.kid == key.thumbprint() == thumbprint(key)

    def test_kid_can_be_chosen(self) -> None:
        assert generate_key("perizinan-2025").kid == "perizinan-2025"

    def test_keys_differ(self) -> None:
        assert public_jwk(generate_key())["x"] != public_jwk(generate_key())["x"]


class TestPrivateKeyFile:
    def test_round_trip(self, tmp_path: Path) -> None:
        key = generate_key("k1")
        path = tmp_path / "client.jwk"
        save_private_jwk(key, path)
        loaded = load_private_jwk(path)
        assert loaded.kid == "k1"
        assert loaded.as_dict(private=True) == key.as_dict(private=True)

    def test_file_is_owner_only(self, tmp_path: Path) -> None:
        path = tmp_path / "client.jwk"
        path.write_text("old")
        path.chmod(0o644)
        save_private_jwk(generate_key(), path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert [p.name for p in tmp_path.iterdir()] == ["client.jwk"]  # no temporary left

    def test_creates_missing_directory(self, tmp_path: Path) -> None:
        path = tmp_path / "keys" / "client.jwk"
        save_private_jwk(generate_key(), path)
        assert load_private_jwk(path).is_private

    def test_refuses_to_save_a_public_key(self, tmp_path: Path) -> None:
        public = OKPKey.import_key(RFC8037_PUBLIC)
        with pytest.raises(InvalidKey):
            save_private_jwk(public, tmp_path / "k.jwk")
        assert not (tmp_path / "k.jwk").exists()

    def test_loads_the_rfc_8037_key_without_kid(self, tmp_path: Path) -> None:
        path = tmp_path / "rfc.jwk"
        path.write_text(json.dumps({**RFC8037_PUBLIC, "d": RFC8037_D}))
        key = load_private_jwk(path)
        assert key.kid == RFC8037_JKT
        assert public_jwk(key) == {**RFC8037_PUBLIC, "kid": RFC8037_JKT}

    @pytest.mark.parametrize(
        ("content", "problem"),
        [
            pytest.param(None, "cannot read", id="missing-file"),
            pytest.param("{not json", "not a JSON Web Key", id="not-json"),
            pytest.param(b"\xff\xfe", "not a JSON Web Key", id="not-utf8"),
            pytest.param("[1, 2]", "expected a JSON object", id="not-an-object"),
            pytest.param(
                {"kty": "RSA", "n": "x", "e": "AQAB", "d": "x"}, "unknown JWK member", id="rsa"
            ),
            pytest.param(
                {"kty": "EC", "crv": "P-256", "x": RFC8037_X, "d": RFC8037_D},
                "kty must be 'OKP'",
                id="ec",
            ),
            pytest.param(
                {**RFC8037_PUBLIC, "crv": "X25519", "d": RFC8037_D},
                "crv must be 'Ed25519'",
                id="x25519",
            ),
            pytest.param(RFC8037_PUBLIC, "no 'd' member", id="public-only"),
            pytest.param({**RFC8037_PUBLIC, "d": "short"}, "'d' is not", id="malformed-d"),
            pytest.param(
                {**RFC8037_PUBLIC, "x": OTHER_X, "d": RFC8037_D},
                "'x' is not the public key of 'd'",
                id="x-d-mismatch",
            ),
        ],
    )
    def test_refuses_bad_files(self, tmp_path: Path, content: object, problem: str) -> None:
        path = tmp_path / "bad-key.jwk"
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content)
        elif content is not None:
            path.write_text(json.dumps(content))
        with pytest.raises(InvalidKey) as info:
            load_private_jwk(path)
        assert str(path) in info.value.detail
        assert problem in info.value.detail
        assert RFC8037_D not in info.value.detail


class TestPublicJwk:
    def test_has_no_private_part(self) -> None:
        key = generate_key("k1")
        jwk = public_jwk(key)
        assert set(jwk) == {"kty", "crv", "x", "kid"}
        assert jwk["kid"] == "k1"

    def test_converts_to_the_matching_public_key(self) -> None:
        key = generate_key()
        signature = to_private_key(key).sign(b"data")
        public = jwk_to_public_key(public_jwk(key))
        public.verify(signature, b"data")
        with pytest.raises(InvalidSignature):
            public.verify(signature, b"other")

    @pytest.mark.parametrize(
        ("change", "problem"),
        [
            pytest.param({"d": RFC8037_D}, "private key ('d')", id="private"),
            pytest.param({"kty": "EC"}, "kty must be 'OKP'", id="kty"),
            pytest.param({"crv": "Ed448"}, "crv must be 'Ed25519'", id="crv"),
            pytest.param({"x": RFC8037_X[:-1]}, "x must be", id="short-x"),
            pytest.param({"x": RFC8037_X[:-1] + "="}, "x must be", id="padded-x"),
            # The same 32 bytes with other padding bits: one key under two names.
            pytest.param({"x": RFC8037_X[:-1] + "p"}, "canonical", id="non-canonical-x"),
            pytest.param({"use": "enc"}, "use must be 'sig'", id="use"),
            pytest.param({"alg": "RS256"}, "alg must be", id="alg"),
            pytest.param({"key_ops": ["encrypt"]}, "key_ops", id="key-ops"),
            pytest.param({"kid": ""}, "kid must be", id="empty-kid"),
            pytest.param({"n": "x"}, "unknown JWK member", id="unknown-member"),
        ],
    )
    def test_check_refuses(self, change: dict[str, Any], problem: str) -> None:
        with pytest.raises(InvalidKey, match=problem.replace("(", r"\(").replace(")", r"\)")):
            check_public_jwk({**RFC8037_PUBLIC, **change})

    @pytest.mark.parametrize("x", SMALL_ORDER_X.values(), ids=SMALL_ORDER_X.keys())
    def test_check_refuses_a_small_order_key(self, x: str) -> None:
        # OpenSSL's Ed25519 accepts the identity key's signature (R = identity, S = 0) over
        # any message: such a key in the registry or a JWKS would let anyone sign as it.
        forged = base64.urlsafe_b64decode(SMALL_ORDER_X["identity"] + "=") + bytes(32)
        Ed25519PublicKey.from_public_bytes(forged[:32]).verify(forged, b"any message")
        with pytest.raises(InvalidKey, match="small-order"):
            check_public_jwk({**RFC8037_PUBLIC, "x": x})
        with pytest.raises(InvalidKey, match="small-order"):
            jwks_resolver({"keys": [{**RFC8037_PUBLIC, "x": x, "kid": "k"}]})

    def test_check_normalises(self) -> None:
        jwk = {**RFC8037_PUBLIC, "kid": "a", "use": "sig", "alg": "Ed25519"}
        assert check_public_jwk(jwk) == {**RFC8037_PUBLIC, "kid": "a"}

    def test_to_private_key_refuses_public_and_x25519(self) -> None:
        with pytest.raises(InvalidKey):
            to_private_key(OKPKey.import_key(RFC8037_PUBLIC))
        with pytest.raises(InvalidKey):
            to_private_key(OKPKey.generate_key("X25519"))


class TestThumbprint:
    @pytest.mark.parametrize(
        "make",
        [
            pytest.param(lambda: RFC8037_PUBLIC, id="jwk"),
            pytest.param(
                lambda: {**RFC8037_PUBLIC, "kid": "ignored", "d": RFC8037_D}, id="private-jwk"
            ),
            pytest.param(lambda: OKPKey.import_key(RFC8037_PUBLIC), id="okp-key"),
            pytest.param(lambda: jwk_to_public_key(RFC8037_PUBLIC), id="cryptography-key"),
        ],
    )
    def test_rfc_8037_vector(self, make: Callable[[], Any]) -> None:
        assert thumbprint(make()) == RFC8037_JKT

    def test_agrees_with_joserfc(self) -> None:
        key = generate_key("not-the-thumbprint")
        assert thumbprint(key) == key.thumbprint() == thumbprint(public_jwk(key))
        assert thumbprint(key) != "not-the-thumbprint"


class TestJwks:
    def test_resolves_published_keys(self) -> None:
        first, second = generate_key("a"), generate_key("b")
        key_set = jwks([first, second])
        assert all("d" not in jwk for jwk in key_set["keys"])
        resolve = jwks_resolver(json.loads(json.dumps(key_set)))
        found = resolve("b")
        assert isinstance(found, Ed25519PublicKey)
        found.verify(to_private_key(second).sign(b"m"), b"m")
        assert resolve("c") is None

    @pytest.mark.parametrize(
        ("key_set", "problem"),
        [
            pytest.param({}, "'keys' array", id="no-keys"),
            pytest.param({"keys": ["x"]}, "not a JSON object", id="not-object"),
            pytest.param({"keys": [RFC8037_PUBLIC]}, "has no kid", id="no-kid"),
            pytest.param(
                {"keys": [{**RFC8037_PUBLIC, "kid": "a", "d": RFC8037_D}]},
                "private key",
                id="private",
            ),
            pytest.param(
                {"keys": [{**RFC8037_PUBLIC, "kid": "a"}] * 2}, "appears twice", id="duplicate-kid"
            ),
        ],
    )
    def test_refuses_bad_sets(self, key_set: dict[str, Any], problem: str) -> None:
        with pytest.raises(InvalidKey, match=problem):
            jwks_resolver(key_set)
