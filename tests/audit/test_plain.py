"""The verifiers' fast canonical JSON: the reference's bytes, or nothing.

Well-formed records must come out byte for byte as :func:`audit.records.canonical_json` writes
them. For anything else the fast path may decline, but whatever it does turn into bytes, the
reference path must accept with the same leaf: each malformed case below gets the leaf hash of
the fast path's bytes written into it (as a forger would), and the reference must agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit._plain import SORTED_COLUMNS, document_canonicaliser, row_canonicaliser
from audit.export import leaf_of_document
from audit.records import (
    GENESIS_CHAIN_HASH,
    AuditEntry,
    canonical_json,
    format_time,
    hash_leaf,
    record_document,
    seal,
)
from audit.store import COLUMNS, DOCUMENT_COLUMNS, record_row
from audit.verify import leaf_of_row
from tests.audit._factories import make_entry

_valid_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30)
_hex = st.binary(min_size=1, max_size=8).map(lambda b: hashlib.sha256(b).hexdigest())


@st.composite
def _records(draw: st.DrawFn) -> tuple[AuditEntry, int, str]:
    entry = AuditEntry(
        event=draw(_valid_text.filter(bool)),
        xroad_id=draw(_valid_text),
        client=draw(_valid_text),
        service=draw(st.none() | _valid_text),
        officer=draw(st.none() | _valid_text),
        issue=draw(st.none() | _valid_text),
        purpose=draw(st.none() | _valid_text),
        consent_id=draw(st.none() | _valid_text),
        subject_ref=draw(st.none() | _hex),
        decision=draw(st.sampled_from(["allowed", "refused"])),
        reason=draw(st.none() | _valid_text),
        status=draw(st.integers(100, 599)),
        request_hash=draw(st.none() | _hex),
        response_hash=draw(st.none() | _hex),
        released_fields=tuple(draw(st.lists(_valid_text, max_size=6))),
        latency_us=draw(st.integers(0, 2**53 - 1)),
    )
    moment = draw(st.datetimes(timezones=st.just(UTC)))
    return entry, draw(st.integers(1, 2**53 - 1)), format_time(moment)


def _line(document: dict[str, Any]) -> str:
    """An export line, as :func:`audit.export.iter_export` writes one."""
    return orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE).decode()


class _Text(str):
    """A str subclass: serialises like a str, but is not the plain shape."""

    __slots__ = ()


# Values a tampered row or line may hold instead of what the writer wrote.
_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.binary(max_size=4),
    st.text(max_size=6),  # lone surrogates included
    st.text(max_size=6).map(_Text),
    st.lists(st.one_of(st.text(max_size=3), st.floats(), st.integers()), max_size=3),
    st.dictionaries(st.sampled_from(["b", "a", "c"]), st.integers(), max_size=3),
    st.sampled_from(
        [
            "[]",
            '["a"]',
            '[ "a"]',
            '["a",1]',
            "[1.5]",
            '[["x"]]',
            '[{"b":1,"a":2}]',
            '{"a":1}',
            '"x"',
            "null",
            "[1e2]",
            '["\\u00e9"]',
            '["\u00e9"]',
            '["\\ud800"]',
            "[",
        ]
    ),
)


class TestWellFormedRecords:
    @settings(max_examples=300, deadline=None)
    @given(_records())
    def test_a_row_gives_the_reference_bytes(self, drawn: tuple[AuditEntry, int, str]) -> None:
        entry, seq, time = drawn
        record = seal(entry, seq=seq, time=time, previous_chain_hash=GENESIS_CHAIN_HASH)
        expected = canonical_json(record_document(entry, seq=seq, time=time))
        assert row_canonicaliser()(record_row(record)) == (
            seq,
            expected,
            record.leaf_hash,
            record.chain_hash,
        )

    @settings(max_examples=300, deadline=None)
    @given(_records())
    def test_an_export_line_gives_the_reference_bytes(
        self, drawn: tuple[AuditEntry, int, str]
    ) -> None:
        entry, seq, time = drawn
        record = seal(entry, seq=seq, time=time, previous_chain_hash=GENESIS_CHAIN_HASH)
        expected = canonical_json(record_document(entry, seq=seq, time=time))
        assert document_canonicaliser()(_line(record.as_dict())) == (
            seq,
            expected,
            record.leaf_hash,
            record.chain_hash,
        )

    def test_the_dict_is_written_in_sorted_key_order(self) -> None:
        # The row path relies on building its dict in this order instead of sorting it.
        assert list(SORTED_COLUMNS) == sorted(DOCUMENT_COLUMNS)
        record = seal(
            make_entry(3), seq=3, time=format_time(datetime.now(UTC)), previous_chain_hash="0" * 64
        )
        plain = row_canonicaliser()(record_row(record))
        assert plain is not None
        assert list(orjson.loads(plain[1])) == list(SORTED_COLUMNS)

    def test_the_released_fields_cache_is_per_walk_and_bounded(self) -> None:
        plain = row_canonicaliser()
        for i in range(3000):  # more distinct texts than the cache holds
            fields = (f"f{i}",)
            record = seal(
                make_entry(i, released_fields=fields),
                seq=i + 1,
                time="2026-01-01T00:00:00.000000Z",
                previous_chain_hash=GENESIS_CHAIN_HASH,
            )
            result = plain(record_row(record))
            assert result is not None
            assert result[1] == record.canonical()


def _valid_row(i: int = 4) -> tuple[Any, ...]:
    record = seal(
        make_entry(i),
        seq=i + 1,
        time="2026-01-01T00:00:00.000000Z",
        previous_chain_hash=GENESIS_CHAIN_HASH,
    )
    return record_row(record)


_LEAF = COLUMNS.index("leaf_hash")


def _reference_accepts_the_same_leaf(
    fast: tuple[object, bytes, object, object] | None,
    forge: Callable[[str], object],
    reference: Callable[[Any], bytes | None],
) -> None:
    """If the fast path gave bytes, the reference accepts the record with exactly their leaf."""
    if fast is None:
        return
    leaf = hash_leaf(fast[1])
    assert reference(forge(leaf.hex())) == leaf


class TestMalformedRows:
    @settings(max_examples=1500, deadline=None)
    @given(
        st.dictionaries(
            st.sampled_from([c for c in COLUMNS if c != "leaf_hash"]), _junk, min_size=1, max_size=3
        )
    )
    def test_what_the_fast_path_accepts_the_reference_accepts(
        self, changes: dict[str, Any]
    ) -> None:
        row = list(_valid_row())
        for column, value in changes.items():
            row[COLUMNS.index(column)] = value
        fast = row_canonicaliser()(tuple(row))

        def forge(leaf_hex: str) -> dict[str, Any]:
            return dict(zip(COLUMNS, [*row[:_LEAF], leaf_hex, *row[_LEAF + 1 :]], strict=True))

        _reference_accepts_the_same_leaf(fast, forge, leaf_of_row)

    @pytest.mark.parametrize(
        ("column", "value"),
        [
            ("status", 200.0),
            ("latency_us", 1e3),
            ("officer", 1.5),
            ("seq", True),
            ("officer", b"budi"),
            ("officer", "budi\ud800"),
            ("officer", _Text("budi")),
            ("latency_us", 2**64),
            ("released_fields", '["nik", "nama", "alamat"]'),
            ("released_fields", '["nik","nama",1.5]'),
            ("released_fields", '["nik","nama",{"b":1,"a":2}]'),
            ("released_fields", '["\\u006eik"]'),
            ("released_fields", ["nik"]),
            ("released_fields", None),
        ],
    )
    def test_not_the_plain_shape_is_left_to_the_reference(self, column: str, value: Any) -> None:
        row = list(_valid_row())
        row[COLUMNS.index(column)] = value
        assert row_canonicaliser()(tuple(row)) is None


class TestMalformedLines:
    @settings(max_examples=1500, deadline=None)
    @given(
        st.dictionaries(
            st.sampled_from([c for c in (*COLUMNS, "extra") if c != "leaf_hash"]),
            _junk,
            max_size=3,
        ),
        st.sets(st.sampled_from(COLUMNS), max_size=2),
    )
    def test_what_the_fast_path_accepts_the_reference_accepts(
        self, changes: dict[str, Any], removed: set[str]
    ) -> None:
        record = seal(
            make_entry(4), seq=5, time="2026-01-01T00:00:00.000000Z", previous_chain_hash="0" * 64
        )
        document: dict[str, Any] = {**record.as_dict(), **changes}
        for name in removed:
            document.pop(name, None)
        try:
            line = _line(document)
        except TypeError:  # not JSON at all (a lone surrogate, an int beyond 64 bits)
            return
        fast = document_canonicaliser()(line)

        def forge(leaf_hex: str) -> dict[str, Any]:
            forged = orjson.loads(line)
            forged["leaf_hash"] = leaf_hex
            return dict(forged)

        _reference_accepts_the_same_leaf(fast, forge, leaf_of_document)

    @pytest.mark.parametrize(
        "change",
        [
            {"status": 200.0},
            {"seq": True},
            {"officer": {"b": 1, "a": 2}},
            {"officer": ["x"]},
            {"released_fields": ["nik", 1.5]},
            {"released_fields": ["nik", ["x"]]},
            {"released_fields": '["nik"]'},
            {"extra": 1},
        ],
    )
    def test_not_the_plain_shape_is_left_to_the_reference(self, change: dict[str, Any]) -> None:
        record = seal(
            make_entry(4), seq=5, time="2026-01-01T00:00:00.000000Z", previous_chain_hash="0" * 64
        )
        assert document_canonicaliser()(_line({**record.as_dict(), **change})) is None

    @pytest.mark.parametrize("column", COLUMNS)
    @pytest.mark.parametrize("same", [True, False], ids=["same-value", "other-value"])
    def test_a_repeated_key_is_left_to_the_reference(self, column: str, same: bool) -> None:
        # orjson keeps the last of a repeated key; other readers keep the first.
        record = seal(
            make_entry(4), seq=5, time="2026-01-01T00:00:00.000000Z", previous_chain_hash="0" * 64
        )
        line = _line(record.as_dict())
        value = record.as_dict()[column] if same else None
        for repeated in (
            '{"' + column + '":' + orjson.dumps(value).decode() + "," + line[1:],
            line[:-2] + ',"' + column + '":' + orjson.dumps(value).decode() + "}\n",
        ):
            assert document_canonicaliser()(repeated) is None

    def test_the_length_check_takes_the_line_as_written(self) -> None:
        # Non-ASCII text is counted in UTF-8 bytes, as orjson writes it; the newline is no byte
        # of the record.
        record = seal(
            make_entry(4, officer="Budi Süßmann 佐藤"),
            seq=5,
            time="2026-01-01T00:00:00.000000Z",
            previous_chain_hash="0" * 64,
        )
        line = _line(record.as_dict())
        for written in (line, line.rstrip("\n")):
            assert document_canonicaliser()(written) == (
                5,
                record.canonical(),
                record.leaf_hash,
                record.chain_hash,
            )

    @pytest.mark.parametrize(
        "line", ["", "\n", "[1, 2]", '"text"', "{", '{"seq": 1}', "12345678901234567890123"]
    )
    def test_lines_that_are_no_record_are_left_to_the_reference(self, line: str) -> None:
        assert document_canonicaliser()(line) is None
