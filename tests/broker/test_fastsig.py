"""The direct response signer writes exactly what the library writes (Ed25519 is
deterministic), and falls back to the library for anything outside its shape."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

import broker.signatures as signatures
from broker._fastsig import sign_response_headers
from broker.signatures import RESPONSE_TAG, SIGNATURE_LABEL, sign_response, verify_response

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
CREATED = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _both(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> tuple[Any, Any]:
    """(fast path's outcome, library's outcome): headers, or the exception type raised."""

    def outcome() -> Any:
        try:
            return sign_response(**kwargs)
        except Exception as exc:  # noqa: BLE001 - the outcome is what is compared
            return type(exc)

    fast = outcome()
    with monkeypatch.context() as patched:
        patched.setattr(signatures, "sign_response_headers", lambda **_: None)
        library = outcome()
    return fast, library


_VALUE = st.text(alphabet=st.characters(min_codepoint=9, max_codepoint=300), max_size=40)


class TestSameAsLibrary:
    @settings(max_examples=150, deadline=None)
    @given(
        status=st.integers(100, 599),
        xroad_id=st.one_of(st.uuids().map(str), _VALUE),
        media=st.sampled_from(["application/json", "application/problem+json", " text/x ", ""]),
        body=st.binary(max_size=300),
        request_hash=st.one_of(st.none(), st.text("0123456789abcdef", min_size=64, max_size=64)),
        key_id=st.one_of(st.sampled_from(["simpul-broker-1", "k"]), _VALUE),
        seq=st.one_of(st.none(), st.integers(1, 10**9).map(str)),
    )
    def test_headers_identical(
        self,
        status: int,
        xroad_id: str,
        media: str,
        body: bytes,
        request_hash: str | None,
        key_id: str,
        seq: str | None,
    ) -> None:
        headers = {"Content-Type": media, "X-Road-Id": xroad_id}
        if seq is not None:
            headers["X-Simpul-Audit-Seq"] = seq
        with pytest.MonkeyPatch.context() as monkeypatch:
            fast, library = _both(
                monkeypatch,
                status=status,
                headers=headers,
                body=body,
                request_hash=request_hash,
                key=KEY,
                key_id=key_id,
                created=CREATED,
            )
        assert fast == library
        if isinstance(fast, dict):
            assert list(fast) == list(library)  # the same order on the wire too

    @pytest.mark.parametrize(
        "components",
        [
            ("@status", "content-digest"),
            ("@status", "content-digest", "x-road-id"),
            ("content-digest", "@status", "content-type"),
            ("@status", "content-digest", "x-absent"),  # the library refuses: so must we
            ("@status", "content-digest", "@method"),  # a request component: library decides
            ("@status", "x-road-id"),  # no content-digest: the library covers the body anyway
            ("@status", "content-digest", "x-road-id", "x-road-id"),  # twice: library refuses
        ],
    )
    def test_explicit_components(
        self, monkeypatch: pytest.MonkeyPatch, components: tuple[str, ...]
    ) -> None:
        fast, library = _both(
            monkeypatch,
            status=200,
            headers={"Content-Type": "application/json", "X-Road-Id": "abc"},
            body=b"{}",
            request_hash=None,
            key=KEY,
            key_id="simpul-broker-1",
            components=components,
            created=CREATED,
        )
        assert fast == library

    def test_an_earlier_signature_in_another_case_is_replaced(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        fast, library = _both(
            monkeypatch,
            status=200,
            headers={"X-Road-Id": "abc", "signature": "old=:AA==:", "signature-input": "old=()"},
            body=b"{}",
            request_hash=None,
            key=KEY,
            key_id="simpul-broker-1",
            created=CREATED,
        )
        assert fast == library
        assert [name for name in fast if name.lower() == "signature"] == ["Signature"]

    def test_the_answer_verifies(self) -> None:
        signed = sign_response(
            status=200,
            headers={"Content-Type": "application/json", "X-Road-Id": "abc"},
            body=b'{"nama":"SITI"}',
            request_hash="ab" * 32,
            key=KEY,
            key_id="simpul-broker-1",
        )
        verified = verify_response(
            status=200,
            headers=signed,
            body=b'{"nama":"SITI"}',
            resolve_key=lambda kid: KEY.public_key() if kid == "simpul-broker-1" else None,
            expected_request_hash="ab" * 32,
        )
        assert verified.key_id == "simpul-broker-1"


class TestOutsideTheShape:
    @pytest.mark.parametrize(
        ("headers", "key_id"),
        [
            ({"X-Road-Id": "a", "x-road-id": "b"}, "k"),  # a name twice
            ({"X-Road-Id": "a", "Content-Digest": "sha-256=:x:"}, "k"),  # digest already set
            ({"X-Road-Id": "caf\u00e9"}, "k"),  # not ASCII
            ({"X-Road-Id": "a"}, 'k"1'),  # a key id needing escapes
        ],
    )
    def test_returns_none(self, headers: dict[str, str], key_id: str) -> None:
        assert _fast(headers=headers, key_id=key_id) is None

    @pytest.mark.parametrize("label", ["Sig1", "sig/1", "1sig", "", "s" * 65])
    def test_a_label_that_is_no_structured_fields_key(self, label: str) -> None:
        assert _fast() is not None
        assert _fast(label=label) is None


def _fast(
    *,
    headers: dict[str, str] | None = None,
    key_id: str = "k",
    label: str = SIGNATURE_LABEL,
) -> dict[str, str] | None:
    return sign_response_headers(
        status=200,
        headers={"X-Road-Id": "a"} if headers is None else headers,
        body=b"",
        key=KEY,
        key_id=key_id,
        label=label,
        tag=RESPONSE_TAG,
        components=("@status", "content-digest", "x-road-id"),
        created=CREATED,
    )
