"""Sample records of each shape, valid under the fixed clock :data:`TODAY`."""

from __future__ import annotations

from datetime import date
from typing import Any

TODAY = date(2025, 6, 30)

# NIKs of one synthetic family in Kecamatan Cibinong (32.01.01), consistent with the records below.
FATHER_NIK = "3201010201850003"  # man born 1985-01-02
MOTHER_NIK = "3201015705900001"  # woman born 1990-05-17: day 17 + 40
CHILD_NIK = "3201012802150002"  # boy born 2015-02-28
NO_KK = "3201012003150007"  # issued 2015-03-20


def ktp_record() -> dict[str, Any]:
    """A valid KTP record (the mother's)."""
    return {
        "nik": MOTHER_NIK,
        "nama": "SITI AMINAH",
        "tempat_lahir": "BOGOR",
        "tanggal_lahir": "1990-05-17",
        "jenis_kelamin": "PEREMPUAN",
        "golongan_darah": "O+",
        "alamat": "JL. MERDEKA NO. 10",
        "rt": "001",
        "rw": "002",
        "kelurahan_desa": "PAKANSARI",
        "kecamatan": "CIBINONG",
        "kabupaten_kota": "KABUPATEN BOGOR",
        "provinsi": "JAWA BARAT",
        "agama": "ISLAM",
        "status_perkawinan": "KAWIN",
        "pekerjaan": "KARYAWAN SWASTA",
        "kewarganegaraan": "WNI",
        "berlaku_hingga": "SEUMUR HIDUP",
    }


def _member(nik: str, nama: str, sex: str, born: str, hubungan: str) -> dict[str, Any]:
    return {
        "nik": nik,
        "nama": nama,
        "jenis_kelamin": sex,
        "tempat_lahir": "BOGOR",
        "tanggal_lahir": born,
        "agama": "ISLAM",
        "pendidikan": "SLTA/SEDERAJAT" if hubungan != "ANAK" else "TIDAK/BELUM SEKOLAH",
        "pekerjaan": "KARYAWAN SWASTA" if hubungan != "ANAK" else "BELUM/TIDAK BEKERJA",
        "status_perkawinan": "KAWIN" if hubungan != "ANAK" else "BELUM KAWIN",
        "hubungan_keluarga": hubungan,
        "kewarganegaraan": "WNI",
        "nama_ayah": "AYAH " + nama,
        "nama_ibu": "IBU " + nama,
    }


def kk_record() -> dict[str, Any]:
    """A valid KK record: father, mother, child."""
    return {
        "no_kk": NO_KK,
        "kepala_keluarga": "BUDI SANTOSO",
        "alamat": "JL. MERDEKA NO. 10",
        "rt": "001",
        "rw": "002",
        "kelurahan_desa": "PAKANSARI",
        "kecamatan": "CIBINONG",
        "kabupaten_kota": "KABUPATEN BOGOR",
        "provinsi": "JAWA BARAT",
        "kode_pos": "16915",
        "tanggal_terbit": "2015-03-20",
        "anggota": [
            _member(FATHER_NIK, "BUDI SANTOSO", "LAKI-LAKI", "1985-01-02", "KEPALA KELUARGA"),
            _member(MOTHER_NIK, "SITI AMINAH", "PEREMPUAN", "1990-05-17", "ISTRI"),
            _member(CHILD_NIK, "ADI SANTOSO", "LAKI-LAKI", "2015-02-28", "ANAK"),
        ],
    }


def akta_record() -> dict[str, Any]:
    """A valid Akta Kelahiran record (the child's)."""
    return {
        "no_akta": "3201-LT-05032015-0042",
        "kantor_penerbit": "DINAS KEPENDUDUKAN DAN PENCATATAN SIPIL KABUPATEN BOGOR",
        "tanggal_terbit": "2015-03-05",
        "anak": {
            "nik": CHILD_NIK,
            "nama": "ADI SANTOSO",
            "jenis_kelamin": "LAKI-LAKI",
            "tempat_lahir": "BOGOR",
            "tanggal_lahir": "2015-02-28",
            "anak_ke": 1,
        },
        "ayah": {"nik": FATHER_NIK, "nama": "BUDI SANTOSO"},
        "ibu": {"nik": MOTHER_NIK, "nama": "SITI AMINAH"},
    }


RECORDS = {"ktp": ktp_record, "kk": kk_record, "akta-lahir": akta_record}
