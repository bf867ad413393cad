"""The audit record: what the broker hands in, how it is written down and how it is hashed.

A record's bytes are its canonical JSON. The leaf hash is the RFC 9162 leaf hash of those bytes
(``SHA-256(0x00 || canonical)``), so the Merkle tree can be built over the same leaves; the
chain hash links each record to the one before it (``SHA-256(previous chain || leaf)``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Final, Literal, get_args

import orjson

__all__ = [
    "GENESIS_CHAIN_HASH",
    "MAX_SEQ",
    "AuditEntry",
    "AuditRecord",
    "Decision",
    "canonical_json",
    "format_time",
    "hash_chain",
    "hash_leaf",
    "record_document",
    "seal",
]

Decision = Literal["allowed", "refused"]

#: The chain hash "before" record 1: 32 zero bytes, in hex.
GENESIS_CHAIN_HASH: Final = "00" * 32

_DECISIONS: Final = frozenset(get_args(Decision))
_HEX_SHA256: Final = re.compile(r"[0-9a-f]{64}")
_TIME: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
# Integers beyond 2**53 - 1 lose precision in JSON readers that use doubles (RFC 7493, I-JSON),
# and RFC 8785 serialises numbers as doubles; staying inside keeps every verifier byte-exact.
_MAX_SAFE_INT: Final = 2**53 - 1
#: The largest sequence number (or any other number) a record can hold; APIs bound inputs by it.
MAX_SEQ: Final = _MAX_SAFE_INT
_OPTIONAL_TEXT: Final = ("service", "officer", "issue", "purpose", "consent_id", "reason")
_OPTIONAL_HASHES: Final = ("subject_ref", "request_hash", "response_hash")


def _check_text(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate has no UTF-8 form, so the record could not be hashed.
        raise ValueError(f"{name} is not valid Unicode") from None


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if type(value) is not int:
        raise TypeError(f"{name} must be an int")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}")


def _check_hex_sha256(name: str, value: object) -> None:
    if not isinstance(value, str) or _HEX_SHA256.fullmatch(value) is None:
        raise ValueError(f"{name} must be a lower-case hex SHA-256")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One event as the broker reports it; the log adds sequence number, time and hashes.

    ``subject_ref`` is a keyed hash of the citizen (see :mod:`audit.subjects`), never a NIK;
    ``reason`` is the problem type slug of a refusal. Bodies are never logged, only hashes.
    """

    event: str
    xroad_id: str
    client: str
    service: str | None
    officer: str | None
    issue: str | None
    purpose: str | None
    consent_id: str | None
    subject_ref: str | None
    decision: Decision
    reason: str | None
    status: int
    request_hash: str | None
    response_hash: str | None
    released_fields: tuple[str, ...]
    latency_us: int

    def __post_init__(self) -> None:
        _check_text("event", self.event)
        if not self.event:
            raise ValueError("event must not be empty")
        _check_text("xroad_id", self.xroad_id)
        _check_text("client", self.client)
        for name in _OPTIONAL_TEXT:
            _check_text(name, getattr(self, name), optional=True)
        for name in _OPTIONAL_HASHES:
            value = getattr(self, name)
            if value is not None:
                _check_hex_sha256(name, value)
        if self.decision not in _DECISIONS:
            raise ValueError(f"decision must be one of {sorted(_DECISIONS)}")
        _check_int("status", self.status, 100, 599)
        if not isinstance(self.released_fields, tuple):
            raise TypeError("released_fields must be a tuple")
        for name in self.released_fields:
            _check_text("released_fields item", name)
        _check_int("latency_us", self.latency_us, 0, _MAX_SAFE_INT)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord(AuditEntry):
    """An entry as written: every entry field, plus its place in the log, time and hashes."""

    seq: int
    time: str
    leaf_hash: str
    chain_hash: str

    def __post_init__(self) -> None:
        # Explicit base call: zero-argument super() breaks in slotted dataclasses before 3.14.
        AuditEntry.__post_init__(self)
        _check_int("seq", self.seq, 1, _MAX_SAFE_INT)
        if not isinstance(self.time, str) or _TIME.fullmatch(self.time) is None:
            raise ValueError(
                "time must be RFC 3339 UTC with microseconds, e.g. ...T12:00:00.000000Z"
            )
        _check_hex_sha256("leaf_hash", self.leaf_hash)
        _check_hex_sha256("chain_hash", self.chain_hash)

    @property
    def entry(self) -> AuditEntry:
        """The entry this record was made from."""
        return AuditEntry(**{name: getattr(self, name) for name in _ENTRY_FIELDS})

    def canonical(self) -> bytes:
        """The bytes the leaf hash covers."""
        return canonical_json(record_document(self, seq=self.seq, time=self.time))

    def as_dict(self) -> dict[str, object]:
        """The record as a JSON-ready dict: every hashed field plus the two hashes."""
        document = record_document(self, seq=self.seq, time=self.time)
        document["leaf_hash"] = self.leaf_hash
        document["chain_hash"] = self.chain_hash
        return document


