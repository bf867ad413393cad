"""libsodium's Ed25519 on the exchange path against cryptography's: the same signatures, and
never an acceptance cryptography would refuse."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from broker import _ed25519 as ed25519

# The order of Ed25519's prime subgroup: S and S + L are the same scalar, but only S < L is
# the canonical encoding RFC 8032 lets a verifier accept.
L = 2**252 + 27742317777372353535851937790883648493

_KEYS = st.binary(min_size=32, max_size=32).map(Ed25519PrivateKey.from_private_bytes)


def _accepted_by_cryptography(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


class TestSign:
    @settings(max_examples=200, deadline=None)
    @given(key=_KEYS, message=st.binary(max_size=600))
    def test_byte_for_byte_what_cryptography_signs(
        self, key: Ed25519PrivateKey, message: bytes
    ) -> None:
        assert ed25519.sign(key, message) == key.sign(message)

    def test_each_key_signs_with_its_own_secret(self) -> None:
        keys = [Ed25519PrivateKey.generate() for _ in range(40)]  # past the remembered bound
        for key in keys + keys[:3]:
            assert ed25519.sign(key, b"m") == key.sign(b"m")


class TestVerify:
    @settings(max_examples=200, deadline=None)
    @given(
        key=_KEYS,
        message=st.binary(max_size=600),
        flip=st.one_of(st.none(), st.integers(min_value=0, max_value=64 * 8 - 1)),
        other_message=st.booleans(),
    )
    def test_agrees_with_cryptography(
        self, key: Ed25519PrivateKey, message: bytes, flip: int | None, other_message: bool
    ) -> None:
        signature = bytearray(key.sign(message))
        if flip is not None:
            signature[flip // 8] ^= 1 << (flip % 8)
        checked = message + b"!" if other_message else message
        ours = ed25519.verify(key.public_key(), bytes(signature), checked)
        assert ours == _accepted_by_cryptography(key.public_key(), bytes(signature), checked)

    def test_another_keys_signature_is_refused(self) -> None:
        signer, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
        assert not ed25519.verify(other.public_key(), signer.sign(b"m"), b"m")

    def test_non_canonical_s_is_refused_by_both(self) -> None:
        key = Ed25519PrivateKey.generate()
        signature = key.sign(b"m")
        s = int.from_bytes(signature[32:], "little") + L
        forged = signature[:32] + s.to_bytes(32, "little")
        assert not ed25519.verify(key.public_key(), forged, b"m")
        assert not _accepted_by_cryptography(key.public_key(), forged, b"m")

    def test_small_order_key_is_refused(self) -> None:
        # The identity point as a public key, with R the identity and S = 0, satisfies the
        # cofactorless equation for every message. libsodium refuses it outright; whatever
        # cryptography says, the exchange path then asks the library, which decides.
        identity = (1).to_bytes(32, "little")
        key = Ed25519PublicKey.from_public_bytes(identity)
        assert not ed25519.verify(key, identity + bytes(32), b"any message")

    def test_wrong_length_is_refused(self) -> None:
        key = Ed25519PrivateKey.generate()
        signature = key.sign(b"m")
        assert not ed25519.verify(key.public_key(), signature[:63], b"m")
        assert not ed25519.verify(key.public_key(), signature + b"\0", b"m")
