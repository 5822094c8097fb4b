"""Consensus messages and their wire format.

Every message names its sender (a member index) and carries that member's
signature over `signing_bytes()`. Pre-prepares sign (view, seq, digest) only:
the transactions are bound to the digest through the proposal's tx_root.
`decode_message` turns any bytes into one of these types or InvalidEncoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.encoding import decode, encode
from ledger.errors import InvalidEncoding
from ledger.tx import decode_with_tx_list, encode_with_tx_list
from ledger.types import (
    MAX_MEMBERS,
    MAX_TXS_PER_BLOCK,
    TAG_COMMIT_VOTE,
    Block,
    CommitCertificate,
    Proposal,
    Transaction,
    array_header,
    commit_vote_bytes,
    join_encoded,
)
from ledger.wire import blob, digest, expect_list, expect_tagged, items_of, u64

TAG_PRE_PREPARE, TAG_PREPARE, TAG_COMMIT, TAG_CHECKPOINT = 11, 12, TAG_COMMIT_VOTE, 14
TAG_PREPARED_CERT, TAG_VIEW_CHANGE, TAG_NEW_VIEW = 15, 16, 17
TAG_BLOCK_REQUEST, TAG_BLOCK_RESPONSE = 18, 19
MAX_CERTS = 4096
MAX_BLOCKS_PER_RESPONSE = 256
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def _member(value: Any) -> int:
    return u64(value, "sender", MAX_MEMBERS - 1)


def _sig(value: Any) -> bytes:
    return blob(value, "signature", 0, 128)


@dataclass(frozen=True)
class PrePrepare:
    view: int
    seq: int
    digest: bytes
    proposal: Proposal
    txs: tuple[Transaction, ...]
    sender: int
    signature: bytes = b""

    def signing_bytes(self) -> bytes:
        return encode([TAG_PRE_PREPARE, self.view, self.seq, self.digest, self.sender])

    def to_wire(self) -> list[Any]:
        return self._items([tx.to_wire() for tx in self.txs])

    def _items(self, txs: Any) -> list[Any]:
        return [
            TAG_PRE_PREPARE, self.view, self.seq, self.digest, self.proposal.to_wire(), txs,
            self.sender, self.signature,
        ]  # fmt: skip

    @classmethod
    def from_wire(cls, value: Any) -> PrePrepare:
        fields = expect_tagged(value, TAG_PRE_PREPARE, 7, "pp")
        return cls._from_fields(
            fields, items_of(fields[4], Transaction.from_wire, "txs", MAX_TXS_PER_BLOCK)
        )

    @classmethod
    def _from_fields(cls, fields: list[Any], txs: tuple[Transaction, ...]) -> PrePrepare:
        view, seq, d, proposal, _, sender, sig = fields
        return cls(
            u64(view, "view"), u64(seq, "seq"), digest(d, "digest"), Proposal.from_wire(proposal),
            txs, _member(sender), _sig(sig),
        )  # fmt: skip

    def encoded(self) -> bytes:
        """The encoding, joined from the transactions' own bytes (see ledger.tx) and kept:
        a node sends it, and persists it in its prepared certificate."""
        cached: bytes | None = self.__dict__.get("_encoded")
        if cached is None:
            cached = self.__dict__["_encoded"] = encode_with_tx_list(self._items(self.txs), 5)
        return cached

    @classmethod
    def decode(cls, data: bytes) -> PrePrepare:
        """Decode a pre-prepare, parsing only transactions this process has not seen."""
        data = bytes(data)
        items = decode_with_tx_list(data, 8, 5, MAX_TXS_PER_BLOCK, "pre-prepare")
        pp = cls._from_fields(expect_tagged(items, TAG_PRE_PREPARE, 7, "pp"), items[5])
        pp.__dict__["_encoded"] = data  # decode_with_tx_list checked it is the encoding
        return pp


@dataclass(frozen=True)
class Prepare:
    view: int
    seq: int
    digest: bytes
    sender: int
    signature: bytes = b""

    def signing_bytes(self) -> bytes:
        return encode([TAG_PREPARE, self.view, self.seq, self.digest, self.sender])

    def to_wire(self) -> list[Any]:
        return [TAG_PREPARE, self.view, self.seq, self.digest, self.sender, self.signature]

    @classmethod
    def from_wire(cls, value: Any) -> Prepare:
        view, seq, d, sender, sig = expect_tagged(value, TAG_PREPARE, 5, "prepare")
        return cls(
            u64(view, "view"), u64(seq, "seq"), digest(d, "digest"), _member(sender), _sig(sig)
        )


@dataclass(frozen=True)
class Commit:
    view: int
    seq: int
    digest: bytes
    sender: int
    signature: bytes = b""

    def signing_bytes(self) -> bytes:
        return commit_vote_bytes(self.view, self.seq, self.digest, self.sender)

    def to_wire(self) -> list[Any]:
        return [TAG_COMMIT, self.view, self.seq, self.digest, self.sender, self.signature]

    @classmethod
    def from_wire(cls, value: Any) -> Commit:
        view, seq, d, sender, sig = expect_tagged(value, TAG_COMMIT, 5, "commit")
        return cls(
            u64(view, "view"), u64(seq, "seq"), digest(d, "digest"), _member(sender), _sig(sig)
        )


@dataclass(frozen=True)
class Checkpoint:
    """A member's claim that the block at `seq` has hash `block_hash` (the chain's state)."""

    seq: int
    block_hash: bytes
    sender: int
    signature: bytes = b""

    def signing_bytes(self) -> bytes:
        return encode([TAG_CHECKPOINT, self.seq, self.block_hash, self.sender])

    def to_wire(self) -> list[Any]:
        return [TAG_CHECKPOINT, self.seq, self.block_hash, self.sender, self.signature]

    @classmethod
    def from_wire(cls, value: Any) -> Checkpoint:
        seq, h, sender, sig = expect_tagged(value, TAG_CHECKPOINT, 4, "checkpoint")
        return cls(u64(seq, "seq"), digest(h, "block_hash"), _member(sender), _sig(sig))


@dataclass(frozen=True)
class PreparedCert:
    """A pre-prepare plus 2f matching prepares: proof that a proposal prepared."""

    pre_prepare: PrePrepare
    prepares: tuple[Prepare, ...]

    def to_wire(self) -> list[Any]:
        prepares = [p.to_wire() for p in self.prepares]
        return [TAG_PREPARED_CERT, self.pre_prepare.to_wire(), prepares]

    def encoded(self) -> bytes:
        prepares = encode([p.to_wire() for p in self.prepares])
        return join_encoded([encode(TAG_PREPARED_CERT), self.pre_prepare.encoded(), prepares])

    @classmethod
    def from_wire(cls, value: Any) -> PreparedCert:
        pp, prepares = expect_tagged(value, TAG_PREPARED_CERT, 2, "prepared cert")
        return cls(
            PrePrepare.from_wire(pp), items_of(prepares, Prepare.from_wire, "prepares", MAX_MEMBERS)
        )


@dataclass(frozen=True)
class ViewChange:
    new_view: int
    stable_seq: int
    stable_hash: bytes
    checkpoint_proof: tuple[Checkpoint, ...]
    prepared: tuple[PreparedCert, ...]
    sender: int
    signature: bytes = b""

    def signing_bytes(self) -> bytes:
        return encode(self.to_wire()[:-1])

    def to_wire(self) -> list[Any]:
        proof = [c.to_wire() for c in self.checkpoint_proof]
        prepared = [c.to_wire() for c in self.prepared]
        return [
            TAG_VIEW_CHANGE, self.new_view, self.stable_seq, self.stable_hash, proof, prepared,
            self.sender, self.signature,
        ]  # fmt: skip

    @classmethod
    def from_wire(cls, value: Any) -> ViewChange:
        view, seq, h, proof, prepared, sender, sig = expect_tagged(value, TAG_VIEW_CHANGE, 7, "vc")
        return cls(
            u64(view, "new_view"), u64(seq, "stable_seq"), digest(h, "stable_hash"),
            items_of(proof, Checkpoint.from_wire, "checkpoint_proof", MAX_MEMBERS),
            items_of(prepared, PreparedCert.from_wire, "prepared", MAX_CERTS),
            _member(sender), _sig(sig),
        )  # fmt: skip


@dataclass(frozen=True)
class NewView:
    view: int
    view_changes: tuple[ViewChange, ...]
    pre_prepares: tuple[PrePrepare, ...]
    sender: int
    signature: bytes = b""

    def signing_bytes(self) -> bytes:
        return encode(self.to_wire()[:-1])

    def to_wire(self) -> list[Any]:
        vcs = [vc.to_wire() for vc in self.view_changes]
        pps = [pp.to_wire() for pp in self.pre_prepares]
        return [TAG_NEW_VIEW, self.view, vcs, pps, self.sender, self.signature]

    @classmethod
    def from_wire(cls, value: Any) -> NewView:
        view, vcs, pps, sender, sig = expect_tagged(value, TAG_NEW_VIEW, 5, "new view")
        return cls(
            u64(view, "view"),
            items_of(vcs, ViewChange.from_wire, "view_changes", MAX_MEMBERS),
            items_of(pps, PrePrepare.from_wire, "pre_prepares", MAX_CERTS),
            _member(sender),
            _sig(sig),
        )


@dataclass(frozen=True)
class BlockRequest:
    """State transfer: ask a peer for committed blocks [from_height, to_height]."""

    from_height: int
    to_height: int
    sender: int
    signature: bytes = b""

    def signing_bytes(self) -> bytes:
        return encode(self.to_wire()[:-1])

    def to_wire(self) -> list[Any]:
        return [TAG_BLOCK_REQUEST, self.from_height, self.to_height, self.sender, self.signature]

    @classmethod
    def from_wire(cls, value: Any) -> BlockRequest:
        lo, hi, sender, sig = expect_tagged(value, TAG_BLOCK_REQUEST, 4, "block request")
        return cls(u64(lo, "from_height"), u64(hi, "to_height"), _member(sender), _sig(sig))


@dataclass(frozen=True)
class BlockResponse:
    """Committed blocks with their certificates; the certificates are the proof."""

    blocks: tuple[tuple[Block, CommitCertificate], ...]
    sender: int
    signature: bytes = b""

    def signing_bytes(self) -> bytes:
        return encode(self.to_wire()[:-1])

    def to_wire(self) -> list[Any]:
        blocks = [[block.to_wire(), cert.to_wire()] for block, cert in self.blocks]
        return [TAG_BLOCK_RESPONSE, blocks, self.sender, self.signature]

    @classmethod
    def from_wire(cls, value: Any) -> BlockResponse:
        blocks, sender, sig = expect_tagged(value, TAG_BLOCK_RESPONSE, 3, "block response")
        parsed = items_of(blocks, _parse_block_and_cert, "blocks", MAX_BLOCKS_PER_RESPONSE)
        return cls(parsed, _member(sender), _sig(sig))


def _parse_block_and_cert(value: Any) -> tuple[Block, CommitCertificate]:
    block, cert = expect_list(value, 2, "block and certificate")
    return Block.from_wire(block), CommitCertificate.from_wire(cert)


Message = (
    PrePrepare | Prepare | Commit | Checkpoint | ViewChange | NewView | BlockRequest | BlockResponse
)
_PARSERS: dict[int, Any] = {
    TAG_PRE_PREPARE: PrePrepare.from_wire,
    TAG_PREPARE: Prepare.from_wire,
    TAG_COMMIT: Commit.from_wire,
    TAG_CHECKPOINT: Checkpoint.from_wire,
    TAG_VIEW_CHANGE: ViewChange.from_wire,
    TAG_NEW_VIEW: NewView.from_wire,
    TAG_BLOCK_REQUEST: BlockRequest.from_wire,
    TAG_BLOCK_RESPONSE: BlockResponse.from_wire,
}


def encode_message(message: Message) -> bytes:
    if isinstance(message, PrePrepare):
        return message.encoded()  # the hot one: joined, not re-encoded
    return encode(message.to_wire())


_PRE_PREPARE_START = array_header(8) + encode(TAG_PRE_PREPARE)


def decode_message(data: bytes) -> Message:
    """Bytes from a peer -> a message, or InvalidEncoding (never another exception)."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise InvalidEncoding(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    if data[:2] == _PRE_PREPARE_START:
        return PrePrepare.decode(data)
    value = decode(data, MAX_MESSAGE_BYTES)
    if not isinstance(value, list) or not value:
        raise InvalidEncoding("message: expected a non-empty list")
    tag = value[0]
    parser = _PARSERS.get(tag) if isinstance(tag, int) and not isinstance(tag, bool) else None
    if parser is None:
        raise InvalidEncoding(f"message: unknown type tag {tag!r}")
    message: Message = parser(value)
    return message
