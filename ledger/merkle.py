"""Merkle trees as in RFC 9162 (Certificate Transparency v2), section 2.1.

Leaves are hashed as H(0x00 || leaf) and inner nodes as H(0x01 || left || right),
so a leaf can never pose as an inner node. The tree is built level by level and
an odd node at the end of a level is promoted unchanged, which gives exactly the
RFC's left-balanced tree (tests check this against the recursive definition).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.errors import InvalidEncoding
from ledger.wire import digest, expect_tagged, items_of, u64

HashFn = Callable[[bytes], bytes]
MAX_PROOF_DEPTH = 64
TAG_MERKLE_PROOF = 20


def hash_leaf(hash_fn: HashFn, leaf: bytes) -> bytes:
    return hash_fn(b"\x00" + leaf)


def hash_children(hash_fn: HashFn, left: bytes, right: bytes) -> bytes:
    return hash_fn(b"\x01" + left + right)


def compute_root(hash_fn: HashFn, leaves: Sequence[bytes]) -> bytes:
    """Root over raw leaves; the empty tree's root is H(b"")."""
    if not leaves:
        return hash_fn(b"")
    level = [hash_leaf(hash_fn, leaf) for leaf in leaves]
    while len(level) > 1:
        level = _next_level(hash_fn, level)
    return level[0]


def _next_level(hash_fn: HashFn, level: list[bytes]) -> list[bytes]:
    paired = [hash_children(hash_fn, level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        paired.append(level[-1])
    return paired


@dataclass(frozen=True)
class MerkleProof:
    """Audit path of leaf `index` in a tree of `tree_size` leaves."""

    index: int
    tree_size: int
    siblings: tuple[bytes, ...]

    def to_wire(self) -> list[Any]:
        return [TAG_MERKLE_PROOF, self.index, self.tree_size, list(self.siblings)]

    @classmethod
    def from_wire(cls, value: Any) -> MerkleProof:
        index, size, siblings = expect_tagged(value, TAG_MERKLE_PROOF, 3, "merkle proof")
        proof = cls(
            u64(index, "index"),
            u64(size, "tree_size"),
            items_of(siblings, lambda s: digest(s, "sibling"), "siblings", MAX_PROOF_DEPTH),
        )
        if proof.index >= proof.tree_size:
            raise InvalidEncoding("merkle proof: index outside the tree")
        return proof


def compute_proof(hash_fn: HashFn, leaves: Sequence[bytes], index: int) -> MerkleProof:
    """Audit path for `leaves[index]`; IndexError for our own bad index."""
    if not 0 <= index < len(leaves):
        raise IndexError("leaf index outside the tree")
    level = [hash_leaf(hash_fn, leaf) for leaf in leaves]
    position, siblings = index, []
    while len(level) > 1:
        sibling = position ^ 1
        if sibling < len(level):
            siblings.append(level[sibling])
        level = _next_level(hash_fn, level)
        position //= 2
    return MerkleProof(index, len(leaves), tuple(siblings))


def is_valid_proof(hash_fn: HashFn, leaf: bytes, proof: MerkleProof, root: bytes) -> bool:
    """True iff `leaf` sits at `proof.index` in the tree whose root is `root`.

    The root does not commit to `tree_size` by itself: callers compare it with
    the count the block header states (tx_count)."""
    if not 0 <= proof.index < proof.tree_size:
        return False
    node, position, size = hash_leaf(hash_fn, leaf), proof.index, proof.tree_size
    remaining = list(proof.siblings)
    while size > 1:
        if position % 2:
            if not remaining:
                return False
            node = hash_children(hash_fn, remaining.pop(0), node)
        elif position + 1 < size:
            if not remaining:
                return False
            node = hash_children(hash_fn, node, remaining.pop(0))
        position, size = position // 2, (size + 1) // 2
    return not remaining and node == root
