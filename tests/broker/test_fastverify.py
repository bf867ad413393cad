"""The direct request verifier decides exactly as the library does, on every input.

Requests are signed for real and then mutated the ways a careless or hostile client could
(headers changed, repeated, re-cased or dropped; components reordered; parameters added or
respelled; whitespace; another alg, tag or label; bad base64; flipped bits), and often signed
again over the result. Each is verified twice, once as the broker does and once with the
direct path switched off, and both outcomes (the verified request, or the error type and its
detail) must be equal. The same holds for ``request_hash``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import broker.signatures as signatures
from broker._fastverify import read_canonical, verify_canonical
from broker.errors import Error
from broker.signatures import (
    REQUEST_COMPONENTS,
    REQUEST_COMPONENTS_WITHOUT_CONSENT,
    REQUEST_TAG,
    SIGNATURE_LABEL,
    request_components,
    request_hash,
    verify_request,
)
from tests.broker.signed_requests import (
    MUTATIONS,
    NOW,
    URL,
    Mutation,
    Req,
    canonical,
    mutated,
    requests,
    resign,
    resolve,
)


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        result = call()
    except Error as exc:
        return type(exc), exc.detail
    except Exception as exc:  # noqa: BLE001 - the outcome is what is compared
        return type(exc), str(exc)
    if isinstance(result, str):
        return result
    return (result.key_id, result.created, result.request_hash, dict(result.components))


def _verify(req: Req, required: tuple[str, ...], now: datetime = NOW) -> Any:
    return _outcome(
        lambda: verify_request(
            method=req.method,
            url=req.url,
            headers=req.headers,
            body=req.body,
            resolve_key=resolve,
            required=required,
            now=now,
        )
    )


def _hash(req: Req) -> Any:
    return _outcome(
        lambda: request_hash(method=req.method, url=req.url, headers=req.headers, body=req.body)
    )


def both(req: Req, required: tuple[str, ...]) -> tuple[Any, Any]:
    """((verify, hash) through the broker's path, (verify, hash) through the library alone)."""
    fast = (_verify(req, required), _hash(req))
    with (
        mock.patch.object(signatures, "verify_canonical", return_value=None),
        mock.patch.object(signatures, "read_canonical", return_value=None),
    ):
        library = (_verify(req, required), _hash(req))
    return fast, library


# --- the properties ---------------------------------------------------------------------


class TestSameAsLibrary:
    @settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutated())
    def test_same_outcome(self, case: tuple[Req, tuple[str, ...]]) -> None:
        req, required = case
        fast, library = both(req, required)
        assert fast == library

    @settings(max_examples=1000, deadline=None)
    @given(mutation=st.sampled_from(MUTATIONS), again=st.booleans(), data=st.data())
    def test_one_change_to_what_clients_send(
        self, mutation: Mutation, again: bool, data: st.DataObject
    ) -> None:
        req = mutation(data.draw, canonical())
        fast, library = both(resign(req) if again else req, REQUEST_COMPONENTS)
        assert fast == library

    @pytest.mark.parametrize(
        "components",
        [
            ("@method", "x-road-id"),  # no digest covered: the library refuses, so must we
            ("content-digest",),
            ("@target-uri", "content-digest", "x-road-id", "content-type"),
            ("x-road-id", "@method", "@target-uri", "content-digest"),
        ],
    )
    def test_other_component_sets(self, components: tuple[str, ...]) -> None:
        req = canonical()
        inner = " ".join(f'"{c}"' for c in components)
        params = re.sub(r"\(.*\)", f"({inner})", req.get("signature-input"))
        # Signed by hand: the library's signer would add the digest to what it covers.
        req = resign(req.set("signature-input", params))
        fast, library = both(req, components)
        assert fast == library

    @settings(max_examples=200, deadline=None)
    @given(requests())
    def test_signed_requests_agree(self, case: tuple[Req, tuple[str, ...]]) -> None:
        req, required = case
        fast, library = both(req, required)
        assert fast == library


_ODD = st.one_of(
    st.characters(min_codepoint=0, max_codepoint=0x7F),
    st.sampled_from(["\u00e9", "\u212a", "\u2028", "\x85", "\r\n "]),
)


