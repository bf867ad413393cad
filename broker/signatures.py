"""HTTP message signatures (RFC 9421, Ed25519) and Content-Digest (RFC 9530) for Simpul.

A consumer signs every request over :data:`REQUEST_COMPONENTS`; the broker verifies it and
answers with a response signed over :data:`RESPONSE_COMPONENTS`, bound to the request by
``X-Road-Request-Hash`` (see :func:`request_hash`).

``@target-uri`` is the full URL the client sent the request to, exactly as its HTTP client
sends it (sign ``str(httpx.URL(url))``). The server rebuilds it as ``str(request.url)``,
which Starlette assembles from the scheme uvicorn saw, the ``Host`` header, the path and the
query. Behind a reverse proxy the two agree only if the proxy keeps ``Host`` and the broker
learns the original scheme (uvicorn ``--proxy-headers`` with ``--forwarded-allow-ips`` set to
the proxy only), or if the broker is configured with its public base URL and rebuilds the
target from that. Identifiers need no percent-encoding (see ``broker.registry``), so the
path Starlette decodes is the path the client signed.

Requests in the clients' usual shape are verified by :mod:`broker._fastverify` and the
broker's usual responses signed by :mod:`broker._fastsig`; everything else, and every
refusal, goes through ``http-message-signatures`` (:mod:`broker._libsig`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import HTTPMessageSignaturesException, HTTPSignatureComponentResolver
from http_sf.compat import Dictionary, InnerList

from broker._fastsig import sign_response_headers
from broker._fastverify import Canonical, read_canonical, verify_canonical
from broker._libsig import (
    Fields,
    Request,
    Response,
    check_digest,
    group,
    sign_message,
    verify_message,
)
from broker.errors import SignatureInvalid, SignatureMissing

__all__ = [
    "AUDIT_SEQ_HEADER",
    "CONSENT_REQUEST_COMPONENTS",
    "OPTIONAL_REQUEST_HEADERS",
    "REQUEST_COMPONENTS",
    "REQUEST_COMPONENTS_WITHOUT_CONSENT",
    "REQUEST_HASH_HEADER",
    "REQUEST_TAG",
    "RESPONSE_COMPONENTS",
    "RESPONSE_TAG",
    "SIGNATURE_LABEL",
    "Headers",
    "KeyResolver",
    "VerifiedRequest",
    "VerifiedResponse",
    "request_components",
    "request_hash",
    "sign_request",
    "sign_response",
    "verify_request",
    "verify_response",
]

REQUEST_COMPONENTS: tuple[str, ...] = (
    "@method",
    "@target-uri",
    "content-digest",
    "x-road-client",
    "x-road-id",
    "consent-token",
)
"""What an exchange request's signature must cover."""

REQUEST_COMPONENTS_WITHOUT_CONSENT: tuple[str, ...] = REQUEST_COMPONENTS[:-1]
"""The same for endpoints whose requests carry no consent token."""

CONSENT_REQUEST_COMPONENTS = REQUEST_COMPONENTS_WITHOUT_CONSENT
"""What a consumer's request to create a consent request must cover (it has no token yet)."""

OPTIONAL_REQUEST_HEADERS: tuple[str, ...] = ("x-road-userid", "x-road-issue", "x-road-purpose")
"""Optional exchange headers the audit record or the consent check reads: covered when sent."""


def request_components(headers: Headers, *, consent: bool = True) -> tuple[str, ...]:
    """What an exchange request with ``headers`` must cover, in the order clients sign it.

    :data:`REQUEST_COMPONENTS` (without ``consent-token`` unless ``consent``), then each of
    :data:`OPTIONAL_REQUEST_HEADERS` the request carries: the officer, the case number and the
    purpose go into the audit record, so nobody between the client and the broker may alter
    or add them unseen.
    """
    names = {name.lower() for name, _ in _pairs(headers)}
    base = REQUEST_COMPONENTS if consent else REQUEST_COMPONENTS_WITHOUT_CONSENT
    return (*base, *(name for name in OPTIONAL_REQUEST_HEADERS if name in names))


#: The audit record's sequence number on an exchange's answer (covered by its signature).
AUDIT_SEQ_HEADER: Final = "x-simpul-audit-seq"

RESPONSE_COMPONENTS: tuple[str, ...] = (
    "@status",
    "content-digest",
    "x-road-id",
    "x-road-request-hash",
)
"""What the broker's response signature must cover (plus ``content-type`` when present)."""

REQUEST_HASH_HEADER = "X-Road-Request-Hash"
SIGNATURE_LABEL = "sig1"
# The signed tag says what a signature is for, so a response signature can never be
# presented as a request signature or the other way round.
REQUEST_TAG = "simpul-request"
RESPONSE_TAG = "simpul-response"

