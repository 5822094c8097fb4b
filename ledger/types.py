"""Proposals, blocks and commit certificates (transactions: `ledger.tx`).

Consensus agrees on a `Proposal` (a batch header whose `tx_root` commits to the
transactions). The committed `Block` adds `prev_hash`, the hash of the block
below it, when it is delivered in order: several proposals are in flight at
once, so a proposal cannot name its parent. A `CommitCertificate` holds 2f+1
member signatures over (view, height, proposal digest).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from ledger.crypto import SignatureSuite
from ledger.encoding import decode, encode
from ledger.merkle import compute_root
from ledger.quorum import quorum_size
from ledger.tx import MAX_PAYLOAD_BYTES as MAX_PAYLOAD_BYTES
from ledger.tx import TAG_TX as TAG_TX
from ledger.tx import Transaction as Transaction
from ledger.tx import array_header as array_header
from ledger.tx import compute_tx_hash as compute_tx_hash
from ledger.tx import compute_tx_root as compute_tx_root
from ledger.tx import decode_tx_list as decode_tx_list
from ledger.tx import decode_with_tx_list, encode_with_tx_list
from ledger.tx import encode_tx_list as encode_tx_list
from ledger.tx import is_valid_tx_signature as is_valid_tx_signature
from ledger.tx import join_encoded as join_encoded
from ledger.tx import sign_transaction as sign_transaction
from ledger.wire import (
    blob,
    digest,
    expect_list,
    expect_tagged,
    items_of,
    strictly_increasing,
    u64,
)

TAG_PROPOSAL, TAG_HEADER, TAG_BLOCK, TAG_CERT = 2, 3, 4, 5
TAG_COMMIT_VOTE = 13  # shared with consensus.messages.Commit
MAX_TXS_PER_BLOCK = 100_000
MAX_MEMBERS = 1024
ZERO_HASH = b"\x00" * 32


@dataclass(frozen=True)
class Proposal:
    """What the primary proposes at a height; its digest is what replicas vote on."""

    height: int
    timestamp_ms: int
    proposer: int
    tx_root: bytes
    tx_count: int
    state_height: int
    state_root: bytes

    def to_wire(self) -> list[Any]:
        return [
            TAG_PROPOSAL, self.height, self.timestamp_ms, self.proposer, self.tx_root,
            self.tx_count, self.state_height, self.state_root,
        ]  # fmt: skip

    @classmethod
    def from_wire(cls, value: Any) -> Proposal:
        h, ts, proposer, root, count, sh, sr = expect_tagged(value, TAG_PROPOSAL, 7, "proposal")
        return cls(
            u64(h, "height"),
            u64(ts, "timestamp_ms"),
            u64(proposer, "proposer", MAX_MEMBERS - 1),
            digest(root, "tx_root"),
            u64(count, "tx_count", MAX_TXS_PER_BLOCK),
            u64(sh, "state_height"),
            digest(sr, "state_root"),
        )

    def digest(self, suite: SignatureSuite) -> bytes:
        return suite.hash(encode(self.to_wire()))


def null_proposal(suite: SignatureSuite, height: int, proposer: int) -> Proposal:
    """The empty proposal a new primary puts where no request prepared (PBFT 4.4)."""
    return Proposal(height, 0, proposer, compute_root(suite.hash, []), 0, 0, ZERO_HASH)


@dataclass(frozen=True)
class BlockHeader:
    prev_hash: bytes
    proposal: Proposal

    @property
    def height(self) -> int:
        return self.proposal.height

    def to_wire(self) -> list[Any]:
        return [TAG_HEADER, self.prev_hash, self.proposal.to_wire()]

    @classmethod
    def from_wire(cls, value: Any) -> BlockHeader:
        prev, proposal = expect_tagged(value, TAG_HEADER, 2, "block header")
        return cls(digest(prev, "prev_hash"), Proposal.from_wire(proposal))

    def hash(self, suite: SignatureSuite) -> bytes:
        return suite.hash(encode(self.to_wire()))


@dataclass(frozen=True)
class Block:
    header: BlockHeader
    txs: tuple[Transaction, ...]

    def to_wire(self) -> list[Any]:
        return [TAG_BLOCK, self.header.to_wire(), [tx.to_wire() for tx in self.txs]]

    @classmethod
    def from_wire(cls, value: Any) -> Block:
        header, txs = expect_tagged(value, TAG_BLOCK, 2, "block")
        return cls(
            BlockHeader.from_wire(header),
            items_of(txs, Transaction.from_wire, "block.txs", MAX_TXS_PER_BLOCK),
        )

    def encode(self) -> bytes:
        return encode_with_tx_list([TAG_BLOCK, self.header.to_wire(), self.txs], 2)

    @classmethod
    def decode(cls, data: bytes) -> Block:
        tag, header, txs = decode_with_tx_list(data, 3, 2, MAX_TXS_PER_BLOCK, "block")
        expect_tagged([tag, header], TAG_BLOCK, 1, "block")
        return cls(BlockHeader.from_wire(header), txs)


def commit_vote_bytes(view: int, height: int, proposal_digest: bytes, member: int) -> bytes:
    """Bytes a member signs to commit a proposal; a certificate carries these signatures."""
    return encode([TAG_COMMIT_VOTE, view, height, proposal_digest, member])


@dataclass(frozen=True)
class CommitCertificate:
    view: int
    height: int
    proposal_digest: bytes
    votes: tuple[tuple[int, bytes], ...]  # (member index, signature), sorted by member

    def to_wire(self) -> list[Any]:
        votes = [[member, sig] for member, sig in self.votes]
        return [TAG_CERT, self.view, self.height, self.proposal_digest, votes]

    @classmethod
    def from_wire(cls, value: Any) -> CommitCertificate:
        view, height, d, votes = expect_tagged(value, TAG_CERT, 4, "commit certificate")
        parsed = items_of(votes, _parse_vote, "votes", MAX_MEMBERS)
        strictly_increasing([member for member, _ in parsed], "votes")
        return cls(u64(view, "view"), u64(height, "height"), digest(d, "digest"), parsed)

    def encode(self) -> bytes:
        return encode(self.to_wire())

    @classmethod
    def decode(cls, data: bytes) -> CommitCertificate:
        return cls.from_wire(decode(data))


def _parse_vote(value: Any) -> tuple[int, bytes]:
    member, sig = expect_list(value, 2, "vote")
    return u64(member, "vote.member", MAX_MEMBERS - 1), blob(sig, "vote.signature", 1, 128)


VerifyFn = Callable[[int, bytes, bytes], bool]  # (member, message, signature) -> valid?


def member_verifier(
    suite: SignatureSuite, members: tuple[bytes, ...], chain_hash: bytes
) -> VerifyFn:
    """Verify members' signatures by index against their public keys, for one chain (as
    `consensus.signer.SuiteSigner` signs: the chain hash, then the message)."""

    def verify(member: int, message: bytes, signature: bytes) -> bool:
        if not 0 <= member < len(members):
            return False
        return suite.verify(members[member], chain_hash + message, signature)

    return verify


def check_certificate(
    suite: SignatureSuite,
    members: Collection[int],
    verify: VerifyFn,
    cert: CommitCertificate,
    proposal: Proposal,
) -> str | None:
    """None if `cert` proves `proposal` committed by a quorum of `members` (the roster
    indices of the block's epoch), else the reason it does not."""
    if cert.height != proposal.height:
        return "certificate height differs from the block's"
    if cert.proposal_digest != proposal.digest(suite):
        return "certificate digest differs from the block's proposal"
    signers = [member for member, _ in cert.votes]
    if len(set(signers)) != len(signers) or any(m not in members for m in signers):
        return "certificate names unknown or repeated members"
    if len(signers) < quorum_size(len(members)):
        return f"certificate has {len(signers)} votes, needs {quorum_size(len(members))}"
    for member, sig in cert.votes:
        vote = commit_vote_bytes(cert.view, cert.height, cert.proposal_digest, member)
        if not verify(member, vote, sig):
            return f"signature of member {member} is invalid"
    return None


def check_block_body(suite: SignatureSuite, block: Block) -> str | None:
    """None if the block's transactions match its header's root and count."""
    proposal = block.header.proposal
    if proposal.tx_count != len(block.txs):
        return "tx_count differs from the number of transactions"
    if compute_tx_root(suite, block.txs) != proposal.tx_root:
        return "tx_root differs from the transactions"
    return None
