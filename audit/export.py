"""Exports an auditor can check with no database and no network: JSON Lines plus a checkpoint.

An export of records ``first_seq..last_seq`` under a checkpoint of ``tree_size`` records is a
header line, then one line per record (every hashed field, ``leaf_hash`` and ``chain_hash``).
The header carries what the range needs to be tied to the checkpoint's root: the perfect
subtrees left of the range (``left``), those right of it (``right``) and the chain hash before
it. None of that is trusted: the verifier recomputes every leaf, rebuilds the root from them and
the subtrees, and accepts only the root the signed checkpoint names.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, select

from audit import merkle
from audit._plain import document_canonicaliser
from audit.checkpoints import StoredCheckpoint
from audit.errors import AuditQueryInvalid, CheckpointInvalid
from audit.notes import Checkpoint, open_checkpoint
from audit.records import GENESIS_CHAIN_HASH, canonical_json, hash_leaf
from audit.store import (
    COLUMNS,
    DOCUMENT_COLUMNS,
    audit_records,
    audit_tree,
    iter_rows,
    record_from_row,
)
from audit.verify import OUT_OF_ORDER, RECORD_CHANGED, LogChecker, VerifyReport

__all__ = ["EXPORT_FORMAT", "iter_export", "leaf_of_document", "verify_export"]

EXPORT_FORMAT: Final = "simpul-audit-export/1"

#: The keys of a record line: the hashed fields and the two hashes, nothing else.
_RECORD_KEYS: Final = frozenset(COLUMNS)


def _line(document: Mapping[str, Any]) -> str:
    try:
        return orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE).decode()
    except TypeError:  # orjson.JSONEncodeError
        # A row as stored that no record holds, e.g. text that was not UTF-8 (read with its
        # bytes kept as surrogate escapes): written with \u escapes, so the bytes survive for
        # whoever looks, and the verifier, which reads no lone surrogate, calls it changed.
        return json.dumps(document, separators=(",", ":")) + "\n"


def _as_stored(value: Any) -> Any:
    """``value`` as a tampered SQLite file may hold it (SQLite stores what it is given), for
    the verifier to name: a BLOB as {"blob": its bytes in hex}, which no record field can be."""
    return {"blob": value.hex()} if isinstance(value, bytes) else value


def _export_row(row: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return record_from_row(row).as_dict()
    except (TypeError, ValueError):
        return {str.__str__(key): _as_stored(value) for key, value in row.items()}


def _digest(value: Any) -> bytes:
    """A stored tree node's hash; text where a tampered SQLite file holds it, as its bytes (a
    wrong node gives a root the checkpoint does not sign)."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    return bytes(value)


def iter_export(
    engine: Engine, checkpoint: StoredCheckpoint, *, first_seq: int = 1, last_seq: int | None = None
) -> Iterator[str]:
    """The lines of an export of ``first_seq..last_seq`` (default: the checkpoint's end)."""
    size = checkpoint.tree_size
    last = size if last_seq is None else last_seq
    if not 1 <= first_seq <= last <= size:
        raise AuditQueryInvalid(f"the range must lie within 1..{size}, the checkpoint's records")
    left_keys = merkle.perfect_subtrees(0, first_seq - 1)
    right_keys = merkle.perfect_subtrees(last, size)
    ids = [merkle.node_id(level, index) for level, index in (*left_keys, *right_keys)]
    with engine.connect() as conn:
        stored: dict[int, bytes] = {}
        if ids:
            rows = conn.execute(
                select(audit_tree.c.id, audit_tree.c.hash).where(audit_tree.c.id.in_(ids))
            )
            stored = {int(node): _digest(digest) for node, digest in rows}
        previous = conn.scalar(
            select(audit_records.c.chain_hash).where(audit_records.c.seq == first_seq - 1)
        )

    def node(level: int, index: int) -> str:
        return stored.get(merkle.node_id(level, index), b"").hex()

    yield _line(
        {
            "format": EXPORT_FORMAT,
            "origin": Checkpoint.parse(checkpoint.note.partition("\n\n")[0] + "\n").origin,
            "tree_size": size,
            "first_seq": first_seq,
            "last_seq": last,
            "previous_chain_hash": _as_stored(previous or GENESIS_CHAIN_HASH),
            "left": [node(level, index) for level, index in left_keys],
            "right": [[level, node(level, index)] for level, index in right_keys],
            "checkpoint": checkpoint.note,
        }
    )
    for row in iter_rows(engine, start=first_seq, limit=last - first_seq + 1):
        yield _line(_export_row(row))


