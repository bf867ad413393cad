"""Checkpoints as C2SP signed notes: ``tlog-checkpoint`` text, ``signed-note`` Ed25519 lines.

A checkpoint's text is three lines (origin, tree size, base64 root), then a blank line, then one
signature line per signer: ``— <key name> <base64(key ID || signature)>``. The key ID is the first
four bytes of ``SHA-256(key name || "\\n" || 0x01 || public key)``; the signature covers the text
up to and including its last newline. By convention the log signs under its origin as key name,
so any C2SP-aware verifier (Go's ``sumdb/note``, witnesses) can check our checkpoints.

A verifier key (``name+hex(key ID)+base64(0x01 || key)``) names the key as well as holding it:
:func:`parse_verifier_key` refuses one whose key ID does not follow from its name and key, as Go's
``note.NewVerifier`` does, and the name is what a signature line must carry to count.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from audit.errors import CheckpointInvalid, CheckpointUnsigned

__all__ = [
    "Checkpoint",
    "key_id",
    "open_checkpoint",
    "open_note",
    "parse_verifier_key",
    "raw_public_key",
    "sign_checkpoint",
    "sign_note",
    "verifier_key",
]

_ED25519: Final = b"\x01"  # the signed-note signature type of Ed25519
_SIG_PREFIX: Final = "\u2014 "  # an em dash and a space
_NAME: Final = re.compile(r"[^\s+]+")
_SIZE: Final = re.compile(r"0|[1-9][0-9]{0,18}")
_KEY_HASH: Final = re.compile(r"[0-9a-fA-F]{8}")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: which log, how many leaves, what root."""

    origin: str
    size: int
    root: bytes

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or _NAME.fullmatch(self.origin) is None:
            raise ValueError("origin must be non-empty, without spaces, newlines or '+'")
        if self.size < 0:
            raise ValueError("size must not be negative")
        if len(self.root) != 32:
            raise ValueError("root must be a SHA-256 hash")

    def text(self) -> str:
        """The note text that is signed: origin, size and base64 root, each with a newline."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Read a checkpoint's note text; extension lines after the root are ignored."""
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
            raise CheckpointInvalid("checkpoint text must be at least three non-empty lines")
        origin, size, root = lines[0], lines[1], lines[2]
        if _SIZE.fullmatch(size) is None:
            raise CheckpointInvalid("checkpoint tree size is not a decimal number")
        try:
            digest = base64.b64decode(root, validate=True)
            return cls(origin=origin, size=int(size), root=digest)
        except (binascii.Error, ValueError) as exc:
            raise CheckpointInvalid(f"checkpoint is malformed: {exc}") from None


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The signed-note key ID: ``SHA-256(name || "\\n" || 0x01 || public key)[:4]``."""
    return _key_id(name, raw_public_key(public_key))


def _key_id(name: str, raw: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + raw).digest()[:4]


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """The signed-note verifier key string, ``name+hex(key ID)+base64(0x01 || key)``."""
    encoded = base64.b64encode(_ED25519 + raw_public_key(public_key)).decode()
    return f"{name}+{key_id(name, public_key).hex()}+{encoded}"


def parse_verifier_key(vkey: str) -> tuple[str, bytes]:
    """The key name and the 32 raw Ed25519 public key bytes of a signed-note verifier key.

    Raises ValueError if it is malformed, not an Ed25519 key, or its key ID is not the one its
    name and key give: a verifier key whose parts disagree was edited or mis-copied, and using
    its key under another name would accept signatures the key's owner never meant for it.
    The caller still checks the key itself (e.g. that it is not a small-order point).
    """
    name, _, rest = vkey.strip().partition("+")
    key_hash, _, encoded = rest.partition("+")
    if _NAME.fullmatch(name) is None or _KEY_HASH.fullmatch(key_hash) is None:
        raise ValueError("a verifier key is name+hex(key ID)+base64(key)")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise ValueError("the verifier key's key is not base64") from None
    if len(raw) != 33 or raw[:1] != _ED25519:
        raise ValueError("not an Ed25519 verifier key")
    if _key_id(name, raw[1:]) != bytes.fromhex(key_hash):
        raise ValueError("the verifier key's key ID does not match its name and key")
    return name, raw[1:]


def sign_note(text: str, key: Ed25519PrivateKey, *, name: str) -> str:
    """``text`` (ending in a newline) signed by ``key`` under key name ``name``."""
    if _NAME.fullmatch(name) is None:
        raise ValueError("a key name has no spaces and no '+'")
    if not text.endswith("\n") or "\n\n" in text:
        raise ValueError("note text ends with a newline and has no blank line")
    signature = key.sign(text.encode())
    blob = base64.b64encode(key_id(name, key.public_key()) + signature).decode()
    return f"{text}\n{_SIG_PREFIX}{name} {blob}\n"


def open_note(note: str, public_key: Ed25519PublicKey, *, name: str) -> str:
    """The text of ``note`` if a signature by ``public_key`` under ``name`` verifies on it.

    Raises :class:`CheckpointInvalid` otherwise (:class:`CheckpointUnsigned` if no line is by
    this key at all, so a caller holding several keys can tell "not this key" from "bad");
    other signers' lines (witnesses) are ignored, as the signed-note spec asks.
    """
    body, sep, signatures = note.partition("\n\n")
    if not sep or not signatures.endswith("\n"):
        raise CheckpointInvalid("not a signed note: no blank line before signatures")
    text = body + "\n"
    wanted = key_id(name, public_key)
    for line in signatures[:-1].split("\n"):
        if not line.startswith(_SIG_PREFIX):
            raise CheckpointInvalid("malformed signature line")
        line_name, _, blob = line[len(_SIG_PREFIX) :].partition(" ")
        try:
            raw = base64.b64decode(blob, validate=True)
        except binascii.Error:
            raise CheckpointInvalid("signature line is not base64") from None
        if line_name != name or raw[:4] != wanted:
            continue
        try:
            public_key.verify(raw[4:], text.encode())
        except InvalidSignature:
            raise CheckpointInvalid("the signature does not verify") from None
        return text
    raise CheckpointUnsigned(f"no signature by key {name}+{wanted.hex()}")


def sign_checkpoint(checkpoint: Checkpoint, key: Ed25519PrivateKey, *, name: str = "") -> str:
    """The signed note of ``checkpoint``, signed by ``key`` under ``name`` (default: origin)."""
    return sign_note(checkpoint.text(), key, name=name or checkpoint.origin)


def open_checkpoint(
    note: str, public_key: Ed25519PublicKey, *, name: str = "", origin: str | None = None
) -> Checkpoint:
    """The checkpoint in ``note`` if ``public_key`` signed it under ``name`` (default: origin).

    Given ``origin``, the checkpoint must also be of that log. A key may sign for several logs
    (staging and production, say), and the signature says only who signed, not which log the
    verifier meant: without the pin a checkpoint of another log would be taken for this one.
    Raises :class:`CheckpointInvalid` if the note is malformed, of another log, or no signature
    verifies.
    """
    body, _, _ = note.partition("\n\n")
    checkpoint = Checkpoint.parse(body + "\n")
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointInvalid(f"the checkpoint is of the log {checkpoint.origin}, not {origin}")
    open_note(note, public_key, name=name or checkpoint.origin)
    return checkpoint
