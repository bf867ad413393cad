"""The synthetic population: size, valid and unique identifiers, consistent families."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.sandbox import generate
from adapters.sandbox.population import (
    AKTA_SINCE,
    DEFAULT_HOUSEHOLDS,
    DEFAULT_SEED,
    FAULT_KINDS,
    KTP_AGE,
    REFERENCE_DATE,
    Person,
    Population,
)

# Kemendagri codes and names of the districts the sandbox uses (Kepmendagri 300.2.2-2138/2025).
REAL_DISTRICTS = {
    "317401": ("TEBET", "KOTA ADM. JAKARTA SELATAN", "DKI JAKARTA"),
    "317402": ("SETIABUDI", "KOTA ADM. JAKARTA SELATAN", "DKI JAKARTA"),
    "317407": ("KEBAYORAN BARU", "KOTA ADM. JAKARTA SELATAN", "DKI JAKARTA"),
    "327302": ("COBLONG", "KOTA BANDUNG", "JAWA BARAT"),
    "357808": ("GUBENG", "KOTA SURABAYA", "JAWA TIMUR"),
}
T = TypeVar("T")
AKTA_NUMBER = re.compile(r"(?P<regency>\d{4})-L[UT]-(?P<issued>\d{8})-(?P<serial>\d{4})")


def nik_problems(nik: str) -> list[str]:
    """The rules of design.md, checked independently of the sandbox's own code."""
    if not re.fullmatch(r"\d{16}", nik):
        return ["not 16 digits"]
    problems = []
    day, month, year = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    if day > 40:
        day -= 40
    if not any(_real(century + year, month, day) for century in (1900, 2000)):
        problems.append("no real date")
    if nik[12:] == "0000":
        problems.append("serial 0000")
    return problems


