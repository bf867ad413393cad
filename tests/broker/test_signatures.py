"""RFC 9421 request and response signatures with RFC 9530 Content-Digest."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPSignatureAlgorithm,
    InvalidSignature,
    MappingKeyResolver,
    SigningKey,
    algorithms,
)

from broker.errors import (
    BadRequest,
    DigestMismatch,
    Error,
    SignatureInvalid,
    SignatureMissing,
    SignatureStale,
    UnknownClient,
)
from broker.signatures import (
    AUDIT_SEQ_HEADER,
    CONSENT_REQUEST_COMPONENTS,
    REQUEST_COMPONENTS,
    REQUEST_COMPONENTS_WITHOUT_CONSENT,
    REQUEST_HASH_HEADER,
    RESPONSE_COMPONENTS,
    Headers,
    VerifiedRequest,
    VerifiedResponse,
    request_components,
    request_hash,
    sign_request,
    sign_response,
    verify_request,
    verify_response,
)

CLIENT_KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()
BROKER_KEY = Ed25519PrivateKey.generate()
CLIENT_KID = "perizinan-1"
BROKER_KID = "broker-1"
KEYS: dict[str, Ed25519PublicKey] = {
    CLIENT_KID: CLIENT_KEY.public_key(),
    BROKER_KID: BROKER_KEY.public_key(),
}

CREATED = datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)
URL = "http://broker.test:8000/r1/ID/GOV/DUKCAPIL/adminduk/ktp"
BODY = b'{"nik":"3171014708900001"}'
TOKEN = "eyJhbGciOiJFZDI1NTE5In0.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
XROAD_ID = "6f1c2a8e-1d2b-4c3d-9e4f-5a6b7c8d9e0f"


@dataclass
class Req:
    """A request as the server sees it."""

    method: str = "POST"
    url: str = URL
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = BODY

    def verify(self, **kwargs: object) -> VerifiedRequest:
        options: dict[str, object] = {"resolve_key": KEYS.get, "now": CREATED, **kwargs}
        return verify_request(
            method=self.method,
            url=self.url,
            headers=self.headers,
            body=self.body,
            **options,  # type: ignore[arg-type]
        )

    def set(self, name: str, value: str) -> Req:
        headers = [(n, v) for n, v in self.headers if n.lower() != name.lower()]
        return replace(self, headers=[*headers, (name, value)])

    def drop(self, name: str) -> Req:
        return replace(self, headers=[(n, v) for n, v in self.headers if n.lower() != name.lower()])

    def get(self, name: str) -> str:
        return next(v for n, v in self.headers if n.lower() == name.lower())


def signed(
    *,
    key: Ed25519PrivateKey = CLIENT_KEY,
    key_id: str = CLIENT_KID,
    components: tuple[str, ...] = REQUEST_COMPONENTS,
    created: datetime = CREATED,
    consent: bool = True,
) -> Req:
    headers = {
        "Content-Type": "application/json",
        "X-Road-Client": "ID/GOV/DPMPTSP-DKI/perizinan",
        "X-Road-Id": XROAD_ID,
    }
    if consent:
        headers["Consent-Token"] = TOKEN
    out = sign_request(
        method="POST",
        url=URL,
        headers=headers,
        body=BODY,
        key=key,
        key_id=key_id,
        components=components,
        created=created,
    )
    # Servers hand over lower-case names (ASGI); the signature must not care.
    return Req(headers=[(name.lower(), value) for name, value in out.items()])


def _digest(body: bytes, algorithm: str = "sha-256") -> str:
    value = base64.b64encode(hashlib.new(algorithm.replace("-", ""), body).digest()).decode()
    return f"{algorithm}=:{value}:"


@dataclass
class _Message:
    method: str
    url: str
    headers: dict[str, str]


def _library_signed(
    algorithm: type[HTTPSignatureAlgorithm] = algorithms.ED25519,
    key: SigningKey = CLIENT_KEY,
    *,
    created: datetime = CREATED,
    expires: datetime | None = None,
) -> Req:
    """The test request signed straight through the library, with other options."""
    headers = dict(signed().drop("signature").drop("signature-input").headers)
    message = _Message("POST", URL, headers)
    signer = HTTPMessageSigner(
        signature_algorithm=algorithm,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={CLIENT_KID: key}),
    )
    signer.sign(
        message,
        key_id=CLIENT_KID,
        label="sig1",
        tag="simpul-request",
        covered_component_ids=REQUEST_COMPONENTS,
        use_existing_digest=True,
        body=BODY,
        created=created,
        expires=expires,
    )
    return Req(headers=list(message.headers.items()))


def _ecdsa_signed() -> Req:
    """A request signed correctly, but with ECDSA P-256 instead of Ed25519."""
    return _library_signed(algorithms.ECDSA_P256_SHA256, ec.generate_private_key(ec.SECP256R1()))


class TestRequestRoundTrip:
    def test_verifies(self) -> None:
        verified = signed().verify()
        assert verified.key_id == CLIENT_KID
        assert verified.created == CREATED
        assert verified.components["x-road-client"] == "ID/GOV/DPMPTSP-DKI/perizinan"
        assert verified.components["consent-token"] == TOKEN
        assert verified.components["@target-uri"] == URL
        assert "@signature-params" not in verified.components

    def test_signature_headers(self) -> None:
        req = signed()
        assert req.get("content-digest") == _digest(BODY)
        signature_input = req.get("signature-input")
        assert signature_input.startswith(
            'sig1=("@method" "@target-uri" "content-digest" "x-road-client" "x-road-id" '
            '"consent-token");created=1740816000;keyid="perizinan-1";alg="ed25519"'
        )
        assert 'tag="simpul-request"' in signature_input

    def test_accepts_a_header_mapping(self) -> None:
        req = signed()
        verified = verify_request(
            method="POST",
            url=URL,
            headers=dict(req.headers),
            body=BODY,
            resolve_key=KEYS.get,
            now=CREATED,
        )
        assert verified.key_id == CLIENT_KID

    def test_without_consent_token(self) -> None:
        assert CONSENT_REQUEST_COMPONENTS == REQUEST_COMPONENTS_WITHOUT_CONSENT
        assert "consent-token" not in REQUEST_COMPONENTS_WITHOUT_CONSENT
        req = signed(components=REQUEST_COMPONENTS_WITHOUT_CONSENT, consent=False)
        assert req.verify(required=REQUEST_COMPONENTS_WITHOUT_CONSENT).key_id == CLIENT_KID

    def test_empty_body(self) -> None:
        out = sign_request(
            method="get",
            url=URL,
            headers={"X-Road-Client": "a", "X-Road-Id": XROAD_ID},
            body=b"",
            key=CLIENT_KEY,
            key_id=CLIENT_KID,
            components=REQUEST_COMPONENTS_WITHOUT_CONSENT,
            created=CREATED,
        )
        req = Req(method="GET", headers=list(out.items()), body=b"")
        assert req.verify(required=REQUEST_COMPONENTS_WITHOUT_CONSENT).key_id == CLIENT_KID

    @pytest.mark.parametrize("seconds", [-300, -299, 0, 299, 300])
    def test_inside_the_window(self, seconds: int) -> None:
        req = signed(created=CREATED + timedelta(seconds=seconds))
        assert req.verify().created == CREATED + timedelta(seconds=seconds)

    def test_skew_is_configurable(self) -> None:
        req = signed(created=CREATED - timedelta(seconds=30))
        with pytest.raises(SignatureStale):
            req.verify(max_skew_seconds=10)

    def test_real_clock_by_default(self) -> None:
        req = signed(created=datetime.now(UTC))
        assert req.verify(now=None).key_id == CLIENT_KID

    def test_signing_refuses_a_missing_covered_header(self) -> None:
        with pytest.raises(ValueError, match="not found"):
            sign_request(
                method="POST", url=URL, headers={}, body=BODY, key=CLIENT_KEY, key_id=CLIENT_KID
            )

    def test_signing_refuses_a_wrong_existing_digest(self) -> None:
        with pytest.raises(ValueError, match="Content-Digest"):
            sign_request(
                method="POST",
                url=URL,
                headers={"Content-Digest": _digest(b"other")},
                body=BODY,
                key=CLIENT_KEY,
                key_id=CLIENT_KID,
                components=("@method",),
            )


def _tampered_digest(req: Req) -> Req:
    """Body and digest both replaced: only the signature can tell."""
    return replace(req.set("content-digest", _digest(b"{}")), body=b"{}")


DENIED: list[object] = [
    # no signature
    pytest.param(
        lambda r: r.drop("signature"), SignatureMissing, "no Signature", id="no-signature"
    ),
    pytest.param(
        lambda r: r.drop("signature-input"),
        SignatureMissing,
        "no Signature",
        id="no-signature-input",
    ),
    pytest.param(
        lambda r: r.drop("signature").drop("signature-input"),
        SignatureMissing,
        "no Signature",
        id="unsigned",
    ),
    # the body and its digest
    pytest.param(
        lambda r: replace(r, body=BODY.replace(b"1", b"2")),
        DigestMismatch,
        "does not match",
        id="tampered-body",
    ),
    pytest.param(
        lambda r: replace(r, body=b""), DigestMismatch, "does not match", id="body-removed"
    ),
    pytest.param(
        lambda r: r.drop("content-digest"), DigestMismatch, "no Content-Digest", id="no-digest"
    ),
    pytest.param(
        lambda r: r.set("content-digest", "sha-256=abc"), DigestMismatch, "", id="malformed-digest"
    ),
    pytest.param(
        lambda r: r.set("content-digest", "sha-256=:AAAA:"),
        DigestMismatch,
        "length",
        id="short-digest",
    ),
    pytest.param(
        lambda r: r.set("content-digest", _digest(BODY, "md5")),
        DigestMismatch,
        "Unsupported",
        id="md5-digest",
    ),
    pytest.param(
        lambda r: r.set("content-digest", "sha-256=:ünï:"),
        DigestMismatch,
        "",
        id="non-ascii-digest",
    ),
    pytest.param(_tampered_digest, SignatureInvalid, "", id="body-and-digest-replaced"),
    pytest.param(
        lambda r: r.set("content-digest", _digest(BODY, "sha-512")),
        SignatureInvalid,
        "",
        id="digest-algorithm-swapped",
    ),
    # keys
    pytest.param(
        lambda r: signed(key=OTHER_KEY), SignatureInvalid, "does not verify", id="wrong-key"
    ),
    pytest.param(
        lambda r: signed(key_id="stolen"),
        SignatureInvalid,
        "unknown key id 'stolen'",
        id="unknown-kid",
    ),
    pytest.param(
        lambda r: signed(key=BROKER_KEY, key_id=BROKER_KID),
        None,
        "",
        id="another-registered-key-is-fine-here",
    ),
    # covered headers and derived components changed
    pytest.param(
        lambda r: r.set("x-road-id", "00000000-0000-4000-8000-000000000000"),
        SignatureInvalid,
        "",
        id="changed-x-road-id",
    ),
    pytest.param(
        lambda r: r.set("consent-token", TOKEN + "x"), SignatureInvalid, "", id="changed-token"
    ),
    pytest.param(
        lambda r: r.set("x-road-client", "ID/COM/BANK-X/kyc"),
        SignatureInvalid,
        "",
        id="changed-client",
    ),
    pytest.param(lambda r: r.drop("consent-token"), SignatureInvalid, "", id="removed-token"),
    pytest.param(lambda r: replace(r, method="PUT"), SignatureInvalid, "", id="changed-method"),
    pytest.param(
        lambda r: replace(r, url=URL.replace("ktp", "kk")), SignatureInvalid, "", id="changed-path"
    ),
    pytest.param(
        lambda r: replace(r, url=URL.replace("broker.test", "evil.test")),
        SignatureInvalid,
        "",
        id="changed-host",
    ),
    pytest.param(
        lambda r: replace(r, url=URL.replace("http:", "https:")),
        SignatureInvalid,
        "",
        id="changed-scheme",
    ),
    pytest.param(lambda r: replace(r, url=URL + "?x=1"), SignatureInvalid, "", id="added-query"),
    pytest.param(lambda r: replace(r, url="not a url"), SignatureInvalid, "", id="bad-url"),
    # the signed time
    pytest.param(
        lambda r: signed(created=CREATED - timedelta(seconds=301)),
        SignatureStale,
        "301 s ago",
        id="created-301s-ago",
    ),
    pytest.param(
        lambda r: signed(created=CREATED + timedelta(seconds=301)),
        SignatureStale,
        "301 s in the future",
        id="created-301s-ahead",
    ),
    pytest.param(
        lambda r: signed(created=CREATED - timedelta(days=400)),
        SignatureStale,
        "",
        id="created-last-year",
    ),
    # what the signature covers and how
    pytest.param(
        lambda r: signed(components=REQUEST_COMPONENTS_WITHOUT_CONSENT),
        SignatureInvalid,
        "consent-token",
        id="token-not-covered",
    ),
    pytest.param(
        lambda r: signed(components=("@method", "@target-uri", "x-road-client", "x-road-id")),
        SignatureInvalid,
        "",
        id="digest-not-covered",
    ),
    pytest.param(lambda r: _ecdsa_signed(), SignatureInvalid, "algorithm", id="ecdsa-alg"),
    pytest.param(
        lambda r: r.set(
            "signature-input", r.get("signature-input").replace("ed25519", "rsa-pss-sha512")
        ),
        SignatureInvalid,
        "algorithm",
        id="alg-renamed",
    ),
    pytest.param(
        lambda r: r.set(
            "signature-input", r.get("signature-input").replace("simpul-request", "other")
        ),
        SignatureInvalid,
        "tag",
        id="wrong-tag",
    ),
    pytest.param(
        lambda r: r.set(
            "signature-input", r.get("signature-input").replace(";created=1740816000", "")
        ),
        SignatureInvalid,
        "created",
        id="no-created",
    ),
    pytest.param(
        lambda r: r.set("signature", "sig1=:AAAA:"), SignatureInvalid, "", id="garbage-signature"
    ),
    pytest.param(
        lambda r: r.set("signature", "((("), SignatureInvalid, "", id="malformed-signature"
    ),
    pytest.param(
        lambda r: r.set("signature-input", r.get("signature-input").replace("sig1", "sig2")),
        SignatureInvalid,
        "labels",
        id="label-mismatch",
    ),
    # the envelope
    pytest.param(
        lambda r: replace(r, headers=[*r.headers, ("X-Road-Client", "ID/COM/BANK-X/kyc")]),
        BadRequest,
        "x-road-client",
        id="duplicate-client-header",
    ),
]


class TestRequestDenied:
    @pytest.mark.parametrize(("change", "error", "detail"), DENIED)
    def test_denied(
        self,
        change: Callable[[Req], Req],
        error: type[Error] | None,
        detail: str,
    ) -> None:
        req = change(signed())
        if error is None:
            assert req.verify().key_id == BROKER_KID
            return
        with pytest.raises(error) as info:
            req.verify()
        assert type(info.value) is error
        assert detail in info.value.detail
        assert TOKEN not in info.value.detail

    def test_resolver_errors_pass_through(self) -> None:
        def resolve(kid: str) -> Ed25519PublicKey | None:
            raise UnknownClient("client is not registered")

        with pytest.raises(UnknownClient):
            signed().verify(resolve_key=resolve)

    def test_library_errors_are_chained(self) -> None:
        with pytest.raises(DigestMismatch) as digest:
            replace(signed(), body=b"{}").verify()
        assert isinstance(digest.value.__cause__, InvalidSignature)
        with pytest.raises(SignatureInvalid) as signature:
            signed(key=OTHER_KEY).verify()
        assert isinstance(signature.value.__cause__, InvalidSignature)

    def test_library_signed_request_verifies(self) -> None:
        assert _library_signed().verify().key_id == CLIENT_KID

    @pytest.mark.parametrize(
        ("expires", "ok"),
        [(CREATED - timedelta(seconds=1), False), (CREATED + timedelta(seconds=1), True)],
    )
    def test_expires(self, expires: datetime, ok: bool) -> None:
        req = _library_signed(created=CREATED - timedelta(seconds=10), expires=expires)
        if ok:
            assert req.verify().key_id == CLIENT_KID
        else:
            with pytest.raises(SignatureStale, match="expired"):
                req.verify()


class TestRequestHash:
    def test_client_and_server_agree(self) -> None:
        req = signed()
        verified = req.verify()
        assert request_hash(method="POST", url=URL, headers=req.headers, body=BODY) == (
            verified.request_hash
        )
        assert len(verified.request_hash) == 64
        assert int(verified.request_hash, 16) >= 0

    def test_is_the_sha256_of_the_signature_base(self) -> None:
        req = signed()
        base = "\n".join(
            [
                '"@method": POST',
                f'"@target-uri": {URL}',
                f'"content-digest": {_digest(BODY)}',
                '"x-road-client": ID/GOV/DPMPTSP-DKI/perizinan',
                f'"x-road-id": {XROAD_ID}',
                f'"consent-token": {TOKEN}',
                f'"@signature-params": {req.get("signature-input").removeprefix("sig1=")}',
            ]
        )
        assert req.verify().request_hash == hashlib.sha256(base.encode()).hexdigest()
        CLIENT_KEY.public_key().verify(
            base64.b64decode(req.get("signature").removeprefix("sig1=:").rstrip(":")), base.encode()
        )

    @pytest.mark.parametrize(
        "other",
        [
            pytest.param(lambda: signed(created=CREATED + timedelta(seconds=1)), id="created"),
            pytest.param(lambda: signed(key=OTHER_KEY, key_id="k2"), id="key"),
            pytest.param(lambda: signed().set("x-road-id", "x"), id="x-road-id"),
        ],
    )
    def test_differs_for_another_request(self, other: Callable[[], Req]) -> None:
        req = other()
        assert request_hash(method="POST", url=URL, headers=req.headers, body=BODY) != (
            request_hash(method="POST", url=URL, headers=signed().headers, body=BODY)
        )

    def test_body_must_match(self) -> None:
        with pytest.raises(DigestMismatch):
            request_hash(method="POST", url=URL, headers=signed().headers, body=b"{}")

    def test_needs_a_signature(self) -> None:
        with pytest.raises(SignatureMissing):
            request_hash(
                method="POST", url=URL, headers=signed().drop("signature-input").headers, body=BODY
            )


def _response(
    *,
    status: int = 200,
    body: bytes = b'{"nama":"SITI"}',
    request_hash_value: str | None = "ab" * 32,
    key: Ed25519PrivateKey = BROKER_KEY,
    created: datetime = CREATED,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "X-Road-Id": XROAD_ID, **(extra or {})}
    return sign_response(
        status=status,
        headers=headers,
        body=body,
        request_hash=request_hash_value,
        key=key,
        key_id=BROKER_KID,
        created=created,
    )


def _verify_answer(headers: Headers, **overrides: Any) -> VerifiedResponse:
    """verify_response on the usual answer: 200, its body, bound to request hash "ab" * 32."""
    arguments: dict[str, Any] = {
        "status": 200,
        "body": b'{"nama":"SITI"}',
        "resolve_key": KEYS.get,
        "expected_request_hash": "ab" * 32,
        "now": CREATED,
    }
    return verify_response(headers=headers, **(arguments | overrides))


class TestResponse:
    def test_round_trip(self) -> None:
        headers = _response()
        assert headers[REQUEST_HASH_HEADER] == "ab" * 32
        assert headers["Signature-Input"].startswith(
            'sig1=("@status" "content-digest" "content-type" "x-road-id" "x-road-request-hash")'
        )
        verified = _verify_answer(headers)
        assert verified.key_id == BROKER_KID
        assert verified.components["@status"] == "200"
        assert verified.components["content-type"] == "application/json"

    def test_the_audit_sequence_number_is_covered(self) -> None:
        headers = _response(extra={"X-Simpul-Audit-Seq": "42"})
        assert '"x-simpul-audit-seq")' in headers["Signature-Input"]
        required = (*RESPONSE_COMPONENTS, AUDIT_SEQ_HEADER)
        verified = _verify_answer(headers, required=required)
        assert verified.components[AUDIT_SEQ_HEADER] == "42"
        with pytest.raises(SignatureInvalid):
            _verify_answer({**headers, "X-Simpul-Audit-Seq": "43"}, required=required)

    def test_bound_to_a_real_request(self) -> None:
        req = signed()
        verified = req.verify()
        headers = _response(request_hash_value=verified.request_hash)
        client_side = request_hash(method="POST", url=URL, headers=req.headers, body=BODY)
        verify_response(
            status=200,
            headers=list(headers.items()),
            body=b'{"nama":"SITI"}',
            resolve_key=KEYS.get,
            expected_request_hash=client_side,
            now=CREATED,
        )

    def test_refusal_without_request_binding(self) -> None:
        headers = sign_response(
            status=401,
            headers={"Content-Type": "application/problem+json"},
            body=b"{}",
            request_hash=None,
            key=BROKER_KEY,
            key_id=BROKER_KID,
            created=CREATED,
        )
        assert REQUEST_HASH_HEADER not in headers
        verified = verify_response(
            status=401,
            headers=headers,
            body=b"{}",
            resolve_key=KEYS.get,
            expected_request_hash=None,
            required=("@status", "content-digest"),
            now=CREATED,
        )
        assert verified.components["@status"] == "401"
        with pytest.raises(SignatureInvalid):
            verify_response(
                status=401,
                headers=headers,
                body=b"{}",
                resolve_key=KEYS.get,
                expected_request_hash=None,
                now=CREATED,
            )

    @pytest.mark.parametrize(
        ("status", "body", "expected_hash", "change", "error"),
        [
            pytest.param(
                200, b'{"nama":"BUDI"}', "ab" * 32, None, DigestMismatch, id="tampered-body"
            ),
            pytest.param(
                203, b'{"nama":"SITI"}', "ab" * 32, None, SignatureInvalid, id="changed-status"
            ),
            pytest.param(
                200, b'{"nama":"SITI"}', "cd" * 32, None, SignatureInvalid, id="other-request"
            ),
            pytest.param(
                200,
                b'{"nama":"SITI"}',
                "ab" * 32,
                (REQUEST_HASH_HEADER, "cd" * 32),
                SignatureInvalid,
                id="changed-request-hash",
            ),
            pytest.param(
                200,
                b'{"nama":"SITI"}',
                "ab" * 32,
                ("X-Road-Id", "x"),
                SignatureInvalid,
                id="changed-id",
            ),
            pytest.param(
                200,
                b'{"nama":"SITI"}',
                "ab" * 32,
                ("Content-Type", "text/html"),
                SignatureInvalid,
                id="changed-type",
            ),
            pytest.param(
                200,
                b'{"nama":"SITI"}',
                "ab" * 32,
                ("Signature", None),
                SignatureMissing,
                id="unsigned",
            ),
        ],
    )
    def test_tampering(
        self,
        status: int,
        body: bytes,
        expected_hash: str,
        change: tuple[str, str | None] | None,
        error: type[Error],
    ) -> None:
        headers = _response()
        if change is not None:
            name, value = change
            if value is None:
                del headers[name]
            else:
                headers[name] = value
        with pytest.raises(error):
            _verify_answer(headers, status=status, body=body, expected_request_hash=expected_hash)

    def test_signed_by_someone_else(self) -> None:
        with pytest.raises(SignatureInvalid):
            _verify_answer(_response(key=OTHER_KEY))

    def test_stale(self) -> None:
        with pytest.raises(SignatureStale):
            _verify_answer(_response(created=CREATED - timedelta(seconds=301)))

    def test_request_signature_is_not_a_response_signature(self) -> None:
        # A client's request signature over the same names must not pass as the broker's answer.
        req = signed(key=BROKER_KEY, key_id=BROKER_KID)
        with pytest.raises(SignatureInvalid):
            verify_response(
                status=200,
                headers=req.headers,
                body=BODY,
                resolve_key=KEYS.get,
                expected_request_hash=None,
                required=("content-digest",),
                now=CREATED,
            )

    def test_response_components(self) -> None:
        assert RESPONSE_COMPONENTS == (
            "@status",
            "content-digest",
            "x-road-id",
            "x-road-request-hash",
        )


class TestRequestComponents:
    def test_the_fixed_set_when_no_optional_header_is_sent(self) -> None:
        assert request_components({"X-Road-Client": "c"}) == REQUEST_COMPONENTS
        assert request_components([], consent=False) == REQUEST_COMPONENTS_WITHOUT_CONSENT

    def test_each_optional_header_sent_in_a_fixed_order(self) -> None:
        headers = [("x-road-purpose", "p"), ("X-ROAD-USERID", "u")]
        assert request_components(headers) == (
            *REQUEST_COMPONENTS,
            "x-road-userid",
            "x-road-purpose",
        )
        assert request_components({"X-Road-Issue": "i"}, consent=False) == (
            *REQUEST_COMPONENTS_WITHOUT_CONSENT,
            "x-road-issue",
        )

    def test_a_signature_without_a_sent_officer_header_is_refused(self) -> None:
        headers = {
            "X-Road-Client": "ID/GOV/DPMPTSP-DKI/perizinan",
            "X-Road-Id": "6f1c2a8e-1d2b-4c3d-9e4f-5a6b7c8d9e0f",
            "Consent-Token": "eyJ.eyJ.c2ln",
        }
        signed = sign_request(
            method="POST", url=URL, headers=headers, body=b"{}", key=CLIENT_KEY, key_id=CLIENT_KID
        )
        sent = {**signed, "X-Road-UserId": "petugas-7"}
        with pytest.raises(SignatureInvalid):
            verify_request(
                method="POST",
                url=URL,
                headers=sent,
                body=b"{}",
                resolve_key=KEYS.get,
                required=request_components(sent),
                now=datetime.now(UTC),
            )
