"""NIK and No. KK rules: decoding, each way to be invalid, the century choice, the builders."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import InvalidNik, InvalidNoKk
from schemas.identifiers import (
    FEMALE,
    MALE,
    PROVINCES,
    KkInfo,
    NikInfo,
    is_valid_nik,
    is_valid_no_kk,
    make_nik,
    make_no_kk,
    nik_matches,
    parse_nik,
    parse_no_kk,
    today_in_indonesia,
)

TODAY = date(2025, 6, 30)


class TestProvinces:
    def test_the_38_kemendagri_provinces(self) -> None:
        assert len(PROVINCES) == 38
        assert PROVINCES["31"] == "DKI JAKARTA"
        assert PROVINCES["96"] == "PAPUA BARAT DAYA"

    @pytest.mark.parametrize("code", ["10", "20", "22", "37", "54", "90", "97"])
    def test_codes_that_name_no_province(self, code: str) -> None:
        assert code not in PROVINCES


class TestParseNik:
    def test_a_man(self) -> None:
        assert parse_nik("3201010201850003", today=TODAY) == NikInfo(
            province="32",
            regency="3201",
            district="320101",
            birth_date=date(1985, 1, 2),
            sex=MALE,
            serial=3,
        )

    def test_a_woman_has_40_added_to_her_day_of_birth(self) -> None:
        info = parse_nik("3201015705900001", today=TODAY)
        assert (info.birth_date, info.sex) == (date(1990, 5, 17), FEMALE)

    @pytest.mark.parametrize(
        ("nik", "born", "sex"),
        [
            ("3201010101900001", date(1990, 1, 1), MALE),
            ("3201013101900001", date(1990, 1, 31), MALE),
            ("3201014101900001", date(1990, 1, 1), FEMALE),
            ("3201017101900001", date(1990, 1, 31), FEMALE),
        ],
    )
    def test_day_bounds(self, nik: str, born: date, sex: str) -> None:
        info = parse_nik(nik, today=TODAY)
        assert (info.birth_date, info.sex) == (born, sex)

    def test_serial_9999(self) -> None:
        assert parse_nik("3201010201859999", today=TODAY).serial == 9999

    @pytest.mark.parametrize(
        ("nik", "reason"),
        [
            ("320101020185000", "exactly 16 digits"),
            ("32010102018500031", "exactly 16 digits"),
            ("320101020185000A", "exactly 16 digits"),
            ("3201010201850003\n", "exactly 16 digits"),
            (" 3201010201850003", "exactly 16 digits"),
            ("٣٢٠١٠١٠٢٠١٨٥٠٠٠٣", "exactly 16 digits"),
            ("", "exactly 16 digits"),
            ("0001010201850003", "province code"),
            ("2001010201850003", "province code"),
            ("9701010201850003", "province code"),
            ("9901010201850003", "province code"),
            ("3200010201850003", "regency/city code must not be 00"),
            ("3201000201850003", "district code must not be 00"),
            ("3201010001850003", "day of birth"),
            ("3201013201850003", "day of birth"),
            ("3201014001850003", "day of birth"),
            ("3201017201850003", "day of birth"),
            ("3201019901850003", "day of birth"),
            ("3201010200850003", "month must be 01-12"),
            ("3201010213850003", "month must be 01-12"),
            ("3201013104850003", "not a real calendar date"),
            ("3201017104850003", "not a real calendar date"),
            ("3201013002900003", "not a real calendar date"),
            ("3201012902010003", "not a real calendar date"),
            ("3201012902300003", "not a real calendar date"),
            ("3201010201850000", "serial must be 0001-9999"),
        ],
    )
    def test_invalid(self, nik: str, reason: str) -> None:
        with pytest.raises(InvalidNik, match=reason) as caught:
            parse_nik(nik, today=TODAY)
        assert not re.search(r"[0-9]{6,}", caught.value.detail)
        assert not is_valid_nik(nik, today=TODAY)

    @pytest.mark.parametrize("value", [3201010201850003, None, b"3201010201850003"])
    def test_not_a_string(self, value: object) -> None:
        with pytest.raises(InvalidNik, match="exactly 16 digits"):
            parse_nik(value, today=TODAY)  # type: ignore[arg-type]
        assert not is_valid_nik(value)

    def test_born_in_the_future_in_both_centuries(self) -> None:
        with pytest.raises(InvalidNik, match="in the future"):
            parse_nik("3201010201600003", today=date(1950, 1, 1))

    def test_error_carries_its_problem_type(self) -> None:
        with pytest.raises(InvalidNik) as caught:
            parse_nik("3201010201850000", today=TODAY)
        assert (caught.value.problem_type, caught.value.status) == ("invalid-nik", 400)


class TestCentury:
    @pytest.mark.parametrize(
        ("ddmmyy", "today", "born"),
        [
            ("300625", TODAY, date(2025, 6, 30)),  # today itself is not the future
            ("010725", TODAY, date(1925, 7, 1)),  # tomorrow in 2025 is the future: 1925
            ("010124", TODAY, date(2024, 1, 1)),
            ("311299", TODAY, date(1999, 12, 31)),
            ("010100", TODAY, date(2000, 1, 1)),
            ("010100", date(1999, 12, 31), date(1900, 1, 1)),
        ],
    )
    def test_latest_year_not_in_the_future(self, ddmmyy: str, today: date, born: date) -> None:
        assert parse_nik(f"320101{ddmmyy}0001", today=today).birth_date == born

    @pytest.mark.parametrize(
        ("ddmmyy", "born"),
        [
            ("290200", date(2000, 2, 29)),  # 2000 is a leap year, 1900 is not
            ("690200", date(2000, 2, 29)),  # the same, for a woman
            ("290204", date(2004, 2, 29)),
            ("290228", date(1928, 2, 29)),  # 2028-02-29 has not happened yet
        ],
    )
    def test_february_29(self, ddmmyy: str, born: date) -> None:
        assert parse_nik(f"320101{ddmmyy}0001", today=TODAY).birth_date == born

    def test_february_29_that_is_real_only_in_the_future(self) -> None:
        with pytest.raises(InvalidNik, match="in the future"):
            parse_nik("3201012902000001", today=date(1999, 12, 31))

    def test_default_reference_is_today_in_indonesia(self) -> None:
        yesterday = today_in_indonesia() - timedelta(days=1)
        nik = make_nik("320101", yesterday, MALE, 1)
        assert parse_nik(nik).birth_date == yesterday

    def test_today_in_indonesia_is_at_most_a_day_ahead(self) -> None:
        assert timedelta(0) <= today_in_indonesia() - date.today() <= timedelta(days=1)


class TestNikMatches:
    @pytest.mark.parametrize(
        ("nik", "born", "sex"),
        [
            ("3201010201850003", date(1985, 1, 2), MALE),
            ("3201010201850003", "1985-01-02", MALE),
            ("3201015705900001", "1990-05-17", FEMALE),
            ("3201010101250001", "1925-01-01", MALE),
            ("3201010101250001", "2025-01-01", MALE),
        ],
    )
    def test_matches(self, nik: str, born: date | str, sex: str) -> None:
        assert nik_matches(nik, born, sex)

    @pytest.mark.parametrize(
        ("nik", "born", "sex"),
        [
            ("3201010201850003", "1985-01-02", FEMALE),  # sex
            ("3201015705900001", "1990-05-17", MALE),  # sex
            ("3201010201850003", "1985-01-03", MALE),  # day
            ("3201010201850003", "1985-02-02", MALE),  # month
            ("3201010201850003", "1986-01-02", MALE),  # year
            ("3201010201850003", "1885-01-02", MALE),  # a century NIKs do not cover
            ("3201010201850003", "1985-01-02", "L"),  # not a sex of the schema
            ("3201010201850003", "not a date", MALE),
            ("3201010201850000", "1985-01-02", MALE),  # invalid NIK: serial 0000
            ("9901010201850003", "1985-01-02", MALE),  # invalid NIK: province
        ],
    )
    def test_does_not_match(self, nik: str, born: str, sex: str) -> None:
        assert not nik_matches(nik, born, sex)


class TestParseNoKk:
    def test_valid(self) -> None:
        assert parse_no_kk("3201012003150007", today=TODAY) == KkInfo(
            area_code="320101", issue_date=date(2015, 3, 20), serial=7
        )
        assert is_valid_no_kk("3201012003150007", today=TODAY)

    @pytest.mark.parametrize(
        ("no_kk", "reason"),
        [
            ("320101200315000", "exactly 16 digits"),
            ("320101200315000x", "exactly 16 digits"),
            ("9701012003150007", "province code"),
            ("3200012003150007", "regency/city code"),
            ("3201002003150007", "district code"),
            ("3201010003150007", "day of issue"),
            ("3201013203150007", "day of issue"),
            ("3201016003150007", "day of issue"),  # no +40 on a KK
            ("3201012013150007", "month must be 01-12"),
            ("3201013102150007", "not a real calendar date"),
            ("3201012003150000", "serial must be 0001-9999"),
        ],
    )
    def test_invalid(self, no_kk: str, reason: str) -> None:
        with pytest.raises(InvalidNoKk, match=reason) as caught:
            parse_no_kk(no_kk, today=TODAY)
        assert not re.search(r"[0-9]{6,}", caught.value.detail)
        assert not is_valid_no_kk(no_kk, today=TODAY)

    def test_issued_in_the_future(self) -> None:
        with pytest.raises(InvalidNoKk, match="issue date is in the future"):
            parse_no_kk("3201012003600007", today=date(1950, 1, 1))

    def test_not_a_string(self) -> None:
        assert not is_valid_no_kk(3201012003150007)


class TestMake:
    def test_make_nik(self) -> None:
        assert make_nik("320101", date(1985, 1, 2), MALE, 3) == "3201010201850003"
        assert make_nik("320101", date(1990, 5, 17), FEMALE, 1) == "3201015705900001"

    def test_make_no_kk(self) -> None:
        assert make_no_kk("320101", date(2015, 3, 20), 7) == "3201012003150007"

    @pytest.mark.parametrize(
        ("area", "when", "sex", "serial", "reason"),
        [
            ("32010", date(1990, 1, 1), MALE, 1, "6 digits"),
            ("32010a", date(1990, 1, 1), MALE, 1, "6 digits"),
            ("970101", date(1990, 1, 1), MALE, 1, "province code"),
            ("320001", date(1990, 1, 1), MALE, 1, "regency/city code"),
            ("320100", date(1990, 1, 1), MALE, 1, "district code"),
            ("320101", date(1899, 12, 31), MALE, 1, "year must be 1900-2099"),
            ("320101", date(2100, 1, 1), MALE, 1, "year must be 1900-2099"),
            ("320101", date(1990, 1, 1), MALE, 0, "serial must be 1-9999"),
            ("320101", date(1990, 1, 1), MALE, 10000, "serial must be 1-9999"),
            ("320101", date(1990, 1, 1), "L", 1, "sex must be"),
        ],
    )
    def test_make_nik_refuses(
        self, area: str, when: date, sex: str, serial: int, reason: str
    ) -> None:
        with pytest.raises(ValueError, match=reason):
            make_nik(area, when, sex, serial)  # type: ignore[arg-type]

    def test_make_no_kk_refuses_serial_0(self) -> None:
        with pytest.raises(ValueError, match="serial"):
            make_no_kk("320101", date(2015, 3, 20), 0)


@st.composite
def _people(draw: st.DrawFn) -> tuple[date, str, date, str, int]:
    today = draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)))
    # Inside the last 100 years the two-digit year is unambiguous.
    born = draw(st.dates(min_value=date(today.year - 99, 1, 1), max_value=today))
    area = (
        draw(st.sampled_from(sorted(PROVINCES)))
        + f"{draw(st.integers(1, 99)):02d}"
        + f"{draw(st.integers(1, 99)):02d}"
    )
    sex = draw(st.sampled_from([MALE, FEMALE]))
    return today, area, born, sex, draw(st.integers(1, 9999))


class TestRoundTrip:
    @given(_people())
    def test_make_nik_then_parse_nik(self, person: tuple[date, str, date, str, int]) -> None:
        today, area, born, sex, serial = person
        nik = make_nik(area, born, sex, serial)  # type: ignore[arg-type]
        assert parse_nik(nik, today=today) == NikInfo(
            province=area[:2],
            regency=area[:4],
            district=area,
            birth_date=born,
            sex=sex,  # type: ignore[arg-type]
            serial=serial,
        )
        assert nik_matches(nik, born, sex)

    @given(_people())
    def test_make_no_kk_then_parse_no_kk(self, person: tuple[date, str, date, str, int]) -> None:
        today, area, issued, _, serial = person
        no_kk = make_no_kk(area, issued, serial)
        assert parse_no_kk(no_kk, today=today) == KkInfo(area, issued, serial)