Headers = Sequence[tuple[str, str]] | Mapping[str, str]
"""Header fields as (name, value) pairs, repeated names kept, or as a mapping."""

KeyResolver = Callable[[str], Ed25519PublicKey | None]
"""Maps a signature's ``keyid`` to the public key, or None when the key is unknown."""


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    """A request whose signature verified: who signed, when, and what exactly.

    ``components`` maps each covered component (``"@method"``, ``"x-road-client"`` ...) to
    the signed value; ``request_hash`` is the value for the response's request-hash header.
    """

    key_id: str
    created: datetime
    request_hash: str
    components: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class VerifiedResponse:
    """A response whose signature verified (and, if asked, answers the expected request)."""

    key_id: str
    created: datetime
    components: Mapping[str, str]


def sign_request(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    key: Ed25519PrivateKey,
    key_id: str,
    components: Sequence[str] = REQUEST_COMPONENTS,
    created: datetime | None = None,
) -> dict[str, str]:
    """Return ``headers`` plus ``Content-Digest``, ``Signature-Input`` and ``Signature``.

    Every header named in ``components`` must be in ``headers``; ``url`` must be the exact
    URL the request goes to. A ``Content-Digest`` already present must match ``body``.
    """
    out = dict(headers)
    sign_message(
        Request(method.upper(), url, out),
        body=body,
        key=key,
        key_id=key_id,
        label=SIGNATURE_LABEL,
        tag=REQUEST_TAG,
        components=components,
        created=created,
    )
    return out


def sign_response(
    *,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    request_hash: str | None,
    key: Ed25519PrivateKey,
    key_id: str,
    components: Sequence[str] | None = None,
    created: datetime | None = None,
) -> dict[str, str]:
    """Return ``headers`` plus ``Content-Digest``, ``X-Road-Request-Hash`` and the signature.

    By default the signature covers ``@status``, ``content-digest`` and those of
    ``content-type``, ``x-road-id``, ``x-road-request-hash`` and ``x-simpul-audit-seq`` that
    are present (a refusal of an unreadable request may have no id and no request hash to
    bind to; an answer whose audit record could not be written has no sequence number).
    """
    out = dict(headers)
    if request_hash is not None:
        out[REQUEST_HASH_HEADER] = request_hash
    if components is None:
        present = {name.lower() for name in out}
        optional = ("content-type", "x-road-id", "x-road-request-hash", AUDIT_SEQ_HEADER)
        components = ("@status", "content-digest", *(c for c in optional if c in present))
    fast = sign_response_headers(
        status=status,
        headers=out,
        body=body,
        key=key,
        key_id=key_id,
        label=SIGNATURE_LABEL,
        tag=RESPONSE_TAG,
        components=tuple(components),
        created=created or datetime.now(UTC),
    )
    if fast is not None:  # the broker's usual shape, written directly (see broker._fastsig)
        return fast
    sign_message(
        Response(status, out),
        body=body,
        key=key,
        key_id=key_id,
        label=SIGNATURE_LABEL,
        tag=RESPONSE_TAG,
        components=components,
        created=created,
    )
    return out


def verify_request(
    *,
    method: str,
    url: str,
    headers: Headers,
    body: bytes,
    resolve_key: KeyResolver,
    required: Sequence[str] = REQUEST_COMPONENTS,
    max_skew_seconds: int = 300,
    now: datetime | None = None,
) -> VerifiedRequest:
    """Verify a signed request as the broker received it; raise the error that says why not.

    ``url`` is the full URL the server saw (``str(request.url)``, see the module docstring).
    Errors: no signature → SignatureMissing; a header covered by ``required`` sent twice →
    BadRequest; Content-Digest missing, malformed, of an unsupported algorithm or not
    matching ``body`` → DigestMismatch (checked first, so a changed body says so); an
    unknown ``keyid``, wrong key, bad signature, ``alg`` other than ed25519, a ``required``
    component not covered → SignatureInvalid; ``created`` more than ``max_skew_seconds`` in
    the past or the future → SignatureStale.
    """
    pairs = _pairs(headers)
    fast = verify_canonical(
        method=method,
        url=url,
        pairs=pairs,
        body=body,
        resolve_key=resolve_key,
        label=SIGNATURE_LABEL,
        tag=REQUEST_TAG,
        required=tuple(required),
        max_skew_seconds=max_skew_seconds,
        now=now,
    )
    if fast is not None:  # the clients' usual shape, read directly (see broker._fastverify)
        return _verified(fast)
    result = verify_message(
        Request(method, url, Fields(pairs)),
        pairs,
        body=body,
        resolve_key=resolve_key,
        tag=REQUEST_TAG,
        required=required,
        max_skew_seconds=max_skew_seconds,
        now=now,
    )
    return VerifiedRequest(
        key_id=str(result.parameters["keyid"]),
        created=datetime.fromtimestamp(int(result.parameters["created"]), UTC),
        request_hash=_hash_base(result.covered_components),
        components=_components(result.covered_components),
    )


