"""The broker's signing keys over time: sign with the newest, verify with any not retired.

On disk, next to the signing key file (``broker-key.jwk`` by default)::

    broker-key.jwk              the current key: signs tokens, receipts, responses, notifications
    broker-key.previous/*.jwk   earlier keys: still verify and are still published
    broker-key.retired/*.jwk    keys taken out of service: neither verify nor are published

``simpul keys rotate`` moves the current key into ``previous`` and writes a new one; ``simpul
keys retire KID`` moves a previous key into ``retired``. A running broker picks the change up
at its next start. Tokens already handed out keep verifying until their key is retired.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from joserfc.jwk import KeySet, OKPKey

from broker.errors import InvalidKey
from broker.keys import generate_key, load_private_jwk, public_jwk, save_private_jwk

__all__ = ["Keyring", "previous_dir", "retire", "retired_dir", "rotate"]

_NUMBERED = re.compile(r"\A(.*?)(\d+)\Z")


def previous_dir(signing_key_file: Path) -> Path:
    """Where keys that still verify are kept."""
    return signing_key_file.with_name(f"{signing_key_file.stem}.previous")


_KID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")


def retired_dir(signing_key_file: Path) -> Path:
    """Where keys taken out of service are kept (never loaded)."""
    return signing_key_file.with_name(f"{signing_key_file.stem}.retired")


@dataclass(frozen=True, slots=True)
class Keyring:
    """The current signing key and the earlier keys that still verify."""

    signing: OKPKey
    previous: tuple[OKPKey, ...] = ()

    @classmethod
    def load(cls, signing: OKPKey, signing_key_file: Path) -> Keyring:
        """``signing`` plus every key in the ``previous`` directory, newest file first."""
        folder = previous_dir(signing_key_file)
        files = sorted(folder.glob("*.jwk"), key=lambda p: p.stat().st_mtime, reverse=True)
        earlier = [load_private_jwk(path) for path in files] if folder.is_dir() else []
        kids = [signing.kid, *(k.kid for k in earlier)]
        if len(set(kids)) != len(kids):
            raise InvalidKey(f"{folder}: two broker keys share a kid")
        return cls(signing=signing, previous=tuple(earlier))

    @property
    def kid(self) -> str:
        """The ``kid`` new signatures carry."""
        return str(self.signing.kid)

    @property
    def verifying(self) -> tuple[OKPKey, ...]:
        """Every key a signature may be checked with, current first."""
        return (self.signing, *self.previous)

    def key_set(self) -> KeySet:
        """The public halves as a joserfc KeySet (for token and receipt verification)."""
        return KeySet([OKPKey.import_key(key.as_dict(private=False)) for key in self.verifying])

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWK Set the broker publishes at ``/.well-known/jwks.json``."""
        return {"keys": [public_jwk(key) for key in self.verifying]}


def _next_kid(kid: str | None) -> str | None:
    match = _NUMBERED.match(kid or "")
    return f"{match.group(1)}{int(match.group(2)) + 1}" if match else None


def rotate(signing_key_file: Path, *, kid: str | None = None) -> tuple[str, OKPKey]:
    """Keep the current key as a previous one and make a new current key.

    The new ``kid`` is ``kid``, else the old one counted up (``simpul-broker-1`` →
    ``simpul-broker-2``), else the thumbprint. Returns the old kid and the new key. The old
    key is written to ``previous`` before the new one replaces it, so a crash loses neither.
    """
    old = load_private_jwk(signing_key_file)
    old_kid = str(old.kid)
    new_kid = kid or _next_kid(old_kid)
    if new_kid is not None and not _KID.fullmatch(new_kid):
        # It names a file under previous/ once rotated in turn, and ``retire`` takes no other.
        raise InvalidKey(f"{new_kid!r} is not a key id (letters, digits, '.', '_' or '-')")
    folder = previous_dir(signing_key_file)
    # A retired key's kid too: its file lies under retired/, and retiring a second key of that
    # kid would write over it.
    retired = retired_dir(signing_key_file).glob("*.jwk")
    taken = {old_kid, *(p.stem for p in folder.glob("*.jwk")), *(p.stem for p in retired)}
    if new_kid in taken:
        raise InvalidKey(f"kid {new_kid!r} is already in use")
    new = generate_key(new_kid)  # before anything is written
    folder.mkdir(mode=0o700, exist_ok=True)
    save_private_jwk(old, folder / f"{old_kid}.jwk")
    save_private_jwk(new, signing_key_file)
    return old_kid, new


def retire(signing_key_file: Path, kid: str) -> Path:
    """Take previous key ``kid`` out of service; returns where it now lies."""
    if not _KID.fullmatch(kid):
        raise InvalidKey(f"{kid!r} is not a key id (letters, digits, '.', '_' or '-')")
    source = previous_dir(signing_key_file) / f"{kid}.jwk"
    if not source.is_file():
        raise InvalidKey(
            f"no previous broker key with kid {kid!r} (the current key cannot be retired)"
        )
    folder = retired_dir(signing_key_file)
    folder.mkdir(mode=0o700, exist_ok=True)
    target = folder / source.name
    source.replace(target)
    return target
