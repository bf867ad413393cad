"""The people benchmark measures what it says: a KK of four files three more records."""

from __future__ import annotations

from bench.people_bench import KK, KTP, _co_subject_entries


class TestWhatItMeasures:
    def test_a_family_card_of_four_files_three_more_records(self) -> None:
        assert _co_subject_entries("kk", KK) == 3

    def test_a_ktp_files_none(self) -> None:
        assert _co_subject_entries("ktp", KTP) == 0
