"""Checking the log: every record intact, numbered 1, 2, 3, ..., chained, and under its checkpoints.

The hash chain shows *where* a log breaks; the Merkle roots in signed checkpoints show *that* it
was rewritten even when the chain was recomputed or the tail cut off. Online, the tree the
writer stored beside the records must also be the one the records make: the same size, the same
root (:func:`verify_log`). The same
:class:`LogChecker` walks rows from the database (:func:`verify_log`) and records from an export
file (:mod:`audit.export`), recomputing every leaf from the record's content.

:meth:`LogChecker.feed` is the reference: one record, every check spelled out. A million records
go through :meth:`LogChecker.run`, which checks the well-formed, in-order ones in one tight loop
(their canonical JSON from :mod:`audit._plain`) and hands anything else to the reference, so
the verdict, the first bad seq and the problem are the same either way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from itertools import takewhile
from typing import Any, Final, TypeVar

import orjson
from sqlalchemy import Engine

from audit import merkle
from audit._plain import Plain, row_canonicaliser
from audit.merkle import CompactRange
from audit.notes import Checkpoint
from audit.records import GENESIS_CHAIN_HASH, canonical_json, hash_chain, hash_leaf
from audit.store import COLUMNS, DOCUMENT_COLUMNS, encode_fields, iter_raw_tuples
from audit.tree import first_difference_in, sizes_in

__all__ = [
    "CHECKPOINT_MISMATCH",
    "NOT_IN_TREE",
    "OUT_OF_ORDER",
    "RECORD_CHANGED",
    "RECORD_MISSING",
    "TREE_MISMATCH",
    "LogChecker",
    "VerifyReport",
    "verify_log",
]

#: The record's content no longer matches its hashes (or is not a well-formed record).
RECORD_CHANGED: Final = "record changed"
#: A sequence number is absent: a record was deleted.
RECORD_MISSING: Final = "record missing"
#: The record is intact but does not follow its predecessor: moved, swapped or inserted.
OUT_OF_ORDER: Final = "out of order / inserted"
#: Every record checks, but the Merkle root differs from a signed checkpoint's: rewritten.
CHECKPOINT_MISMATCH: Final = "log rewritten: root differs from a signed checkpoint"
#: Online: the record is intact and chained, but the stored Merkle tree ends before it. The
#: writer adds both in one transaction: the record was written around the writer.
NOT_IN_TREE: Final = "record not in the stored Merkle tree"
#: Online: the records check, but the stored Merkle tree's root is not theirs: changed.
TREE_MISMATCH: Final = "stored Merkle tree differs from the records"

_MAX_SHIFT: Final = 3  # how far back a renumbered record is looked for (insertions)
_LOWEST_SEQ: Final = -(2**63)  # read from the very bottom: a row numbered 0 or below is a forgery

_PENDING_LEAVES: Final = 4096  # accepted leaves held before they go into the compact range

LeafOf = Callable[[Mapping[str, Any]], bytes | None]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The verdict. ``records`` counts the intact records before the first bad one.

    ``checkpoints`` counts the checkpoint roots the log was found to match.
    """

    ok: bool
    records: int
    first_bad_seq: int | None
    problem: str | None
    checkpoints: int = 0


