"""Receipts verify offline against genesis keys; any changed byte makes them fail."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ledger.genesis import check_genesis
from ledger.receipt import (
    Receipt,
    ReceiptInvalid,
    TrustAnchor,
    build_receipt,
    load_trust_anchor,
    verify_receipt,
    verify_receipt_json,
)
from tests.factories import CHAIN, SUITE, ceremony_genesis, client_tx, member_keys, sample_block

ANCHOR = TrustAnchor("test-chain", SUITE, tuple(k.public_key for k in member_keys(4)), CHAIN)


def receipt(index: int = 1) -> Receipt:
    block, cert = sample_block(height=7, n_txs=5)
    return build_receipt(SUITE, block, cert, index)


def test_a_receipt_verifies_and_round_trips() -> None:
    r = receipt()
    verify_receipt(r, ANCHOR)
    assert Receipt.decode(r.encode()) == r
    doc = json.loads(json.dumps(r.to_json(SUITE, "test-chain", CHAIN)))
    assert verify_receipt_json(doc, ANCHOR) == r


def test_every_single_byte_change_is_detected() -> None:
    data = bytearray(receipt().encode())
    for position in range(len(data)):
        tampered = bytearray(data)
        tampered[position] ^= 0x01
        doc = {"receipt": tampered.hex()}
        with pytest.raises(ReceiptInvalid):
            verify_receipt_json(doc, ANCHOR)


def test_failures_say_what_fails() -> None:
    r = receipt()
    weak = dataclasses.replace(r.certificate, votes=r.certificate.votes[:2])
    cases = {
        "signature does not verify": dataclasses.replace(r, tx=dataclasses.replace(r.tx, seq=99)),
        "not in block 7": dataclasses.replace(r, tx=client_tx(9, 1)),
        "block of 4 txs": dataclasses.replace(r, proof=dataclasses.replace(r.proof, tree_size=4)),
        "needs 3": dataclasses.replace(r, certificate=weak),
    }
    for expected, bad in cases.items():
        with pytest.raises(ReceiptInvalid, match=expected):
            verify_receipt(bad, ANCHOR)


def test_claims_in_the_file_must_match_the_receipt() -> None:
    doc = receipt().to_json(SUITE, "test-chain", CHAIN)
    with pytest.raises(ReceiptInvalid, match="height"):
        verify_receipt_json({**doc, "height": 8}, ANCHOR)
    with pytest.raises(ReceiptInvalid, match="chain"):
        verify_receipt_json({**doc, "chain_id": "other"}, ANCHOR)
    with pytest.raises(ReceiptInvalid, match="chain hash"):
        verify_receipt_json({**doc, "chain_hash": "11" * 32}, ANCHOR)
    with pytest.raises(ReceiptInvalid, match="decode"):
        verify_receipt_json({"receipt": "00"}, ANCHOR)


def test_other_members_keys_do_not_accept_it() -> None:
    keys = tuple(k.public_key for k in member_keys(5)[1:])
    strangers = TrustAnchor("test-chain", SUITE, keys, CHAIN)
    with pytest.raises(ReceiptInvalid, match="signature of member"):
        verify_receipt(receipt(), strangers)


def test_a_receipt_of_another_chain_is_refused_by_name() -> None:
    """The same members, another network: the transaction's chain tag says so, and
    with the tag forged the signatures (bound to the chain hash) do not verify."""
    other = dataclasses.replace(ANCHOR, chain_hash=b"\x01" * 32)
    with pytest.raises(ReceiptInvalid, match="wrong_chain"):
        verify_receipt(receipt(), other)
    near = dataclasses.replace(ANCHOR, chain_hash=CHAIN[:8] + b"\x01" * 24)  # same tag
    with pytest.raises(ReceiptInvalid, match="signature does not verify"):
        verify_receipt(receipt(), near)


def test_trust_anchor_from_a_genesis_file(tmp_path: Path) -> None:
    path = tmp_path / "genesis.json"
    genesis = ceremony_genesis(member_keys(4))
    path.write_text(json.dumps(genesis))
    anchor = load_trust_anchor(path)
    assert anchor.members == ANCHOR.members
    assert anchor.chain_hash == check_genesis(genesis)
    path.write_text("{}")
    with pytest.raises(ValueError, match="not a usable genesis"):
        load_trust_anchor(path)
    unsigned = {k: v for k, v in genesis.items() if k != "signatures"}
    path.write_text(json.dumps(unsigned))
    with pytest.raises(ValueError, match="no member signatures"):
        load_trust_anchor(path)
