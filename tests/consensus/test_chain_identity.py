"""Signatures bind the chain: a member's vote or a client's transaction signed for
another network does not count here, even with the same keys (one organisation may be a
member of a provincial chain and of the main chain with one key)."""

from __future__ import annotations

import dataclasses

import pytest

from consensus.messages import Message
from consensus.reasons import Reason
from consensus.signer import SuiteSigner
from ledger.types import is_valid_tx_signature
from tests.consensus.harness import make_replica, receive, rejections, snapshot
from tests.factories import (
    CHAIN,
    SUITE,
    checkpoint,
    client_tx,
    commit,
    member_keys,
    pre_prepare,
    prepare,
    signed,
)

OTHER_CHAIN = b"\x0b" * 32
PP = pre_prepare(0, 1, (client_tx(),))


def for_other_chain(message: Message) -> Message:
    """The same message, signed by the same member key for another network."""
    keys = member_keys(4)
    members = tuple(k.public_key for k in keys)
    signer = SuiteSigner(SUITE, members, keys[message.sender].secret_key, OTHER_CHAIN)
    return signed(signer, message)


@pytest.mark.parametrize(
    "peer, message",
    [(0, PP), (2, prepare(PP, 2)), (3, commit(PP, 3)), (2, checkpoint(4, b"\x01" * 32, 2))],
)
def test_a_vote_signed_for_another_chain_is_refused_and_changes_nothing(
    peer: int, message: Message
) -> None:
    r = make_replica(1)
    before = snapshot(r)
    assert rejections(receive(r, peer, for_other_chain(message))) == [Reason.BAD_SIGNATURE]
    assert snapshot(r) == before


def test_the_same_votes_signed_for_this_chain_are_taken() -> None:
    r = make_replica(1)
    assert rejections(receive(r, 0, PP)) == []
    assert rejections(receive(r, 2, prepare(PP, 2))) == []


def test_a_proposal_carrying_another_chains_transaction_is_refused() -> None:
    foreign = client_tx(5, 1, chain=OTHER_CHAIN)
    assert not is_valid_tx_signature(SUITE, foreign, CHAIN)
    retagged = dataclasses.replace(foreign, chain=CHAIN[:8])  # the tag alone moves nothing
    assert not is_valid_tx_signature(SUITE, retagged, CHAIN)
    r = make_replica(1)
    assert rejections(receive(r, 0, pre_prepare(0, 1, (foreign,)))) == [Reason.BAD_PROPOSAL]
