"""Merkle trees against the recursive definition of RFC 9162, and proofs."""

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.merkle import (
    MerkleProof,
    compute_proof,
    compute_root,
    hash_children,
    hash_leaf,
    is_valid_proof,
)


def H(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def rfc_root(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) as written in RFC 9162 section 2.1.1."""
    if not leaves:
        return H(b"")
    if len(leaves) == 1:
        return hash_leaf(H, leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hash_children(H, rfc_root(leaves[:k]), rfc_root(leaves[k:]))


leaf_lists = st.lists(st.binary(max_size=8), min_size=1, max_size=40)


@given(leaf_lists)
def test_root_matches_rfc_definition(leaves: list[bytes]) -> None:
    assert compute_root(H, leaves) == rfc_root(leaves)


def test_empty_tree_root_is_hash_of_nothing() -> None:
    assert compute_root(H, []) == H(b"")


def test_rfc6962_style_known_value() -> None:
    # One leaf: H(0x00 || leaf); the empty leaf gives the CT test vector.
    assert compute_root(H, [b""]).hex().startswith("6e340b9cffb37a98")


@given(leaf_lists, st.data())
def test_every_proof_verifies_and_a_wrong_leaf_does_not(
    leaves: list[bytes], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1))
    root = compute_root(H, leaves)
    proof = compute_proof(H, leaves, index)
    assert is_valid_proof(H, leaves[index], proof, root)
    assert not is_valid_proof(H, leaves[index] + b"x", proof, root)
    if len(leaves) > 1:
        moved = MerkleProof((index + 1) % len(leaves), proof.tree_size, proof.siblings)
        assert (
            not is_valid_proof(H, leaves[index], moved, root)
            or leaves[index] == leaves[moved.index]
        )


def test_truncated_or_extended_proofs_fail() -> None:
    leaves = [bytes([i]) for i in range(7)]
    root = compute_root(H, leaves)
    proof = compute_proof(H, leaves, 3)
    assert not is_valid_proof(H, leaves[3], MerkleProof(3, 7, proof.siblings[:-1]), root)
    assert not is_valid_proof(H, leaves[3], MerkleProof(3, 7, (*proof.siblings, root)), root)
    # tree_size is not authenticated by the root for every index; receipts check it
    # against the header's tx_count. For the promoted last leaf it changes the path:
    last = compute_proof(H, leaves, 6)
    assert is_valid_proof(H, leaves[6], last, root)
    assert not is_valid_proof(H, leaves[6], MerkleProof(6, 8, last.siblings), root)


def test_proof_for_missing_index_is_our_bug() -> None:
    with pytest.raises(IndexError):
        compute_proof(H, [b"a"], 1)
