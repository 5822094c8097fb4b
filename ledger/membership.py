"""Membership as ledger state: epochs, changed by quorum-signed transactions.

A change is a transaction of kind `membership` whose payload holds operations (add a
member from its self-signed card, remove a member, replace a member's key with a new
card; change the device registry's authority and manufacturer lists, which
`analysis.device_lists` applies) and the signatures of a quorum of the current epoch's
members over `chain hash ‖ [CHANGE_DOMAIN, epoch, ops]` (the epoch number stops a change from being
replayed later). One change per epoch: while one is scheduled, others are refused.

Included at height h, a change takes effect after the checkpoint boundary
B = the first multiple of K at or above h + L. A replica accepts sequence numbers at
most L above what it has delivered, so every number anyone could have accepted before
delivering h is below h + L: blocks up to B belong to the old epoch and blocks after B
to the new one, at every replica, whatever it had in flight.

Members have permanent roster indices (cards are appended, an index is never reused; a
replaced key gets a new index), so a message's sender means one key for ever and an
epoch is just the set of active indices. Everything here is pure and deterministic: the
replica, the executor and the offline receipt verifier run the same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from ledger.encoding import decode, encode
from ledger.errors import InvalidEncoding
from ledger.genesis import GenesisError, check_card
from ledger.quorum import quorum_size
from ledger.verification import InvalidRecord, parse_rules

KIND_MEMBERSHIP = "membership"
CHANGE_DOMAIN = "metroledger/membership/v1"
OPS = ("add", "remove", "replace")
# the device registry's lists (analysis.device_lists): no effect on who votes
LIST_OPS = ("authority_add", "authority_remove", "manufacturer_add", "manufacturer_remove")
RULES_OP = "verification_rules"  # the Validity contract's rules (analysis.verification)
MAX_KEY_BYTES = 128
MAX_OPS = 16
VerifyFn = Callable[[int, bytes, bytes], bool]  # (roster index, message, signature)


class MembershipError(ValueError):
    """A membership change is unusable or not allowed now; the message says why."""


@dataclass(frozen=True)
class Epoch:
    number: int
    start_height: int  # its first block is start_height + 1
    active: tuple[int, ...]  # roster indices of its members, ascending


@dataclass(frozen=True)
class Membership:
    keys: tuple[bytes, ...]  # the roster: the public key of every index ever admitted
    cards: tuple[dict[str, Any], ...]  # the card of each index (peer id, addresses, role)
    epoch: Epoch  # the epoch of the last block applied
    next: Epoch | None = None  # scheduled: starts after next.start_height

    def at_height(self, height: int) -> Membership:
        """The membership that governs block `height` (entering a scheduled epoch)."""
        if self.next is not None and height > self.next.start_height:
            return replace(self, epoch=self.next, next=None)
        return self

    def member_keys(self, epoch: Epoch | None = None) -> tuple[bytes, ...]:
        return tuple(self.keys[i] for i in (epoch or self.epoch).active)


@dataclass(frozen=True)
class Change:
    epoch: int
    ops: tuple[tuple[Any, ...], ...]
    approvals: tuple[tuple[int, bytes], ...]  # (roster index, signature)

    def signing_bytes(self) -> bytes:
        return change_bytes(self.epoch, self.ops)

    def encoded(self) -> bytes:
        return encode([CHANGE_DOMAIN, self.epoch, [list(op) for op in self.ops],
                       [list(a) for a in self.approvals]])  # fmt: skip


def genesis_membership(cards: Iterable[dict[str, Any]]) -> Membership:
    """Epoch 0: every genesis member, in the genesis file's order."""
    cards = tuple(cards)
    keys = tuple(bytes.fromhex(c["public_key"]) for c in cards)
    return Membership(keys, cards, Epoch(0, 0, tuple(range(len(keys)))))


def bare_membership(keys: tuple[bytes, ...]) -> Membership:
    """Epoch 0 of members known by key alone (the simulator, tests)."""
    cards = tuple({"public_key": k.hex()} for k in keys)
    return Membership(keys, cards, Epoch(0, 0, tuple(range(len(keys)))))


def change_bytes(epoch: int, ops: tuple[tuple[Any, ...], ...]) -> bytes:
    """What each approving member signs (its signer prefixes the chain hash)."""
    return encode([CHANGE_DOMAIN, epoch, [list(op) for op in ops]])


