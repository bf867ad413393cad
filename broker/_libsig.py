"""The reference path of :mod:`broker.signatures`: RFC 9421 through ``http-message-signatures``.

Every message outside the broker's usual shapes is signed and verified here, and so is every
refusal: the direct paths (:mod:`broker._fastsig`, :mod:`broker._fastverify`) only ever produce
what this path would, and hand anything else over to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import (
    ContentDigest,
    HTTPMessageSignaturesException,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    MappingKeyResolver,
    VerifyResult,
    algorithms,
)

from broker.errors import (
    BadRequest,
    DigestMismatch,
    SignatureInvalid,
    SignatureMissing,
    SignatureStale,
)

__all__ = [
    "LIBRARY_SKEW",
    "Fields",
    "Request",
    "Response",
    "check_digest",
    "group",
    "sign_message",
    "verify_message",
]

KeyResolver = Callable[[str], Ed25519PublicKey | None]

# The library checks `created` against its own clock with a 5 s tolerance; a window this wide
# leaves that check to us (an injectable clock, our skew, and SignatureStale as the answer).
LIBRARY_SKEW = timedelta(days=365 * 50)


@dataclass(slots=True)
class Request:
    """A request as the library reads it."""

    method: str
    url: str
    headers: Any


@dataclass(slots=True)
class Response:
    """A response as the library reads it."""

    status_code: int
    headers: Any


class Fields:
    """A read-only header view for verification that keeps repeated field lines."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._pairs = pairs

    def items(self) -> Sequence[tuple[str, str]]:
        """The field lines, in wire order."""
        return self._pairs


class _Resolver(HTTPSignatureKeyResolver):
    """Adapts a ``kid → key`` callable; remembers what went wrong for a precise error."""

    def __init__(self, resolve: KeyResolver) -> None:
        self._resolve = resolve
        self.unknown: str | None = None
        self.error: Exception | None = None

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey | None:
        try:
            key = self._resolve(key_id)
        except Exception as exc:  # noqa: BLE001 - re-raised by verify_message, not swallowed
            self.error = exc
            return None
        if key is None:
            self.unknown = key_id
        return key

    def resolve_private_key(self, key_id: str) -> Ed25519PrivateKey:  # pragma: no cover
        raise NotImplementedError


def sign_message(
    message: Request | Response,
    *,
    body: bytes,
    key: Ed25519PrivateKey,
    key_id: str,
    label: str,
    tag: str,
    components: Sequence[str],
    created: datetime | None,
) -> None:
    """Sign ``message`` in place (its headers gain Signature-Input and Signature)."""
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={key_id: key}),
    )
    try:
        signer.sign(
            message,
            key_id=key_id,
            created=created or datetime.now(UTC),
            label=label,
            tag=tag,
            covered_component_ids=tuple(components),
            body=body,
            use_existing_digest=True,
        )
    except HTTPMessageSignaturesException as exc:
        raise ValueError(f"cannot sign the message: {exc}") from exc


def verify_message(
    message: Request | Response,
    pairs: Sequence[tuple[str, str]],
    *,
    body: bytes,
    resolve_key: KeyResolver,
    tag: str,
    required: Sequence[str],
    max_skew_seconds: int,
    now: datetime | None,
) -> VerifyResult:
    """Verify the one signature tagged ``tag``; raise the broker error that says why not."""
    fields = group(pairs)
    if "signature" not in fields or "signature-input" not in fields:
        raise SignatureMissing("the message has no Signature and Signature-Input headers")
    # A covered field sent twice is signed as "a, b" while code reading the first line sees
    # "a"; refuse it rather than let the two disagree.
    for name in required:
        if not name.startswith("@") and len(fields.get(name, ())) > 1:
            raise BadRequest(f"header {name!r} appears more than once")
    check_digest(fields, body, required=required)

    resolver = _Resolver(resolve_key)
    verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=resolver)
    verifier.max_clock_skew = LIBRARY_SKEW
    try:
        results = verifier.verify(
            message,
            max_age=None,
            expect_tag=tag,
            require_components=tuple(required),
            body=body,
        )
    except (HTTPMessageSignaturesException, ValueError, TypeError) as exc:
        if resolver.error is not None:
            raise resolver.error from exc
        if resolver.unknown is not None:
            raise SignatureInvalid(f"unknown key id {resolver.unknown[:100]!r}") from exc
        reason = f": {exc}" if str(exc) else ""
        raise SignatureInvalid(f"signature does not verify{reason}") from exc
    if len(results) != 1:
        raise SignatureInvalid(f"expected one {tag!r} signature, found {len(results)}")
    result = results[0]
    _check_window(result.parameters, now=now, max_skew_seconds=max_skew_seconds)
    return result


def check_digest(fields: Mapping[str, list[str]], body: bytes, *, required: Sequence[str]) -> None:
    """Content-Digest must match ``body`` (and be present if covered or the body is not empty)."""
    values = fields.get("content-digest")
    if not values:
        if "content-digest" in required or body:
            raise DigestMismatch("the message has no Content-Digest header")
        return
    try:
        ContentDigest.verify(", ".join(values), body)
    except (HTTPMessageSignaturesException, ValueError) as exc:
        raise DigestMismatch(str(exc)) from exc


def _check_window(
    params: Mapping[str, Any], *, now: datetime | None, max_skew_seconds: int
) -> None:
    current = (now or datetime.now(UTC)).timestamp()
    created = params["created"]  # the library refuses a signature without an integer created
    age = current - created
    if age > max_skew_seconds:
        raise SignatureStale(f"signature created {age:.0f} s ago (at most {max_skew_seconds} s)")
    if -age > max_skew_seconds:
        raise SignatureStale(
            f"signature created {-age:.0f} s in the future (at most {max_skew_seconds} s)"
        )
    expires = params.get("expires")
    if expires is not None and expires < current:
        raise SignatureStale("signature has expired")


def group(pairs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """Field lines by lower-case name, each value trimmed of surrounding spaces and tabs."""
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        fields.setdefault(name.lower(), []).append(value.strip(" \t"))
    return fields
