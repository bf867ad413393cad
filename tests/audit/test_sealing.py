"""The writer's batch sealing gives exactly what the reference ``seal`` gives, entry by entry."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.records import GENESIS_CHAIN_HASH, AuditEntry, seal
from audit.sealing import record_of, seal_batch
from audit.store import record_row
from tests.audit._factories import make_entry

TIME = "2026-01-01T00:00:00.000000Z"
_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_HEX = st.binary(min_size=32, max_size=32).map(lambda b: hashlib.sha256(b).hexdigest())


@st.composite
def entries(draw: st.DrawFn) -> AuditEntry:
    """Any valid entry: every optional field present or not, any Unicode text."""
    optional: dict[str, Any] = {
        name: draw(st.none() | _TEXT)
        for name in ("service", "officer", "issue", "purpose", "consent_id", "reason")
    }
    hashes: dict[str, Any] = {
        name: draw(st.none() | _HEX) for name in ("subject_ref", "request_hash", "response_hash")
    }
    return AuditEntry(
        event=draw(_TEXT.filter(bool)),
        xroad_id=draw(_TEXT),
        client=draw(_TEXT),
        decision=draw(st.sampled_from(["allowed", "refused"])),
        status=draw(st.integers(100, 599)),
        released_fields=tuple(draw(st.lists(_TEXT, max_size=4))),
        latency_us=draw(st.integers(0, 2**53 - 1)),
        **optional,
        **hashes,
    )


def _reference(
    batch: list[AuditEntry], first_seq: int, previous: str
) -> tuple[list[Any], list[Any], list[bytes]]:
    records = []
    for offset, entry in enumerate(batch):
        record = seal(entry, seq=first_seq + offset, time=TIME, previous_chain_hash=previous)
        previous = record.chain_hash
        records.append(record)
    return records, [record_row(r) for r in records], [bytes.fromhex(r.leaf_hash) for r in records]


@given(
    batch=st.lists(entries(), max_size=6),
    first_seq=st.integers(1, 2**53 - 7),
    previous=_HEX | st.just(GENESIS_CHAIN_HASH),
)
def test_a_batch_seals_exactly_as_seal_does_one_by_one(
    batch: list[AuditEntry], first_seq: int, previous: str
) -> None:
    stamps, rows, leaves = seal_batch(
        batch, first_seq=first_seq, time=TIME, previous_chain_hash=previous
    )
    records = [record_of(entry, stamp) for entry, stamp in zip(batch, stamps, strict=True)]
    assert (records, rows, leaves) == _reference(batch, first_seq, previous)
    for record in records:
        record.__post_init__()  # every record passes the full validation too


def test_the_records_canonical_bytes_give_the_leaf() -> None:
    entries = [make_entry(i) for i in range(3)]
    stamps, _, leaves = seal_batch(entries, first_seq=5, time=TIME, previous_chain_hash="ab" * 32)
    for entry, stamp, leaf in zip(entries, stamps, leaves, strict=True):
        record = record_of(entry, stamp)
        assert hashlib.sha256(b"\x00" + record.canonical()).digest() == leaf


@pytest.mark.parametrize(
    ("first_seq", "time"), [(0, TIME), (-1, TIME), (1, "2026-01-01T00:00:00Z"), (1, "")]
)
def test_a_bad_seq_or_time_is_refused(first_seq: int, time: str) -> None:
    with pytest.raises(ValueError, match="seq must be"):
        seal_batch([make_entry()], first_seq=first_seq, time=time, previous_chain_hash="00" * 32)
