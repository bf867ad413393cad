"""Hand-written backend answers and the shared records they must map to.

The expected records are written out literally from ``docs/architecture.md`` so that the
mapping tests check the adapters against the contract, not against their own code.
"""

from __future__ import annotations

from typing import Any

DUKCAPIL_URL = "http://dukcapil.test"
CAPIL_URL = "http://capil.test"
CALL_NIK = f"{DUKCAPIL_URL}/dukcapil/api/v1/CALL_NIK"
CALL_KK = f"{DUKCAPIL_URL}/dukcapil/api/v1/CALL_KK"
BIRTHS = f"{CAPIL_URL}/registry/v2/births"

# A woman born 12 May 1990 in Tebet (day 12 + 40 = 52), serial 0012.
NIK = "3174015205900012"
HUSBAND_NIK = "3174010803880007"
NO_KK = "3174010301150003"
NO_AKTA = "3174-LT-20052010-0012"
OFFICE = "DISDUKCAPIL KOTA ADM. JAKARTA SELATAN"
CHILD_NIK = "3174011205100002"

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
KK_MEMBER_FIELDS = [
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
AKTA_CHILD_FIELDS = ["nik", "nama", "jenis_kelamin", "tempat_lahir", "tanggal_lahir", "anak_ke"]


def dukcapil_element(**overrides: Any) -> dict[str, Any]:
    """One element of a Dukcapil answer about :data:`NIK`; ``overrides`` replace keys and a
    value of ``...`` (Ellipsis) deletes the key."""
    element: dict[str, Any] = {
        "NIK": NIK,
        "NO_KK": NO_KK,
        "NAMA_LGKP": "SITI RAHMAWATI",
        "TMPT_LHR": "JAKARTA",
        "TGL_LHR": "12-05-1990",
        "JENIS_KLMIN": "Perempuan",
        "GOL_DARAH": "B+",
        "AGAMA": "Katholik",
        "STATUS_KAWIN": "Kawin",
        "STAT_HBKEL": "Istri",
        "PDDK_AKH": "Diploma IV/Strata I",
        "JENIS_PKRJN": "Karyawan Swasta",
        "KEWARGANEGARAAN": "WNI",
        "NAMA_LGKP_AYAH": "AHMAD SUDIRMAN",
        "NAMA_LGKP_IBU": "SRI WAHYUNI",
        "MASA_BERLAKU_KTP": "SEUMUR HIDUP",
        "NAMA_KEP": "BUDI SANTOSO",
        "TGL_TERBIT_KK": "03-01-2015",
        "ALAMAT": "JL. TEBET BARAT DALAM NO. 12",
        "NO_RT": 4,
        "NO_RW": 2,
        "NO_PROP": 31,
        "NO_KAB": 74,
        "NO_KEC": 1,
        "NO_KEL": 1002,
        "PROP_NAME": "DKI JAKARTA",
        "KAB_NAME": "KOTA ADM. JAKARTA SELATAN",
        "KEC_NAME": "TEBET",
        "KEL_NAME": "TEBET BARAT",
        "KODE_POS": 12810,
    }
    for key, value in overrides.items():
        if value is ...:
            del element[key]
        else:
            element[key] = value
    return element


def husband_element(**overrides: Any) -> dict[str, Any]:
    """The head of :data:`NO_KK`, as a CALL_KK element."""
    fields = {
        "NIK": HUSBAND_NIK,
        "NAMA_LGKP": "BUDI SANTOSO",
        "TGL_LHR": "08-03-1988",
        "JENIS_KLMIN": "Laki-laki",
        "GOL_DARAH": "Tidak Tahu",
        "AGAMA": "Islam",
        "STAT_HBKEL": "Kepala Keluarga",
        "PDDK_AKH": "SLTA/Sederajat",
        "JENIS_PKRJN": "Wiraswasta",
        "NAMA_LGKP_AYAH": "SANTOSO",
        "NAMA_LGKP_IBU": "SUMIATI",
    }
    fields.update(overrides)
    return dukcapil_element(**fields)


def page(*elements: dict[str, Any]) -> dict[str, Any]:
    """A Dukcapil answer page."""
    return {"content": list(elements), "lastPage": True, "numberOfElements": len(elements)}


NOT_FOUND_PAGE = page({"RESPON": "Data Tidak Ditemukan"})

EXPECTED_KTP: dict[str, Any] = {
    "nik": NIK,
    "nama": "SITI RAHMAWATI",
    "tempat_lahir": "JAKARTA",
    "tanggal_lahir": "1990-05-12",
    "jenis_kelamin": "PEREMPUAN",
    "golongan_darah": "B+",
    "alamat": "JL. TEBET BARAT DALAM NO. 12",
    "rt": "004",
    "rw": "002",
    "kelurahan_desa": "TEBET BARAT",
    "kecamatan": "TEBET",
    "kabupaten_kota": "KOTA ADM. JAKARTA SELATAN",
    "provinsi": "DKI JAKARTA",
    "agama": "KATOLIK",
    "status_perkawinan": "KAWIN",
    "pekerjaan": "KARYAWAN SWASTA",
    "kewarganegaraan": "WNI",
    "berlaku_hingga": "SEUMUR HIDUP",
}

EXPECTED_KK: dict[str, Any] = {
    "no_kk": NO_KK,
    "kepala_keluarga": "BUDI SANTOSO",
    "alamat": "JL. TEBET BARAT DALAM NO. 12",
    "rt": "004",
    "rw": "002",
    "kelurahan_desa": "TEBET BARAT",
    "kecamatan": "TEBET",
    "kabupaten_kota": "KOTA ADM. JAKARTA SELATAN",
    "provinsi": "DKI JAKARTA",
    "kode_pos": "12810",
    "tanggal_terbit": "2015-01-03",
    "anggota": [
        {
            "nik": HUSBAND_NIK,
            "nama": "BUDI SANTOSO",
            "jenis_kelamin": "LAKI-LAKI",
            "tempat_lahir": "JAKARTA",
            "tanggal_lahir": "1988-03-08",
            "agama": "ISLAM",
            "pendidikan": "SLTA/SEDERAJAT",
            "pekerjaan": "WIRASWASTA",
            "status_perkawinan": "KAWIN",
            "hubungan_keluarga": "KEPALA KELUARGA",
            "kewarganegaraan": "WNI",
            "nama_ayah": "SANTOSO",
            "nama_ibu": "SUMIATI",
        },
        {
            "nik": NIK,
            "nama": "SITI RAHMAWATI",
            "jenis_kelamin": "PEREMPUAN",
            "tempat_lahir": "JAKARTA",
            "tanggal_lahir": "1990-05-12",
            "agama": "KATOLIK",
            "pendidikan": "DIPLOMA IV/STRATA I",
            "pekerjaan": "KARYAWAN SWASTA",
            "status_perkawinan": "KAWIN",
            "hubungan_keluarga": "ISTRI",
            "kewarganegaraan": "WNI",
            "nama_ayah": "AHMAD SUDIRMAN",
            "nama_ibu": "SRI WAHYUNI",
        },
    ],
}


def capil_answer(**child_overrides: Any) -> dict[str, Any]:
    """The birth registry's answer about :data:`CHILD_NIK`; ``child_overrides`` replace keys
    of ``data.child`` and ``...`` deletes one."""
    child: dict[str, Any] = {
        "identity": {"nik": CHILD_NIK},
        "name": {"full": "RIZKY PUTRA SANTOSO"},
        "sex": "M",
        "birth": {"place": "JAKARTA", "date": "2010-05-12"},
        "order": 2,
    }
    for key, value in child_overrides.items():
        if value is ...:
            del child[key]
        else:
            child[key] = value
    return {
        "data": {
            "certificate": {
                "number": NO_AKTA,
                "issued_at": "2010-05-20T09:30:00+07:00",
                "office": {"name": OFFICE, "code": "3174"},
            },
            "child": child,
            "parents": [
                {
                    "role": "father",
                    "identity": {"nik": HUSBAND_NIK},
                    "name": {"full": "BUDI SANTOSO"},
                },
                {"role": "mother", "identity": None, "name": {"full": "SITI RAHMAWATI"}},
            ],
        },
        "meta": {"api_version": "2.3"},
    }


EXPECTED_AKTA: dict[str, Any] = {
    "no_akta": NO_AKTA,
    "kantor_penerbit": OFFICE,
    "tanggal_terbit": "2010-05-20",
    "anak": {
        "nik": CHILD_NIK,
        "nama": "RIZKY PUTRA SANTOSO",
        "jenis_kelamin": "LAKI-LAKI",
        "tempat_lahir": "JAKARTA",
        "tanggal_lahir": "2010-05-12",
        "anak_ke": 2,
    },
    "ayah": {"nik": HUSBAND_NIK, "nama": "BUDI SANTOSO"},
    "ibu": {"nik": None, "nama": "SITI RAHMAWATI"},
}
