"""Every incoming message passes the same ordered checks; each rejection is named
and leaves the protocol state unchanged."""

import dataclasses

import pytest

from consensus.events import Evidence, ViewChangeStarted
from consensus.messages import encode_message
from consensus.reasons import Reason
from tests.consensus.harness import make_replica, receive, rejections, snapshot
from tests.factories import checkpoint, client_tx, commit, pre_prepare, prepare

PP = pre_prepare(0, 1, (client_tx(),))


@pytest.mark.parametrize(
    "peer, data, reason",
    [
        (0, b"\xc1garbage", Reason.MALFORMED),
        (0, encode_message(PP)[:-3], Reason.MALFORMED),
        (7, encode_message(PP), Reason.NOT_MEMBER),
        (1, encode_message(PP), Reason.NOT_MEMBER),  # our own index from the outside
        (2, encode_message(PP), Reason.SENDER_MISMATCH),
        (0, encode_message(dataclasses.replace(PP, signature=bytes(64))), Reason.BAD_SIGNATURE),
        (0, encode_message(dataclasses.replace(PP, view=1)), Reason.BAD_SIGNATURE),
        (2, encode_message(pre_prepare(0, 1, sender=2)), Reason.NOT_PRIMARY),
        (0, encode_message(pre_prepare(0, 9)), Reason.OUTSIDE_WINDOW),
        (2, encode_message(prepare(pre_prepare(0, 0), 2)), Reason.STALE),
        (0, encode_message(prepare(PP, 0)), Reason.UNEXPECTED),
        (3, encode_message(checkpoint(3, b"\x01" * 32, 3)), Reason.UNEXPECTED),
    ],
)
def test_bad_input_is_rejected_with_its_reason_and_changes_nothing(
    peer: int, data: bytes, reason: Reason
) -> None:
    r = make_replica(1)
    before = snapshot(r)
    assert rejections(receive(r, peer, data)) == [reason]
    assert snapshot(r) == before


def test_pre_prepare_whose_digest_lies_is_a_bad_proposal() -> None:
    r = make_replica(1)
    pp = pre_prepare(0, 1, (client_tx(),))
    lying = dataclasses.replace(pp, txs=(client_tx(5),))  # signature covers digest, not txs
    assert rejections(receive(r, 0, lying)) == [Reason.BAD_PROPOSAL]
    assert r.slots.get(1) is None or r.slots[1].pre_prepare is None


def test_old_view_is_dropped_and_future_view_is_buffered() -> None:
    r = make_replica(1)
    r.view = 2
    assert rejections(receive(r, 0, pre_prepare(0, 1))) == [Reason.OLD_VIEW]
    assert rejections(receive(r, 3, pre_prepare(3, 1))) == []
    assert len(r.buffer) == 1


def test_buffer_is_bounded() -> None:
    r = make_replica(1, max_buffered_messages=2)
    for seq in (1, 2):
        receive(r, 1 + 1, prepare(pre_prepare(5, seq), 2))
    assert rejections(receive(r, 2, prepare(pre_prepare(5, 3), 2))) == [Reason.BUFFER_FULL]


def test_duplicate_prepare_is_ignored() -> None:
    r = make_replica(1)
    receive(r, 2, prepare(PP, 2))
    before = snapshot(r)
    assert rejections(receive(r, 2, prepare(PP, 2))) == [Reason.DUPLICATE]
    assert snapshot(r) == before


def test_conflicting_votes_are_kept_as_evidence() -> None:
    r = make_replica(1)
    receive(r, 2, commit(PP, 2))
    other = pre_prepare(0, 1, (client_tx(9),))
    actions = receive(r, 2, commit(other, 2))
    assert rejections(actions) == [Reason.CONFLICTING]
    (evidence,) = [a for a in actions if isinstance(a, Evidence)]
    assert evidence.member == 2 and evidence.first.digest != evidence.second.digest  # type: ignore[union-attr]
    assert r.evidence == [evidence]


def test_equivocating_primary_is_replaced() -> None:
    r = make_replica(1)
    receive(r, 0, PP)
    actions = receive(r, 0, pre_prepare(0, 1, (client_tx(),), timestamp_delta=1))
    assert Reason.CONFLICTING in rejections(actions)
    assert any(isinstance(a, Evidence) for a in actions)
    assert [a.new_view for a in actions if isinstance(a, ViewChangeStarted)] == [1]
