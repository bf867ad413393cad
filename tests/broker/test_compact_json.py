"""The released body: orjson's bytes are the standard library's, big integers included."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from broker.exchange import _compact_json


def _reference(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


# What a record that passed its response schema can hold: strings, integers, objects, arrays.
_values = st.recursive(
    st.text() | st.integers(min_value=-(2**70), max_value=2**70) | st.none() | st.booleans(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.text(), _values, max_size=6))
def test_the_same_bytes_as_json_dumps(record: dict[str, Any]) -> None:
    assert _compact_json(record) == _reference(record)


def test_an_integer_past_64_bits_is_released_too() -> None:
    record = {"anak_ke": 2**70, "nama": "Siti Nurhaliza \u00e9\n\u0007"}
    assert _compact_json(record) == _reference(record)
