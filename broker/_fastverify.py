"""A direct RFC 9421 reader for the broker's canonical signed request: step 1 of every exchange.

``http-message-signatures`` parses Signature-Input and Signature as general Structured Fields,
resolves every component through its resolver and serialises the parameters back, which costs
about three times the Ed25519 verification itself. Our clients
(:func:`~broker.signatures.sign_request`) send one narrow shape::

    Signature-Input: sig1=("@method" "@target-uri" "content-digest" ...);created=N;
        keyid="K";alg="ed25519";tag="simpul-request"      (on one line)
    Signature: sig1=:<a 64-byte signature in canonical base64>:

with every covered header on one field line of printable ASCII, a canonical SHA-256
Content-Digest of the body and a plain absolute URL (no userinfo, fragment or percent escape).
In that shape the serialised parameters are the header's own text and every component's value
is the field as sent, so the signature base can be written out directly.

This path only ever *accepts*. Anything outside the shape, and every failure inside it (an
unknown key, a bad signature, a stale ``created``), returns None, and the caller runs the
library, which then refuses with its own precise error. The decision is therefore the
library's on every input; ``tests/broker/test_fastverify.py`` checks that differentially.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker import _ed25519 as ed25519
from broker._libsig import LIBRARY_SKEW

__all__ = ["Canonical", "read_canonical", "verify_canonical"]

_DERIVED = frozenset({"@method", "@target-uri"})
_FIELD_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
# A Structured Fields string needs no escape for these, so its text is its value.
_KEY_ID = r'"([\x20\x21\x23-\x5b\x5d-\x7e]{1,256})"'
# Integers as RFC 9651 serialises them: no sign, no leading zero, at most 15 digits.
_CREATED = r"(0|[1-9][0-9]{0,14})"
_COMPONENT_LIST = r'((?:"[a-z0-9@][a-z0-9-]{0,63}")(?: "[a-z0-9@][a-z0-9-]{0,63}"){0,15})'
_SIGNATURE = re.compile(r"([a-z][a-z0-9]{0,15})=:([A-Za-z0-9+/]{86}==):")
_METHOD = re.compile(r"[A-Z]{1,16}")
# An absolute URL whose text is its own @target-uri: RFC 3986 characters without "%", "#" or
# userinfo, and a path that starts with "/".
_URL = re.compile(
    r"[a-z][a-z0-9+.-]{0,15}://[A-Za-z0-9.-]{1,253}(?::[0-9]{1,5})?"
    r"/[A-Za-z0-9._~!$&'()*+,;=:@/-]{0,2048}(?:\?[A-Za-z0-9._~!$&'()*+,;=:@/?-]{0,2048})?"
)
_PRINTABLE = re.compile(r"[\x20-\x7e]{0,16384}")


@dataclass(frozen=True, slots=True)
class Canonical:
    """A request in the canonical shape: its signature base and what the base covers."""

    key_id: str
    created: int
    base: bytes
    components: dict[str, str]  # covered component (unquoted) -> signed value, in order


@dataclass(frozen=True, slots=True)
class _Shape:
    pattern: re.Pattern[str]
    components: tuple[str, ...] | None  # None: read the list from the header


@lru_cache(maxsize=64)
def _shape(label: str, tag: str, components: tuple[str, ...] | None) -> _Shape | None:
    if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", label) or not re.fullmatch(r"[a-z0-9-]+", tag):
        return None
    if components is None:
        inner = _COMPONENT_LIST
    elif len(set(components)) != len(components) or not all(map(_known, components)):
        return None
    else:
        inner = "(" + re.escape(" ".join(f'"{c}"' for c in components)) + ")"
    params = rf';created={_CREATED};keyid={_KEY_ID};alg="ed25519";tag="{tag}"'
    return _Shape(re.compile(rf"{label}=\({inner}\){params}"), components)


def _known(component: str) -> bool:
    return component in _DERIVED or bool(_FIELD_NAME.fullmatch(component))


def _first_lines(pairs: Sequence[tuple[str, str]]) -> dict[str, str | None]:
    """Each field by lower-case name; None for a field sent on more than one line."""
    fields: dict[str, str | None] = {}
    for name, value in pairs:
        low = name.lower()
        fields[low] = None if low in fields else value
    return fields


def read_canonical(
    *,
    method: str,
    url: str,
    pairs: Sequence[tuple[str, str]],
    body: bytes,
    label: str,
    tag: str,
    components: tuple[str, ...] | None,
) -> tuple[Canonical, dict[str, str | None]] | None:
    """The signature base of a canonical request (and its fields), or None if not canonical.

    With ``components``, the signature must cover exactly those, in that order. Nothing is
    verified here but the Content-Digest, which must be the canonical SHA-256 of ``body``.
    """
    shape = _shape(label, tag, components)
    if shape is None or not isinstance(body, bytes):
        return None
    if not (_METHOD.fullmatch(method) and _URL.fullmatch(url)):
        return None
    fields = _first_lines(pairs)
    signature_input = fields.get("signature-input")
    digest = fields.get("content-digest")
    if signature_input is None or digest is None:
        return None
    params = signature_input.strip(" \t")
    match = shape.pattern.fullmatch(params)
    if match is None:
        return None
    expected = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
    if digest.strip(" \t") != expected:
        return None
    covered = shape.components or tuple(c[1:-1] for c in match[1].split(" "))
    if len(set(covered)) != len(covered) or "content-digest" not in covered:
        return None
    values: dict[str, str] = {}
    lines = []
    for component in covered:
        if component == "@method":
            value = method
        elif component == "@target-uri":
            value = url
        elif component.startswith("@"):
            return None
        else:
            raw = fields.get(component)
            if raw is None:
                return None
            value = raw.strip(" \t")
            if not _PRINTABLE.fullmatch(value):
                return None
        values[component] = value
        lines.append(f'"{component}": {value}')
    lines.append(f'"@signature-params": {params[len(label) + 1 :]}')
    base = "\n".join(lines).encode("ascii")
    return Canonical(key_id=match[3], created=int(match[2]), base=base, components=values), fields


def verify_canonical(
    *,
    method: str,
    url: str,
    pairs: Sequence[tuple[str, str]],
    body: bytes,
    resolve_key: Callable[[str], Ed25519PublicKey | None],
    label: str,
    tag: str,
    required: tuple[str, ...],
    max_skew_seconds: int,
    now: datetime | None,
) -> Canonical | None:
    """The verified canonical request; None when the library must decide (see module doc)."""
    read = read_canonical(
        method=method,
        url=url,
        pairs=pairs,
        body=body,
        label=label,
        tag=tag,
        components=required,
    )
    if read is None:
        return None
    canonical, fields = read
    signature = _signature(fields.get("signature"), label)
    if signature is None or not _in_window(canonical.created, now, max_skew_seconds):
        return None
    key = resolve_key(canonical.key_id)  # its exceptions propagate, as from the library
    if not isinstance(key, Ed25519PublicKey):
        return None
    if not ed25519.verify(key, signature, canonical.base):
        return None  # refused, or refused only by libsodium's stricter rules: the library decides
    return canonical


def _signature(field: str | None, label: str) -> bytes | None:
    match = _SIGNATURE.fullmatch(field.strip(" \t")) if field is not None else None
    if match is None or match[1] != label:
        return None
    try:
        raw = base64.b64decode(match[2], validate=True)
    except binascii.Error:  # pragma: no cover - the pattern admits only valid base64
        return None
    # Only the canonical spelling: the library reads other spellings by its own rules.
    return raw if base64.b64encode(raw).decode() == match[2] else None


def _in_window(created: int, now: datetime | None, max_skew_seconds: int) -> bool:
    # The same arithmetic as the library path's window, and the library's own clock check.
    age = (now or datetime.now(UTC)).timestamp() - created
    if age > max_skew_seconds or -age > max_skew_seconds:
        return False
    try:
        return datetime.fromtimestamp(created, UTC) <= datetime.now(UTC) + LIBRARY_SKEW
    except (OverflowError, OSError, ValueError):
        return False
