"""Who a record names and who of them may consent to its release (consent.people)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from adapters._vocabulary import HUBUNGAN_KELUARGA
from consent import people as people_module
from consent.people import ADULT_AGE, RecordPeople, is_adult, record_people

TODAY = date(2026, 12, 7)
ADULT_BORN = "1990-05-17"
MINOR_BORN = "2012-01-30"
FATHER, MOTHER, CHILD, GRANDMOTHER = (f"31740115059000{i:02d}" for i in range(1, 5))


def member(
    nik: str, born: str, status: str = "BELUM KAWIN", relation: str = "ANAK"
) -> dict[str, Any]:
    return {
        "nik": nik,
        "tanggal_lahir": born,
        "status_perkawinan": status,
        "hubungan_keluarga": relation,
    }


def kk(*members: dict[str, Any]) -> dict[str, Any]:
    return {"no_kk": "3174010101200001", "anggota": list(members)}


def akta(child_born: str, *, ayah: str | None = FATHER, ibu: str | None = MOTHER) -> dict[str, Any]:
    return {
        "anak": {"nik": CHILD, "tanggal_lahir": child_born},
        "ayah": {"nik": ayah, "nama": "AYAH"},
        "ibu": {"nik": ibu, "nama": "IBU"},
    }


class TestIsAdult:
    @pytest.mark.parametrize(
        ("born", "adult"),
        [
            pytest.param("2008-12-07", True, id="eighteenth-birthday-today"),
            pytest.param("2008-12-08", False, id="eighteen-tomorrow"),
            pytest.param("2008-02-29", True, id="leap-day-birth"),
            pytest.param("1950-01-01", True, id="old"),
            pytest.param("2026-12-07", False, id="born-today"),
        ],
    )
    def test_by_age(self, born: str, adult: bool) -> None:
        assert is_adult(born, TODAY) is adult

    def test_a_leap_day_birth_comes_of_age_on_the_first_of_march(self) -> None:
        assert not is_adult("2008-02-29", date(2026, 2, 28))
        assert is_adult("2008-02-29", date(2026, 3, 1))

    def test_the_age_is_pinned(self) -> None:
        # Policy, not tuning (see consent.people): changing it is a decision for the docs too.
        assert ADULT_AGE == 18

    def test_married_is_adult_whatever_the_age(self) -> None:
        assert is_adult(MINOR_BORN, TODAY, married=True)

    @pytest.mark.parametrize(
        "born",
        [
            None,
            19900517,
            "",
            "19900517",
            "1990-W20-4",
            "1990-13-01",
            "1990-05-17T00:00",
            " 1990-05-1",
        ],
    )
    def test_anything_but_a_date_is_not_an_adult(self, born: object) -> None:
        assert not is_adult(born, TODAY)


class TestRecordPeople:
    def test_ktp_is_its_holders(self) -> None:
        assert record_people("ktp", {"nik": FATHER}, today=TODAY) == RecordPeople(
            subjects=(FATHER,), may_consent=(FATHER,)
        )

    def test_kk_any_adult_member_may_consent(self) -> None:
        record = kk(
            member(FATHER, ADULT_BORN, "KAWIN"),
            member(MOTHER, ADULT_BORN, "KAWIN"),
            member(CHILD, MINOR_BORN),
            member(GRANDMOTHER, "1940-01-01", "CERAI MATI"),
        )
        people = record_people("kk", record, today=TODAY)
        assert people.subjects == (FATHER, MOTHER, CHILD, GRANDMOTHER)
        assert people.may_consent == (FATHER, MOTHER, GRANDMOTHER)

    @pytest.mark.parametrize("status", ["KAWIN", "CERAI HIDUP", "CERAI MATI"])
    def test_kk_a_married_minor_may_consent(self, status: str) -> None:
        people = record_people("kk", kk(member(CHILD, MINOR_BORN, status)), today=TODAY)
        assert people.may_consent == (CHILD,)

    @pytest.mark.parametrize("status", [None, "BELUM KAWIN", "kawin", ""])
    def test_kk_a_minor_with_no_marriage_on_record_may_not(self, status: str | None) -> None:
        record = kk({"nik": CHILD, "tanggal_lahir": MINOR_BORN, "status_perkawinan": status})
        assert record_people("kk", record, today=TODAY).may_consent == ()

    @pytest.mark.parametrize("relation", ["PEMBANTU", "LAINNYA"])
    def test_kk_an_adult_outside_the_family_may_not(self, relation: str) -> None:
        record = kk(
            member(FATHER, ADULT_BORN, "KAWIN"), member(MOTHER, ADULT_BORN, "KAWIN", relation)
        )
        people = record_people("kk", record, today=TODAY)
        assert people.subjects == (FATHER, MOTHER)
        assert people.may_consent == (FATHER,)

    @pytest.mark.parametrize("relation", sorted(HUBUNGAN_KELUARGA - {"PEMBANTU", "LAINNYA"}))
    def test_kk_an_adult_of_the_family_may(self, relation: str) -> None:
        record = kk(member(FATHER, ADULT_BORN, relation=relation))
        assert record_people("kk", record, today=TODAY).may_consent == (FATHER,)

    def test_those_outside_the_family_are_the_vocabularys(self) -> None:
        assert {"PEMBANTU", "LAINNYA"} == people_module._NOT_FAMILY <= HUBUNGAN_KELUARGA

    def test_no_nik_in_its_repr(self) -> None:
        people = record_people("kk", kk(member(FATHER, ADULT_BORN)), today=TODAY)
        assert FATHER not in repr(people)

    def test_kk_names_a_repeated_member_once(self) -> None:
        record = kk(member(FATHER, ADULT_BORN), member(FATHER, ADULT_BORN))
        assert record_people("kk", record, today=TODAY) == RecordPeople((FATHER,), (FATHER,))

    def test_akta_of_a_minor_is_the_parents_to_release(self) -> None:
        people = record_people("akta-lahir", akta(MINOR_BORN), today=TODAY)
        assert people == RecordPeople((CHILD, FATHER, MOTHER), (FATHER, MOTHER))

    def test_akta_of_an_adult_is_theirs_alone(self) -> None:
        people = record_people("akta-lahir", akta(ADULT_BORN), today=TODAY)
        assert people == RecordPeople((CHILD, FATHER, MOTHER), (CHILD,))

    def test_akta_a_parent_without_a_nik_is_no_one_to_ask(self) -> None:
        people = record_people("akta-lahir", akta(MINOR_BORN, ayah=None), today=TODAY)
        assert people == RecordPeople((CHILD, MOTHER), (MOTHER,))
        orphan = record_people("akta-lahir", akta(MINOR_BORN, ayah=None, ibu=None), today=TODAY)
        assert orphan == RecordPeople((CHILD,), ())

    def test_an_unknown_record_names_no_one(self) -> None:
        assert record_people("sim", {"nik": FATHER}, today=TODAY) == RecordPeople((), ())