class LogChecker:
    """Feed records in order; the first bad one ends the walk with a :class:`VerifyReport`.

    ``leaf_of`` recomputes a record's leaf hash from its content and returns it only if it
    matches the record's stored ``leaf_hash``. ``checkpoints`` are tree heads already trusted
    (their signatures checked); the root after each one's size must equal its root.
    """

    def __init__(
        self,
        *,
        leaf_of: LeafOf,
        checkpoints: Sequence[Checkpoint] = (),
        first_seq: int = 1,
        previous_chain_hash: str = GENESIS_CHAIN_HASH,
        edge: CompactRange | None = None,
    ) -> None:
        self._leaf_of = leaf_of
        self._expected = first_seq
        self._first = first_seq
        self._previous = bytes.fromhex(previous_chain_hash)
        self._edge = edge if edge is not None else CompactRange()
        if self._edge.size != first_seq - 1:
            raise ValueError("the compact range must end right before the first record")
        self._due = sorted(
            (c for c in checkpoints if c.size >= first_seq), key=lambda c: c.size, reverse=True
        )
        self._matched_size = first_seq - 1
        self._matched = 0
        self.checked = 0
        # A record whose own hash holds but whose chain hash does not follow from its
        # predecessor, with the chain hash it should have: the next record tells whether only
        # that column was edited (the true chain continues past it) or it does not belong.
        self._suspect: tuple[int, bytes] | None = None

    @property
    def edge(self) -> CompactRange:
        """The tree so far (for the caller to complete with the rest of the log)."""
        return self._edge

    def verdict(self, seq: int | None, problem: str | None) -> VerifyReport:
        """A report with the counts so far."""
        return VerifyReport(
            ok=problem is None,
            records=self.checked,
            first_bad_seq=seq,
            problem=problem,
            checkpoints=self._matched,
        )

    def feed(self, row: Mapping[str, Any]) -> VerifyReport | None:
        """Check the next record; a report if it is the first bad one, else None."""
        seq = row.get("seq")
        if type(seq) is not int:
            return self.verdict(self._expected, RECORD_CHANGED)
        if self._suspect is not None:
            suspect_seq, true_chain = self._suspect
            continues = seq == suspect_seq + 1 and self._chains_onto(row, true_chain)
            return self.verdict(suspect_seq, RECORD_CHANGED if continues else OUT_OF_ORDER)
        if seq > self._expected:
            return self.verdict(self._expected, RECORD_MISSING)
        if seq < self._expected:
            return self.verdict(seq, OUT_OF_ORDER)
        leaf = self._leaf_of(row)
        if leaf is None:
            moved = self._moved_from(row, seq)
            if moved is not None:  # records were slipped in before it: they are the first bad
                self.checked -= seq - moved
                return self.verdict(moved, OUT_OF_ORDER)
            return self.verdict(seq, RECORD_CHANGED)
        chain = hash_chain(self._previous, leaf)
        if chain.hex() != row.get("chain_hash"):
            self._suspect = (seq, chain)
            return None
        self._previous = chain
        self._expected += 1
        self.checked += 1
        self._edge.append(leaf)
        return self._check_checkpoints()

    def _moved_from(self, row: Mapping[str, Any], seq: int) -> int | None:
        """The lower number an intact record was written under, if it was pushed up a little."""
        for earlier in range(seq - 1, max(self._first - 1, seq - 1 - _MAX_SHIFT), -1):
            if self._leaf_of({**row, "seq": earlier}) is not None:
                return earlier
        return None

    def _check_checkpoints(self) -> VerifyReport | None:
        size = self._edge.size
        while self._due and self._due[-1].size == size:
            checkpoint = self._due.pop()
            if self._edge.root() != checkpoint.root:
                return self.verdict(self._matched_size + 1, CHECKPOINT_MISMATCH)
            self._matched_size = size
            self._matched += 1
        return None

    def finish(self, *, tree_size: int | None = None) -> VerifyReport:
        """The verdict once every record was fed.

        ``tree_size`` is how many records the log must hold (an export's range end); by
        default, as many as the largest checkpoint says.
        """
        if self._suspect is not None:
            return self.verdict(self._suspect[0], OUT_OF_ORDER)
        expected_end = (
            tree_size if tree_size is not None else max((c.size for c in self._due), default=0)
        )
        if expected_end > self._edge.size:
            return self.verdict(self._edge.size + 1, RECORD_MISSING)
        return self.verdict(None, None)

    def check_extended(self, rest: Iterable[tuple[int, bytes]]) -> VerifyReport | None:
        """Complete the tree with the perfect subtrees after the last record, then check roots."""
        for level, digest in rest:
            self._edge.append_subtree(level, digest)
        return self._check_checkpoints()

    def run(
        self,
        items: Iterable[_T],
        *,
        plain: Callable[[_T], Plain | None],
        slow: Callable[[_T], VerifyReport | None],
        last_seq: int | None = None,
        progress: Callable[[int], object] | None = None,
        progress_every: int = 10_000,
    ) -> VerifyReport | None:
        """Check every item; the first bad one's report, or None (then :meth:`finish`).

        The verdict is the one ``slow`` (the reference step: feed one item, e.g. through
        :meth:`feed`) would reach on each item in turn, only faster. An item that ``plain``
        turns into its seq and canonical JSON is accepted here when it is the next record (at
        most ``last_seq``), its recomputed leaf is its stored one and its chain follows, which is
        exactly when :meth:`feed` accepts it; everything else (a gap, a mismatch, a record not
        in the plain shape, the record after a suspect) is handed to ``slow`` with the state
        as the reference walk would have it. ``progress`` gets the count of records checked at
        every multiple of ``progress_every``, as a per-item loop calling it would.
        """
        sha256 = hashlib.sha256
        leaves: list[bytes] = []  # accepted, not yet in the compact range
        expected, previous, checked = self._expected, self._previous, self.checked
        ceiling = (1 << 64) if last_seq is None else last_seq
        stop = self._due[-1].size if self._due else -1
        fast = self._suspect is None
        for item in items:
            if fast:
                parts = plain(item)
                if parts is not None:
                    seq, canonical, leaf_hex, chain_hex = parts
                    if seq == expected and expected <= ceiling:
                        leaf = sha256(b"\x00" + canonical).digest()
                        if leaf.hex() == leaf_hex:
                            chain = sha256(previous + leaf).digest()
                            if chain.hex() == chain_hex:
                                previous = chain
                                expected += 1
                                checked += 1
                                leaves.append(leaf)
                                if expected - 1 == stop or len(leaves) >= _PENDING_LEAVES:
                                    self._catch_up(leaves, expected, previous, checked)
                                    report = self._check_checkpoints()
                                    if report is not None:
                                        return report
                                    stop = self._due[-1].size if self._due else -1
                                if progress is not None and checked % progress_every == 0:
                                    progress(checked)
                                continue
            self._catch_up(leaves, expected, previous, checked)
            report = slow(item)
            if report is not None:
                return report
            expected, previous, checked = self._expected, self._previous, self.checked
            stop = self._due[-1].size if self._due else -1
            fast = self._suspect is None
            if progress is not None and checked % progress_every == 0:
                progress(checked)
        self._catch_up(leaves, expected, previous, checked)
        return None

    def _catch_up(self, leaves: list[bytes], expected: int, previous: bytes, checked: int) -> None:
        """Bring the state up to the records :meth:`run` accepted, and empty ``leaves``.

        The leaves go in as the aligned perfect subtrees they make up, each hashed level by
        level: the same tree as appending them one by one, with far fewer calls.
        """
        self._expected, self._previous, self.checked = expected, previous, checked
        if not leaves:
            return
        sha256 = hashlib.sha256
        begin = self._edge.size
        for level, index in merkle.perfect_subtrees(begin, begin + len(leaves)):
            start = (index << level) - begin
            layer = leaves[start : start + (1 << level)]
            while len(layer) > 1:
                layer = [
                    sha256(b"\x01" + left + right).digest()
                    for left, right in zip(layer[::2], layer[1::2], strict=True)
                ]
            self._edge.append_subtree(level, layer[0])
        leaves.clear()

    def _chains_onto(self, row: Mapping[str, Any], previous: bytes) -> bool:
        leaf = self._leaf_of(row)
        return leaf is not None and hash_chain(previous, leaf).hex() == row.get("chain_hash")


