"""The remembered token check: only the token's own steps are skipped, and only for a good token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from joserfc.jwk import KeySet, OKPKey

import consent.tokens as tokens
from consent._sigcache import MAX_CACHED_TOKEN_LENGTH, VerifiedTokenCache
from consent.errors import ConsentExpired, ConsentInvalid, ConsentNotYetValid, Error
from consent.tokens import ConsentClaims, TokenIssuer, TokenVerifier
from tests.consent.conftest import DAY, ISSUER, T0, public
from tests.consent.test_tokens import DENIALS, Forge


@pytest.fixture
def forge(signing_key: OKPKey, claims: ConsentClaims) -> Forge:
    """Token forge around the broker's key and valid claims."""
    return Forge(key=signing_key, claims=claims)


@pytest.fixture
def counted() -> Any:
    """Counts the real signature checks (and still makes them)."""
    with mock.patch.object(tokens, "_verified_payload", wraps=tokens._verified_payload) as spy:
        yield spy


class TestRemembered:
    def test_a_repeated_token_is_checked_once(
        self, verifier: TokenVerifier, forge: Forge, counted: Any
    ) -> None:
        token = forge.sign()
        with mock.patch.object(
            tokens, "claims_from_payload", wraps=tokens.claims_from_payload
        ) as parsed:
            for _ in range(3):
                assert verifier.verify(token, now=T0) == forge.claims
        assert counted.call_count == 1
        assert parsed.call_count == 1  # the claims are read once too

    @pytest.mark.parametrize(
        ("now", "error"),
        [(T0 + DAY, ConsentExpired), (T0 + 2 * DAY, ConsentExpired), (T0 - 1, ConsentNotYetValid)],
    )
    def test_the_window_is_checked_every_time(
        self, verifier: TokenVerifier, forge: Forge, now: int, error: type[Error]
    ) -> None:
        token = forge.sign()
        verifier.verify(token, now=T0)
        with pytest.raises(error):
            verifier.verify(token, now=now)

    def test_the_issuer_is_checked_every_time(self, signing_key: OKPKey, forge: Forge) -> None:
        token = forge.sign(forge.payload(iss="https://other.test"))
        other = TokenVerifier(keys=KeySet([public(signing_key)]), issuer="https://other.test")
        other.verify(token, now=T0)  # good for its own issuer, and now remembered there
        mine = TokenVerifier(keys=KeySet([public(signing_key)]), issuer=ISSUER)
        for _ in range(2):
            with pytest.raises(ConsentInvalid, match="issuer"):
                mine.verify(token, now=T0)


class TestNeverGoodByMistake:
    @pytest.mark.parametrize(("build", "now", "error"), DENIALS)
    def test_denials_after_the_good_token_is_remembered(
        self,
        forge: Forge,
        verifier: TokenVerifier,
        build: Callable[[Forge], str | None],
        now: int,
        error: type[Error],
    ) -> None:
        verifier.verify(forge.sign(), now=T0)
        token = build(forge)
        for _ in range(2):  # and again: a refusal is never remembered as good
            with pytest.raises(error) as caught:
                verifier.verify(token, now=now)
            assert type(caught.value) is error

    def test_a_failure_is_not_remembered(
        self, verifier: TokenVerifier, forge: Forge, counted: Any
    ) -> None:
        bad = forge.tampered_signature()
        for _ in range(2):
            with pytest.raises(ConsentInvalid, match="signature"):
                verifier.verify(bad, now=T0)
        assert counted.call_count == 2

    def test_another_key_under_the_same_kid_is_checked_again(
        self, verifier: TokenVerifier, forge: Forge, signing_key: OKPKey
    ) -> None:
        token = forge.sign()
        verifier.verify(token, now=T0)
        impostor = OKPKey.generate_key("Ed25519", parameters={"kid": str(signing_key.kid)})
        # The verifier's key set changed under it: the entry names the old key, so it is unused.
        verifier._keys = {str(signing_key.kid): public(impostor)}
        with pytest.raises(ConsentInvalid, match="signature"):
            verifier.verify(token, now=T0)

    def test_a_new_key_set_starts_empty(self, forge: Forge, claims: ConsentClaims) -> None:
        token = forge.sign()
        rotated = OKPKey.generate_key("Ed25519", auto_kid=True)
        old = TokenVerifier(keys=KeySet([public(forge.key)]), issuer=ISSUER)
        old.verify(token, now=T0)
        new = TokenVerifier(keys=KeySet([public(rotated)]), issuer=ISSUER)
        with pytest.raises(ConsentInvalid, match="unknown key"):
            new.verify(token, now=T0)
        assert new.verify(TokenIssuer(key=rotated, issuer=ISSUER).issue(claims), now=T0) == claims


class TestBounded:
    def test_least_recently_used_goes_first(self, forge: Forge, signing_key: OKPKey) -> None:
        verifier = TokenVerifier(keys=KeySet([public(signing_key)]), issuer=ISSUER, cache_size=2)
        first, second, third = (forge.sign(forge.payload(procedure_ref=f"P-{i}")) for i in "123")
        for token in (first, second, first, third):  # second is now the oldest
            verifier.verify(token, now=T0)
        with mock.patch.object(tokens, "_verified_payload", wraps=tokens._verified_payload) as spy:
            verifier.verify(first, now=T0)
            verifier.verify(third, now=T0)
            assert spy.call_count == 0
            verifier.verify(second, now=T0)
            assert spy.call_count == 1

    def test_off(self, signing_key: OKPKey, forge: Forge, counted: Any) -> None:
        verifier = TokenVerifier(keys=KeySet([public(signing_key)]), issuer=ISSUER, cache_size=0)
        token = forge.sign()
        verifier.verify(token, now=T0)
        verifier.verify(token, now=T0)
        assert counted.call_count == 2

    def test_long_tokens_are_not_kept(self, signing_key: OKPKey) -> None:
        cache: VerifiedTokenCache[bytes] = VerifiedTokenCache(4)
        key = public(signing_key)
        calls: list[str] = []

        def check(token: str, _key: OKPKey) -> bytes:
            calls.append(token)
            return b"{}"

        cache.verified("x" * (MAX_CACHED_TOKEN_LENGTH + 1), key, check)
        cache.verified("y", key, check)
        assert len(cache) == 1
        assert len(calls) == 2

    def test_refuses_a_negative_size(self) -> None:
        with pytest.raises(ValueError, match="cache_size"):
            VerifiedTokenCache(-1)
