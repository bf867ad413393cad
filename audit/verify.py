"""Checking the log: every record intact, numbered 1, 2, 3, ... and chained onto the one before.

A hash chain shows where it breaks, not what came after a rewrite: someone able to rewrite
every record from some point on, or to cut records off the end, leaves a chain that checks.
Signed checkpoints (Merkle tree heads) kept outside the database close that gap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Engine

from audit.records import GENESIS_CHAIN_HASH, hash_chain, hash_leaf
from audit.store import iter_rows, record_from_row

__all__ = [
    "OUT_OF_ORDER",
    "RECORD_CHANGED",
    "RECORD_MISSING",
    "VerifyReport",
    "verify_log",
]

#: The record's content no longer matches its hashes (or is not a well-formed record).
RECORD_CHANGED: Final = "record changed"
#: A sequence number is absent: a record was deleted.
RECORD_MISSING: Final = "record missing"
#: The record is intact but does not follow its predecessor: moved, swapped or inserted.
OUT_OF_ORDER: Final = "out of order / inserted"

_LOWEST_SEQ: Final = -(2**63)  # read from the very bottom: a row numbered 0 or below is a forgery


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The verdict. ``records`` counts the intact records before the first bad one."""

    ok: bool
    records: int
    first_bad_seq: int | None
    problem: str | None


def verify_log(
    engine: Engine,
    *,
    progress: Callable[[int], object] | None = None,
    progress_every: int = 10_000,
    page_size: int = 1000,
) -> VerifyReport:
    """Walk the whole log in sequence order and report the first bad record, if any.

    Each record's leaf hash is recomputed from its stored columns and the chain from record
    1 on; the log is streamed a page at a time. ``progress`` is called with the number of
    records checked every ``progress_every`` records and once at the end.
    """
    if progress_every < 1:
        raise ValueError("progress_every must be at least 1")
    checked = 0
    expected = 1
    previous = bytes.fromhex(GENESIS_CHAIN_HASH)
    # A record whose own hash holds but whose chain hash does not follow from its predecessor,
    # with the chain hash it should have: the next record tells whether only that column was
    # edited (the true chain continues past it) or the record does not belong there.
    suspect: tuple[int, bytes] | None = None

    def verdict(seq: int | None, problem: str | None) -> VerifyReport:
        if progress is not None:
            progress(checked)
        return VerifyReport(ok=problem is None, records=checked, first_bad_seq=seq, problem=problem)

    for row in iter_rows(engine, start=_LOWEST_SEQ, page_size=page_size):
        seq = int(row["seq"])
        if suspect is not None:
            suspect_seq, true_chain = suspect
            continues = seq == suspect_seq + 1 and _chains_onto(row, true_chain)
            return verdict(suspect_seq, RECORD_CHANGED if continues else OUT_OF_ORDER)
        if seq > expected:
            return verdict(expected, RECORD_MISSING)
        if seq < expected:
            return verdict(seq, OUT_OF_ORDER)
        leaf = _leaf_if_intact(row)
        if leaf is None:
            return verdict(seq, RECORD_CHANGED)
        chain = hash_chain(previous, leaf)
        if chain.hex() != row["chain_hash"]:
            suspect = (seq, chain)
            continue
        previous = chain
        expected += 1
        checked += 1
        if progress is not None and checked % progress_every == 0:
            progress(checked)
    if suspect is not None:
        return verdict(suspect[0], OUT_OF_ORDER)
    return verdict(None, None)


def _leaf_if_intact(row: Mapping[str, Any]) -> bytes | None:
    """The row's leaf hash if it is a well-formed record whose stored leaf hash matches."""
    try:
        record = record_from_row(row)
    except (TypeError, ValueError):
        return None
    leaf = hash_leaf(record.canonical())
    return leaf if leaf.hex() == record.leaf_hash else None


def _chains_onto(row: Mapping[str, Any], previous: bytes) -> bool:
    leaf = _leaf_if_intact(row)
    return leaf is not None and hash_chain(previous, leaf).hex() == row["chain_hash"]
