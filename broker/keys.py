"""Ed25519 keys: generate, store as private JWK files, publish as public JWK, convert.

JOSE code works with :class:`joserfc.jwk.OKPKey`; HTTP signature code with the
``cryptography`` Ed25519 key objects. This module converts between the two and is the only
place that reads or writes private key files.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc.jwk import OKPKey
from joserfc.jwk import thumbprint as _jwk_thumbprint
from nacl.bindings import crypto_core_ed25519_is_valid_point

from broker.errors import InvalidKey

__all__ = [
    "check_public_jwk",
    "check_public_point",
    "generate_key",
    "jwk_to_public_key",
    "jwks",
    "jwks_resolver",
    "load_private_jwk",
    "public_jwk",
    "save_private_jwk",
    "thumbprint",
    "to_private_key",
    "write_atomic",
]

# RFC 7515 base64url without padding: 32 bytes are exactly 43 characters.
_B64_32 = re.compile(r"\A[A-Za-z0-9_-]{43}\Z")
_PUBLIC_MEMBERS = frozenset({"kty", "crv", "x", "kid", "use", "alg", "key_ops"})
_JWS_ALGS = frozenset({"Ed25519", "EdDSA"})


def generate_key(kid: str | None = None) -> OKPKey:
    """A new Ed25519 private key; ``kid`` defaults to its RFC 7638 thumbprint.

    A ``kid`` that :func:`check_public_jwk` would refuse is refused here, before anything is
    written: a key file with it could not be loaded again.
    """
    if kid is not None:
        _check_kid(kid)
    key = OKPKey.generate_key("Ed25519", parameters={"kid": kid} if kid else None)
    key.ensure_kid()
    return key


def save_private_jwk(key: OKPKey, path: str | Path) -> None:
    """Write ``key`` as a private JWK JSON file, readable by its owner only (mode 0600).

    The file is replaced atomically, so a crash leaves the old key or the new one, never half.
    """
    if not key.is_private or not isinstance(key.private_key, Ed25519PrivateKey):
        raise InvalidKey("only an Ed25519 private key can be saved as a private key file")
    key.ensure_kid()
    data = json.dumps(key.as_dict(private=True), indent=2, sort_keys=True) + "\n"
    write_atomic(Path(path), data.encode(), mode=0o600)


def load_private_jwk(path: str | Path) -> OKPKey:
    """Read an Ed25519 private JWK file written by :func:`save_private_jwk` (or by hand).

    Refuses anything that is not an OKP/Ed25519 key with ``d``, and a ``d`` that does not
    belong to the file's ``x``; every error names the file.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidKey(f"{path}: cannot read key file: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidKey(f"{path}: not a JSON Web Key: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidKey(f"{path}: not a JSON Web Key: expected a JSON object")
    try:
        public = check_public_jwk({k: v for k, v in raw.items() if k != "d"})
    except InvalidKey as exc:
        raise InvalidKey(f"{path}: {exc.detail}") from exc
    d = raw.get("d")
    if d is None:
        raise InvalidKey(f"{path}: a public key, not a private key (no 'd' member)")
    if not isinstance(d, str) or not _B64_32.match(d):
        raise InvalidKey(f"{path}: 'd' is not a base64url-encoded 32-byte Ed25519 private key")
    private = Ed25519PrivateKey.from_private_bytes(_b64decode(d))
    if _raw_public(private.public_key()) != _b64decode(public["x"]):
        raise InvalidKey(f"{path}: 'x' is not the public key of 'd'")
    key = OKPKey.import_key(
        {"kty": "OKP", "crv": "Ed25519", "x": public["x"], "d": d},
        parameters={"kid": public["kid"]} if "kid" in public else None,
    )
    key.ensure_kid()
    return key


def public_jwk(key: OKPKey) -> dict[str, str]:
    """The public JWK of ``key`` (``kty``, ``crv``, ``x`` and ``kid``); never ``d``."""
    jwk = {"kty": "OKP", "crv": key.curve_name, "x": str(key["x"])}
    if key.kid:
        jwk["kid"] = key.kid
    return check_public_jwk(jwk)