def leaf_of_document(document: Mapping[str, Any]) -> bytes | None:
    """An exported record's leaf hash, if its content still matches its ``leaf_hash``.

    The line must hold exactly the hashed fields and the two hashes. Anything more is covered
    by no hash, yet a reader would take it as part of the record (a NIK, a note saying who
    approved), so such a line is a changed record.
    """
    if document.keys() != _RECORD_KEYS:
        return None
    try:
        canonical = canonical_json({key: document[key] for key in DOCUMENT_COLUMNS})
    except (KeyError, TypeError, ValueError):
        return None
    leaf = hash_leaf(canonical)
    return leaf if leaf.hex() == document.get("leaf_hash") else None


class _DuplicateKey(ValueError):
    """A JSON object names a key twice."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise _DuplicateKey("a key appears twice")
    return document


def _record_document(line: str) -> dict[str, Any] | None:
    """A record line as a dict, or None if it is no JSON object or names a key twice.

    JSON leaves a repeated key's meaning open: Python and orjson keep the last value, other
    readers the first. Hashing one reading while an auditor's tool shows the other would let a
    line say two things, so a repeated key makes the line a changed record.
    """
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return None
    try:
        json.loads(line, object_pairs_hook=_unique_keys)
    except ValueError:  # a repeated key (or JSON orjson read but the json module does not)
        return None
    return document


class _Header:
    def __init__(self, line: str, checkpoint: Checkpoint) -> None:
        try:
            raw = json.loads(line, object_pairs_hook=_unique_keys)
            if raw.get("format") != EXPORT_FORMAT:
                raise ValueError(f"not a {EXPORT_FORMAT} file")
            self.first_seq = int(raw["first_seq"])
            self.last_seq = int(raw["last_seq"])
            self.tree_size = int(raw["tree_size"])
            self.previous = str(raw["previous_chain_hash"])
            left = [bytes.fromhex(h) for h in raw["left"]]
            self.right = [(int(level), bytes.fromhex(h)) for level, h in raw["right"]]
            self.edge = merkle.CompactRange(self.first_seq - 1, left)
            bytes.fromhex(self.previous)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise CheckpointInvalid(f"the export header is malformed: {exc}") from None
        if (self.tree_size, raw.get("origin")) != (checkpoint.size, checkpoint.origin):
            raise CheckpointInvalid(
                f"the export covers {raw.get('origin')} at size {self.tree_size}, the checkpoint "
                f"{checkpoint.origin} at size {checkpoint.size}"
            )
        if not 1 <= self.first_seq <= self.last_seq <= self.tree_size:
            raise CheckpointInvalid("the export's range does not lie within its tree")
        expected = merkle.perfect_subtrees(self.last_seq, self.tree_size)
        if [level for level, _ in self.right] != [level for level, _ in expected]:
            raise CheckpointInvalid("the export's right-hand subtrees do not fit its range")


def verify_export(
    lines: Iterable[str],
    *,
    checkpoint_note: str,
    public_key: Ed25519PublicKey,
    key_name: str = "",
    origin: str | None = None,
    progress: Callable[[int], object] | None = None,
    progress_every: int = 10_000,
) -> VerifyReport:
    """Check an export against a signed checkpoint, offline.

    The checkpoint's signature must verify with ``public_key`` (under ``key_name``, default its
    origin), and its log be ``origin`` if given, else :class:`CheckpointInvalid`. Then every
    record's leaf and chain are recomputed and the root rebuilt; the report names the first
    record changed, removed, reordered or inserted, or says the root differs from the
    checkpoint.
    """
    checkpoint = open_checkpoint(checkpoint_note, public_key, name=key_name, origin=origin)
    it = iter(lines)
    header = _Header(next(it, ""), checkpoint)
    checker = LogChecker(
        leaf_of=leaf_of_document,
        checkpoints=[checkpoint],
        first_seq=header.first_seq,
        previous_chain_hash=header.previous,
        edge=header.edge,
    )

    def reference(line: str) -> VerifyReport | None:
        document = _record_document(line)
        if header.first_seq + checker.checked > header.last_seq:  # more than the range holds
            return checker.verdict(header.last_seq + 1, OUT_OF_ORDER)
        if document is None:
            return checker.verdict(header.first_seq + checker.checked, RECORD_CHANGED)
        return checker.feed(document)

    report = checker.run(
        (line for line in it if line.strip()),
        plain=document_canonicaliser(),
        slow=reference,
        last_seq=header.last_seq,
        progress=progress,
        progress_every=progress_every,
    )
    if report is not None:
        return report
    if progress is not None:
        progress(checker.checked)
    if header.first_seq + checker.checked <= header.last_seq:
        return checker.finish(tree_size=header.last_seq)
    return checker.check_extended(header.right) or checker.finish(tree_size=header.last_seq)
