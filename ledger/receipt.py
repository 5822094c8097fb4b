"""Receipts: offline proof that a transaction is on the ledger.

A receipt holds the transaction, its Merkle path in the block, the block's
proposal (the part of the header the members sign) and the block's commit
certificate (2f+1 member signatures). Checking one needs only the genesis file:
the member keys are the trust anchor, and for a block after membership changes, the
receipts of those changes (`GET /v1/members` lists them), which the verifier follows
from the genesis: each must itself verify with the members of its own block. The
header's `prev_hash` is not in a receipt because no member signs it directly; the
certificate binds the proposal, whose tx_root binds the transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ledger.crypto import SUITES, SignatureSuite, get_suite
from ledger.encoding import decode, encode
from ledger.errors import InvalidEncoding
from ledger.genesis import check_genesis
from ledger.membership import Membership, apply_block, bare_membership
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
    checkpoint_interval: int = 16  # the genesis protocol's K and L: where a change applies
    watermark_window: int = 64
    changes: tuple[Receipt, ...] = ()  # receipts of the membership changes, any order

    def with_changes(self, docs: list[Any]) -> TrustAnchor:
        """This anchor following the membership changes whose receipt files are `docs`."""
        found = tuple(Receipt.decode(bytes.fromhex(doc["receipt"])) for doc in docs)
        return replace(self, changes=found)


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
        protocol = raw.get("protocol", {})
        return TrustAnchor(str(raw["chain_id"]), get_suite(suite), members, chain_hash,
                           int(protocol.get("checkpoint_interval", 16)),
                           int(protocol.get("watermark_window", 64)))  # fmt: skip
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
    _verify_in(receipt, anchor, members_at(anchor, receipt.proposal.height))


def members_at(anchor: TrustAnchor, height: int) -> Membership:
    """The membership governing block `height`, following the anchor's changes that
    were committed below it (each verified with the members of its own block)."""
    m = bare_membership(anchor.members)
    suite = anchor.suite
    for change in sorted(anchor.changes, key=lambda r: (r.proposal.height, r.proof.index)):
        at = change.proposal.height
        if at >= height:
            break
        m = m.at_height(at)
        try:
            _verify_in(change, anchor, m)
        except ReceiptInvalid as exc:
            raise ReceiptInvalid(f"membership change in block {at}: {exc}") from None
        verify = member_verifier(suite, m.keys, anchor.chain_hash)
        m, outcomes = apply_block(m, at, [(change.tx.kind, change.tx.payload)],
                                  anchor.checkpoint_interval, anchor.watermark_window, verify,
                                  suite.name)  # fmt: skip
        if not outcomes or outcomes[0] is not None:
            refused = outcomes[0] if outcomes else "not a membership transaction"
            raise ReceiptInvalid(f"membership change in block {at} did not apply: {refused}")
    return m.at_height(height)


def _verify_in(receipt: Receipt, anchor: TrustAnchor, m: Membership) -> None:
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
    verify = member_verifier(suite, m.keys, anchor.chain_hash)
    problem = check_certificate(suite, m.epoch.active, verify, receipt.certificate, proposal)
    if problem is not None:
        raise ReceiptInvalid(f"commit certificate (epoch {m.epoch.number}): {problem}")


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