def boundary(height: int, interval: int, window: int) -> int:
    """B: the last block of the old epoch for a change included at `height`."""
    return -(-(height + window) // interval) * interval


def parse_change(payload: bytes) -> Change:
    """The change in a transaction's payload (MembershipError if malformed)."""
    try:
        value = decode(payload)
    except InvalidEncoding as exc:
        raise MembershipError(f"payload is not canonical msgpack: {exc}") from None
    if not (isinstance(value, list) and len(value) == 4 and value[0] == CHANGE_DOMAIN):
        raise MembershipError(f"expected [{CHANGE_DOMAIN!r}, epoch, ops, approvals]")
    _, epoch, ops, approvals = value
    if type(epoch) is not int or epoch < 0:
        raise MembershipError("epoch: expected a non-negative integer")
    if not isinstance(ops, list) or not 1 <= len(ops) <= MAX_OPS:
        raise MembershipError(f"ops: expected 1..{MAX_OPS} operations")
    if not isinstance(approvals, list) or not approvals:
        raise MembershipError("approvals: expected [[index, signature], ...]")
    for a in approvals:
        if not (isinstance(a, list) and len(a) == 2 and type(a[0]) is int
                and isinstance(a[1], bytes)):  # fmt: skip
            raise MembershipError("approvals: expected [[index, signature], ...]")
    return Change(epoch, tuple(tuple(op) if isinstance(op, list) else (op,) for op in ops),
                  tuple((a[0], a[1]) for a in approvals))  # fmt: skip


def schedule(
    m: Membership,
    change: Change,
    height: int,
    interval: int,
    window: int,
    verify: VerifyFn,
    suite_name: str,
) -> Membership:
    """`m` with `change`, included at `height`, scheduled; MembershipError if refused."""
    m = m.at_height(height)
    if change.epoch != m.epoch.number:
        raise MembershipError(f"signed for epoch {change.epoch}; the current epoch is "
                              f"{m.epoch.number}")  # fmt: skip
    if m.next is not None:
        raise MembershipError(f"a change is already scheduled after block {m.next.start_height}")
    _check_approvals(m, change, verify)
    keys, cards, active = list(m.keys), list(m.cards), set(m.epoch.active)
    for op in change.ops:
        _apply_op(op, keys, cards, active, suite_name)
    if not active:
        raise MembershipError("the change would leave no member")
    start = boundary(height, interval, window)
    upcoming = Epoch(m.epoch.number + 1, start, tuple(sorted(active)))
    return Membership(tuple(keys), tuple(cards), m.epoch, upcoming)


def apply_block(
    m: Membership,
    height: int,
    txs: Iterable[tuple[str, bytes]],
    interval: int,
    window: int,
    verify: VerifyFn,
    suite_name: str,
) -> tuple[Membership, list[str | None]]:
    """Membership after block `height` of (kind, payload) transactions, and per membership
    transaction the reason it was refused (None: scheduled)."""
    m = m.at_height(height)
    outcomes: list[str | None] = []
    for kind, payload in txs:
        if kind != KIND_MEMBERSHIP:
            continue
        try:
            m = schedule(m, parse_change(payload), height, interval, window, verify, suite_name)
            outcomes.append(None)
        except MembershipError as exc:
            outcomes.append(str(exc))
    return m, outcomes


def _check_approvals(m: Membership, change: Change, verify: VerifyFn) -> None:
    signers = [index for index, _ in change.approvals]
    if len(set(signers)) != len(signers):
        raise MembershipError("approvals: a member approves twice")
    outsiders = [i for i in signers if i not in m.epoch.active]
    if outsiders:
        raise MembershipError(f"approvals: {outsiders} are not members of epoch {m.epoch.number}")
    needed = quorum_size(len(m.epoch.active))
    if len(signers) < needed:
        raise MembershipError(f"approvals: {len(signers)} of {needed} needed")
    message = change.signing_bytes()
    for index, signature in change.approvals:
        if not verify(index, message, signature):
            raise MembershipError(f"approvals: the signature of member {index} is invalid")


def _apply_op(
    op: tuple[Any, ...], keys: list[bytes], cards: list[dict[str, Any]], active: set[int],
    suite_name: str,
) -> None:  # fmt: skip
    name = op[0] if op else None
    if name == "add" and len(op) == 2:
        _admit(op[1], keys, cards, active, suite_name)
    elif name == "remove" and len(op) == 2:
        active.discard(_active_index(op[1], keys, active))
    elif name == "replace" and len(op) == 3:
        old = _active_index(op[1], keys, active)
        _admit(op[2], keys, cards, active, suite_name)
        active.discard(old)
    elif name == RULES_OP and len(op) == 2:
        try:
            parse_rules(op[1])
        except InvalidRecord as exc:
            raise MembershipError(f"ops: {RULES_OP}: {exc}") from None
    elif name in LIST_OPS and len(op) == 2:
        if not isinstance(op[1], bytes) or not 0 < len(op[1]) <= MAX_KEY_BYTES:
            raise MembershipError(f"ops: {name} needs a public key (bytes)")
    else:
        raise MembershipError(f"ops: expected one of {(*OPS, *LIST_OPS, RULES_OP)} with its args, "
                              f"got {op!r}")  # fmt: skip


def _admit(
    doc: Any, keys: list[bytes], cards: list[dict[str, Any]], active: set[int], suite_name: str
) -> None:
    try:
        card = check_card(doc, "ops.card")
    except GenesisError as exc:
        raise MembershipError(str(exc)) from None
    if card["suite"] != suite_name:
        raise MembershipError(f"ops.card: suite {card['suite']} differs from the chain's")
    key = bytes.fromhex(card["public_key"])
    if key in keys:
        raise MembershipError(f"ops.card: key {key.hex()[:16]}... was already admitted once")
    keys.append(key)
    cards.append(card)
    active.add(len(keys) - 1)


def _active_index(key: Any, keys: list[bytes], active: set[int]) -> int:
    if not isinstance(key, bytes) or key not in keys or keys.index(key) not in active:
        shown = key.hex()[:16] if isinstance(key, bytes) else repr(key)
        raise MembershipError(f"ops: {shown}... is not a current member")
    return keys.index(key)


def make_change(
    epoch: int, ops: tuple[tuple[Any, ...], ...], approvals: tuple[tuple[int, bytes], ...]
) -> bytes:
    """The payload of a membership transaction."""
    return Change(epoch, ops, approvals).encoded()
