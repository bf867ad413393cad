"""The shared records the population's truth should come out as, built without the adapters."""

from __future__ import annotations

from typing import Any

from adapters.sandbox.population import BirthRecord, Household, Person, Population


def ktp(person: Person, household: Household) -> dict[str, Any]:
    """The ``ktp`` record of ``person``."""
    address = household.address
    return {
        "nik": person.nik,
        "nama": person.nama,
        "tempat_lahir": person.tempat_lahir,
        "tanggal_lahir": person.tanggal_lahir.isoformat(),
        "jenis_kelamin": person.jenis_kelamin,
        "golongan_darah": person.golongan_darah,
        "alamat": address.alamat,
        "rt": f"{address.rt:03d}",
        "rw": f"{address.rw:03d}",
        "kelurahan_desa": address.kelurahan_desa,
        "kecamatan": address.kecamatan,
        "kabupaten_kota": address.kabupaten_kota,
        "provinsi": address.provinsi,
        "agama": person.agama,
        "status_perkawinan": person.status_perkawinan,
        "pekerjaan": person.pekerjaan,
        "kewarganegaraan": person.kewarganegaraan,
        "berlaku_hingga": "SEUMUR HIDUP",
    }


def kk(household: Household) -> dict[str, Any]:
    """The ``kk`` record of ``household``."""
    address = household.address
    return {
        "no_kk": household.no_kk,
        "kepala_keluarga": household.head.nama,
        "alamat": address.alamat,
        "rt": f"{address.rt:03d}",
        "rw": f"{address.rw:03d}",
        "kelurahan_desa": address.kelurahan_desa,
        "kecamatan": address.kecamatan,
        "kabupaten_kota": address.kabupaten_kota,
        "provinsi": address.provinsi,
        "kode_pos": address.kode_pos,
        "tanggal_terbit": household.tanggal_terbit.isoformat(),
        "anggota": [
            {
                "nik": m.nik,
                "nama": m.nama,
                "jenis_kelamin": m.jenis_kelamin,
                "tempat_lahir": m.tempat_lahir,
                "tanggal_lahir": m.tanggal_lahir.isoformat(),
                "agama": m.agama,
                "pendidikan": m.pendidikan,
                "pekerjaan": m.pekerjaan,
                "status_perkawinan": m.status_perkawinan,
                "hubungan_keluarga": m.hubungan_keluarga,
                "kewarganegaraan": m.kewarganegaraan,
                "nama_ayah": m.nama_ayah,
                "nama_ibu": m.nama_ibu,
            }
            for m in household.members
        ],
    }


def akta(record: BirthRecord) -> dict[str, Any]:
    """The ``akta-lahir`` record of ``record``."""
    return {
        "no_akta": record.no_akta,
        "kantor_penerbit": record.kantor_penerbit,
        "tanggal_terbit": record.tanggal_terbit.isoformat(),
        "anak": {
            "nik": record.anak_nik,
            "nama": record.anak_nama,
            "jenis_kelamin": record.jenis_kelamin,
            "tempat_lahir": record.tempat_lahir,
            "tanggal_lahir": record.tanggal_lahir.isoformat(),
            "anak_ke": record.anak_ke,
        },
        "ayah": {"nik": record.ayah_nik, "nama": record.ayah_nama},
        "ibu": {"nik": record.ibu_nik, "nama": record.ibu_nama},
    }


def healthy_people(population: Population) -> list[Person]:
    """People whose family card has no fault NIK on it."""
    faulty_cards = {p.no_kk for p in population.people if p.nik in population.faults}
    return [p for p in population.people if p.no_kk not in faulty_cards]