_ENTRY_FIELDS: Final = tuple(field.name for field in fields(AuditEntry))


def record_document(entry: AuditEntry, *, seq: int, time: str) -> dict[str, object]:
    """The dict whose canonical JSON is the record: ``seq``, ``time`` and every entry field."""
    return {
        "seq": seq,
        "time": time,
        "event": entry.event,
        "xroad_id": entry.xroad_id,
        "client": entry.client,
        "service": entry.service,
        "officer": entry.officer,
        "issue": entry.issue,
        "purpose": entry.purpose,
        "consent_id": entry.consent_id,
        "subject_ref": entry.subject_ref,
        "decision": entry.decision,
        "reason": entry.reason,
        "status": entry.status,
        "request_hash": entry.request_hash,
        "response_hash": entry.response_hash,
        "released_fields": list(entry.released_fields),
        "latency_us": entry.latency_us,
    }


def canonical_json(document: Mapping[str, object]) -> bytes:
    """Serialise ``document`` the one way its hash is computed over.

    For what a record holds (ASCII keys, strings, integers within 2**53, null, lists; never a
    float) this is byte-for-byte RFC 8785 (JCS): keys sorted (ASCII keys sort the same by code
    point as by UTF-16 unit), no whitespace, UTF-8, and JSON's minimal escapes with lower-case
    ``\\u00xx`` for the other control characters. orjson writes exactly these bytes (checked
    against ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` for every
    code point) at a tenth of the cost, which matters on the writer's and verifiers' hot paths.
    """
    plain = document if type(document) is dict else dict(document)
    for value in plain.values():
        # No record holds a float, and floats are where JSON encoders disagree (and NaN is no
        # JSON at all): refusing them keeps every verifier byte-exact.
        if type(value) is float or (
            type(value) is list and any(type(item) is float for item in value)
        ):
            raise ValueError("floats are not JSON compliant in a canonical record")
    return orjson.dumps(plain, option=orjson.OPT_SORT_KEYS)


def hash_leaf(canonical: bytes) -> bytes:
    """RFC 9162 leaf hash: ``SHA-256(0x00 || canonical)``."""
    return hashlib.sha256(b"\x00" + canonical).digest()


def hash_chain(previous: bytes, leaf: bytes) -> bytes:
    """The chain link: ``SHA-256(previous chain hash || leaf hash)``."""
    return hashlib.sha256(previous + leaf).digest()


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds and a ``Z``: the record's ``time``."""
    if moment.tzinfo is None:
        raise ValueError("time must be timezone-aware")
    naive_utc = moment.astimezone(UTC).replace(tzinfo=None)
    return naive_utc.isoformat(timespec="microseconds") + "Z"


def seal(entry: AuditEntry, *, seq: int, time: str, previous_chain_hash: str) -> AuditRecord:
    """Make ``entry`` record ``seq``, chained onto the record before it."""
    leaf = hash_leaf(canonical_json(record_document(entry, seq=seq, time=time)))
    chain = hash_chain(bytes.fromhex(previous_chain_hash), leaf)
    if type(seq) is not int or seq < 1 or _TIME.fullmatch(time) is None:
        raise ValueError("seq must be a positive int and time RFC 3339 UTC with microseconds")
    # The entry was validated when it was made and the rest is computed here, so the record is
    # assembled without running every check again: this is the writer's hot path.
    record = object.__new__(AuditRecord)
    for name in _ENTRY_FIELDS:
        object.__setattr__(record, name, getattr(entry, name))
    object.__setattr__(record, "seq", seq)
    object.__setattr__(record, "time", time)
    object.__setattr__(record, "leaf_hash", leaf.hex())
    object.__setattr__(record, "chain_hash", chain.hex())
    return record
