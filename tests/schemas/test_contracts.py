"""The shared record shapes of docs/architecture.md, enforced on requests and responses."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest

from schemas import RequestInvalid, ResponseInvalid, SchemaSet
from tests.schemas.samples import (
    CHILD_NIK,
    FATHER_NIK,
    MOTHER_NIK,
    NO_KK,
    RECORDS,
    akta_record,
    kk_record,
    ktp_record,
)

# The field lists exactly as docs/architecture.md states them.
KTP_FIELDS = [
    "nik",
    "nama",
    "tempat_lahir",
    "tanggal_lahir",
    "jenis_kelamin",
    "golongan_darah",
    "alamat",
    "rt",
    "rw",
    "kelurahan_desa",
    "kecamatan",
    "kabupaten_kota",
    "provinsi",
    "agama",
    "status_perkawinan",
    "pekerjaan",
    "kewarganegaraan",
    "berlaku_hingga",
]
KK_FIELDS = [
    "no_kk",
    "kepala_keluarga",
    "alamat",
    "rt",
    "rw",
    "kelurahan_desa",
    "kecamatan",
    "kabupaten_kota",
    "provinsi",
    "kode_pos",
    "tanggal_terbit",
    "anggota",
]
ANGGOTA_FIELDS = [
    "nik",
    "nama",
    "jenis_kelamin",
    "tempat_lahir",
    "tanggal_lahir",
    "agama",
    "pendidikan",
    "pekerjaan",
    "status_perkawinan",
    "hubungan_keluarga",
    "kewarganegaraan",
    "nama_ayah",
    "nama_ibu",
]
AKTA_FIELDS = ["no_akta", "kantor_penerbit", "tanggal_terbit", "anak", "ayah", "ibu"]
ANAK_FIELDS = ["nik", "nama", "jenis_kelamin", "tempat_lahir", "tanggal_lahir", "anak_ke"]
FIELDS = {"ktp": KTP_FIELDS, "kk": KK_FIELDS, "akta-lahir": AKTA_FIELDS}

Path = tuple[str | int, ...]


def _with(record: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    """A deep copy of ``record`` with the value at ``path`` replaced."""
    out = copy.deepcopy(record)
    target: Any = out
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return out


def _without(record: dict[str, Any], path: Path) -> dict[str, Any]:
    """A deep copy of ``record`` with the property at ``path`` removed."""
    out = copy.deepcopy(record)
    target: Any = out
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return out


class TestFieldNames:
    @pytest.mark.parametrize("code", list(FIELDS))
    def test_response_fields_are_the_architecture_lists(
        self, schema_set: SchemaSet, code: str
    ) -> None:
        assert schema_set.response_fields(code) == tuple(FIELDS[code])

    @pytest.mark.parametrize(
        ("code", "keys"),
        [
            ("ktp", ("nik",)),
            ("kk", ("no_kk", "nik")),
            ("akta-lahir", ("nik", "no_akta", "kantor_penerbit")),
        ],
    )
    def test_request_query_keys(
        self, schema_set: SchemaSet, code: str, keys: tuple[str, ...]
    ) -> None:
        assert schema_set.request_query_keys(code) == keys


class TestValidResponses:
    @pytest.mark.parametrize("code", list(RECORDS))
    def test_sample_record(self, schema_set: SchemaSet, code: str) -> None:
        schema_set.validate_response(code, RECORDS[code]())

    def test_ktp_valid_until_a_date(self, schema_set: SchemaSet) -> None:
        schema_set.validate_response("ktp", _with(ktp_record(), ("berlaku_hingga",), "2030-05-17"))

    @pytest.mark.parametrize("parent", ["ayah", "ibu"])
    def test_akta_parent_without_nik(self, schema_set: SchemaSet, parent: str) -> None:
        schema_set.validate_response("akta-lahir", _with(akta_record(), (parent, "nik"), None))

    @pytest.mark.parametrize(
        "blood",
        ["A", "B", "AB", "O", "A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-", "TIDAK TAHU"],
    )
    def test_every_blood_type(self, schema_set: SchemaSet, blood: str) -> None:
        schema_set.validate_response("ktp", _with(ktp_record(), ("golongan_darah",), blood))


class TestResponseMissingFields:
    @pytest.mark.parametrize(
        ("code", "path"),
        [("ktp", (f,)) for f in KTP_FIELDS]
        + [("kk", (f,)) for f in KK_FIELDS]
        + [("kk", ("anggota", 1, f)) for f in ANGGOTA_FIELDS]
        + [("akta-lahir", (f,)) for f in AKTA_FIELDS]
        + [("akta-lahir", ("anak", f)) for f in ANAK_FIELDS]
        + [("akta-lahir", (p, f)) for p in ("ayah", "ibu") for f in ("nik", "nama")],
        ids=lambda v: v if isinstance(v, str) else ".".join(map(str, v)),
    )
    def test_missing(self, schema_set: SchemaSet, code: str, path: Path) -> None:
        with pytest.raises(ResponseInvalid, match=f"missing required property '{path[-1]}'"):
            schema_set.validate_response(code, _without(RECORDS[code](), path))


class TestResponseDenials:
    @pytest.mark.parametrize(
        ("code", "path", "value", "message"),
        [
            # extra properties, at every level
            ("ktp", ("foto",), "x", r"\$: unexpected property 'foto'"),
            ("kk", ("catatan",), "x", r"\$: unexpected property 'catatan'"),
            ("kk", ("anggota", 0, "email"), "x", r"\$\.anggota\[0\]: unexpected property 'email'"),
            ("akta-lahir", ("anak", "berat"), 3, r"\$\.anak: unexpected property 'berat'"),
            ("akta-lahir", ("ibu", "nik_lama"), "x", r"\$\.ibu: unexpected property 'nik_lama'"),
            # enumerations
            ("ktp", ("jenis_kelamin",), "L", r"\$\.jenis_kelamin: must be one of"),
            ("ktp", ("jenis_kelamin",), "laki-laki", r"\$\.jenis_kelamin: must be one of"),
            ("ktp", ("agama",), "Islam", r"\$\.agama: must be one of"),
            ("ktp", ("golongan_darah",), "C", r"\$\.golongan_darah: is not one of"),
            ("ktp", ("status_perkawinan",), "MENIKAH", r"\$\.status_perkawinan: must be one of"),
            ("ktp", ("kewarganegaraan",), "INDONESIA", r"\$\.kewarganegaraan: must be one of"),
            ("kk", ("anggota", 2, "hubungan_keluarga"), "ADIK", r"hubungan_keluarga: is not one"),
            ("kk", ("anggota", 0, "pendidikan"), "SMA", r"\$\.anggota\[0\]\.pendidikan: is not"),
            ("ktp", ("berlaku_hingga",), "SELAMANYA", r"berlaku_hingga: must match exactly one"),
            # dates
            ("ktp", ("tanggal_lahir",), "17-05-1990", r"\$\.tanggal_lahir: "),
            ("ktp", ("tanggal_lahir",), "1990-5-17", r"\$\.tanggal_lahir: "),
            ("ktp", ("tanggal_lahir",), "19900517", r"\$\.tanggal_lahir: "),
            ("ktp", ("tanggal_lahir",), "1990-05-17\n", r"\$\.tanggal_lahir: "),
            ("kk", ("tanggal_terbit",), "2015-02-30", r"\$\.tanggal_terbit: is not a valid date"),
            ("akta-lahir", ("tanggal_terbit",), 20150305, r"\$\.tanggal_terbit: must be of type"),
            # identifiers and short codes
            ("ktp", ("nik",), "320101570590000", r"\$\.nik: does not match the pattern"),
            ("ktp", ("nik",), "3201015705900001\n", r"\$\.nik: must be at most 16"),
            ("ktp", ("nik",), "٣٢٠١٠١٥٧٠٥٩٠٠٠٠١", r"\$\.nik: does not match the pattern"),
            ("ktp", ("nik",), 3201015705900001, r"\$\.nik: must be of type string"),
            ("kk", ("no_kk",), "32010120031500", r"\$\.no_kk: does not match the pattern"),
            ("ktp", ("rt",), "1", r"\$\.rt: does not match the pattern"),
            ("ktp", ("rw",), "0002", r"\$\.rw: "),
            ("kk", ("kode_pos",), "1691", r"\$\.kode_pos: does not match the pattern"),
            (
                "akta-lahir",
                ("ayah", "nik"),
                "123",
                r"\$\.ayah\.nik: must match one of: nik \| null",
            ),
            # other values
            ("ktp", ("nama",), "", r"\$\.nama: must not be empty"),
            ("ktp", ("alamat",), "x" * 256, r"\$\.alamat: must be at most 255 characters"),
            ("kk", ("anggota",), [], r"\$\.anggota: must have at least 1 item"),
            ("akta-lahir", ("anak", "anak_ke"), 0, r"\$\.anak\.anak_ke: must be at least 1"),
            ("akta-lahir", ("anak", "anak_ke"), "1", r"\$\.anak\.anak_ke: must be of type integer"),
            ("akta-lahir", ("anak", "anak_ke"), 1.5, r"\$\.anak\.anak_ke: must be of type integer"),
            (
                "akta-lahir",
                ("anak", "anak_ke"),
                True,
                r"\$\.anak\.anak_ke: must be of type integer",
            ),
        ],
    )
    def test_invalid_value(
        self, schema_set: SchemaSet, code: str, path: Path, value: Any, message: str
    ) -> None:
        with pytest.raises(ResponseInvalid, match=message):
            schema_set.validate_response(code, _with(RECORDS[code](), path, value))

    def test_a_family_card_of_more_than_64(self, schema_set: SchemaSet) -> None:
        record = kk_record()
        first = record["anggota"][0]
        record["anggota"] = [
            dict(first, nik=f"{first['nik'][:12]}{serial:04d}") for serial in range(1, 66)
        ]
        with pytest.raises(ResponseInvalid, match=r"\$\.anggota: must have at most 64 items"):
            schema_set.validate_response("kk", record)
        record["anggota"].pop()
        schema_set.validate_response("kk", record)

    @pytest.mark.parametrize("body", [None, [], "record", 1])
    def test_not_an_object(self, schema_set: SchemaSet, body: object) -> None:
        with pytest.raises(ResponseInvalid, match=r"\$: must be of type object"):
            schema_set.validate_response("ktp", body)

    def test_error_is_upstream_invalid(self, schema_set: SchemaSet) -> None:
        with pytest.raises(ResponseInvalid) as caught:
            schema_set.validate_response("ktp", {})
        assert (caught.value.problem_type, caught.value.status) == ("upstream-invalid", 502)


class TestFormatChecking:
    """``format: date`` is enforced by the FormatChecker, not only by the pattern beside it."""

    @pytest.mark.parametrize("value", ["2023-02-29", "2024-13-01", "2024-04-31", "2024-00-10"])
    def test_pattern_matches_but_date_is_not_real(self, schema_set: SchemaSet, value: str) -> None:
        assert re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value)
        with pytest.raises(ResponseInvalid, match=r"\$\.tanggal_terbit: is not a valid date"):
            schema_set.validate_response("kk", _with(kk_record(), ("tanggal_terbit",), value))

    def test_leap_day_is_a_date(self, schema_set: SchemaSet) -> None:
        schema_set.validate_response("kk", _with(kk_record(), ("tanggal_terbit",), "2024-02-29"))


class TestResponseIdentifiers:
    @pytest.mark.parametrize(
        ("code", "path", "value", "message"),
        [
            # the NIK must encode the record's sex and birth date
            ("ktp", ("jenis_kelamin",), "LAKI-LAKI", r"\$\.nik: NIK does not encode"),
            ("ktp", ("tanggal_lahir",), "1990-05-18", r"\$\.nik: NIK does not encode"),
            ("ktp", ("tanggal_lahir",), "1991-05-17", r"\$\.nik: NIK does not encode"),
            (
                "kk",
                ("anggota", 1, "jenis_kelamin"),
                "LAKI-LAKI",
                r"\$\.anggota\[1\]\.nik: NIK does",
            ),
            ("kk", ("anggota", 2, "nik"), FATHER_NIK, r"\$\.anggota\[2\]\.nik: NIK does not"),
            ("akta-lahir", ("anak", "tanggal_lahir"), "2015-02-27", r"\$\.anak\.nik: NIK does not"),
            ("akta-lahir", ("anak", "jenis_kelamin"), "PEREMPUAN", r"\$\.anak\.nik: NIK does not"),
            # every NIK and No. KK must be a real one
            ("ktp", ("nik",), "9901015705900001", r"\$\.nik: invalid NIK: province code"),
            (
                "kk",
                ("anggota", 0, "nik"),
                "3201010201850000",
                r"anggota\[0\]\.nik: invalid NIK: ser",
            ),
            (
                "akta-lahir",
                ("ayah", "nik"),
                "3201013102850003",
                r"\$\.ayah\.nik: invalid NIK: birth",
            ),
            ("akta-lahir", ("ibu", "nik"), "3201010001900001", r"\$\.ibu\.nik: invalid NIK: day"),
            ("kk", ("no_kk",), "3201012003150000", r"\$\.no_kk: invalid No\. KK: serial"),
            ("kk", ("no_kk",), "3201013102150007", r"\$\.no_kk: invalid No\. KK: issue date"),
        ],
    )
    def test_invalid(
        self, schema_set: SchemaSet, code: str, path: Path, value: Any, message: str
    ) -> None:
        with pytest.raises(ResponseInvalid, match=message):
            schema_set.validate_response(code, _with(RECORDS[code](), path, value))

    def test_birth_date_in_the_future(self, schema_set: SchemaSet) -> None:
        # A NIK for 2030-01-01 decodes as 1930 today, so only the record's own date shows it.
        record = _with(ktp_record(), ("nik",), "3201014101300001")
        record["tanggal_lahir"] = "2030-01-01"
        with pytest.raises(ResponseInvalid, match=r"\$\.tanggal_lahir: is in the future"):
            schema_set.validate_response("ktp", record)

    def test_schema_errors_come_before_identifier_checks(self, schema_set: SchemaSet) -> None:
        record = _with(ktp_record(), ("nik",), "9901015705900001")
        del record["nama"]
        with pytest.raises(ResponseInvalid) as caught:
            schema_set.validate_response("ktp", record)
        assert caught.value.detail == "$: missing required property 'nama'"


class TestValidRequests:
    @pytest.mark.parametrize(
        ("code", "body"),
        [
            ("ktp", {"nik": MOTHER_NIK}),
            ("ktp", {"nik": MOTHER_NIK, "fields": ["nama", "tanggal_lahir", "alamat"]}),
            ("ktp", {"nik": MOTHER_NIK, "fields": KTP_FIELDS}),
            ("kk", {"no_kk": NO_KK}),
            ("kk", {"nik": CHILD_NIK, "fields": ["anggota"]}),
            ("akta-lahir", {"nik": CHILD_NIK}),
            (
                "akta-lahir",
                {"no_akta": "3201-LT-05032015-0042", "kantor_penerbit": "DUKCAPIL BOGOR"},
            ),
            ("akta-lahir", {"nik": CHILD_NIK, "fields": AKTA_FIELDS}),
        ],
    )
    def test_valid(self, schema_set: SchemaSet, code: str, body: dict[str, Any]) -> None:
        schema_set.validate_request(code, body)


class TestRequestDenials:
    @pytest.mark.parametrize(
        ("code", "body", "message"),
        [
            ("ktp", {}, r"\$: missing required property 'nik'"),
            ("ktp", {"fields": ["nama"]}, r"\$: missing required property 'nik'"),
            ("ktp", {"nik": MOTHER_NIK, "nama": "SITI"}, r"\$: unexpected property 'nama'"),
            ("ktp", {"nik": "320101570590000"}, r"\$\.nik: does not match the pattern"),
            ("ktp", {"nik": None}, r"\$\.nik: must be of type string"),
            # the NIK's own rules
            ("ktp", {"nik": "9901015705900001"}, r"\$\.nik: invalid NIK: province code"),
            ("ktp", {"nik": "3201013102900001"}, r"\$\.nik: invalid NIK: birth date is not a real"),
            ("ktp", {"nik": "3201015705900000"}, r"\$\.nik: invalid NIK: serial"),
            ("kk", {"nik": "3201019905900001"}, r"\$\.nik: invalid NIK: day of birth"),
            ("akta-lahir", {"nik": "3201012815150002"}, r"\$\.nik: invalid NIK: birth date month"),
            ("kk", {"no_kk": "3201012003150000"}, r"\$\.no_kk: invalid No\. KK: serial"),
            # kk: exactly one of no_kk / nik
            ("kk", {}, r"\$: must match exactly one of: 'no_kk' \| 'nik'"),
            ("kk", {"fields": ["anggota"]}, r"\$: must match exactly one of: 'no_kk' \| 'nik'"),
            ("kk", {"no_kk": NO_KK, "nik": CHILD_NIK}, r"\$: must match exactly one of"),
            # akta-lahir: nik, or no_akta + kantor_penerbit
            ("akta-lahir", {}, r"\$: must match exactly one of: 'nik' \| 'no_akta'"),
            ("akta-lahir", {"no_akta": "42"}, r"'no_akta' requires 'kantor_penerbit'"),
            ("akta-lahir", {"kantor_penerbit": "X"}, r"'kantor_penerbit' requires 'no_akta'"),
            ("akta-lahir", {"nik": CHILD_NIK, "kantor_penerbit": "X"}, r"requires 'no_akta'"),
            (
                "akta-lahir",
                {"nik": CHILD_NIK, "no_akta": "42", "kantor_penerbit": "X"},
                r"\$: must match exactly one of",
            ),
            ("akta-lahir", {"no_akta": "", "kantor_penerbit": "X"}, r"\$\.no_akta: must not be"),
            # fields
            ("ktp", {"nik": MOTHER_NIK, "fields": []}, r"\$\.fields: must have at least 1 item"),
            ("ktp", {"nik": MOTHER_NIK, "fields": "nama"}, r"\$\.fields: must be of type array"),
            (
                "ktp",
                {"nik": MOTHER_NIK, "fields": ["nama", "nama"]},
                r"\$\.fields: must not repeat",
            ),
            ("ktp", {"nik": MOTHER_NIK, "fields": ["foto"]}, r"\$\.fields\[0\]: is not one of"),
            ("ktp", {"nik": MOTHER_NIK, "fields": ["no_kk"]}, r"\$\.fields\[0\]: is not one of"),
            ("kk", {"no_kk": NO_KK, "fields": ["nama"]}, r"\$\.fields\[0\]: is not one of"),
            ("akta-lahir", {"nik": CHILD_NIK, "fields": ["anak", 1]}, r"\$\.fields\[1\]: must be"),
            ("akta-lahir", {"nik": CHILD_NIK, "fields": ["nama"]}, r"\$\.fields\[0\]: must be one"),
        ],
    )
    def test_invalid(
        self, schema_set: SchemaSet, code: str, body: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(RequestInvalid, match=message):
            schema_set.validate_request(code, body)

    def test_error_is_schema_invalid(self, schema_set: SchemaSet) -> None:
        with pytest.raises(RequestInvalid) as caught:
            schema_set.validate_request("ktp", {})
        assert (caught.value.problem_type, caught.value.status) == ("schema-invalid", 400)


def _no_digit_runs(text: str) -> bool:
    """No run of 6+ digits: what a NIK, a No. KK or a long part of either would leave behind."""
    return re.search(r"[0-9]{6,}", text) is None


class TestNoEcho:
    """A detail names where and which rule, never a value: a value may be a NIK."""

    @pytest.mark.parametrize(
        ("code", "body"),
        [
            ("ktp", {"nik": MOTHER_NIK + "0"}),
            ("ktp", {"nik": MOTHER_NIK + "\n"}),
            ("ktp", {"nik": int(MOTHER_NIK)}),
            ("ktp", {"nik": [MOTHER_NIK]}),
            ("ktp", {"nik": {"value": MOTHER_NIK}}),
            ("ktp", {"nik": "9901015705900001"}),
            ("ktp", {"nik": MOTHER_NIK, "fields": [MOTHER_NIK]}),
            ("ktp", {"nik": MOTHER_NIK, MOTHER_NIK: True}),
            ("ktp", {"nik": MOTHER_NIK, f"nik_{MOTHER_NIK}": True}),
            ("kk", {"nik": MOTHER_NIK, "no_kk": NO_KK}),
            ("kk", {"no_kk": NO_KK[:-1] + "X"}),
            ("akta-lahir", {"nik": CHILD_NIK, "no_akta": FATHER_NIK}),
            ("akta-lahir", {"no_akta": FATHER_NIK, "kantor_penerbit": "x" * 300}),
        ],
    )
    def test_request_details(self, schema_set: SchemaSet, code: str, body: object) -> None:
        with pytest.raises(RequestInvalid) as caught:
            schema_set.validate_request(code, body)
        assert _no_digit_runs(caught.value.detail), caught.value.detail
        assert str(caught.value) == caught.value.detail

    @pytest.mark.parametrize(
        ("code", "mutate"),
        [
            ("ktp", lambda r: r.update(jenis_kelamin="LAKI-LAKI")),
            ("ktp", lambda r: r.update(nik=r["nik"][:-1])),
            ("ktp", lambda r: r.update(nama=MOTHER_NIK * 20)),
            ("ktp", lambda r: r.update(berlaku_hingga=MOTHER_NIK)),
            ("kk", lambda r: r["anggota"][0].update(nik=FATHER_NIK[:-4] + "0000")),
            ("kk", lambda r: r["anggota"].append(MOTHER_NIK)),
            ("kk", lambda r: r.update(no_kk=NO_KK[:-4] + "0000")),
            ("akta-lahir", lambda r: r["ayah"].update(nik=FATHER_NIK + "1")),
            ("akta-lahir", lambda r: r["anak"].update(nik=MOTHER_NIK)),
        ],
    )
    def test_response_details(
        self, schema_set: SchemaSet, code: str, mutate: Callable[[dict[str, Any]], None]
    ) -> None:
        record = RECORDS[code]()
        mutate(record)
        with pytest.raises(ResponseInvalid) as caught:
            schema_set.validate_response(code, record)
        assert _no_digit_runs(caught.value.detail), caught.value.detail

    def test_unexpected_names_with_digits_are_not_shown(self, schema_set: SchemaSet) -> None:
        with pytest.raises(RequestInvalid) as caught:
            schema_set.validate_request("ktp", {"nik": MOTHER_NIK, MOTHER_NIK: 1, "foo": 2})
        assert caught.value.detail == "$: unexpected property (name not shown), 'foo'"


class TestDetailShape:
    def test_at_most_five_errors_then_a_count(self, schema_set: SchemaSet) -> None:
        with pytest.raises(ResponseInvalid) as caught:
            schema_set.validate_response("ktp", dict.fromkeys(KTP_FIELDS, 0))
        parts = caught.value.detail.split("; ")
        assert len(parts) == 6
        assert re.fullmatch(r"and [0-9]+ more", parts[-1])
        assert all(re.fullmatch(r"\$\.[a-z_]+: (must|is not) .+", part) for part in parts[:5])

    def test_errors_are_ordered_by_location(self, schema_set: SchemaSet) -> None:
        record = _with(ktp_record(), ("rt",), "1")
        record["agama"] = "x"
        with pytest.raises(ResponseInvalid) as caught:
            schema_set.validate_response("ktp", record)
        assert caught.value.detail.startswith("$.agama: ")
        assert "; $.rt: " in caught.value.detail
