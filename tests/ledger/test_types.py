"""Transactions, blocks and certificates: round trips and certificate checks."""

import contextlib
import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.encoding import decode, encode
from ledger.errors import InvalidEncoding
from ledger.types import (
    Block,
    CommitCertificate,
    Transaction,
    check_block_body,
    check_certificate,
    is_valid_tx_signature,
    member_verifier,
)
from tests.factories import CHAIN, SUITE, client_tx, member_keys, sample_block

MEMBERS = tuple(k.public_key for k in member_keys(4))
VERIFY = member_verifier(SUITE, MEMBERS, CHAIN)


def test_transaction_round_trip_and_signature() -> None:
    tx = client_tx(3, 7, b"payload")
    assert Transaction.from_wire(decode(tx.encoded())) == tx
    assert is_valid_tx_signature(SUITE, tx, CHAIN)
    assert not is_valid_tx_signature(SUITE, dataclasses.replace(tx, seq=8), CHAIN)


def test_block_and_certificate_round_trip() -> None:
    block, cert = sample_block()
    assert Block.decode(block.encode()) == block
    assert CommitCertificate.decode(cert.encode()) == cert


def test_valid_certificate_passes() -> None:
    block, cert = sample_block()
    assert check_certificate(SUITE, range(4), VERIFY, cert, block.header.proposal) is None
    assert check_block_body(SUITE, block) is None


def test_certificate_with_too_few_votes_fails() -> None:
    block, cert = sample_block()
    short = dataclasses.replace(cert, votes=cert.votes[:2])
    assert "needs 3" in (
        check_certificate(SUITE, range(4), VERIFY, short, block.header.proposal) or ""
    )


def test_certificate_with_forged_vote_fails() -> None:
    block, cert = sample_block()
    member, _sig = cert.votes[1]
    forged = dataclasses.replace(cert, votes=(cert.votes[0], (member, bytes(64)), cert.votes[2]))
    reason = check_certificate(SUITE, range(4), VERIFY, forged, block.header.proposal)
    assert reason == f"signature of member {member} is invalid"


def test_certificate_for_another_block_fails() -> None:
    _block, cert = sample_block()
    other, _ = sample_block(height=1, n_txs=2)
    assert check_certificate(SUITE, range(4), VERIFY, cert, other.header.proposal) is not None


def test_block_body_that_lost_a_tx_fails() -> None:
    block, _ = sample_block()
    assert check_block_body(SUITE, dataclasses.replace(block, txs=block.txs[:-1])) is not None


def test_certificate_votes_must_be_sorted_and_unique() -> None:
    _, cert = sample_block()
    wire = cert.to_wire()
    wire[4] = [wire[4][1], wire[4][0], wire[4][2]]
    with pytest.raises(InvalidEncoding):
        CommitCertificate.decode(encode(wire))


def test_transaction_fields_are_validated() -> None:
    wire = client_tx().to_wire()
    bad_fields = [(1, b"7 bytes"), (2, b"short"), (3, -1), (3, True), (4, ""), (6, b"x" * 63)]
    for index, bad in bad_fields:
        broken = list(wire)
        broken[index] = bad
        with pytest.raises(InvalidEncoding):
            Transaction.from_wire(broken)


def test_decode_tx_list_keeps_each_encoding_and_refuses_anything_else() -> None:
    import msgpack

    from ledger.types import array_header, decode_tx_list, join_encoded

    txs = [client_tx(i, 1) for i in range(20)]
    data = join_encoded([tx.encoded() for tx in txs])
    assert data == encode([tx.to_wire() for tx in txs])
    decoded = decode_tx_list(data, 100)
    assert decoded == tuple(txs)
    assert [t.encoded() for t in decoded] == [t.encoded() for t in txs]
    bad = [
        data + b"\x00",  # trailing bytes
        b"\xdc\x00\x01" + txs[0].encoded(),  # array header not in its shortest form
        array_header(1) + msgpack.packb([1, txs[0].sender, 1.0, "k", b"", b"\x00" * 64]),
        array_header(1) + b"\xc1",
        array_header(2) + txs[0].encoded(),  # fewer items than announced
    ]
    for raw in bad:
        with pytest.raises(InvalidEncoding):
            decode_tx_list(raw, 100)
    with pytest.raises(InvalidEncoding, match="at most"):
        decode_tx_list(data, 5)


@given(st.binary(max_size=300))
def test_decode_tx_list_on_arbitrary_bytes_only_raises_invalid_encoding(data: bytes) -> None:
    from ledger.types import decode_tx_list

    with contextlib.suppress(InvalidEncoding):
        decode_tx_list(data, 10)


def test_signing_bytes_are_the_canonical_encoding_and_misuse_still_raises() -> None:
    tx = client_tx(5, 300, b"\x01" * 40)
    fields = ["metroledger/tx/v2", tx.chain, tx.sender, tx.seq, tx.kind, tx.payload]
    assert tx.signing_bytes(CHAIN) == CHAIN + encode(fields)
    with pytest.raises(TypeError):
        dataclasses.replace(tx, seq=1.5).signing_bytes(CHAIN)  # type: ignore[arg-type]


@given(
    seq=st.integers(0, 2**64 - 1),
    kind=st.text(min_size=1, max_size=32),
    payload=st.binary(max_size=70_000),
)
def test_signing_bytes_cut_from_the_encoding_equal_packed_ones(
    seq: int, kind: str, payload: bytes
) -> None:
    from ledger.tx import tx_from_bytes

    if len(kind.encode()) > 32 or len(payload) > 64 * 1024:
        return
    tx = Transaction(b"\x07" * 32, seq, kind, payload, b"\x09" * 64, CHAIN[:8])
    fields = ["metroledger/tx/v2", tx.chain, tx.sender, tx.seq, tx.kind, tx.payload]
    assert "encoded_bytes" not in tx.__dict__
    assert tx.signing_bytes(CHAIN) == CHAIN + encode(fields)  # packed: no encoding cached yet
    decoded = tx_from_bytes(tx.encoded())
    assert decoded.signing_bytes(CHAIN) == CHAIN + encode(fields)  # cut from the decoded bytes