def leaf_of_row(row: Mapping[str, Any]) -> bytes | None:
    """A database row's leaf hash if its content still matches its stored ``leaf_hash``.

    The leaf is recomputed from the columns as stored; ``released_fields`` must also still be
    its canonical JSON text. A record whose hash matches is the one the writer checked.
    """
    try:
        text = row["released_fields"]
        released = orjson.loads(text)
        if not isinstance(released, list) or encode_fields(released) != text:
            return None
        document = {name: row[name] for name in DOCUMENT_COLUMNS}
        document["released_fields"] = released
        leaf = hash_leaf(canonical_json(document))
    except (KeyError, TypeError, ValueError):
        return None
    return leaf if leaf.hex() == row["leaf_hash"] else None


def verify_log(
    engine: Engine,
    *,
    checkpoints: Sequence[Checkpoint] = (),
    progress: Callable[[int], object] | None = None,
    progress_every: int = 10_000,
    page_size: int = 1000,
) -> VerifyReport:
    """Walk the whole log in sequence order and report the first bad record, if any.

    Each record's leaf hash is recomputed from its stored columns, the chain from record 1 on
    and the Merkle root at every checkpoint's size; the log is streamed a page at a time. A
    checkpoint larger than the log means records were cut off the end. Then the stored tree
    (``audit_tree``, what proofs and new checkpoints are built from) must hold exactly the
    records walked, with the root they make: a record past it is :data:`NOT_IN_TREE`, a tree
    past the last record means records are missing, and any other difference is
    :data:`TREE_MISMATCH` at the first leaf found to differ. ``progress`` is called with the
    number of records checked every ``progress_every`` records and once at the end.
    """
    if progress_every < 1:
        raise ValueError("progress_every must be at least 1")
    checker = LogChecker(leaf_of=leaf_of_row, checkpoints=checkpoints)

    def reference(values: tuple[Any, ...]) -> VerifyReport | None:
        return checker.feed(dict(zip(COLUMNS, values, strict=True)))

    def walk(start: int, through: int | None = None) -> VerifyReport:
        rows = iter_raw_tuples(engine, start=start, page_size=page_size)
        with closing(rows):
            report = checker.run(
                rows if through is None else takewhile(lambda row: row[0] <= through, rows),
                plain=row_canonicaliser(),
                slow=reference,
                progress=progress,
                progress_every=progress_every,
            )
        return report if report is not None else checker.finish()

    report = walk(_LOWEST_SEQ)
    if report.ok:
        report = _against_stored_tree(engine, checker, walk)
    if progress is not None:
        progress(checker.checked)
    return report


def _against_stored_tree(
    engine: Engine, checker: LogChecker, walk: Callable[[int, int], VerifyReport]
) -> VerifyReport:
    """The verdict on the stored tree, once every record walked was found intact."""
    with engine.connect() as conn:
        tree_size, last_seq = sizes_in(conn)
    if last_seq > checker.edge.size:  # appended since the walk passed (the log is live)
        report = walk(checker.edge.size + 1, last_seq)
        if not report.ok:
            return report
    size = checker.edge.size
    if tree_size < size:
        return replace(checker.verdict(tree_size + 1, NOT_IN_TREE), records=tree_size)
    if tree_size > size:
        return checker.verdict(size + 1, RECORD_MISSING)
    with engine.connect() as conn:
        index = first_difference_in(conn, checker.edge)
    if index is None:
        return checker.verdict(None, None)
    return replace(checker.verdict(index + 1, TREE_MISMATCH), records=index)
