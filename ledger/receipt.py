"""Receipts: offline proof that a transaction is on the ledger.

A receipt holds the transaction, its Merkle path in the block, the block's
proposal (the part of the header the members sign) and the block's commit
certificate (2f+1 member signatures). Checking one needs only the genesis file:
the member keys are the trust anchor. The header's `prev_hash` is not in a
receipt because no member signs it directly; the certificate binds the
proposal, whose tx_root binds the transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.crypto import SUITES, SignatureSuite, get_suite
from ledger.encoding import decode, encode
from ledger.errors import InvalidEncoding
from ledger.genesis import check_genesis
from ledger.merkle import MerkleProof, compute_proof, is_valid_proof
from ledger.tx import chain_tag
from ledger.types import (
    Block,
    CommitCertificate,
    Proposal,
    Transaction,
    check_certificate,
    compute_tx_hash,
    is_valid_tx_signature,
    member_verifier,
)
from ledger.wire import expect_tagged

TAG_RECEIPT = 40


class ReceiptInvalid(ValueError):
    """The receipt does not prove what it claims; the message says precisely why."""


@dataclass(frozen=True)
class TrustAnchor:
    chain_id: str
    suite: SignatureSuite
    members: tuple[bytes, ...]
    chain_hash: bytes  # what every member signed in the ceremony, and every signature binds


def load_trust_anchor(path: Path) -> TrustAnchor:
    """The chain, suite and member keys of a genesis file whose members all signed it
    (ValueError if unusable)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        chain_hash = check_genesis(raw)
        suite = raw["suite"]
        if suite not in SUITES:
            raise ValueError(f"unknown suite {suite!r}")
        members = tuple(bytes.fromhex(m["public_key"]) for m in raw["members"])
        if not members:
            raise ValueError("no members")
        return TrustAnchor(str(raw["chain_id"]), get_suite(suite), members, chain_hash)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a usable genesis file: {exc}") from None


@dataclass(frozen=True)
class Receipt:
    tx: Transaction
    proof: MerkleProof
    proposal: Proposal
    certificate: CommitCertificate

    def to_wire(self) -> list[Any]:
        return [
            TAG_RECEIPT,
            self.tx.to_wire(),
            self.proof.to_wire(),
            self.proposal.to_wire(),
            self.certificate.to_wire(),
        ]

    @classmethod
    def from_wire(cls, value: Any) -> Receipt:
        tx, proof, proposal, cert = expect_tagged(value, TAG_RECEIPT, 4, "receipt")
        return cls(
            Transaction.from_wire(tx),
            MerkleProof.from_wire(proof),
            Proposal.from_wire(proposal),
            CommitCertificate.from_wire(cert),
        )

    def encode(self) -> bytes:
        return encode(self.to_wire())

    @classmethod
    def decode(cls, data: bytes) -> Receipt:
        return cls.from_wire(decode(data))

    def to_json(self, suite: SignatureSuite, chain_id: str, chain_hash: bytes) -> dict[str, Any]:
        """The file form: the encoded receipt plus claims a verifier re-derives and compares."""
        return {
            "chain_id": chain_id,
            "chain_hash": chain_hash.hex(),
            "tx_hash": compute_tx_hash(suite, self.tx).hex(),
            "height": self.proposal.height,
            "index": self.proof.index,
            "receipt": self.encode().hex(),
        }


def verify_receipt(receipt: Receipt, anchor: TrustAnchor) -> None:
    """Raise ReceiptInvalid naming the first check that fails."""
    suite = anchor.suite
    if receipt.tx.chain != chain_tag(anchor.chain_hash):
        raise ReceiptInvalid(
            f"wrong_chain: the transaction was signed for chain tag {receipt.tx.chain.hex()}, "
            f"this genesis is {chain_tag(anchor.chain_hash).hex()} ({anchor.chain_id})"
        )
    if not is_valid_tx_signature(suite, receipt.tx, anchor.chain_hash):
        raise ReceiptInvalid("the transaction's signature does not verify")
    proposal, proof = receipt.proposal, receipt.proof
    if proof.tree_size != proposal.tx_count:
        raise ReceiptInvalid(
            f"Merkle path is for a block of {proof.tree_size} txs; "
            f"the block has {proposal.tx_count}"
        )
    if not is_valid_proof(suite.hash, receipt.tx.encoded(), proof, proposal.tx_root):
        raise ReceiptInvalid(
            f"the transaction is not in block {proposal.height}: its Merkle path at index "
            f"{proof.index} does not lead to the block's tx_root {proposal.tx_root.hex()[:16]}..."
        )
    verify = member_verifier(suite, anchor.members, anchor.chain_hash)
    problem = check_certificate(
        suite, range(len(anchor.members)), verify, receipt.certificate, proposal
    )
    if problem is not None:
        raise ReceiptInvalid(f"commit certificate: {problem}")


def verify_receipt_json(doc: Any, anchor: TrustAnchor) -> Receipt:
    """Check a receipt file's content; its stated claims must match what the receipt proves."""
    if not isinstance(doc, dict) or not isinstance(doc.get("receipt"), str):
        raise ReceiptInvalid('expected a JSON object with a "receipt" field (hex)')
    try:
        receipt = Receipt.decode(bytes.fromhex(doc["receipt"]))
    except (ValueError, InvalidEncoding) as exc:
        raise ReceiptInvalid(f"the receipt bytes do not decode: {exc}") from None
    verify_receipt(receipt, anchor)
    if doc.get("chain_id", anchor.chain_id) != anchor.chain_id:
        raise ReceiptInvalid(
            f"the receipt names chain {doc['chain_id']!r}, genesis is {anchor.chain_id!r}"
        )
    derived = receipt.to_json(anchor.suite, anchor.chain_id, anchor.chain_hash)
    if doc.get("chain_hash", derived["chain_hash"]) != derived["chain_hash"]:
        raise ReceiptInvalid(f"the receipt names chain hash {doc['chain_hash']!r}, "
                             f"genesis is {derived['chain_hash']}")  # fmt: skip
    for claim in ("tx_hash", "height", "index"):
        if claim in doc and doc[claim] != derived[claim]:
            raise ReceiptInvalid(
                f"{claim} says {doc[claim]!r} but the receipt proves {derived[claim]!r}"
            )
    return receipt


def build_receipt(
    suite: SignatureSuite, block: Block, cert: CommitCertificate, index: int
) -> Receipt:
    """The receipt of `block.txs[index]` (IndexError for an index outside the block)."""
    leaves = [tx.encoded() for tx in block.txs]
    proof = compute_proof(suite.hash, leaves, index)
    return Receipt(block.txs[index], proof, block.header.proposal, cert)
