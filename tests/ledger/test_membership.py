"""The membership rules: quorum-signed changes, scheduled at a checkpoint boundary."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.genesis import make_card
from ledger.membership import (
    Change,
    Epoch,
    MembershipError,
    apply_block,
    bare_membership,
    boundary,
    change_bytes,
    make_change,
    parse_change,
    schedule,
)
from tests.factories import SUITE, member_keys, signers

K, L = 4, 8
SIGNERS = signers(5)
KEYS = tuple(k.public_key for k in member_keys(5))
START = bare_membership(KEYS[:4])


def verify(index: int, message: bytes, signature: bytes) -> bool:
    return SIGNERS[0].verify(index, message, signature)


def card(seed: str = "joiner") -> dict[str, Any]:
    key = SUITE.keypair_from_seed(seed.encode())
    return make_card("ed25519", key, seed, "utility", "peer", "/ip4/10.0.0.9/tcp/1", "http://x")


def approved(ops: tuple[tuple[Any, ...], ...], by: range = range(3), epoch: int = 0) -> Change:
    SIGNERS[0].learn_members(KEYS)
    message = change_bytes(epoch, ops)
    return Change(epoch, ops, tuple((i, SIGNERS[i].sign(message)) for i in by))


def test_an_approved_addition_is_scheduled_after_the_boundary() -> None:
    m = schedule(START, approved((("add", card()),)), 5, K, L, verify, "ed25519")
    assert boundary(5, K, L) == 16  # the first multiple of K at or above 5 + L
    assert m.epoch == START.epoch and m.next == Epoch(1, 16, (0, 1, 2, 3, 4))
    assert m.at_height(16).epoch.number == 0 and m.at_height(17).epoch.number == 1
    assert m.keys[4] == bytes.fromhex(card()["card"]["public_key"])


def test_replacing_a_key_gives_a_new_index_and_retires_the_old_one() -> None:
    m = schedule(START, approved((("replace", KEYS[1], card()),)), 1, K, L, verify, "ed25519")
    assert m.next is not None and m.next.active == (0, 2, 3, 4)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (approved((("remove", KEYS[3]),), by=range(2)), "2 of 3 needed"),
        (approved((("remove", KEYS[3]),), epoch=1), "signed for epoch 1"),
        (approved((("remove", KEYS[4]),)), "not a current member"),
        (approved((("add", card()), ("add", card()))), "already admitted"),
        (approved((("promote", KEYS[0]),)), "expected one of"),
        (approved(tuple(("remove", k) for k in KEYS[:4])), "no member"),
    ],
)
def test_a_refused_change_says_why(change: Change, expected: str) -> None:
    with pytest.raises(MembershipError, match=expected):
        schedule(START, change, 1, K, L, verify, "ed25519")


def test_a_forged_approval_and_an_outsider_are_refused() -> None:
    good = approved((("remove", KEYS[3]),))
    forged = Change(0, good.ops, (*good.approvals[:2], (2, b"\x00" * 64)))
    with pytest.raises(MembershipError, match="member 2 is invalid"):
        schedule(START, forged, 1, K, L, verify, "ed25519")
    outsider = approved((("remove", KEYS[3]),), by=range(2, 5))
    with pytest.raises(MembershipError, match=r"\[4\] are not members"):
        schedule(START, outsider, 1, K, L, verify, "ed25519")


def test_one_change_per_epoch_and_none_replayed_later() -> None:
    first = approved((("remove", KEYS[3]),))
    m, outcomes = apply_block(
        START, 2, [("membership", first.encoded()), ("membership", first.encoded())],
        K, L, verify, "ed25519",
    )  # fmt: skip
    assert outcomes[0] is None and "already scheduled" in (outcomes[1] or "")
    later = m.at_height(boundary(2, K, L) + 1)
    assert later.epoch.active == (0, 1, 2)
    with pytest.raises(MembershipError, match="signed for epoch 0"):
        schedule(later, first, 20, K, L, verify, "ed25519")


def test_payloads_round_trip_and_garbage_is_refused() -> None:
    change = approved((("add", card()),))
    payload = make_change(change.epoch, change.ops, change.approvals)
    assert parse_change(payload) == change
    for bad in (b"", b"\xc1", make_change(0, (), change.approvals)):
        with pytest.raises(MembershipError):
            parse_change(bad)
    _, outcomes = apply_block(START, 1, [("membership", b"junk")], K, L, verify, "ed25519")
    assert outcomes and "msgpack" in (outcomes[0] or "")
