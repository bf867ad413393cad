"""The fast canonical JSON (orjson) writes exactly the bytes the standard library would."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from audit.records import canonical_json

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
_value = st.one_of(
    st.none(),
    _text,
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.lists(_text, max_size=5),
)


class TestCanonicalJson:
    @settings(max_examples=300, deadline=None)
    @given(st.dictionaries(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1), _value))
    def test_same_bytes_as_the_standard_library(self, document: dict[str, object]) -> None:
        expected = json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
        assert canonical_json(document) == expected

    def test_every_control_character_and_separator(self) -> None:
        text = "".join(chr(c) for c in range(0x20)) + '"\\/\x7f\u2028\u2029\ufeff'
        expected = json.dumps({"t": [text]}, separators=(",", ":"), ensure_ascii=False).encode()
        assert canonical_json({"t": [text]}) == expected
