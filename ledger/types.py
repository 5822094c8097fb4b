"""Transactions, proposals, blocks and commit certificates.

Consensus agrees on a `Proposal` (a batch header whose `tx_root` commits to the
transactions). The committed `Block` adds `prev_hash`, the hash of the block
below it, when it is delivered in order: several proposals are in flight at
once, so a proposal cannot name its parent. A `CommitCertificate` holds 2f+1
member signatures over (view, height, proposal digest).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import msgpack

from ledger.crypto import SignatureSuite
from ledger.encoding import decode, encode
from ledger.errors import InvalidEncoding
from ledger.merkle import compute_root
from ledger.quorum import quorum_size
from ledger.wire import (
    blob,
    digest,
    expect_list,
    expect_tagged,
    items_of,
    strictly_increasing,
    text,
    u64,
)

TAG_TX, TAG_PROPOSAL, TAG_HEADER, TAG_BLOCK, TAG_CERT = 1, 2, 3, 4, 5
TAG_COMMIT_VOTE = 13  # shared with consensus.messages.Commit
MAX_TXS_PER_BLOCK = 100_000
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_MEMBERS = 1024
ZERO_HASH = b"\x00" * 32


@dataclass(frozen=True)
class Transaction:
    """A client's signed request; (sender, seq) identifies it for replay protection."""

    sender: bytes
    seq: int
    kind: str
    payload: bytes
    signature: bytes

    @property
    def key(self) -> tuple[bytes, int]:
        return (self.sender, self.seq)

    def signing_bytes(self) -> bytes:
        return encode(["metroledger/tx/v1", self.sender, self.seq, self.kind, self.payload])

    def to_wire(self) -> list[Any]:
        return [TAG_TX, self.sender, self.seq, self.kind, self.payload, self.signature]

    @classmethod
    def from_wire(cls, value: Any) -> Transaction:
        sender, seq, kind, payload, sig = expect_tagged(value, TAG_TX, 5, "transaction")
        return cls(
            blob(sender, "tx.sender", 32, 65),
            u64(seq, "tx.seq"),
            text(kind, "tx.kind", 32),
            blob(payload, "tx.payload", 0, MAX_PAYLOAD_BYTES),
            blob(sig, "tx.signature", 64, 64),
        )

    @cached_property
    def encoded_bytes(self) -> bytes:
        """Canonical encoding, computed once (hashing and Merkle roots reuse it)."""
        return encode(self.to_wire())

    def encoded(self) -> bytes:
        return self.encoded_bytes


def sign_transaction(
    suite: SignatureSuite, secret_key: bytes, public_key: bytes, seq: int, kind: str, payload: bytes
) -> Transaction:
    unsigned = Transaction(public_key, seq, kind, payload, b"")
    signature = suite.sign(secret_key, unsigned.signing_bytes())
    return Transaction(public_key, seq, kind, payload, signature)


def is_valid_tx_signature(suite: SignatureSuite, tx: Transaction) -> bool:
    return suite.verify(tx.sender, tx.signing_bytes(), tx.signature)


def compute_tx_hash(suite: SignatureSuite, tx: Transaction) -> bytes:
    return suite.hash(tx.encoded())


def compute_tx_root(suite: SignatureSuite, txs: tuple[Transaction, ...]) -> bytes:
    return compute_root(suite.hash, [tx.encoded() for tx in txs])


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
        return encode(self.to_wire())

    @classmethod
    def decode(cls, data: bytes) -> Block:
        return cls.from_wire(decode(data))


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


def member_verifier(suite: SignatureSuite, members: tuple[bytes, ...]) -> VerifyFn:
    """Verify signatures of members by index against their public keys."""

    def verify(member: int, message: bytes, signature: bytes) -> bool:
        return 0 <= member < len(members) and suite.verify(members[member], message, signature)

    return verify


def check_certificate(
    suite: SignatureSuite,
    n_members: int,
    verify: VerifyFn,
    cert: CommitCertificate,
    proposal: Proposal,
) -> str | None:
    """None if `cert` proves `proposal` committed, else the reason it does not."""
    if cert.height != proposal.height:
        return "certificate height differs from the block's"
    if cert.proposal_digest != proposal.digest(suite):
        return "certificate digest differs from the block's proposal"
    signers = [member for member, _ in cert.votes]
    if len(set(signers)) != len(signers) or any(m >= n_members for m in signers):
        return "certificate names unknown or repeated members"
    if len(signers) < quorum_size(n_members):
        return f"certificate has {len(signers)} votes, needs {quorum_size(n_members)}"
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


def decode_tx_list(data: bytes, max_txs: int) -> tuple[Transaction, ...]:
    """Transactions from the canonical encoding of a list of them, keeping each one's
    bytes as its encoding (hashing then needs no re-encoding). InvalidEncoding for
    anything that is not exactly that."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, ext_hook=_no_ext)
    unpacker.feed(data)
    try:
        count = unpacker.read_array_header()
        if not 0 <= count <= max_txs:
            raise InvalidEncoding(f"transaction list: at most {max_txs} items")
        if array_header(count) != data[: unpacker.tell()]:
            raise InvalidEncoding("transaction list: not the canonical array header")
        txs = []
        for _ in range(count):
            start = unpacker.tell()
            wire = unpacker.unpack()
            raw = data[start : unpacker.tell()]
            tx = Transaction.from_wire(wire)  # strict types: no floats, no maps
            if msgpack.packb(wire, use_bin_type=True) != raw:
                raise InvalidEncoding("transaction: not the canonical encoding")
            tx.__dict__["encoded_bytes"] = bytes(raw)  # what cached_property would compute
            txs.append(tx)
        if unpacker.tell() != len(data):
            raise InvalidEncoding("transaction list: trailing bytes")
    except InvalidEncoding:
        raise
    except Exception as exc:  # msgpack raises many types for bad bytes
        raise InvalidEncoding(f"transaction list: {type(exc).__name__}") from None
    return tuple(txs)


def join_encoded(encoded: list[bytes]) -> bytes:
    """The canonical encoding of a list from its items' own encodings (no re-encoding)."""
    return array_header(len(encoded)) + b"".join(encoded)


def array_header(count: int) -> bytes:
    """The msgpack array header for `count` items (the shortest form, as packb writes)."""
    if count < 16:
        return bytes([0x90 | count])
    if count < 1 << 16:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")


def _no_ext(code: int, data: bytes) -> Any:
    raise InvalidEncoding(f"ext type {code} is not allowed")
