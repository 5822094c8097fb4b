"""Every consensus message round-trips; any other bytes give InvalidEncoding."""

import contextlib
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.messages import decode_message, encode_message
from ledger.encoding import encode
from ledger.errors import InvalidEncoding
from ledger.merkle import MerkleProof
from ledger.types import Block, CommitCertificate, Transaction
from tests.factories import every_message_kind

MESSAGES = every_message_kind()


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message: object) -> None:
    data = encode_message(message)  # type: ignore[arg-type]
    assert decode_message(data) == message
    assert encode_message(decode_message(data)) == data


def _must_be_valid_or_invalid_encoding(data: bytes) -> None:
    try:
        message = decode_message(data)
    except InvalidEncoding:
        return
    assert encode_message(message) == data


@given(st.binary(max_size=512))
def test_arbitrary_bytes(data: bytes) -> None:
    _must_be_valid_or_invalid_encoding(data)


wire_values = st.recursive(
    st.integers(-3, 2**64 - 1) | st.binary(max_size=40) | st.text(max_size=4) | st.none()
    | st.booleans(),
    lambda inner: st.lists(inner, max_size=9),
    max_leaves=40,
)  # fmt: skip


@given(
    st.sampled_from([11, 12, 13, 14, 15, 16, 17, 18, 19, 1, 2, 3, 4, 5, 20]),
    st.lists(wire_values, max_size=9),
)
def test_structured_garbage_with_valid_tags(tag: int, fields: list[object]) -> None:
    _must_be_valid_or_invalid_encoding(encode([tag, *fields]))


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_mutated_valid_messages(message: object) -> None:
    data = encode_message(message)  # type: ignore[arg-type]
    rng = random.Random(len(data))
    for _ in range(300):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        cut = rng.choice([len(buf), rng.randrange(len(buf) + 1)])
        _must_be_valid_or_invalid_encoding(bytes(buf[:cut]))


@given(st.binary(max_size=256))
def test_every_ledger_decoder_on_arbitrary_bytes(data: bytes) -> None:
    for parse in (Block.decode, CommitCertificate.decode):
        with contextlib.suppress(InvalidEncoding):
            parse(data)
    from ledger.encoding import decode

    for from_wire in (Transaction.from_wire, MerkleProof.from_wire):
        with contextlib.suppress(InvalidEncoding):
            from_wire(decode(data))


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_joined_encodings_equal_the_generic_encoder(message: object) -> None:
    """Pre-prepares and blocks are encoded by joining their transactions' bytes; the
    result must be exactly the canonical encoding of their wire form."""
    assert encode_message(message) == encode(message.to_wire())  # type: ignore[arg-type, attr-defined]


def test_block_encoding_is_the_canonical_one() -> None:
    from tests.factories import sample_block

    block, _ = sample_block()
    assert block.encode() == encode(block.to_wire())


def test_pre_prepare_decoding_reuses_known_transactions_and_stays_strict() -> None:
    from consensus.messages import PrePrepare

    pp = next(m for m in MESSAGES if isinstance(m, PrePrepare) and m.txs)
    data = encode_message(pp)
    first, second = decode_message(data), decode_message(data)
    assert isinstance(first, PrePrepare) and isinstance(second, PrePrepare)
    assert all(a is b for a, b in zip(first.txs, second.txs, strict=True))  # interned
    # The same pre-prepare with its first transaction's seq in a longer integer form:
    # equal values, different bytes. It must be refused although the tx is known.
    tx = pp.txs[0]
    assert tx.seq < 128
    long_seq = tx.encoded().replace(
        encode(tx.seq) + encode(tx.kind), b"\xcd" + tx.seq.to_bytes(2, "big") + encode(tx.kind), 1
    )
    assert long_seq != tx.encoded()
    with pytest.raises(InvalidEncoding):
        decode_message(data.replace(tx.encoded(), long_seq, 1))
