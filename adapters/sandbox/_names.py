"""Indonesian given names, family names and birth cities for the synthetic citizens."""

from __future__ import annotations

__all__ = ["BIRTH_CITIES", "FAMILY_NAMES", "FEMALE", "MALE"]

MALE: tuple[str, ...] = tuple(
    """
    AHMAD ADI AGUS ANDI ARIF BAMBANG BUDI DANI DEDI DIMAS EKO FAJAR FIRMAN GALIH HADI HENDRA
    IRFAN JOKO KURNIAWAN LUTFI MUHAMMAD NUGROHO PUTRA RAHMAT RIZKY SAPUTRA SETIAWAN TAUFIK
    WAHYU YUSUF ZAINAL BAYU GILANG HARYANTO IMAM SURYA TEGUH WIBOWO YOGA RAFI
    """.split()  # noqa: SIM905 - word lists read better as words than as quoted literals
)

FEMALE: tuple[str, ...] = tuple(
    """
    AYU ANISA DEWI DIAN EKA FITRI INDAH INTAN KARTIKA LESTARI MAYA NUR NURUL PUTRI RATNA RINA
    SARI SITI SRI TRI WULAN YULIANA AULIA CITRA DWI FARAH HANA LAILA MELATI NAILA RAHMAWATI
    SALSABILA UTAMI WIDYA ZAHRA KIRANA PERTIWI HANDAYANI PURNAMASARI ANGGRAINI
    """.split()  # noqa: SIM905 - word lists read better as words than as quoted literals
)

FAMILY_NAMES: tuple[str, ...] = tuple(
    """
    SIREGAR NASUTION HUTAPEA SIMANJUNTAK LUBIS TAMBUNAN PANJAITAN SITUMORANG WIJAYA SANTOSO
    HALIM TANOTO MANOPPO LATUHERU
    """.split()  # noqa: SIM905 - word lists read better as words than as quoted literals
)

BIRTH_CITIES: tuple[str, ...] = tuple(
    """
    JAKARTA BANDUNG SURABAYA SEMARANG YOGYAKARTA SURAKARTA MEDAN PADANG PALEMBANG MAKASSAR
    MALANG BOGOR CIREBON TASIKMALAYA GARUT KEDIRI MADIUN PEKALONGAN TEGAL MANADO
    """.split()  # noqa: SIM905 - word lists read better as words than as quoted literals
)
