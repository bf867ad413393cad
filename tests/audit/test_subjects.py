"""Subject and body references: keyed, stable, and compared in constant time."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from audit.subjects import MIN_SECRET_BYTES, body_ref, body_ref_key, same_subject, subject_ref

SECRET = b"s" * 32
NIK = "3171014508900001"


class TestSubjectRef:
    def test_is_hex_hmac_sha256_of_the_nik(self) -> None:
        expected = hmac.new(SECRET, NIK.encode(), hashlib.sha256).hexdigest()
        assert subject_ref(NIK, SECRET) == expected
        assert len(expected) == 64

    def test_is_stable_for_the_same_nik_and_secret(self) -> None:
        assert subject_ref(NIK, SECRET) == subject_ref(NIK, bytes(SECRET))

    def test_is_keyed_not_a_plain_hash(self) -> None:
        assert subject_ref(NIK, SECRET) != hashlib.sha256(NIK.encode()).hexdigest()

    def test_another_secret_gives_another_ref(self) -> None:
        assert subject_ref(NIK, SECRET) != subject_ref(NIK, b"t" * 32)

    def test_another_nik_gives_another_ref(self) -> None:
        assert subject_ref(NIK, SECRET) != subject_ref("3171014508900002", SECRET)

    @pytest.mark.parametrize("size", [0, 16, MIN_SECRET_BYTES - 1])
    def test_a_short_secret_is_refused(self, size: int) -> None:
        with pytest.raises(ValueError, match="at least 32 bytes"):
            subject_ref(NIK, b"k" * size)

    def test_a_secret_of_exactly_32_bytes_is_enough(self) -> None:
        assert len(subject_ref(NIK, b"k" * MIN_SECRET_BYTES)) == 64

    def test_an_empty_subject_is_refused(self) -> None:
        with pytest.raises(ValueError, match="empty"):
            subject_ref("", SECRET)


class TestSameSubject:
    def test_equal_refs_match(self) -> None:
        assert same_subject(subject_ref(NIK, SECRET), subject_ref(NIK, SECRET))

    @pytest.mark.parametrize("other", ["", "0" * 64, "ab"])
    def test_different_refs_do_not(self, other: str) -> None:
        assert not same_subject(subject_ref(NIK, SECRET), other)


class TestBodyRef:
    BODY = b'{"nama":"BUDI SANTOSO"}'

    def test_is_hex_hmac_sha256_under_a_key_derived_from_the_secret(self) -> None:
        key = hmac.new(SECRET, b"simpul/audit/response-body/v1", hashlib.sha256).digest()
        assert body_ref_key(SECRET) == key
        assert body_ref(self.BODY, key) == hmac.new(key, self.BODY, hashlib.sha256).hexdigest()

    def test_is_keyed_not_a_plain_hash(self) -> None:
        assert body_ref(self.BODY, body_ref_key(SECRET)) != hashlib.sha256(self.BODY).hexdigest()

    def test_differs_from_the_subject_ref_of_the_same_bytes(self) -> None:
        # Its own label: a body reference never equals a subject reference of the same text.
        assert body_ref(NIK.encode(), body_ref_key(SECRET)) != subject_ref(NIK, SECRET)

    def test_another_secret_gives_another_ref(self) -> None:
        assert body_ref(self.BODY, body_ref_key(SECRET)) != body_ref(
            self.BODY, body_ref_key(b"t" * 32)
        )

    def test_a_short_secret_is_refused(self) -> None:
        with pytest.raises(ValueError, match="at least 32 bytes"):
            body_ref_key(b"k" * (MIN_SECRET_BYTES - 1))
