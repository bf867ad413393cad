"""The exchange's part in records about several people: whom it files the exchange under."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from audit.subjects import subject_ref
from broker.exchange import MAX_RECORD_PEOPLE, co_subject_refs
from schemas.errors import ResponseInvalid

SECRET = b"\x5e" * 32
NIKS = [f"3174011505900{i:03d}" for i in range(1, MAX_RECORD_PEOPLE + 2)]


def others(niks: list[str], filed_under: str) -> tuple[str, ...]:
    return co_subject_refs(niks, filed_under=subject_ref(filed_under, SECRET), secret=SECRET)


class TestCoSubjectRefs:
    def test_everyone_but_the_one_it_is_filed_under(self) -> None:
        assert others(NIKS[:3], NIKS[1]) == (
            subject_ref(NIKS[0], SECRET),
            subject_ref(NIKS[2], SECRET),
        )

    def test_a_record_about_its_subject_alone_names_no_one_else(self) -> None:
        assert others(NIKS[:1], NIKS[0]) == ()

    def test_a_record_not_about_its_subject_names_everyone(self) -> None:
        assert others(NIKS[:2], "3174011505999999") == tuple(
            subject_ref(nik, SECRET) for nik in NIKS[:2]
        )

    def test_filed_under_no_one(self) -> None:
        refs = co_subject_refs(NIKS[:2], filed_under=None, secret=SECRET)
        assert refs == tuple(subject_ref(nik, SECRET) for nik in NIKS[:2])

    def test_up_to_the_limit(self) -> None:
        assert len(others(NIKS[:MAX_RECORD_PEOPLE], NIKS[0])) == MAX_RECORD_PEOPLE - 1

    def test_the_limit_is_the_family_cards_contract(self) -> None:
        schema = json.loads((resources.files("schemas") / "json" / "kk.response.json").read_text())
        assert schema["properties"]["anggota"]["maxItems"] == MAX_RECORD_PEOPLE

    def test_past_the_limit_the_answer_is_refused(self) -> None:
        with pytest.raises(ResponseInvalid, match=f"more than {MAX_RECORD_PEOPLE} people"):
            others(NIKS, NIKS[0])
