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
