"""Sealing a batch of entries into records: the writer's hot path, byte for byte :func:`seal`.

:func:`audit.records.seal` is the reference, one entry at a time. The writer seals hundreds of
entries per batch while it holds the log's lock, so this does the same in one loop: the record
document is built with its keys already in sorted order (so orjson needs no sorting pass), the
chain is carried as bytes, and each record's table row and leaf hash come out of the same pass.
The records themselves are not built here: a :class:`Stamp` per entry is all the lock needs to
hand back, and :func:`record_of` makes the record on the waiting caller's side.
An :class:`AuditEntry` was validated when it was made, so it can hold no float and no lone
surrogate, and the checks of :func:`audit.records.canonical_json` would find nothing.
``tests/audit/test_sealing.py`` proves the records, rows and hashes equal the reference's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import NamedTuple

import orjson

from audit.records import _ENTRY_FIELDS, _TIME, AuditEntry, AuditRecord

__all__ = ["Sealed", "Stamp", "record_of", "seal_batch"]


class Stamp(NamedTuple):
    """What sealing added to an entry: its place, time and hashes (hex)."""

    seq: int
    time: str
    leaf_hash: str
    chain_hash: str


#: What a batch seals into: a stamp per entry, the table rows (in COLUMNS order), leaf hashes.
Sealed = tuple[list[Stamp], list[tuple[object, ...]], list[bytes]]


def record_of(entry: AuditEntry, stamp: Stamp) -> AuditRecord:
    """The record ``entry`` became: the same as :func:`seal` gives, without checking again."""
    record = object.__new__(AuditRecord)
    for name in _ENTRY_FIELDS:
        object.__setattr__(record, name, getattr(entry, name))
    object.__setattr__(record, "seq", stamp.seq)
    object.__setattr__(record, "time", stamp.time)
    object.__setattr__(record, "leaf_hash", stamp.leaf_hash)
    object.__setattr__(record, "chain_hash", stamp.chain_hash)
    return record


def seal_batch(
    entries: Sequence[AuditEntry], *, first_seq: int, time: str, previous_chain_hash: str
) -> Sealed:
    """Records ``first_seq``, ``first_seq + 1``, ... for ``entries``, chained on from before."""
    if type(first_seq) is not int or first_seq < 1 or _TIME.fullmatch(time) is None:
        raise ValueError("seq must be a positive int and time RFC 3339 UTC with microseconds")
    sha256 = hashlib.sha256
    dumps = orjson.dumps
    chain = bytes.fromhex(previous_chain_hash)
    stamps: list[Stamp] = []
    rows: list[tuple[object, ...]] = []
    leaves: list[bytes] = []
    seq = first_seq
    for entry in entries:
        fields = list(entry.released_fields)
        # Keys in sorted order: the same bytes as canonical_json(record_document(...)).
        document = {
            "client": entry.client,
            "consent_id": entry.consent_id,
            "decision": entry.decision,
            "event": entry.event,
            "issue": entry.issue,
            "latency_us": entry.latency_us,
            "officer": entry.officer,
            "purpose": entry.purpose,
            "reason": entry.reason,
            "released_fields": fields,
            "request_hash": entry.request_hash,
            "response_hash": entry.response_hash,
            "seq": seq,
            "service": entry.service,
            "status": entry.status,
            "subject_ref": entry.subject_ref,
            "time": time,
            "xroad_id": entry.xroad_id,
        }
        leaf = sha256(b"\x00" + dumps(document)).digest()
        chain = sha256(chain + leaf).digest()
        leaf_hex = leaf.hex()
        chain_hex = chain.hex()
        stamps.append(Stamp(seq, time, leaf_hex, chain_hex))
        rows.append(
            (
                seq,
                time,
                entry.event,
                entry.xroad_id,
                entry.client,
                entry.service,
                entry.officer,
                entry.issue,
                entry.purpose,
                entry.consent_id,
                entry.subject_ref,
                entry.decision,
                entry.reason,
                entry.status,
                entry.request_hash,
                entry.response_hash,
                dumps(fields).decode(),
                entry.latency_us,
                leaf_hex,
                chain_hex,
            )
        )
        leaves.append(leaf)
        seq += 1
    return stamps, rows, leaves
