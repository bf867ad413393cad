"""Build households of consistent synthetic citizens from one seeded random generator.

Every draw goes through the one ``random.Random`` in a fixed order, so a seed always yields
the same people. Ages, KTP eligibility and issue dates are reckoned against
:data:`REFERENCE_DATE`, never the clock.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

from adapters.sandbox import _traits as traits
from adapters.sandbox._identifiers import Numbering
from adapters.sandbox._model import (
    REFERENCE_DATE,
    WIB,
    Address,
    BirthRecord,
    Household,
    Person,
    age_on,
)
from adapters.sandbox._names import BIRTH_CITIES, FAMILY_NAMES, FEMALE, MALE
from adapters.sandbox._regions import DISTRICTS, District

__all__ = ["AKTA_SINCE", "KTP_AGE", "build"]

AKTA_SINCE = date(1981, 1, 1)
"""People born on or after this day have a birth certificate in the sandbox."""
KTP_AGE = 17
_KK_SINCE = date(2006, 1, 1)  # KK numbers in this form date from the SIAK era
_OLDEST = date(1935, 1, 1)

Shape = Literal["family", "couple", "single_parent", "single", "widowed"]
_SHAPES: tuple[Shape, ...] = ("family", "couple", "single_parent", "single", "widowed")
_SHAPE_WEIGHTS = (55, 10, 12, 13, 10)


@dataclass(eq=False)
class _Draft:
    """A person before numbers are handed out; parents are linked when they live here too."""

    nama: str
    female: bool
    born: date
    birth_place: str
    relation: str
    marital: str
    religion: str
    father_name: str
    mother_name: str
    birth_order: int
    father: _Draft | None = None
    mother: _Draft | None = None
    nik: str = ""


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year + years, day=28)


class _Builder:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.numbers = Numbering()
        self.households: list[Household] = []
        self.births: list[BirthRecord] = []

    # -- small draws ---------------------------------------------------------------------

    def day_between(self, start: date, end: date) -> date:
        if end <= start:
            return start
        return start + timedelta(days=self.rng.randint(0, (end - start).days))

    def given_name(self, *, female: bool) -> str:
        pool = FEMALE if female else MALE
        first = self.rng.choice(pool)
        if self.rng.random() < 0.6:
            second = self.rng.choice(pool)
            if second != first:
                return f"{first} {second}"
        return first

    def name(self, *, female: bool, family: str | None) -> str:
        given = self.given_name(female=female)
        return f"{given} {family}" if family else given

    def birth_place(self, born: date, district: District) -> str:
        if born >= AKTA_SINCE and self.rng.random() < 0.8:
            return district.birth_city
        return self.rng.choice(BIRTH_CITIES)

    def draft(
        self,
        district: District,
        *,
        female: bool,
        born: date,
        relation: str,
        marital: str,
        religion: str,
        family: str | None,
    ) -> _Draft:
        """A person whose parents live elsewhere (their names are drawn here)."""
        return _Draft(
            nama=self.name(female=female, family=family),
            female=female,
            born=born,
            birth_place=self.birth_place(born, district),
            relation=relation,
            marital=marital,
            religion=religion,
            father_name=self.name(female=False, family=family),
            mother_name=self.name(female=True, family=None),
            birth_order=self.rng.randint(1, 4),
        )

    # -- households ----------------------------------------------------------------------

    def household(self, district: District, shape: Shape, *, demo: bool = False) -> None:
        rng = self.rng
        religion = traits.religion(rng)
        family = rng.choice(FAMILY_NAMES) if rng.random() < 0.12 else None
        events: list[date] = []
        if shape in ("family", "couple"):
            drafts = self.couple(district, shape, religion, family, events, demo=demo)
        elif shape == "single_parent":
            drafts = self.single_parent(district, religion, family, events)
        else:
            female = rng.random() < (0.7 if shape == "widowed" else 0.5)
            if shape == "single":
                born = self.day_between(
                    _add_years(REFERENCE_DATE, -40), _add_years(REFERENCE_DATE, -19)
                )
                marital = "BELUM KAWIN"
            else:
                born = self.day_between(
                    _add_years(REFERENCE_DATE, -88), _add_years(REFERENCE_DATE, -60)
                )
                marital = "CERAI MATI"
            head = self.draft(
                district,
                female=female,
                born=born,
                relation="KEPALA KELUARGA",
                marital=marital,
                religion=religion,
                family=family,
            )
            drafts = [head]
        events.append(_add_years(drafts[0].born, KTP_AGE))
        self.finish(district, drafts, max(events))

    def couple(
        self,
        district: District,
        shape: Shape,
        religion: str,
        family: str | None,
        events: list[date],
        *,
        demo: bool,
    ) -> list[_Draft]:
        rng = self.rng
        if demo:
            head_born = self.day_between(date(1985, 1, 1), date(1991, 12, 31))
        elif shape == "family":
            head_born = self.day_between(
                _add_years(REFERENCE_DATE, -62), _add_years(REFERENCE_DATE, -25)
            )
        else:
            head_born = self.day_between(
                _add_years(REFERENCE_DATE, -75), _add_years(REFERENCE_DATE, -23)
            )
        head = self.draft(
            district,
            female=False,
            born=head_born,
            relation="KEPALA KELUARGA",
            marital="KAWIN",
            religion=religion,
            family=family,
        )
        wife_born = min(
            head_born + timedelta(days=rng.randint(-3 * 365, 8 * 365)),
            _add_years(REFERENCE_DATE, -20),
        )
        wife_family = rng.choice(FAMILY_NAMES) if family and rng.random() < 0.5 else None
        wife = self.draft(
            district,
            female=True,
            born=wife_born,
            relation="ISTRI",
            marital="KAWIN",
            religion=religion,
            family=wife_family,
        )
        married = max(_add_years(head_born, 22), _add_years(wife_born, 20))
        married = min(married + timedelta(days=rng.randint(0, 5 * 365)), REFERENCE_DATE)
        events.append(married)
        drafts = [head, wife]
        if shape == "family":
            count = rng.choices((1, 2, 3, 4), (30, 40, 20, 10))[0]
            if demo:
                count = max(count, 2)
            kids = self.children(
                district,
                father=head,
                mother=wife,
                father_name=head.nama,
                mother_name=wife.nama,
                mother_born=wife.born,
                religion=religion,
                family=family,
                start=married,
                count=count,
            )
            events.extend(kid.born for kid in kids)
            drafts.extend(kids)
        if demo or rng.random() < 0.15:
            child, relation = (
                (head, "ORANG TUA") if demo or rng.random() < 0.6 else (wife, "MERTUA")
            )
            elder = self.elder(district, child, relation)
            if elder is not None:
                events.append(self.day_between(married, REFERENCE_DATE))
                drafts.append(elder)
        return drafts

    def single_parent(
        self, district: District, religion: str, family: str | None, events: list[date]
    ) -> list[_Draft]:
        rng = self.rng
        female = rng.random() < 0.75
        born = self.day_between(_add_years(REFERENCE_DATE, -60), _add_years(REFERENCE_DATE, -28))
        head = self.draft(
            district,
            female=female,
            born=born,
            relation="KEPALA KELUARGA",
            marital=rng.choice(("CERAI HIDUP", "CERAI MATI")),
            religion=religion,
            family=None if female else family,
        )
        absent = self.name(female=not female, family=family if female else None)
        kids = self.children(
            district,
            father=None if female else head,
            mother=head if female else None,
            father_name=absent if female else head.nama,
            mother_name=head.nama if female else absent,
            mother_born=born if female else born + timedelta(days=rng.randint(-365, 6 * 365)),
            religion=religion,
            family=family,
            start=_add_years(born, 21),
            count=rng.choices((1, 2, 3), (45, 40, 15))[0],
        )
        events.extend(kid.born for kid in kids)
        return [head, *kids]

    def children(
        self,
        district: District,
        *,
        father: _Draft | None,
        mother: _Draft | None,
        father_name: str,
        mother_name: str,
        mother_born: date,
        religion: str,
        family: str | None,
        start: date,
        count: int,
    ) -> list[_Draft]:
        """Up to ``count`` children, born after ``start`` while their mother is 19 to 42."""
        rng = self.rng
        earliest = max(start + timedelta(days=300), _add_years(mother_born, 19))
        latest = min(_add_years(mother_born, 42), REFERENCE_DATE - timedelta(days=30))
        born = earliest + timedelta(days=rng.randint(0, 3 * 365))
        kids: list[_Draft] = []
        for order in range(1, count + 1):
            if born > latest:
                break
            female = rng.random() < 0.5
            kids.append(
                _Draft(
                    nama=self.name(female=female, family=family),
                    female=female,
                    born=born,
                    birth_place=district.birth_city,
                    relation="ANAK",
                    marital="BELUM KAWIN",
                    religion=religion,
                    father_name=father_name,
                    mother_name=mother_name,
                    birth_order=order,
                    father=father,
                    mother=mother,
                )
            )
            born += timedelta(days=rng.randint(450, 5 * 365))
        return kids

    def elder(self, district: District, child: _Draft, relation: str) -> _Draft | None:
        """A widowed parent of ``child`` moving in; their name is the one ``child`` records."""
        rng = self.rng
        born = _add_years(child.born, -rng.randint(22, 36)) - timedelta(days=rng.randint(0, 300))
        if born < _OLDEST:
            return None
        female = rng.random() < 0.8
        elder = self.draft(
            district,
            female=female,
            born=born,
            relation=relation,
            marital="CERAI MATI",
            religion=child.religion,
            family=None,
        )
        if female:
            elder.nama, child.mother = child.mother_name, elder
        else:
            elder.nama, child.father = child.father_name, elder
        return elder

    # -- numbers, records ----------------------------------------------------------------

    def finish(self, district: District, drafts: Sequence[_Draft], last_event: date) -> None:
        rng = self.rng
        earliest = max(last_event + timedelta(days=14), _KK_SINCE)
        issued = min(self.day_between(earliest, earliest + timedelta(days=3 * 365)), REFERENCE_DATE)
        village = rng.choice(district.villages)
        address = Address(
            alamat=f"{rng.choice(district.streets)} NO. {rng.randint(1, 150)}",
            rt=rng.randint(1, 15),
            rw=rng.randint(1, 12),
            kelurahan_desa=village.name,
            kecamatan=district.name,
            kabupaten_kota=district.regency,
            provinsi=district.province,
            kode_pos=village.postal_code,
            kode_kecamatan=district.code,
            kode_kelurahan=district.code + village.code,
        )
        no_kk = self.numbers.no_kk(district.code, issued)
        for draft in drafts:
            draft.nik = self.numbers.nik(district.code, draft.born, female=draft.female)
        members = tuple(self.person(draft, no_kk) for draft in drafts)
        self.households.append(Household(no_kk, issued, address, members))
        self.births.extend(
            self.birth_record(draft, district) for draft in drafts if draft.born >= AKTA_SINCE
        )

    def person(self, draft: _Draft, no_kk: str) -> Person:
        age = age_on(REFERENCE_DATE, draft.born)
        education = traits.education(self.rng, age)
        return Person(
            nik=draft.nik,
            nama=draft.nama,
            jenis_kelamin="PEREMPUAN" if draft.female else "LAKI-LAKI",
            tempat_lahir=draft.birth_place,
            tanggal_lahir=draft.born,
            agama=draft.religion,
            golongan_darah=traits.blood_type(self.rng, draft.born),
            pendidikan=education,
            pekerjaan=traits.occupation(
                self.rng, age, female=draft.female, relation=draft.relation, education=education
            ),
            status_perkawinan=draft.marital,
            hubungan_keluarga=draft.relation,
            kewarganegaraan="WNI",
            nama_ayah=draft.father_name,
            nama_ibu=draft.mother_name,
            no_kk=no_kk,
            has_ktp=age >= KTP_AGE or draft.marital != "BELUM KAWIN",
        )

    def birth_record(self, draft: _Draft, district: District) -> BirthRecord:
        rng = self.rng
        if draft.born.year >= 2000 and rng.random() < 0.75:
            issued = draft.born + timedelta(days=rng.randint(3, 60))
        else:
            issued = draft.born + timedelta(days=rng.randint(61, 6 * 365))
        issued = min(issued, REFERENCE_DATE)
        at = datetime.combine(issued, time(rng.randint(8, 15), rng.randint(0, 59)), tzinfo=WIB)
        late = (issued - draft.born).days > 60
        return BirthRecord(
            no_akta=self.numbers.no_akta(district.regency_code, issued, late=late),
            kantor_penerbit=district.registry_office,
            issued_at=at,
            anak_nik=draft.nik,
            anak_nama=draft.nama,
            jenis_kelamin="PEREMPUAN" if draft.female else "LAKI-LAKI",
            tempat_lahir=draft.birth_place,
            tanggal_lahir=draft.born,
            anak_ke=draft.birth_order,
            ayah_nik=draft.father.nik if draft.father else None,
            ayah_nama=draft.father_name,
            ibu_nik=draft.mother.nik if draft.mother else None,
            ibu_nama=draft.mother_name,
        )


def build(seed: int, households: int) -> tuple[tuple[Household, ...], tuple[BirthRecord, ...]]:
    """Generate ``households`` families; the first is the demo family in Tebet, Jakarta Selatan."""
    if households < 1:
        raise ValueError("households must be at least 1")
    rng = random.Random(seed)  # noqa: S311 - synthetic data, reproducible by design
    builder = _Builder(rng)
    builder.household(DISTRICTS[0], "family", demo=True)
    weights = [district.weight for district in DISTRICTS]
    for _ in range(households - 1):
        district = rng.choices(DISTRICTS, weights)[0]
        builder.household(district, rng.choices(_SHAPES, _SHAPE_WEIGHTS)[0])
    return tuple(builder.households), tuple(builder.births)
