"""The record format: canonical JSON, leaf and chain hashes, and what an entry may hold."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.records import (
    GENESIS_CHAIN_HASH,
    AuditEntry,
    AuditRecord,
    canonical_json,
    format_time,
    hash_chain,
    hash_leaf,
    record_document,
    seal,
)
from tests.audit._factories import make_entry

REQUEST_HASH = "c0ffee00" * 8
SUBJECT_REF = "5ab1ec7e" * 8

GOLDEN_ENTRY = AuditEntry(
    event="exchange",
    xroad_id="0b4d3e52-9c1a-4f6e-8a7d-2f5b6c7d8e9f",
    client="ID/GOV/DPMPTSP-DKI/perizinan",
    service="ID/GOV/DUKCAPIL/adminduk/ktp",
    officer="siti.rahma",
    issue="PB/2026/07 \u2014 Jakarta Selatan",
    purpose="PERIZINAN-USAHA",
    consent_id="c-42",
    subject_ref=SUBJECT_REF,
    decision="allowed",
    reason=None,
    status=200,
    request_hash=REQUEST_HASH,
    response_hash=None,
    released_fields=("nik", "nama"),
    latency_us=1234,
)
GOLDEN_TIME = "2026-03-01T08:30:00.000001Z"
# Written out by hand: keys sorted, no whitespace, the em dash as raw UTF-8, null for None.
GOLDEN_CANONICAL = (
    '{"client":"ID/GOV/DPMPTSP-DKI/perizinan","consent_id":"c-42","decision":"allowed",'
    '"event":"exchange","issue":"PB/2026/07 \u2014 Jakarta Selatan","latency_us":1234,'
    '"officer":"siti.rahma","purpose":"PERIZINAN-USAHA","reason":null,'
    '"released_fields":["nik","nama"],"request_hash":"' + REQUEST_HASH + '",'
    '"response_hash":null,"seq":1,"service":"ID/GOV/DUKCAPIL/adminduk/ktp","status":200,'
    '"subject_ref":"' + SUBJECT_REF + '","time":"2026-03-01T08:30:00.000001Z",'
    '"xroad_id":"0b4d3e52-9c1a-4f6e-8a7d-2f5b6c7d8e9f"}'
).encode("utf-8")
# Pinned once: if either changes, every existing log stops verifying.
GOLDEN_LEAF = "2db00cdc6df0e13e030027b6106c3520c28c0845b65f81d9606728b0305f67df"
GOLDEN_CHAIN = "807d99b3d1764e85c5305fa7158bd6c10c198ff0da0086c72387e5ba955d9526"


class TestGolden:
    def test_canonical_bytes_are_exactly_the_hand_written_ones(self) -> None:
        record = seal(GOLDEN_ENTRY, seq=1, time=GOLDEN_TIME, previous_chain_hash=GENESIS_CHAIN_HASH)
        assert record.canonical() == GOLDEN_CANONICAL

    def test_leaf_hash_is_rfc9162_leaf_of_the_canonical_bytes(self) -> None:
        record = seal(GOLDEN_ENTRY, seq=1, time=GOLDEN_TIME, previous_chain_hash=GENESIS_CHAIN_HASH)
        expected = hashlib.sha256(b"\x00" + GOLDEN_CANONICAL).hexdigest()
        assert record.leaf_hash == expected == GOLDEN_LEAF

    def test_chain_hash_of_record_one_starts_from_32_zero_bytes(self) -> None:
        record = seal(GOLDEN_ENTRY, seq=1, time=GOLDEN_TIME, previous_chain_hash=GENESIS_CHAIN_HASH)
        expected = hashlib.sha256(bytes(32) + bytes.fromhex(GOLDEN_LEAF)).hexdigest()
        assert record.chain_hash == expected == GOLDEN_CHAIN

    def test_next_record_chains_onto_the_previous_chain_hash(self) -> None:
        first = seal(GOLDEN_ENTRY, seq=1, time=GOLDEN_TIME, previous_chain_hash=GENESIS_CHAIN_HASH)
        second = seal(GOLDEN_ENTRY, seq=2, time=GOLDEN_TIME, previous_chain_hash=first.chain_hash)
        leaf = hashlib.sha256(b"\x00" + second.canonical()).digest()
        assert second.leaf_hash == leaf.hex()
        assert (
            second.chain_hash == hashlib.sha256(bytes.fromhex(first.chain_hash) + leaf).hexdigest()
        )
        assert second.leaf_hash != first.leaf_hash  # seq is part of what is hashed


class TestCanonicalJson:
    def test_control_characters_are_escaped_as_lower_case_u_escapes(self) -> None:
        assert canonical_json({"a": '\x1f\n\t"\\'}) == b'{"a":"\\u001f\\n\\t\\"\\\\"}'

    def test_non_ascii_is_raw_utf8_not_escaped(self) -> None:
        assert canonical_json({"a": "\u00e9"}) == '{"a":"\u00e9"}'.encode()

    def test_keys_are_sorted_whatever_the_insertion_order(self) -> None:
        assert canonical_json({"b": 1, "a": [True, None]}) == b'{"a":[true,null],"b":1}'

    def test_floats_that_cannot_be_json_are_refused(self) -> None:
        with pytest.raises(ValueError, match="JSON compliant"):
            canonical_json({"a": float("nan")})

    @given(
        seq=st.integers(1, 2**53 - 1),
        text=st.text(st.characters(exclude_categories=("Cs",))),
        fields=st.lists(st.text(st.characters(exclude_categories=("Cs",))), max_size=5),
        latency=st.integers(0, 2**53 - 1),
    )
    def test_any_entry_round_trips_and_hashes_its_canonical_form(
        self, seq: int, text: str, fields: list[str], latency: int
    ) -> None:
        entry = make_entry(
            issue=text, officer=text, released_fields=tuple(fields), latency_us=latency
        )
        record = seal(entry, seq=seq, time=GOLDEN_TIME, previous_chain_hash=GENESIS_CHAIN_HASH)
        canonical = record.canonical()
        assert json.loads(canonical) == record_document(entry, seq=seq, time=GOLDEN_TIME)
        assert (
            canonical
            == json.dumps(
                json.loads(canonical), sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode()
        )
        assert b"\n" not in canonical
        assert record.leaf_hash == hash_leaf(canonical).hex()


class TestHashes:
    def test_hash_leaf_prefixes_a_zero_byte(self) -> None:
        assert hash_leaf(b"x") == hashlib.sha256(b"\x00x").digest()

    def test_hash_chain_concatenates_previous_then_leaf(self) -> None:
        assert hash_chain(b"p" * 32, b"l" * 32) == hashlib.sha256(b"p" * 32 + b"l" * 32).digest()

    def test_genesis_is_32_zero_bytes(self) -> None:
        assert bytes.fromhex(GENESIS_CHAIN_HASH) == bytes(32)


def _bad_entries() -> list[tuple[dict[str, Any], type[Exception]]]:
    return [
        ({"event": ""}, ValueError),
        ({"event": None}, TypeError),
        ({"client": 7}, TypeError),
        ({"service": b"ktp"}, TypeError),
        ({"decision": "maybe"}, ValueError),
        ({"status": True}, TypeError),
        ({"status": 200.0}, TypeError),
        ({"status": 99}, ValueError),
        ({"status": 600}, ValueError),
        ({"latency_us": -1}, ValueError),
        ({"latency_us": 2**53}, ValueError),
        ({"request_hash": "AB" * 32}, ValueError),
        ({"response_hash": "ab" * 31}, ValueError),
        ({"subject_ref": "3201234567890001"}, ValueError),
        ({"released_fields": ["nik"]}, TypeError),
        ({"released_fields": ("nik", 1)}, TypeError),
        ({"officer": "\ud800"}, ValueError),
    ]


class TestEntryValidation:
    @pytest.mark.parametrize(("override", "error"), _bad_entries())
    def test_a_malformed_entry_is_refused(
        self, override: dict[str, Any], error: type[Exception]
    ) -> None:
        with pytest.raises(error):
            make_entry(**override)

    def test_optional_fields_may_be_none_and_fields_empty(self) -> None:
        entry = make_entry(
            service=None,
            officer=None,
            issue=None,
            purpose=None,
            consent_id=None,
            subject_ref=None,
            decision="refused",
            reason="access-denied",
            status=403,
            request_hash=None,
            response_hash=None,
            released_fields=(),
        )
        assert entry.released_fields == ()

    def test_entries_are_immutable(self) -> None:
        entry = make_entry()
        with pytest.raises(dataclasses.FrozenInstanceError):
            entry.status = 500  # type: ignore[misc]  # the point: frozen refuses it

    def test_fields_are_keyword_only(self) -> None:
        with pytest.raises(TypeError):
            AuditEntry("exchange")  # type: ignore[misc,call-arg]  # positional on purpose


class TestRecordValidation:
    @pytest.mark.parametrize(
        "override",
        [
            {"seq": 0},
            {"time": "2026-03-01T08:30:00Z"},
            {"time": "2026-03-01 08:30:00.000000+00:00"},
            {"leaf_hash": "00"},
            {"chain_hash": "g" * 64},
        ],
    )
    def test_a_malformed_record_is_refused(self, override: dict[str, Any]) -> None:
        good = seal(make_entry(), seq=1, time=GOLDEN_TIME, previous_chain_hash=GENESIS_CHAIN_HASH)
        with pytest.raises((TypeError, ValueError)):
            dataclasses.replace(good, **override)

    def test_record_carries_the_entry_fields_and_gives_the_entry_back(self) -> None:
        record = seal(GOLDEN_ENTRY, seq=1, time=GOLDEN_TIME, previous_chain_hash=GENESIS_CHAIN_HASH)
        assert (record.client, record.released_fields) == (GOLDEN_ENTRY.client, ("nik", "nama"))
        assert record.entry == GOLDEN_ENTRY
        assert type(record.entry) is AuditEntry

    def test_a_record_validates_its_entry_fields_too(self) -> None:
        good = seal(make_entry(), seq=1, time=GOLDEN_TIME, previous_chain_hash=GENESIS_CHAIN_HASH)
        with pytest.raises(ValueError, match="decision"):
            dataclasses.replace(good, decision="maybe")

    def test_as_dict_is_the_document_plus_both_hashes(self) -> None:
        record = seal(GOLDEN_ENTRY, seq=1, time=GOLDEN_TIME, previous_chain_hash=GENESIS_CHAIN_HASH)
        document = record.as_dict()
        assert document.pop("leaf_hash") == GOLDEN_LEAF
        assert document.pop("chain_hash") == GOLDEN_CHAIN
        assert canonical_json(document) == GOLDEN_CANONICAL


class TestFormatTime:
    def test_utc_with_microseconds_and_z(self) -> None:
        assert (
            format_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000000Z"
        )

    def test_other_offsets_are_converted_to_utc(self) -> None:
        wib = timezone(timedelta(hours=7))
        moment = datetime(2026, 1, 2, 10, 4, 5, 123, tzinfo=wib)
        assert format_time(moment) == "2026-01-02T03:04:05.000123Z"

    def test_naive_times_are_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            format_time(datetime(2026, 1, 2))

    def test_record_accepts_what_format_time_produces(self) -> None:
        time = format_time(datetime.now(UTC))
        record = seal(make_entry(), seq=1, time=time, previous_chain_hash=GENESIS_CHAIN_HASH)
        assert isinstance(record, AuditRecord)
        assert record.time == time
