"""The RFC 9162 Merkle tree: hashes, roots, inclusion and consistency proofs. Pure, no I/O.

Leaves are the raw data (a record's canonical JSON); ``leaf_hash`` is ``SHA-256(0x00 || data)``
and an interior node ``SHA-256(0x01 || left || right)``; the tree splits at the largest power of
two below its size (RFC 9162 section 2.1.1), the empty tree's root is ``SHA-256()``.

Besides the six list-based functions, the same algorithms run over a *node source*: a callable
giving the hash of the perfect, aligned subtree ``(level, index)`` (leaves ``2**level * index``
to ``2**level * (index + 1)``). The log stores exactly those hashes, so it computes roots and
proofs from O(log n) stored nodes; :func:`needed_nodes` names them beforehand so they can be
fetched in one read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Final

__all__ = [
    "EMPTY_ROOT",
    "CompactRange",
    "NodeSource",
    "consistency_path",
    "consistency_proof",
    "inclusion_path",
    "inclusion_proof",
    "leaf_hash",
    "needed_nodes",
    "node_hash",
    "node_id",
    "perfect_subtrees",
    "root_from",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]

#: The root of the empty tree: SHA-256 of nothing.
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
_HASH_SIZE: Final = 32

#: Hash of the perfect subtree ``(level, index)``.
NodeSource = Callable[[int, int], bytes]


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def node_id(level: int, index: int) -> int:
    """A single integer naming the perfect subtree ``(level, index)``: its in-order position.

    Leaves get the even numbers ``2 * index``; a subtree sits between its two halves. The
    largest id in a tree of ``n`` leaves is therefore its last leaf's, ``2 * (n - 1)``.
    """
    return (index << (level + 1)) + (1 << level) - 1


def _split(size: int) -> int:
    """The largest power of two strictly below ``size`` (``size`` >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def perfect_subtrees(begin: int, end: int) -> list[tuple[int, int]]:
    """The maximal aligned perfect subtrees covering leaves ``[begin, end)``, left to right.

    For ``begin = 0`` these are the subtrees whose right-fold is the root (one per set bit of
    ``end``); appending further leaves only ever merges into the last of them.
    """
    if not 0 <= begin <= end:
        raise ValueError("need 0 <= begin <= end")
    result: list[tuple[int, int]] = []
    while begin < end:
        level = (begin & -begin).bit_length() - 1 if begin else (end - begin).bit_length() - 1
        while begin + (1 << level) > end:
            level -= 1
        result.append((level, begin >> level))
        begin += 1 << level
    return result


def _subtree(begin: int, end: int, node: NodeSource) -> bytes:
    """MTH of leaves ``[begin, end)``, where ``begin`` is aligned as RFC 9162's recursion has it."""
    size = end - begin
    if size & (size - 1) == 0:
        level = size.bit_length() - 1
        return node(level, begin >> level)
    k = _split(size)
    return node_hash(_subtree(begin, begin + k, node), _subtree(begin + k, end, node))


def root_from(size: int, node: NodeSource) -> bytes:
    """The root of the first ``size`` leaves."""
    if size < 0:
        raise ValueError("size must not be negative")
    return EMPTY_ROOT if size == 0 else _subtree(0, size, node)


def inclusion_path(index: int, size: int, node: NodeSource) -> list[bytes]:
    """RFC 9162 PATH(index, D[0:size]): the audit path of leaf ``index`` (0-based)."""
    if not 0 <= index < size:
        raise ValueError("need 0 <= index < size")
    path: list[bytes] = []
    begin, end = 0, size
    while end - begin > 1:
        k = _split(end - begin)
        if index < begin + k:
            path.append(_subtree(begin + k, end, node))
            end = begin + k
        else:
            path.append(_subtree(begin, begin + k, node))
            begin += k
    path.reverse()  # collected root-down; the proof lists hashes leaf-up
    return path


def consistency_path(old_size: int, new_size: int, node: NodeSource) -> list[bytes]:
    """RFC 9162 PROOF(old_size, D[0:new_size]); empty when ``old_size`` is 0 or ``new_size``."""
    if not 0 <= old_size <= new_size:
        raise ValueError("need 0 <= old_size <= new_size")
    if old_size in (0, new_size):
        return []
    path: list[bytes] = []
    begin, end, whole = 0, new_size, True
    m = old_size
    while True:
        size = end - begin
        if m == size:
            if not whole:
                path.append(_subtree(begin, end, node))
            break
        k = _split(size)
        if m <= k:
            path.append(_subtree(begin + k, end, node))
            end = begin + k
        else:
            path.append(_subtree(begin, begin + k, node))
            begin += k
            m -= k
            whole = False
    path.reverse()
    return path


def needed_nodes(compute: Callable[[NodeSource], object]) -> list[tuple[int, int]]:
    """The perfect subtrees ``compute`` reads from its node source, in first-use order.

    The algorithms' control flow never depends on hash values, so a dry run with dummy hashes
    names exactly the nodes a real run needs: fetch them in one query, then run for real.
    """
    seen: dict[tuple[int, int], None] = {}

    def record(level: int, index: int) -> bytes:
        seen[(level, index)] = None
        return bytes(_HASH_SIZE)

    compute(record)
    return list(seen)


def _list_source(hashes: Sequence[bytes]) -> NodeSource:
    def node(level: int, index: int) -> bytes:
        begin = index << level
        layer = list(hashes[begin : begin + (1 << level)])
        while len(layer) > 1:
            layer = [node_hash(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
        return layer[0]

    return node


def _leaf_hashes(leaves: Iterable[bytes]) -> list[bytes]:
    return [leaf_hash(bytes(data)) for data in leaves]


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """The Merkle tree hash (root) of ``leaves`` (raw leaf data)."""
    compact = CompactRange()
    for data in leaves:
        compact.append(leaf_hash(bytes(data)))
    return compact.root()


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The inclusion proof of ``leaves[index]`` in the tree of all ``leaves``."""
    return inclusion_path(index, len(leaves), _list_source(_leaf_hashes(leaves)))


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """The proof that the tree of ``leaves[:old_size]`` is a prefix of the tree of ``leaves``."""
    return consistency_path(old_size, len(leaves), _list_source(_leaf_hashes(leaves)))


def _hashes_ok(*hashes: object) -> bool:
    return all(isinstance(h, bytes | bytearray) and len(h) == _HASH_SIZE for h in hashes)


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2: whether ``proof`` shows leaf ``index`` in the tree ``root``."""
    if not 0 <= index < size or not _hashes_ok(leaf_hash, root, *proof):
        return False
    fn, sn, r = index, size - 1, bytes(leaf_hash)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2: whether ``proof`` shows ``old_root``'s tree is a prefix of
    ``new_root``'s."""
    if not 0 <= old_size <= new_size or not _hashes_ok(old_root, new_root, *proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:  # the empty tree is a prefix of every tree
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


class CompactRange:
    """The right edge of a growing tree: one hash per perfect subtree of the decomposition.

    Appending a leaf merges it with equal-sized subtrees to its left and reports every subtree
    it completes, which is what the log stores; :meth:`root` folds the edge into the root.
    """

    __slots__ = ("_edge", "_size")

    def __init__(self, size: int = 0, edge: Sequence[bytes] = ()) -> None:
        if len(edge) != size.bit_count():
            raise ValueError("a compact range of size n holds one hash per set bit of n")
        self._size = size
        self._edge = list(edge)

    @property
    def size(self) -> int:
        """How many leaves the range covers."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The hash of each perfect subtree of ``perfect_subtrees(0, size)``, left to right."""
        return tuple(self._edge)

    def copy(self) -> CompactRange:
        """An independent copy: appending to either leaves the other as it was."""
        return CompactRange(self._size, self._edge)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; return the ``(level, index, hash)`` of every subtree it completes."""
        index = self._size
        completed = [(0, index, leaf)]
        h, level = leaf, 0
        while (index >> level) & 1:
            h = node_hash(self._edge.pop(), h)
            level += 1
            completed.append((level, index >> level, h))
        self._edge.append(h)
        self._size += 1
        return completed

    def append_subtree(self, level: int, h: bytes) -> None:
        """Add a whole perfect subtree of ``2**level`` leaves (the range must be aligned to it)."""
        if level < 0 or self._size % (1 << level):
            raise ValueError("subtree is not aligned with the range")
        new_size = self._size + (1 << level)
        while (self._size >> level) & 1:
            # Merge with the equal-sized subtree on the left, as appending its leaves would.
            h = node_hash(self._edge.pop(), h)
            level += 1
        self._edge.append(h)
        self._size = new_size

    def root(self) -> bytes:
        """The root of the tree of the leaves appended so far."""
        if not self._edge:
            return EMPTY_ROOT
        h = self._edge[-1]
        for left in reversed(self._edge[:-1]):
            h = node_hash(left, h)
        return h
