"""The adapters against the real sandbox apps, in-process over ASGI: whole round trips.

Each record is checked field by field against the population's truth and against the shared
JSON Schemas; each fault NIK must surface as the adapter error the broker maps to a problem.
"""

from __future__ import annotations

from typing import Any

import pytest

from adapters import Adapter
from adapters.errors import (
    Error,
    RecordNotFound,
    UpstreamError,
    UpstreamInvalid,
    UpstreamTimeout,
)
from adapters.sandbox.population import AKTA_SINCE, Population
from schemas import SchemaSet
from tests.adapters import expected
from tests.adapters.samples import (
    AKTA_CHILD_FIELDS,
    AKTA_FIELDS,
    KK_FIELDS,
    KK_MEMBER_FIELDS,
    KTP_FIELDS,
)

UNKNOWN_NIK = "3174010101010001"  # well-formed, in nobody's hands


@pytest.fixture(scope="module")
def schema_set() -> SchemaSet:
    """The shared schemas every record must pass."""
    return SchemaSet.load()


class TestKtp:
    async def test_demo_citizen(
        self, dukcapil: Adapter, population: Population, schema_set: SchemaSet
    ) -> None:
        citizen = population.demo_citizen()
        record = await dukcapil.fetch("ktp", {"nik": citizen.nik})
        assert list(record) == KTP_FIELDS
        household = population.household_of(citizen.nik)
        assert household is not None
        assert record == expected.ktp(citizen, household)
        schema_set.validate_response("ktp", record)

    async def test_a_sample_of_adults(
        self, dukcapil: Adapter, population: Population, schema_set: SchemaSet
    ) -> None:
        adults = [p for p in expected.healthy_people(population) if p.has_ktp][::6]
        assert len(adults) > 100
        for person in adults:
            record = await dukcapil.fetch("ktp", {"nik": person.nik})
            household = population.household_of(person.nik)
            assert household is not None
            assert record == expected.ktp(person, household)
            schema_set.validate_response("ktp", record)

    async def test_child_has_no_ktp(self, dukcapil: Adapter, population: Population) -> None:
        child = next(p for p in population.people if not p.has_ktp)
        with pytest.raises(RecordNotFound, match="no KTP"):
            await dukcapil.fetch("ktp", {"nik": child.nik})

    async def test_unknown_nik(self, dukcapil: Adapter) -> None:
        with pytest.raises(RecordNotFound):
            await dukcapil.fetch("ktp", {"nik": UNKNOWN_NIK})


class TestKk:
    async def test_by_number(
        self, dukcapil: Adapter, population: Population, schema_set: SchemaSet
    ) -> None:
        household = population.households[0]
        record = await dukcapil.fetch("kk", {"no_kk": household.no_kk})
        assert list(record) == KK_FIELDS
        assert all(list(member) == KK_MEMBER_FIELDS for member in record["anggota"])
        assert record == expected.kk(household)
        schema_set.validate_response("kk", record)

    async def test_by_each_members_nik(self, dukcapil: Adapter, population: Population) -> None:
        household = population.households[0]
        for member in household.members:
            assert await dukcapil.fetch("kk", {"nik": member.nik}) == expected.kk(household)

    async def test_a_sample_of_cards(
        self, dukcapil: Adapter, population: Population, schema_set: SchemaSet
    ) -> None:
        heads = [
            p
            for p in expected.healthy_people(population)
            if p.hubungan_keluarga == "KEPALA KELUARGA"
        ]
        for head in heads[::4]:
            household = population.household(head.no_kk)
            assert household is not None
            record = await dukcapil.fetch("kk", {"no_kk": household.no_kk})
            assert record == expected.kk(household)
            schema_set.validate_response("kk", record)

    @pytest.mark.parametrize(
        "query",
        [{"no_kk": "3174010101200001"}, {"nik": UNKNOWN_NIK}],
        ids=["unknown-number", "unknown-member"],
    )
    async def test_unknown(self, dukcapil: Adapter, query: dict[str, str]) -> None:
        with pytest.raises(RecordNotFound):
            await dukcapil.fetch("kk", query)


class TestAkta:
    async def test_by_child(
        self, capil: Adapter, population: Population, schema_set: SchemaSet
    ) -> None:
        citizen = population.demo_citizen()
        birth = population.birth_record(citizen.nik)
        assert birth is not None
        record = await capil.fetch("akta-lahir", {"nik": citizen.nik})
        assert list(record) == AKTA_FIELDS
        assert list(record["anak"]) == AKTA_CHILD_FIELDS
        assert record == expected.akta(birth)
        schema_set.validate_response("akta-lahir", record)

    async def test_by_number_and_office(self, capil: Adapter, population: Population) -> None:
        birth = population.birth_record(population.demo_citizen().nik)
        assert birth is not None
        query = {"no_akta": birth.no_akta, "kantor_penerbit": birth.kantor_penerbit.title()}
        assert await capil.fetch("akta-lahir", query) == expected.akta(birth)

    async def test_a_sample_of_certificates(
        self, capil: Adapter, population: Population, schema_set: SchemaSet
    ) -> None:
        healthy = {p.nik for p in expected.healthy_people(population)}
        births = [b for b in population.birth_records if b.anak_nik in healthy][::5]
        assert any(b.ayah_nik is None for b in births)
        assert any(b.ayah_nik is not None for b in births)
        for birth in births:
            record = await capil.fetch("akta-lahir", {"nik": birth.anak_nik})
            assert record == expected.akta(birth)
            schema_set.validate_response("akta-lahir", record)

    @pytest.mark.parametrize("lookup", ["born-before-1981", "unknown-nik", "wrong-office"])
    async def test_not_found(self, capil: Adapter, population: Population, lookup: str) -> None:
        birth = population.birth_records[0]
        query: dict[str, Any] = {
            "born-before-1981": {
                "nik": next(p.nik for p in population.people if p.tanggal_lahir < AKTA_SINCE)
            },
            "unknown-nik": {"nik": UNKNOWN_NIK},
            "wrong-office": {
                "no_akta": birth.no_akta,
                "kantor_penerbit": "DISDUKCAPIL KOTA BANDUNG",
            },
        }[lookup]
        with pytest.raises(RecordNotFound):
            await capil.fetch("akta-lahir", query)


class TestFaults:
    @pytest.mark.parametrize("service", ["ktp", "kk", "akta-lahir"])
    @pytest.mark.parametrize(
        ("kind", "error"),
        [("corrupt", UpstreamInvalid), ("slow", UpstreamTimeout), ("error", UpstreamError)],
    )
    async def test_fault_nik(
        self,
        dukcapil: Adapter,
        capil: Adapter,
        population: Population,
        service: str,
        kind: str,
        error: type[Error],
    ) -> None:
        nik = next(n for n, k in population.faults.items() if k == kind)
        adapter = capil if service == "akta-lahir" else dukcapil
        with pytest.raises(error) as caught:
            await adapter.fetch(service, {"nik": nik})
        assert type(caught.value) is error
        assert nik not in caught.value.detail

    async def test_card_with_a_corrupt_member_is_invalid(
        self, dukcapil: Adapter, population: Population
    ) -> None:
        household = population.household_of(population.fault_nik("corrupt"))
        assert household is not None
        with pytest.raises(UpstreamInvalid, match="TGL_LHR"):
            await dukcapil.fetch("kk", {"no_kk": household.no_kk})