def check_public_jwk(jwk: Mapping[str, Any]) -> dict[str, str]:
    """Validate a public Ed25519 JWK and return its normalised form (kty, crv, x, kid).

    Refuses other key types and curves, a malformed or unusable ``x`` (see
    :func:`check_public_point`), unknown members, a ``use``
    other than ``sig``, an ``alg`` other than ``Ed25519``/``EdDSA`` and, above all, ``d``:
    a private key never belongs where public keys are kept.
    """
    if "d" in jwk:
        raise InvalidKey("contains a private key ('d'); only public keys belong here")
    unknown = sorted(set(jwk) - _PUBLIC_MEMBERS)
    if unknown:
        raise InvalidKey(f"unknown JWK member(s) {', '.join(map(repr, unknown))}")
    if jwk.get("kty") != "OKP":
        raise InvalidKey(f"kty must be 'OKP', not {jwk.get('kty')!r}")
    if jwk.get("crv") != "Ed25519":
        raise InvalidKey(f"crv must be 'Ed25519', not {jwk.get('crv')!r}")
    x = jwk.get("x")
    if not isinstance(x, str) or not _B64_32.match(x):
        raise InvalidKey("x must be a base64url-encoded 32-byte Ed25519 public key")
    raw = _b64decode(x)
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != x:
        # The last character carries 4 bits of padding, which decoding ignores: two texts
        # would name one key (and give two thumbprints), past the registry's one-key checks.
        raise InvalidKey("x must be the canonical base64url encoding of the key")
    check_public_point(raw)
    if "use" in jwk and jwk["use"] != "sig":
        raise InvalidKey(f"use must be 'sig', not {jwk['use']!r}")
    if "alg" in jwk and (not isinstance(jwk["alg"], str) or jwk["alg"] not in _JWS_ALGS):
        raise InvalidKey(f"alg must be 'Ed25519' (or 'EdDSA'), not {jwk['alg']!r}")
    if "key_ops" in jwk and (
        not isinstance(jwk["key_ops"], list)
        or not all(isinstance(op, str) and op in {"sign", "verify"} for op in jwk["key_ops"])
    ):
        raise InvalidKey("key_ops may only list 'sign' and 'verify'")
    out = {"kty": "OKP", "crv": "Ed25519", "x": x}
    if "kid" in jwk:
        out["kid"] = _check_kid(jwk["kid"])
    return out


def _check_kid(kid: object) -> str:
    if not isinstance(kid, str) or not kid or not kid.isprintable() or len(kid) > 200:
        raise InvalidKey("kid must be a non-empty printable string of at most 200 characters")
    return kid


def check_public_point(raw: bytes) -> bytes:
    """``raw`` if it is a usable Ed25519 public key: 32 bytes, canonically encoded, on the
    curve, in its prime-order group and not of small order (libsodium's check).

    A small-order key is the one a forger wants: OpenSSL's Ed25519 (``cryptography``) accepts
    the identity key's all-but-empty signature over any message. No key pair makes one.
    """
    if len(raw) != 32 or not crypto_core_ed25519_is_valid_point(raw):
        raise InvalidKey("x is not a usable Ed25519 public key (a small-order or invalid point)")
    return raw


def jwk_to_public_key(jwk: Mapping[str, Any]) -> Ed25519PublicKey:
    """The ``cryptography`` public key of a public Ed25519 JWK (validated first)."""
    return Ed25519PublicKey.from_public_bytes(_b64decode(check_public_jwk(jwk)["x"]))


def to_private_key(okp: OKPKey) -> Ed25519PrivateKey:
    """The ``cryptography`` private key inside ``okp``; refuses public and non-Ed25519 keys."""
    private = okp.private_key
    if not isinstance(private, Ed25519PrivateKey):
        raise InvalidKey("not an Ed25519 private key")
    return private


def thumbprint(jwk_or_key: OKPKey | Ed25519PublicKey | Mapping[str, Any]) -> str:
    """The RFC 7638 thumbprint (base64url SHA-256) of an Ed25519 key: its ``jkt``."""
    if isinstance(jwk_or_key, OKPKey):
        members = public_jwk(jwk_or_key)
    elif isinstance(jwk_or_key, Ed25519PublicKey):
        x = base64.urlsafe_b64encode(_raw_public(jwk_or_key)).rstrip(b"=").decode()
        members = {"kty": "OKP", "crv": "Ed25519", "x": x}
    else:
        members = check_public_jwk({k: v for k, v in jwk_or_key.items() if k != "d"})
    return _jwk_thumbprint({k: members[k] for k in ("crv", "kty", "x")})


def jwks(keys: Iterable[OKPKey]) -> dict[str, list[dict[str, str]]]:
    """A JWK Set (``{"keys": [...]}``) of the public halves of ``keys``, as published."""
    return {"keys": [public_jwk(key) for key in keys]}


def jwks_resolver(key_set: Mapping[str, Any]) -> Callable[[str], Ed25519PublicKey | None]:
    """A ``kid`` → public key look-up over a JWK Set, for verifying the broker's signatures.

    Every key in the set is validated up front; a set with a private key, a key without
    ``kid`` or a repeated ``kid`` is refused.
    """
    entries = key_set.get("keys")
    if not isinstance(entries, list):
        raise InvalidKey("a JWK Set needs a 'keys' array")
    found: dict[str, Ed25519PublicKey] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise InvalidKey(f"keys[{index}] is not a JSON object")
        try:
            jwk = check_public_jwk(entry)
        except InvalidKey as exc:
            raise InvalidKey(f"keys[{index}]: {exc.detail}") from exc
        if "kid" not in jwk:
            raise InvalidKey(f"keys[{index}] has no kid")
        if jwk["kid"] in found:
            raise InvalidKey(f"keys[{index}]: kid {jwk['kid']!r} appears twice")
        found[jwk["kid"]] = jwk_to_public_key(jwk)
    return found.get


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically (temporary file, fsync, rename) with ``mode``."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _b64decode(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - callers match _B64_32 first
        raise InvalidKey("not base64url") from exc
