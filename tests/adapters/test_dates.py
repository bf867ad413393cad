"""The adapters' date reading decides exactly as ``strptime`` does, only faster."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters._answer import parse_date

_DMY = "%d-%m-%Y"
_DIGITS = "0123456789"
#: 17-08-1945 in Arabic-Indic digits: strptime refuses them, and a ``\d{2}`` pattern would not.
_ARABIC_INDIC_DATE = "\u0661\u0667-\u0660\u0668-\u0661\u0669\u0664\u0665"


def _outcome(value: str, fmt: str) -> object:
    try:
        return parse_date(value, fmt)
    except ValueError:
        return ValueError


def _reference(value: str, fmt: str) -> object:
    try:
        return datetime.strptime(value, fmt).date()
    except ValueError:
        return ValueError


@given(
    st.tuples(
        st.text(_DIGITS, min_size=1, max_size=3),
        st.text(_DIGITS, min_size=1, max_size=3),
        st.text(_DIGITS, min_size=1, max_size=5),
    ).map("-".join)
)
def test_digit_dash_strings_read_as_strptime_reads_them(value: str) -> None:
    assert _outcome(value, _DMY) == _reference(value, _DMY)


@given(st.text(max_size=12))
def test_any_text_reads_as_strptime_reads_it(value: str) -> None:
    assert _outcome(value, _DMY) == _reference(value, _DMY)


@pytest.mark.parametrize(
    "value",
    ["17-08-1945", "29-02-2024", "29-02-2023", "31-04-2020", "00-01-2020", "01-13-2020",
     "01-01-0000", "1-8-1985", " 17-08-1945", "17-08-1945\n", _ARABIC_INDIC_DATE],
)  # fmt: skip
def test_edges(value: str) -> None:
    assert _outcome(value, _DMY) == _reference(value, _DMY)


def test_other_formats_go_to_strptime() -> None:
    assert _outcome("1945-08-17", "%Y-%m-%d") == _reference("1945-08-17", "%Y-%m-%d")
