"""Ed25519 on the exchange path, by libsodium (PyNaCl): about half the CPU of cryptography's.

Every exchange verifies the client's request signature and signs the broker's answer. With
`cryptography` (OpenSSL's Ed25519) the two took ≈105 and ≈61 µs on a 2-core Xeon, ≈16 % of a
worker's CPU; libsodium takes ≈49 and ≈21 µs. Keys stay `cryptography` objects everywhere
else (loading, the JWKS, rotation); only their raw bytes come here.

- **Signing** is deterministic (RFC 8032): libsodium's signature is byte for byte the one
  `cryptography` makes with the same key and message (``tests/broker/test_ed25519.py``).
- **Verifying**: libsodium is the stricter of the two (it also refuses small-order keys and
  ``R``, and keys not canonically encoded), so a signature it accepts, `cryptography` accepts.
  What it refuses, :func:`verify` reports as False and the caller hands to the library path,
  which decides: the decision is always `cryptography`'s. Small-order and non-canonical keys,
  which OpenSSL would accept forgeries for, never get that far: every public key is refused
  where it is loaded (:func:`broker.keys.check_public_point`).
"""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.bindings import crypto_sign, crypto_sign_open
from nacl.exceptions import BadSignatureError

__all__ = ["sign", "verify"]

_SIGNATURE_BYTES: Final = 64
# Keys rotate rarely; a bound keeps a process that makes many (the tests) from growing.
_MAX_SIGNERS: Final = 16


def verify(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is ``key``'s over ``message`` by libsodium's rules (see module)."""
    if len(signature) != _SIGNATURE_BYTES:
        return False
    try:
        crypto_sign_open(signature + message, key.public_bytes_raw())
    except (BadSignatureError, ValueError):
        return False
    return True


def sign(key: Ed25519PrivateKey, message: bytes) -> bytes:
    """``key``'s Ed25519 signature over ``message``: the one ``key.sign(message)`` returns."""
    entry = _secrets.get(id(key))
    if entry is None or entry[0] is not key:
        if len(_secrets) >= _MAX_SIGNERS:
            _secrets.clear()
        # libsodium's secret key is the 32-byte seed followed by the public key. Held as long
        # as the key object (kept alive by this entry, so its id is not reused meanwhile).
        secret = key.private_bytes_raw() + key.public_key().public_bytes_raw()
        entry = _secrets[id(key)] = (key, secret)
    return crypto_sign(message, entry[1])[:_SIGNATURE_BYTES]


_secrets: dict[int, tuple[Ed25519PrivateKey, bytes]] = {}
