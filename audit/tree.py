"""The log as an RFC 9162 Merkle tree: stored subtree hashes, roots and proofs in O(log n).

Every completed perfect subtree's hash is stored once, under its ``merkle.node_id``, in the
same transaction as the records it covers. Appending a batch reads the right edge of the tree
(at most one node per bit of the size) and writes about two nodes per record; a root or a
proof reads O(log n) nodes, fetched in one query. Leaf ``i`` is record ``seq = i + 1``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from sqlalchemy import Connection, Engine, func, select

from audit import merkle
from audit._bulk import fetch_rows, insert_rows, mark
from audit.store import audit_records, audit_tree

__all__ = [
    "backfill_in",
    "compact_range_in",
    "consistency_proof_at",
    "extend_in",
    "first_difference_in",
    "inclusion_proof_at",
    "root_at",
    "root_in",
    "sizes_in",
    "tree_size_in",
]

_BACKFILL_PAGE = 10_000
_COMPARE_PAGE = 10_000
_T = TypeVar("_T")


def tree_size_in(conn: Connection) -> int:
    """How many leaves the stored tree holds (its largest node id is its last leaf's)."""
    top = conn.scalar(select(func.max(audit_tree.c.id)))
    return 0 if top is None else int(top) // 2 + 1


def sizes_in(conn: Connection) -> tuple[int, int]:
    """The stored tree's size and the last record's seq, read in one statement (one snapshot).

    The writer adds both in one transaction, so in any snapshot they agree; two separate reads
    of a live log could see a batch in between.
    """
    top = select(func.max(audit_tree.c.id)).scalar_subquery()
    last = select(func.max(audit_records.c.seq)).scalar_subquery()
    node, seq = conn.execute(select(top, last)).one()
    return (0 if node is None else int(node) // 2 + 1), (0 if seq is None else int(seq))


def first_difference_in(conn: Connection, edge: merkle.CompactRange) -> int | None:
    """The first leaf where the stored tree differs from ``edge``, or None if its root is the same.

    ``edge`` is the tree a verifier rebuilt from the records, whose ``leaf_hash`` columns it
    found right. The stored perfect subtrees that make up the root are compared with ``edge``'s
    (one query); in the first that differs, the stored leaves with the records' leaf hashes,
    a page at a time (only a broken log gets here). If those all agree, a node above them was
    changed, and the subtree's first leaf is as near as the records can say.
    """
    keys = merkle.perfect_subtrees(0, edge.size)
    node = _fetch(conn, keys)
    for (level, index), recomputed in zip(keys, edge.hashes, strict=True):
        try:
            if node(level, index) == recomputed:
                continue
        except LookupError:
            pass
        begin, end = index << level, (index + 1) << level
        leaf_node = audit_tree.c.id == 2 * (audit_records.c.seq - 1)
        for start in range(begin, end, _COMPARE_PAGE):
            rows = conn.execute(
                select(audit_records.c.seq, audit_records.c.leaf_hash, audit_tree.c.hash)
                .select_from(audit_records.outerjoin(audit_tree, leaf_node))
                .where(
                    audit_records.c.seq > start,
                    audit_records.c.seq <= min(end, start + _COMPARE_PAGE),
                )
                .order_by(audit_records.c.seq)
            )
            for seq, leaf_hex, stored in rows:
                if stored is None or bytes(stored).hex() != leaf_hex:
                    return int(seq) - 1
        return begin
    return None


def _fetch(conn: Connection, keys: Iterable[tuple[int, int]]) -> merkle.NodeSource:
    wanted = {merkle.node_id(level, index): (level, index) for level, index in keys}
    found: dict[tuple[int, int], bytes] = {}
    ids = list(wanted)
    placeholder = mark(conn)
    for start in range(0, len(ids), 500):  # stay far below any bound-parameter limit
        chunk = ids[start : start + 500]
        # At the driver: every batch's append and every proof reads here (see audit._bulk).
        marks = ", ".join([placeholder] * len(chunk))
        rows = fetch_rows(conn, f"SELECT id, hash FROM audit_tree WHERE id IN ({marks})", chunk)  # noqa: S608 - marks only
        for stored_id, digest in rows:
            found[wanted[int(stored_id)]] = bytes(digest)

    def node(level: int, index: int) -> bytes:
        try:
            return found[(level, index)]
        except KeyError:
            raise LookupError(f"tree node ({level}, {index}) is not stored") from None

    return node


def _run(conn: Connection, compute: Callable[[merkle.NodeSource], _T]) -> _T:
    return compute(_fetch(conn, merkle.needed_nodes(compute)))


def root_in(conn: Connection, size: int) -> bytes:
    """The root of the first ``size`` leaves, read in ``conn``."""
    return _run(conn, lambda node: merkle.root_from(size, node))


def root_at(engine: Engine, size: int) -> bytes:
    """The root of the first ``size`` leaves."""
    with engine.connect() as conn:
        return root_in(conn, size)


def inclusion_proof_at(engine: Engine, index: int, size: int) -> list[bytes]:
    """The inclusion proof of leaf ``index`` (record ``index + 1``) in the tree of ``size``."""
    with engine.connect() as conn:
        return _run(conn, lambda node: merkle.inclusion_path(index, size, node))


def consistency_proof_at(engine: Engine, old_size: int, new_size: int) -> list[bytes]:
    """The proof that the tree of ``old_size`` leaves is a prefix of the tree of ``new_size``."""
    with engine.connect() as conn:
        return _run(conn, lambda node: merkle.consistency_path(old_size, new_size, node))


def compact_range_in(conn: Connection, size: int) -> merkle.CompactRange:
    """The right edge of the tree of ``size`` leaves, ready to append to."""
    keys = merkle.perfect_subtrees(0, size)
    node = _fetch(conn, keys)
    return merkle.CompactRange(size, [node(level, index) for level, index in keys])


def extend_in(
    conn: Connection,
    size: int,
    leaves: Sequence[bytes],
    *,
    edge: merkle.CompactRange | None = None,
) -> merkle.CompactRange:
    """Append leaf hashes to the tree of ``size`` leaves, inside the caller's transaction.

    Returns the new right edge. ``edge``, if given, is the right edge of this very tree at
    ``size`` (what the previous call returned, when nobody appended in between); otherwise,
    or if its size is not ``size``, the edge is read from the stored nodes. It is not changed.
    """
    edge = edge.copy() if edge is not None and edge.size == size else compact_range_in(conn, size)
    rows = [
        (merkle.node_id(level, index), digest)
        for leaf in leaves
        for level, index, digest in edge.append(leaf)
    ]
    insert_rows(conn, "audit_tree", ("id", "hash"), rows)
    return edge


def backfill_in(conn: Connection) -> None:
    """Build the tree nodes of records the tree does not cover yet (a log from before it)."""
    size = tree_size_in(conn)
    while True:
        rows = conn.execute(
            select(audit_records.c.seq, audit_records.c.leaf_hash)
            .where(audit_records.c.seq > size)
            .order_by(audit_records.c.seq)
            .limit(_BACKFILL_PAGE)
        ).all()
        if not rows:
            return
        leaves: list[bytes] = []
        for seq, leaf in rows:
            if int(seq) != size + len(leaves) + 1:
                raise ValueError(f"cannot build the tree: record {size + len(leaves) + 1} missing")
            leaves.append(bytes.fromhex(leaf))
        extend_in(conn, size, leaves)
        size += len(leaves)
