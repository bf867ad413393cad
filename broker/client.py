"""A consumer's client for Simpul: signs every request, verifies every signed answer.

Agency systems written in Python use this; the demo and the end-to-end tests do too.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc.jwk import OKPKey

from broker.keys import jwk_to_public_key, to_private_key
from broker.signatures import (
    AUDIT_SEQ_HEADER,
    CONSENT_REQUEST_COMPONENTS,
    RESPONSE_COMPONENTS,
    request_components,
    request_hash,
    sign_request,
    verify_response,
)

__all__ = ["ExchangeResult", "SimpulClient", "SimpulClientError"]


# As many idle connections kept as open: httpcore 1.0.9 (encode/httpcore#1110) may close a
# "surplus idle" connection it has just handed to another thread's request, whose read then fails
# with EBADF. That pass runs whenever the pool holds more connections than the keep-alive limit,
# which threads round-robining over several nodes reach; with the limits equal it never runs
# below max_connections.
_POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100)
#: Every problem type's URN begins so (broker/problems.py).
_PROBLEM_PREFIX = "urn:simpul:problem:"


class SimpulClientError(Exception):
    """The broker answered something this client cannot accept (e.g. a bad signature)."""


@dataclass(frozen=True, slots=True)
class ExchangeResult:
    """An exchange's outcome: the record on success, the problem type on refusal."""

    status: int
    body: dict[str, Any]
    headers: Mapping[str, str]

    @property
    def ok(self) -> bool:
        """Whether data was released."""
        return self.status == 200

    @property
    def problem_type(self) -> str | None:
        """The stable problem slug of a refusal: from the body's ``type``, which the broker's
        signature covers (``X-Road-Error``, which it does not, only for a body without one)."""
        if self.status == 200:
            return None
        kind = self.body.get("type") if isinstance(self.body, dict) else None
        if isinstance(kind, str) and kind.startswith(_PROBLEM_PREFIX):
            return kind.removeprefix(_PROBLEM_PREFIX)
        return self.headers.get("x-road-error")

    @property
    def audit_seq(self) -> int | None:
        """The audit log sequence number of this exchange."""
        seq = self.headers.get(AUDIT_SEQ_HEADER)
        return int(seq) if seq else None