def _real(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def encoded_birth(nik: str) -> tuple[int, int, int, bool]:
    """(day, month, two-digit year, female) as the NIK encodes them."""
    day = int(nik[6:8])
    return (day - 40 if day > 40 else day), int(nik[8:10]), int(nik[10:12]), day > 40


def must(value: T | None) -> T:
    """``value``, which the test expects to be there."""
    assert value is not None
    return value


def age(person: Person) -> int:
    born = person.tanggal_lahir
    before_birthday = (REFERENCE_DATE.month, REFERENCE_DATE.day) < (born.month, born.day)
    return REFERENCE_DATE.year - born.year - before_birthday


class TestSize:
    def test_at_least_a_thousand_people(self, population: Population) -> None:
        assert len(population.people) >= 1_000
        assert len(population.households) == DEFAULT_HOUSEHOLDS

    def test_generation_is_quick(self) -> None:
        started = time.perf_counter()
        generate.__wrapped__(DEFAULT_SEED + 1, DEFAULT_HOUSEHOLDS)
        assert time.perf_counter() - started < 1.0

    def test_every_region_is_populated(self, population: Population) -> None:
        districts = Counter(h.address.kode_kecamatan for h in population.households)
        assert set(districts) == set(REAL_DISTRICTS)
        assert districts["317401"] == max(districts.values())


class TestIdentifiers:
    def test_niks_are_unique(self, population: Population) -> None:
        niks = [person.nik for person in population.people]
        assert len(set(niks)) == len(niks)

    def test_kk_numbers_are_unique(self, population: Population) -> None:
        numbers = [household.no_kk for household in population.households]
        assert len(set(numbers)) == len(numbers)

    def test_akta_numbers_are_unique(self, population: Population) -> None:
        keys = [(r.no_akta, r.kantor_penerbit) for r in population.birth_records]
        assert len(set(keys)) == len(keys)

    def test_a_sample_of_niks_follows_the_rules(self, population: Population) -> None:
        sample = population.people[::7]
        assert len(sample) > 100
        assert {person.nik: nik_problems(person.nik) for person in sample} == {
            person.nik: [] for person in sample
        }

    @pytest.mark.parametrize(
        ("nik", "problem"),
        [
            ("317401120590001", "not 16 digits"),
            ("3174011305900000", "serial 0000"),
            ("3174013102900001", "no real date"),
            ("3174017102900001", "no real date"),
            ("3174014013900001", "no real date"),
        ],
    )
    def test_the_rule_checker_itself_rejects_bad_niks(self, nik: str, problem: str) -> None:
        assert problem in nik_problems(nik)

    def test_nik_encodes_district_birth_date_and_sex(self, population: Population) -> None:
        for household in population.households:
            for person in household.members:
                day, month, year, female = encoded_birth(person.nik)
                born = person.tanggal_lahir
                assert person.nik[:6] == household.address.kode_kecamatan
                assert (day, month, year) == (born.day, born.month, born.year % 100)
                assert female == (person.jenis_kelamin == "PEREMPUAN")

    def test_kk_number_encodes_district_and_issue_date(self, population: Population) -> None:
        for household in population.households:
            issued = household.tanggal_terbit
            assert re.fullmatch(r"\d{16}", household.no_kk)
            assert household.no_kk[:6] == household.address.kode_kecamatan
            assert household.no_kk[6:12] == issued.strftime("%d%m%y")
            assert household.no_kk[12:] != "0000"


class TestHouseholds:
    def test_head_first_and_only_one(self, population: Population) -> None:
        for household in population.households:
            relations = [member.hubungan_keluarga for member in household.members]
            assert relations[0] == "KEPALA KELUARGA"
            assert relations.count("KEPALA KELUARGA") == 1

    def test_members_carry_the_card_number(self, population: Population) -> None:
        for household in population.households:
            assert {m.no_kk for m in household.members} == {household.no_kk}
            assert population.household(household.no_kk) is household

    def test_address_is_a_real_region(self, population: Population) -> None:
        for household in population.households:
            address = household.address
            name, regency, province = REAL_DISTRICTS[address.kode_kecamatan]
            assert (address.kecamatan, address.kabupaten_kota, address.provinsi) == (
                name,
                regency,
                province,
            )
            assert address.kode_kelurahan.startswith(address.kode_kecamatan)
            assert re.fullmatch(r"\d{5}", address.kode_pos)
            assert 1 <= address.rt <= 999
            assert 1 <= address.rw <= 999

    def test_card_issued_after_every_member_was_born(self, population: Population) -> None:
        for household in population.households:
            assert household.tanggal_terbit <= REFERENCE_DATE
            assert all(m.tanggal_lahir < household.tanggal_terbit for m in household.members)

    def test_children_bear_their_parents_names(self, population: Population) -> None:
        for household in population.households:
            head = household.head
            spouses = [m for m in household.members if m.hubungan_keluarga in ("ISTRI", "SUAMI")]
            for child in (m for m in household.members if m.hubungan_keluarga == "ANAK"):
                parents = {child.nama_ayah, child.nama_ibu}
                assert head.nama in parents
                if spouses:
                    assert spouses[0].nama in parents
                father_is_head = head.jenis_kelamin == "LAKI-LAKI"
                assert (child.nama_ayah if father_is_head else child.nama_ibu) == head.nama
                assert child.tanggal_lahir > head.tanggal_lahir

    def test_resident_parent_is_named_by_their_child(self, population: Population) -> None:
        elders = 0
        for household in population.households:
            head = household.head
            spouse = next((m for m in household.members if m.hubungan_keluarga == "ISTRI"), None)
            for elder in household.members:
                if elder.hubungan_keluarga not in ("ORANG TUA", "MERTUA"):
                    continue
                elders += 1
                child = head if elder.hubungan_keluarga == "ORANG TUA" else spouse
                assert child is not None
                named = child.nama_ibu if elder.jenis_kelamin == "PEREMPUAN" else child.nama_ayah
                assert named == elder.nama
                assert elder.status_perkawinan == "CERAI MATI"
        assert elders > 0

    def test_marital_status_fits_the_family(self, population: Population) -> None:
        for household in population.households:
            head = household.head
            relations = {m.hubungan_keluarga for m in household.members}
            assert (head.status_perkawinan == "KAWIN") == ("ISTRI" in relations)
            for member in household.members:
                if member.hubungan_keluarga == "ISTRI":
                    assert member.status_perkawinan == "KAWIN"
                    assert member.jenis_kelamin == "PEREMPUAN"
                if member.hubungan_keluarga == "ANAK":
                    assert member.status_perkawinan == "BELUM KAWIN"
                if member.status_perkawinan != "BELUM KAWIN":
                    assert age(member) >= 19

    def test_ktp_for_adults_only(self, population: Population) -> None:
        for person in population.people:
            adult = age(person) >= KTP_AGE or person.status_perkawinan != "BELUM KAWIN"
            assert person.has_ktp == adult
            assert person.age == age(person)

    def test_school_and_work_fit_the_age(self, population: Population) -> None:
        for person in population.people:
            if age(person) < 5:
                assert person.pendidikan == "TIDAK/BELUM SEKOLAH"
                assert person.pekerjaan == "BELUM/TIDAK BEKERJA"
            if person.pekerjaan in ("DOKTER", "DOSEN"):
                assert age(person) >= 22

    def test_everyone_is_a_citizen(self, population: Population) -> None:
        assert {person.kewarganegaraan for person in population.people} == {"WNI"}


class TestBirthRecords:
    def test_everyone_born_since_1981_has_one(self, population: Population) -> None:
        with_record = {record.anak_nik for record in population.birth_records}
        born_since = {p.nik for p in population.people if p.tanggal_lahir >= AKTA_SINCE}
        assert with_record == born_since

    def test_record_describes_the_child(self, population: Population) -> None:
        for record in population.birth_records:
            child = population.person(record.anak_nik)
            assert child is not None
            assert (record.anak_nama, record.jenis_kelamin, record.tanggal_lahir) == (
                child.nama,
                child.jenis_kelamin,
                child.tanggal_lahir,
            )
            assert (record.ayah_nama, record.ibu_nama) == (child.nama_ayah, child.nama_ibu)
            assert record.tempat_lahir == child.tempat_lahir
            assert record.anak_ke >= 1

    def test_parents_niks_point_at_the_parents(self, population: Population) -> None:
        linked = 0
        for record in population.birth_records:
            for nik, name, sex in (
                (record.ayah_nik, record.ayah_nama, "LAKI-LAKI"),
                (record.ibu_nik, record.ibu_nama, "PEREMPUAN"),
            ):
                if nik is None:
                    continue
                linked += 1
                parent = population.person(nik)
                assert parent is not None
                assert (parent.nama, parent.jenis_kelamin) == (name, sex)
                assert parent.no_kk == must(population.person(record.anak_nik)).no_kk
        assert linked > 100

    def test_siblings_are_numbered_by_birth(self, population: Population) -> None:
        for household in population.households:
            children = sorted(
                (m for m in household.members if m.hubungan_keluarga == "ANAK"),
                key=lambda m: m.tanggal_lahir,
            )
            orders = [must(population.birth_record(c.nik)).anak_ke for c in children]
            assert orders == list(range(1, len(children) + 1))

    def test_number_office_and_issue_date(self, population: Population) -> None:
        for record in population.birth_records:
            household = population.household_of(record.anak_nik)
            assert household is not None
            match = AKTA_NUMBER.fullmatch(record.no_akta)
            assert match is not None
            assert match["regency"] == household.address.kode_kecamatan[:4]
            assert match["issued"] == record.tanggal_terbit.strftime("%d%m%Y")
            assert match["serial"] != "0000"
            assert record.kantor_penerbit.endswith(household.address.kabupaten_kota)
            assert record.tanggal_lahir <= record.tanggal_terbit <= REFERENCE_DATE


class TestLookups:
    def test_by_nik(self, population: Population) -> None:
        person = population.people[42]
        assert population.person(person.nik) is person
        household = population.household_of(person.nik)
        assert household is not None
        assert person in household.members

    def test_birth_record_by_number_ignores_case_and_spacing(self, population: Population) -> None:
        record = population.birth_records[7]
        assert population.birth_record(record.anak_nik) is record
        office = "  " + record.kantor_penerbit.lower().replace(" ", "  ") + " "
        assert population.birth_record_by_number(f" {record.no_akta} ", office) is record

    @pytest.mark.parametrize(
        "lookup",
        [
            lambda p: p.person("3174010101900001"),
            lambda p: p.household("3174010101200001"),
            lambda p: p.household_of("3174010101900001"),
            lambda p: p.birth_record("3174010101900001"),
            lambda p: p.birth_record_by_number("3174-LU-01012020-0001", "DISDUKCAPIL KOTA X"),
            lambda p: p.birth_record_by_number(
                p.birth_records[0].no_akta, "DISDUKCAPIL KOTA BANDUNG"
            ),
        ],
        ids=["person", "household", "household_of", "birth", "akta-number", "akta-wrong-office"],
    )
    def test_unknown_is_none(
        self, population: Population, lookup: Callable[[Population], object]
    ) -> None:
        assert lookup(population) is None


class TestDemoCitizen:
    def test_adult_in_jakarta_selatan_with_ktp_kk_and_akta(self, population: Population) -> None:
        citizen = population.demo_citizen()
        household = population.household_of(citizen.nik)
        assert household is not None
        assert citizen.nik.startswith("317401")
        assert household.address.kabupaten_kota == "KOTA ADM. JAKARTA SELATAN"
        assert citizen.has_ktp
        assert age(citizen) >= KTP_AGE
        assert len(household.members) >= 3
        assert population.birth_record(citizen.nik) is not None

    def test_is_the_same_every_time(self) -> None:
        assert generate().demo_citizen() == generate.__wrapped__().demo_citizen()


class TestFaults:
    def test_one_of_each_kind(self, population: Population) -> None:
        assert sorted(population.faults.values()) == sorted(FAULT_KINDS)
        for kind in FAULT_KINDS:
            assert population.faults[population.fault_nik(kind)] == kind

    def test_fault_people_have_every_record(self, population: Population) -> None:
        for nik in population.faults:
            person = population.person(nik)
            assert person is not None
            assert person.has_ktp
            assert population.birth_record(nik) is not None

    def test_apart_from_the_demo_family_and_each_other(self, population: Population) -> None:
        demo = must(population.household_of(population.demo_citizen().nik))
        cards = {must(population.person(nik)).no_kk for nik in population.faults}
        assert len(cards) == len(FAULT_KINDS)
        assert demo.no_kk not in cards

    def test_faults_are_read_only(self, population: Population) -> None:
        with pytest.raises(TypeError):
            population.faults["3174010101900001"] = "slow"  # type: ignore[index]  # the point

    def test_unknown_kind(self) -> None:
        tiny = generate.__wrapped__(DEFAULT_SEED, 1)
        with pytest.raises(KeyError):
            tiny.fault_nik("slow")


class TestDeterminism:
    def test_cached(self) -> None:
        assert generate() is generate()

    def test_same_seed_same_people(self) -> None:
        first = generate.__wrapped__(DEFAULT_SEED, 50)
        second = generate.__wrapped__(DEFAULT_SEED, 50)
        assert first.people == second.people
        assert first.birth_records == second.birth_records
        assert dict(first.faults) == dict(second.faults)

    def test_another_seed_other_people(self) -> None:
        first = generate.__wrapped__(1, 50)
        second = generate.__wrapped__(2, 50)
        assert {p.nik for p in first.people} != {p.nik for p in second.people}

    def test_needs_a_household(self) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            generate.__wrapped__(DEFAULT_SEED, 0)

    @settings(max_examples=25, deadline=None)
    @given(seed=st.integers(min_value=0, max_value=2**32))
    def test_any_seed_gives_valid_unique_identifiers(self, seed: int) -> None:
        population = generate.__wrapped__(seed, 40)
        niks = [p.nik for p in population.people]
        assert len(set(niks)) == len(niks)
        assert all(not nik_problems(nik) for nik in niks)
        assert population.demo_citizen().has_ktp
        assert population.birth_record(population.demo_citizen().nik) is not None
        assert len(must(population.household_of(population.demo_citizen().nik)).members) >= 3
