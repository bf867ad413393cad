"""The shared vocabularies of ``docs/architecture.md``: every enumerated value a record may hold."""

from __future__ import annotations

__all__ = [
    "AGAMA",
    "GOLONGAN_DARAH",
    "HUBUNGAN_KELUARGA",
    "JENIS_KELAMIN",
    "KEWARGANEGARAAN",
    "PENDIDIKAN",
    "SEUMUR_HIDUP",
    "STATUS_PERKAWINAN",
]

SEUMUR_HIDUP = "SEUMUR HIDUP"
JENIS_KELAMIN = frozenset({"LAKI-LAKI", "PEREMPUAN"})
AGAMA = frozenset({"ISLAM", "KRISTEN", "KATOLIK", "HINDU", "BUDDHA", "KONGHUCU", "KEPERCAYAAN"})
STATUS_PERKAWINAN = frozenset({"BELUM KAWIN", "KAWIN", "CERAI HIDUP", "CERAI MATI"})
GOLONGAN_DARAH = frozenset(
    {"A", "B", "AB", "O", "A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-", "TIDAK TAHU"}
)
HUBUNGAN_KELUARGA = frozenset(
    {
        "KEPALA KELUARGA",
        "SUAMI",
        "ISTRI",
        "ANAK",
        "MENANTU",
        "CUCU",
        "ORANG TUA",
        "MERTUA",
        "FAMILI LAIN",
        "PEMBANTU",
        "LAINNYA",
    }
)
PENDIDIKAN = frozenset(
    {
        "TIDAK/BELUM SEKOLAH",
        "BELUM TAMAT SD/SEDERAJAT",
        "TAMAT SD/SEDERAJAT",
        "SLTP/SEDERAJAT",
        "SLTA/SEDERAJAT",
        "DIPLOMA I/II",
        "AKADEMI/DIPLOMA III/S. MUDA",
        "DIPLOMA IV/STRATA I",
        "STRATA II",
        "STRATA III",
    }
)
KEWARGANEGARAAN = frozenset({"WNI", "WNA"})