class SimpulClient:
    """Signs requests as ``client_id`` with ``key``; verifies answers with the broker's keys.

    ``base_url`` may list several broker nodes: requests then go round-robin, as behind a
    load balancer (each node is stateless; they share one database).
    """

    def __init__(
        self,
        *,
        base_url: str | Sequence[str],
        client_id: str,
        key: OKPKey,
        http: httpx.Client | None = None,
        verify_responses: bool = True,
    ) -> None:
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise ValueError("at least one broker URL is needed")
        self._nodes = itertools.cycle([u.rstrip("/") for u in urls])
        self.base_url = urls[0].rstrip("/")
        self.client_id = client_id
        self._key = key
        self._private = to_private_key(key)
        self._http = http or httpx.Client(timeout=30.0, limits=_POOL_LIMITS)
        self._verify_responses = verify_responses
        self._broker_keys: dict[str, Any] | None = None
        self._public_keys: dict[str, Any] = {}  # by kid, made from _broker_keys

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> SimpulClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        extra_headers: Mapping[str, str] | None = None,
        components: Sequence[str] | None = None,
        xroad_id: str | None = None,
    ) -> httpx.Response:
        """Sign and send one request. Low level: tests use it to build bad requests.

        By default the signature covers what an exchange must (:func:`request_components`):
        the officer, case number and purpose headers included whenever they are sent.
        """
        url = next(self._nodes) + path
        headers = {
            "X-Road-Client": self.client_id,
            "X-Road-Id": xroad_id or str(uuid.uuid4()),
            "Content-Type": "application/json",
            **(extra_headers or {}),
        }
        signed = sign_request(
            method=method,
            url=url,
            headers=headers,
            body=body,
            key=self._private,
            key_id=str(self._key.kid),
            components=request_components(headers) if components is None else components,
        )
        return self._http.request(method, url, content=body, headers=signed)

    def request_consent(
        self,
        *,
        subject_nik: str,
        grants: Sequence[Mapping[str, Any]],
        purpose: Mapping[str, str],
        procedure_ref: str,
        valid_for_seconds: int = 30 * 86_400,
    ) -> dict[str, Any]:
        """Ask the citizen for consent; returns the PENDING consent request."""
        body = json.dumps(
            {
                "subject_nik": subject_nik,
                "grants": list(grants),
                "purpose": dict(purpose),
                "procedure_ref": procedure_ref,
                "valid_for_seconds": valid_for_seconds,
            }
        ).encode()
        response = self.send(
            "POST", "/v1/consent-requests", body, components=CONSENT_REQUEST_COMPONENTS
        )
        return self._json(response, expect=201)

    def consent_request(self, request_id: str) -> dict[str, Any]:
        """Poll a consent request; an APPROVED one carries ``consent_token``."""
        response = self.send(
            "GET", f"/v1/consent-requests/{request_id}", components=CONSENT_REQUEST_COMPONENTS
        )
        return self._json(response, expect=200)

    def fetch(
        self,
        service_id: str,
        query: Mapping[str, Any],
        *,
        consent_token: str,
        officer: str | None = None,
        issue: str | None = None,
    ) -> ExchangeResult:
        """One exchange. Refusals come back as results with a problem type, not exceptions."""
        body = json.dumps(dict(query)).encode()
        extra = {"Consent-Token": consent_token}
        if officer:
            extra["X-Road-UserId"] = officer
        if issue:
            extra["X-Road-Issue"] = issue
        path = f"/r1/{service_id}"
        response = self.send("POST", path, body, extra_headers=extra)
        if self._verify_responses:
            self._check_signature(response)
        return ExchangeResult(
            status=response.status_code,
            body=response.json() if response.content else {},
            headers={k.lower(): v for k, v in response.headers.items()},
        )

    def _check_signature(self, response: httpx.Response) -> None:
        request = response.request
        expected = request_hash(
            method=request.method,
            url=str(request.url),
            headers=list(request.headers.items()),
            body=request.content,
        )
        # An audit sequence number is trusted only if the signature covers it, and data is
        # released only with one: an answer that says nothing was recorded is not accepted.
        required = RESPONSE_COMPONENTS
        if AUDIT_SEQ_HEADER in response.headers:
            required = (*RESPONSE_COMPONENTS, AUDIT_SEQ_HEADER)
        elif response.status_code == 200:
            raise SimpulClientError("broker answer released data without an audit record")

        def resolve(kid: str) -> Any:
            public = self._public_keys.get(kid)
            if public is None:
                keys = self._jwks()
                if kid not in keys:  # the broker may have rotated its key since: look again
                    keys = self._jwks(refresh=True)
                if kid not in keys:
                    return None
                # Made once a key: the JWK's checks (libsodium's point check among them) cost
                # about as much as the signature's.
                public = self._public_keys[kid] = jwk_to_public_key(keys[kid])
            return public

        try:
            verify_response(
                status=response.status_code,
                headers=list(response.headers.items()),
                body=response.content,
                expected_request_hash=expected,
                resolve_key=resolve,
                required=required,
            )
        except Exception as exc:
            raise SimpulClientError(f"broker response signature refused: {exc}") from exc

    def _jwks(self, *, refresh: bool = False) -> dict[str, Any]:
        if self._broker_keys is None or refresh:
            doc = self._http.get(self.base_url + "/.well-known/jwks.json").json()
            self._broker_keys = {k["kid"]: k for k in doc["keys"]}
            self._public_keys.clear()
        return self._broker_keys

    @staticmethod
    def _json(response: httpx.Response, *, expect: int) -> dict[str, Any]:
        if response.status_code != expect:
            raise SimpulClientError(
                f"{response.request.method} {response.request.url.path}: "
                f"HTTP {response.status_code} {response.text[:300]}"
            )
        data: dict[str, Any] = response.json()
        return data
