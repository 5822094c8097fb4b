"""Client transactions and the codec of lists of them.

Lists of transactions travel in HTTP batches, forwarded frames, pre-prepares and
blocks; a node sees each transaction in several of them. Two habits keep that cheap:

- a transaction keeps the exact bytes it was decoded from as its encoding, and a
  list that holds transactions is encoded by joining those bytes (msgpack lists are
  a header followed by their items' encodings), so nothing is re-encoded;
- a bounded intern table maps the bytes of each transaction already decoded to the
  object, so a backup that received a transaction by forwarding does not parse it
  again inside the pre-prepare. The table is a cache: equal bytes give equal
  transactions, so results are identical with or without it.

Decoding stays strict: every decoder here re-encodes what it parsed and refuses bytes
that differ, as `ledger.encoding.decode` does.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

import msgpack

from ledger.crypto import SignatureSuite
from ledger.encoding import encode, packb, refuse_ext
from ledger.errors import InvalidEncoding
from ledger.merkle import compute_root
from ledger.wire import blob, expect_tagged, text, u64

TAG_TX = 1
MAX_PAYLOAD_BYTES = 64 * 1024
TX_DOMAIN = "metroledger/tx/v2"  # v2: chain-bound
_SIGNING_HEAD = b"\x96" + msgpack.packb(TX_DOMAIN)  # a 6-item array, then the domain
CHAIN_TAG_BYTES = 8  # `chain_tag`: the chain hash's first bytes
INTERN_SIZE = 50_000  # about 20 s of transactions at 2,500 tx/s
T = TypeVar("T")


@dataclass(frozen=True)
class Transaction:
    """A client's signed request; (sender, seq) identifies it for replay protection.

    `chain` is the tag of the chain it was signed for (the chain hash's first 8 bytes),
    so a node can name a transaction from another network; the signature covers the
    whole chain hash, so the tag alone cannot move a transaction between networks."""

    sender: bytes
    seq: int
    kind: str
    payload: bytes
    signature: bytes
    chain: bytes

    @cached_property
    def key(self) -> tuple[bytes, int]:
        """Kept once built: the mempool, proposals and commits each ask for it."""
        return (self.sender, self.seq)

    def signing_bytes(self, chain_hash: bytes) -> bytes:
        """The chain hash, then [TX_DOMAIN, chain tag, sender, seq, kind, payload]."""
        raw: bytes | None = self.__dict__.get("encoded_bytes")
        if raw is not None and len(self.signature) == 64:
            # The encoding is [TAG_TX, chain, sender, seq, kind, payload, signature]: the
            # signed list shares its middle bytes, so cut them out instead of packing
            # again (a verification's main cost after the crypto). Skipped: the 1-byte
            # array header, TAG_TX and the 66-byte signature.
            return chain_hash + _SIGNING_HEAD + raw[2:-66]
        fields = [TX_DOMAIN, self.chain, self.sender, self.seq, self.kind, self.payload]
        if _typed(self):  # decoded or signed with checked types: msgpack is canonical here
            return chain_hash + packb(fields)
        return chain_hash + encode(fields)  # raises for our own misuse (floats, ...)

    def to_wire(self) -> list[Any]:
        return [TAG_TX, self.chain, self.sender, self.seq, self.kind, self.payload,
                self.signature]  # fmt: skip

    @classmethod
    def from_wire(cls, value: Any) -> Transaction:
        chain, sender, seq, kind, payload, sig = expect_tagged(value, TAG_TX, 6, "transaction")
        return cls(
            blob(sender, "tx.sender", 32, 65),
            u64(seq, "tx.seq"),
            text(kind, "tx.kind", 32),
            blob(payload, "tx.payload", 0, MAX_PAYLOAD_BYTES),
            blob(sig, "tx.signature", 64, 64),
            blob(chain, "tx.chain", CHAIN_TAG_BYTES, CHAIN_TAG_BYTES),
        )

    @cached_property
    def encoded_bytes(self) -> bytes:
        """Canonical encoding, computed once (hashing and Merkle roots reuse it)."""
        return encode(self.to_wire())

    def encoded(self) -> bytes:
        return self.encoded_bytes


def _typed(tx: Transaction) -> bool:
    return (
        type(tx.sender) is bytes
        and type(tx.chain) is bytes
        and type(tx.seq) is int
        and 0 <= tx.seq < 1 << 64
        and type(tx.kind) is str
        and type(tx.payload) is bytes
    )


def chain_tag(chain_hash: bytes) -> bytes:
    """What a transaction or consensus frame carries of its chain's hash (its name)."""
    return chain_hash[:CHAIN_TAG_BYTES]


def sign_transaction(
    suite: SignatureSuite,
    secret_key: bytes,
    public_key: bytes,
    seq: int,
    kind: str,
    payload: bytes,
    chain_hash: bytes,
) -> Transaction:
    """A transaction signed for the chain whose hash is `chain_hash`."""
    tag = chain_tag(chain_hash)
    unsigned = Transaction(public_key, seq, kind, payload, b"", tag)
    signature = suite.sign(secret_key, unsigned.signing_bytes(chain_hash))
    return Transaction(public_key, seq, kind, payload, signature, tag)


def is_valid_tx_signature(suite: SignatureSuite, tx: Transaction, chain_hash: bytes) -> bool:
    """Signed by its sender for this chain (a transaction of another chain is not)."""
    if tx.chain != chain_tag(chain_hash):
        return False
    return suite.verify(tx.sender, tx.signing_bytes(chain_hash), tx.signature)


def compute_tx_hash(suite: SignatureSuite, tx: Transaction) -> bytes:
    """H(encoding), kept beside the fields (as cached_property keeps the encoding): a
    node asks for it at admission, in the signature cache, in proposals and at commit."""
    cached: bytes | None = tx.__dict__.get(suite.name)
    if cached is None:
        cached = tx.__dict__[suite.name] = suite.hash(tx.encoded_bytes)
    return cached


def compute_tx_root(suite: SignatureSuite, txs: tuple[Transaction, ...]) -> bytes:
    return compute_root(suite.hash, [tx.encoded() for tx in txs])


# ---- lists of transactions ------------------------------------------------------------

# An OrderedDict, not a dict: a dict whose oldest entries are deleted one by one makes
# `next(iter(d))` skip every deleted slot until the next resize (10 us per eviction at
# 50,000 entries against 0.5 us here).
_INTERN: OrderedDict[bytes, Transaction] = OrderedDict()


def tx_from_bytes(raw: bytes) -> Transaction:
    """The transaction whose canonical encoding is exactly `raw`, else InvalidEncoding."""
    tx = _INTERN.get(raw)
    if tx is not None:
        return tx
    try:
        wire = msgpack.unpackb(raw, raw=False, strict_map_key=True, ext_hook=refuse_ext)
    except InvalidEncoding:
        raise
    except Exception as exc:  # msgpack raises many types for bad bytes
        raise InvalidEncoding(f"transaction: {type(exc).__name__}") from None
    tx = Transaction.from_wire(wire)  # strict types: no floats, no maps
    if packb(wire) != raw:
        raise InvalidEncoding("transaction: not the canonical encoding")
    tx.__dict__["encoded_bytes"] = raw  # what the cached_properties would compute (their
    tx.__dict__["key"] = (tx.sender, tx.seq)  # first access takes a lock in 3.11)
    _INTERN[raw] = tx
    if len(_INTERN) > INTERN_SIZE:
        _INTERN.popitem(last=False)  # oldest first
    return tx


def decode_tx_list(data: bytes, max_txs: int) -> tuple[Transaction, ...]:
    """Transactions from the canonical encoding of a list of them, keeping each one's
    bytes as its encoding. InvalidEncoding for anything that is not exactly that."""

    def read(unpacker: msgpack.Unpacker, data: bytes) -> tuple[Transaction, ...]:
        return _read_txs(unpacker, data, max_txs, "transaction list")

    txs: tuple[Transaction, ...] = _decode_strictly(data, "transaction list", read, encode_tx_list)
    return txs


def decode_with_tx_list(
    data: bytes, n_items: int, tx_item: int, max_txs: int, what: str
) -> list[Any]:
    """The items of the canonical encoding of a list of `n_items` whose item `tx_item` is a
    list of transactions (returned as a tuple of Transaction; other items as decoded
    values, for the caller's from_wire). InvalidEncoding unless `data` is exactly the
    encoding of what was decoded (see `encode_with_tx_list`)."""

    def read(unpacker: msgpack.Unpacker, data: bytes) -> list[Any]:
        if unpacker.read_array_header() != n_items:
            raise InvalidEncoding(f"{what}: expected a list of {n_items} items")
        return [
            _read_txs(unpacker, data, max_txs, what) if i == tx_item else unpacker.unpack()
            for i in range(n_items)
        ]

    items: list[Any] = _decode_strictly(
        data, what, read, lambda items: encode_with_tx_list(items, tx_item)
    )
    return items


def _decode_strictly(
    data: bytes,
    what: str,
    read: Callable[[msgpack.Unpacker, bytes], T],
    encode_again: Callable[[T], bytes],
) -> T:
    data = bytes(data)
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, ext_hook=refuse_ext)
    unpacker.feed(data)
    try:
        value = read(unpacker, data)
        if unpacker.tell() != len(data):
            raise InvalidEncoding(f"{what}: trailing bytes")
        if encode_again(value) != data:
            raise InvalidEncoding(f"{what}: not the canonical encoding")
    except InvalidEncoding:
        raise
    except Exception as exc:  # msgpack (and encode, for floats or big ints) raise many types
        raise InvalidEncoding(f"{what}: {type(exc).__name__}") from None
    return value


def _read_txs(
    unpacker: msgpack.Unpacker, data: bytes, max_txs: int, what: str
) -> tuple[Transaction, ...]:
    count = unpacker.read_array_header()
    if not 0 <= count <= max_txs:
        raise InvalidEncoding(f"{what}: at most {max_txs} transactions")
    txs = []
    for _ in range(count):
        start = unpacker.tell()
        unpacker.skip()
        txs.append(tx_from_bytes(data[start : unpacker.tell()]))
    return tuple(txs)


def encode_with_tx_list(items: Sequence[Any], tx_item: int) -> bytes:
    """The canonical encoding of `items`, whose item `tx_item` is a sequence of
    transactions, joined from their own encodings instead of re-encoding them."""
    parts = [encode_tx_list(item) if i == tx_item else encode(item) for i, item in enumerate(items)]
    return join_encoded(parts)


def encode_tx_list(txs: Iterable[Transaction]) -> bytes:
    """The canonical encoding of a list of transactions (what decode_tx_list reads),
    joined from their own encodings."""
    return join_encoded([tx.encoded() for tx in txs])


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