class TestOddValuesSignedByAKeyHolder:
    """A registered client can sign any bytes; the base's own rules must still decide."""

    @settings(max_examples=400, deadline=None)
    @given(
        name=st.sampled_from(["x-road-client", "x-road-id", "consent-token", "content-type"]),
        prefix=st.sampled_from(["", "a"]),
        odd=_ODD,
        at_end=st.booleans(),
    )
    def test_same_outcome(self, name: str, prefix: str, odd: str, at_end: bool) -> None:
        req = canonical()
        value = prefix + odd if at_end else prefix + odd + "b"
        fast, library = both(resign(req.set(name, value)), REQUEST_COMPONENTS)
        assert fast == library


class TestClock:
    @pytest.mark.parametrize("years", [0, 49, 51, 7900])
    def test_far_from_the_real_clock(self, years: int) -> None:
        """The library also checks ``created`` against its own clock (50 years of slack)."""
        now = datetime.now(UTC).replace(microsecond=0) + timedelta(days=365 * years)
        try:
            req = canonical(created=now)
        except (OverflowError, ValueError):
            pytest.skip("beyond what datetime can express")
        fast = _verify(req, REQUEST_COMPONENTS, now)
        with mock.patch.object(signatures, "verify_canonical", return_value=None):
            library = _verify(req, REQUEST_COMPONENTS, now)
        assert fast == library


def _direct(req: Req, required: tuple[str, ...]) -> Any:
    """The direct path alone: its verified request, or None where the library must decide."""
    return verify_canonical(
        method=req.method,
        url=req.url,
        pairs=req.headers,
        body=req.body,
        resolve_key=resolve,
        label=SIGNATURE_LABEL,
        tag=REQUEST_TAG,
        required=required,
        max_skew_seconds=300,
        now=NOW,
    )


def _other_key(signature_input: str) -> str:
    return signature_input.replace("perizinan-1", "other-1")


class TestTheDirectPathIsTaken:
    """The property above would pass trivially if the direct path never ran."""

    @pytest.mark.parametrize("components", [REQUEST_COMPONENTS, REQUEST_COMPONENTS_WITHOUT_CONSENT])
    def test_for_what_clients_send(self, components: tuple[str, ...]) -> None:
        req = canonical(components=components)
        fast = _direct(req, components)
        assert fast is not None
        assert fast.components["@target-uri"] == URL
        read = read_canonical(
            method=req.method,
            url=req.url,
            pairs=req.headers,
            body=req.body,
            label=SIGNATURE_LABEL,
            tag=REQUEST_TAG,
            components=None,
        )
        assert read is not None
        assert read[0].base == fast.base

    def test_for_officer_case_and_purpose_headers(self) -> None:
        extra = {"X-Road-UserId": "petugas-7", "X-Road-Issue": "PB/1", "X-Road-Purpose": "p"}
        components = request_components(extra)
        assert components[-3:] == ("x-road-userid", "x-road-issue", "x-road-purpose")
        fast = _direct(canonical(components=components, extra=extra), components)
        assert fast is not None
        assert fast.components["x-road-userid"] == "petugas-7"

    def test_library_is_not_asked(self) -> None:
        req = canonical()
        with mock.patch.object(signatures, "verify_message", side_effect=AssertionError("library")):
            verified = verify_request(
                method=req.method,
                url=req.url,
                headers=req.headers,
                body=req.body,
                resolve_key=resolve,
                now=NOW,
            )
        assert verified.request_hash == request_hash(
            method=req.method, url=req.url, headers=req.headers, body=req.body
        )

    @pytest.mark.parametrize(
        "change",
        [
            lambda r: replace(r, body=r.body + b" "),  # digest no longer matches
            lambda r: r.set("signature-input", _other_key(r.get("signature-input"))),
            lambda r: r.set("signature", r.get("signature").replace("A", "B", 1)),
        ],
    )
    def test_refusals_go_to_the_library(self, change: Callable[[Req], Req]) -> None:
        req = change(canonical())
        assert _direct(req, REQUEST_COMPONENTS) is None
