"""audit.merkle against the published RFC 6962 / CT test vectors, mangled proofs, and properties."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import merkle
from audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

# transparency-dev/merkle testonly constants (the CT reference tree), used as data.
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (0-based leaf index, tree size, proof)
INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        2,
        8,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _root(size: int) -> bytes:
    return bytes.fromhex(ROOTS[size])


def _flip(value: bytes, bit: int = 3) -> bytes:
    return bytes([value[0] ^ (1 << bit), *value[1:]])


class TestVectors:
    @pytest.mark.parametrize("size", range(9))
    def test_roots_for_sizes_0_to_8(self, size: int) -> None:
        assert root_hash(LEAVES[:size]).hex() == ROOTS[size]

    def test_empty_root_is_sha256_of_nothing(self) -> None:
        assert root_hash([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()

    def test_leaf_and_node_prefixes(self) -> None:
        assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
        a, b = leaf_hash(b"a"), leaf_hash(b"b")
        assert merkle.node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()

    @pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
    def test_inclusion_proofs(self, index: int, size: int, proof: list[str]) -> None:
        assert [h.hex() for h in inclusion_proof(LEAVES[:size], index)] == proof
        assert verify_inclusion(
            leaf_hash(LEAVES[index]), index, size, [bytes.fromhex(h) for h in proof], _root(size)
        )

    @pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
    def test_consistency_proofs(self, old: int, new: int, proof: list[str]) -> None:
        assert [h.hex() for h in consistency_proof(LEAVES[:new], old)] == proof
        assert verify_consistency(
            old, new, _root(old), _root(new), [bytes.fromhex(h) for h in proof]
        )


def _inclusion_probes(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, int, int, list[bytes], bytes, bytes]]:
    probes = [
        ("index - 1", index - 1, size, proof, root, leaf),
        ("index + 1", index + 1, size, proof, root, leaf),
        ("index ^ 2", index ^ 2, size, proof, root, leaf),
        ("size * 2", index, size * 2, proof, root, leaf),
        ("size // 2", index, size // 2, proof, root, leaf),
        ("wrong leaf", index, size, proof, root, leaf_hash(b"WrongLeaf")),
        ("empty root", index, size, proof, EMPTY_ROOT, leaf),
        ("random root", index, size, proof, SOME_HASH, leaf),
        ("trailing root", index, size, [*proof, root], root, leaf),
        ("preceding root", index, size, [root, *proof], root, leaf),
        ("short hash", index, size, [*proof[:-1], proof[-1][:31]], root, leaf),
        ("truncated", index, size, proof[:-1], root, leaf),
    ]
    probes += [
        (
            f"bit flipped in proof[{i}]",
            index,
            size,
            [*proof[:i], _flip(p), *proof[i + 1 :]],
            root,
            leaf,
        )
        for i, p in enumerate(proof)
    ]
    return probes


class TestNegative:
    @pytest.mark.parametrize(("index", "size", "proof"), [v for v in INCLUSION if v[2]])
    def test_mangled_inclusion_proofs_fail(self, index: int, size: int, proof: list[str]) -> None:
        raw = [bytes.fromhex(h) for h in proof]
        leaf = leaf_hash(LEAVES[index])
        for name, i, n, p, root, lh in _inclusion_probes(index, size, raw, _root(size), leaf):
            assert not verify_inclusion(lh, i, n, p, root), name

    @pytest.mark.parametrize(("old", "new", "proof"), [v for v in CONSISTENCY if v[2]])
    def test_mangled_consistency_proofs_fail(self, old: int, new: int, proof: list[str]) -> None:
        raw = [bytes.fromhex(h) for h in proof]
        r1, r2 = _root(old), _root(new)
        probes = [
            ("old - 1", old - 1, new, r1, r2, raw),
            ("old + 1", old + 1, new, r1, r2, raw),
            ("old ^ 2", old ^ 2, new, r1, r2, raw),
            ("new * 2", old, new * 2, r1, r2, raw),
            ("new // 2", old, new // 2, r1, r2, raw),
            ("wrong old root", old, new, SOME_HASH, r2, raw),
            ("wrong new root", old, new, r1, SOME_HASH, raw),
            ("swapped roots", old, new, r2, r1, raw),
            ("empty proof", old, new, r1, r2, []),
            ("truncated", old, new, r1, r2, raw[:-1]),
            ("trailing root", old, new, r1, r2, [*raw, r1]),
            ("preceding root", old, new, r1, r2, [r2, *raw]),
            ("preceding proof[0]", old, new, r1, r2, [raw[0], *raw]),
        ]
        probes += [
            (f"bit flipped in proof[{i}]", old, new, r1, r2, [*raw[:i], _flip(p, 4), *raw[i + 1 :]])
            for i, p in enumerate(raw)
        ]
        for name, m, n, a, b, p in probes:
            assert not verify_consistency(m, n, a, b, p), name

    @pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (2, 1), (-1, 1), (1, 1)], ids=str)
    def test_index_outside_the_tree_fails(self, index: int, size: int) -> None:
        assert not verify_inclusion(leaf_hash(b"x"), index, size, [], leaf_hash(b"x"))

    @pytest.mark.parametrize(
        ("old", "new", "old_root", "new_root", "proof", "expected"),
        [
            (0, 0, EMPTY_ROOT, EMPTY_ROOT, [], True),
            (0, 5, EMPTY_ROOT, SOME_HASH, [], True),
            (0, 5, EMPTY_ROOT, SOME_HASH, [SOME_HASH], False),
            (3, 3, SOME_HASH, SOME_HASH, [], True),
            (3, 3, SOME_HASH, EMPTY_ROOT, [], False),
            (3, 3, SOME_HASH, SOME_HASH, [SOME_HASH], False),
            (2, 1, SOME_HASH, SOME_HASH, [], False),
            (1, 2, SOME_HASH, EMPTY_ROOT, [], False),
        ],
    )
    def test_degenerate_consistency_cases(
        self,
        old: int,
        new: int,
        old_root: bytes,
        new_root: bytes,
        proof: list[bytes],
        expected: bool,
    ) -> None:
        assert verify_consistency(old, new, old_root, new_root, proof) is expected

    def test_generators_refuse_impossible_arguments(self) -> None:
        with pytest.raises(ValueError, match="index"):
            inclusion_proof(LEAVES, 8)
        with pytest.raises(ValueError, match="old_size"):
            consistency_proof(LEAVES[:3], 5)


_data = st.lists(st.binary(max_size=8), min_size=1, max_size=70)


class TestProperties:
    @settings(max_examples=60, deadline=None)
    @given(_data, st.data())
    def test_every_inclusion_proof_verifies_and_names_its_leaf(
        self, leaves: list[bytes], data: st.DataObject
    ) -> None:
        index = data.draw(st.integers(0, len(leaves) - 1))
        root = root_hash(leaves)
        proof = inclusion_proof(leaves, index)
        assert verify_inclusion(leaf_hash(leaves[index]), index, len(leaves), proof, root)
        other = leaf_hash(leaves[index] + b"!")
        assert not verify_inclusion(other, index, len(leaves), proof, root)

    @settings(max_examples=60, deadline=None)
    @given(_data, st.data())
    def test_every_consistency_proof_verifies_and_a_rewrite_does_not(
        self, leaves: list[bytes], data: st.DataObject
    ) -> None:
        old = data.draw(st.integers(0, len(leaves)))
        proof = consistency_proof(leaves, old)
        old_root, new_root = root_hash(leaves[:old]), root_hash(leaves)
        assert verify_consistency(old, len(leaves), old_root, new_root, proof)
        if old:
            rewritten = [*leaves[: old - 1], leaves[old - 1] + b"!"]
            assert not verify_consistency(old, len(leaves), root_hash(rewritten), new_root, proof)

    @settings(max_examples=60, deadline=None)
    @given(_data, st.data())
    def test_compact_range_plus_subtrees_gives_the_root(
        self, leaves: list[bytes], data: st.DataObject
    ) -> None:
        hashes = [leaf_hash(d) for d in leaves]
        cut = data.draw(st.integers(0, len(leaves)))
        edge = CompactRange()
        stored: dict[tuple[int, int], bytes] = {}
        for h in hashes:
            for level, index, digest in edge.append(h):
                stored[(level, index)] = digest
        assert edge.root() == root_hash(leaves)
        # The stored nodes alone give roots and proofs for every size.
        prefix_root = merkle.root_from(cut, lambda level, index: stored[(level, index)])
        assert prefix_root == root_hash(leaves[:cut])
        partial = CompactRange(cut, [stored[k] for k in merkle.perfect_subtrees(0, cut)])
        for level, index in merkle.perfect_subtrees(cut, len(leaves)):
            partial.append_subtree(level, stored[(level, index)])
        assert partial.root() == root_hash(leaves)

    def test_a_compact_range_copy_is_independent(self) -> None:
        hashes = [leaf_hash(bytes([i])) for i in range(5)]
        edge = CompactRange()
        for h in hashes[:3]:
            edge.append(h)
        copy = edge.copy()
        for h in hashes[3:]:
            copy.append(h)
        assert (edge.size, edge.root()) == (3, root_hash([bytes([i]) for i in range(3)]))
        assert (copy.size, copy.root()) == (5, root_hash([bytes([i]) for i in range(5)]))

    def test_needed_nodes_are_logarithmic(self) -> None:
        size = 1_000_003
        keys = merkle.needed_nodes(lambda node: merkle.inclusion_path(12_345, size, node))
        assert len(keys) <= 2 * size.bit_length()
        keys = merkle.needed_nodes(lambda node: merkle.consistency_path(777_777, size, node))
        assert len(keys) <= 2 * size.bit_length()