def verify_response(
    *,
    status: int,
    headers: Headers,
    body: bytes,
    resolve_key: KeyResolver,
    expected_request_hash: str | None,
    required: Sequence[str] = RESPONSE_COMPONENTS,
    max_skew_seconds: int = 300,
    now: datetime | None = None,
) -> VerifiedResponse:
    """Verify the broker's signed response, as a client does with the broker's JWKS.

    Unless ``expected_request_hash`` is None, the signed ``X-Road-Request-Hash`` must equal
    it (what :func:`request_hash` gives for the request the client sent), else
    SignatureInvalid.
    Other errors as for :func:`verify_request`.
    """
    pairs = _pairs(headers)
    result = verify_message(
        Response(status, Fields(pairs)),
        pairs,
        body=body,
        resolve_key=resolve_key,
        tag=RESPONSE_TAG,
        required=required,
        max_skew_seconds=max_skew_seconds,
        now=now,
    )
    components = _components(result.covered_components)
    if (
        expected_request_hash is not None
        and components.get("x-road-request-hash") != expected_request_hash
    ):
        raise SignatureInvalid("the response is not bound to this request (X-Road-Request-Hash)")
    return VerifiedResponse(
        key_id=str(result.parameters["keyid"]),
        created=datetime.fromtimestamp(int(result.parameters["created"]), UTC),
        components=components,
    )


def request_hash(*, method: str, url: str, headers: Headers, body: bytes) -> str:
    """The request hash: lower-case hex SHA-256 of the request's RFC 9421 signature base.

    The signature base (RFC 9421 section 2.5) is exactly what the client signed under the
    ``simpul-request`` tag: method, target URI, Content-Digest (so the body), client,
    X-Road-Id and consent token, and the ``@signature-params`` line with ``created``,
    ``keyid``, ``alg`` and ``tag``. The hash thus names one signed request and nothing else.
    Either side can compute it: the broker takes it from :class:`VerifiedRequest`, a client
    from the headers :func:`sign_request` returned. ``body`` must match the Content-Digest.
    """
    pairs = _pairs(headers)
    fast = read_canonical(
        method=method,
        url=url,
        pairs=pairs,
        body=body,
        label=SIGNATURE_LABEL,
        tag=REQUEST_TAG,
        components=None,
    )
    if fast is not None:
        return hashlib.sha256(fast[0].base).hexdigest()
    fields = group(pairs)
    check_digest(fields, body, required=("content-digest",))
    signature_input = fields.get("signature-input")
    if not signature_input:
        raise SignatureMissing("the request has no Signature-Input header")
    try:
        parsed = Dictionary()
        parsed.parse(", ".join(signature_input).encode("ascii"))
        members = [
            m
            for m in parsed.values()
            if isinstance(m, InnerList) and m.params.get("tag") == REQUEST_TAG
        ]
        if len(members) != 1:
            raise SignatureInvalid(f"expected one {REQUEST_TAG!r} signature, found {len(members)}")
        message = Request(method, url, Fields(pairs))
        # The library's resolver has an unannotated constructor.
        resolver = HTTPSignatureComponentResolver(message)  # type: ignore[no-untyped-call]
        covered = {str(item): resolver.resolve(item) for item in members[0]}
        covered['"@signature-params"'] = str(members[0])
    except (HTTPMessageSignaturesException, ValueError, TypeError) as exc:
        raise SignatureInvalid(f"cannot rebuild the signature base: {exc}") from exc
    return _hash_base(covered)


def _pairs(headers: Headers) -> Sequence[tuple[str, str]]:
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


def _verified(fast: Canonical) -> VerifiedRequest:
    return VerifiedRequest(
        key_id=fast.key_id,
        created=datetime.fromtimestamp(fast.created, UTC),
        request_hash=hashlib.sha256(fast.base).hexdigest(),
        components=MappingProxyType(fast.components),
    )


def _hash_base(covered: Mapping[str, str]) -> str:
    # The same lines, in the same order, that the library joins into the signature base.
    base = "\n".join(f"{name}: {value}" for name, value in covered.items())
    return hashlib.sha256(base.encode("ascii")).hexdigest()


def _components(covered: Mapping[str, str]) -> Mapping[str, str]:
    names = {
        (name[1:-1] if name.startswith('"') and name.endswith('"') else name): value
        for name, value in covered.items()
        if name != '"@signature-params"'
    }
    return MappingProxyType(names)
