"""Membership changes as simulation events (`metroledger sim --reconfig`).

A run draws two or three changes: add a member (n -> n + 1), remove one (back to n;
half the time the Byzantine member when one is active), replace an honest member's key
(a new roster index, the old one leaves). Every epoch keeps its Byzantine members within
its f. Change k is signed by a quorum of epoch k's honest members and submitted as a
client request once an honest replica has entered epoch k; a replica for a new index
boots empty at that moment and must catch up by state transfer before its epoch.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from ledger.crypto import get_suite
from ledger.genesis import make_card
from ledger.membership import KIND_MEMBERSHIP, change_bytes, make_change
from ledger.quorum import max_faulty, quorum_size
from ledger.tx import chain_tag
from ledger.types import Transaction
from sim.fakes import SIM_CHAIN, MacSigner, client_signature

RECONFIG_KINDS = ("reconfig_add", "reconfig_remove", "reconfig_replace",
                  "reconfig_remove_byzantine")  # fmt: skip
COORDINATOR = b"sim-coordinator".ljust(32, b"\x00")


@dataclass(frozen=True)
class PlannedChange:
    kind: str  # add | remove | replace
    target: int  # the index removed or replaced (-1 for add)
    new_index: int  # the index admitted (-1 for remove)


def draw_changes(n: int, byzantine: set[int], rng: random.Random) -> tuple[PlannedChange, ...]:
    active, next_index, byz = set(range(n)), n, set(byzantine)
    changes: list[PlannedChange] = []
    for _ in range(rng.randint(2, 3)):
        kind = rng.choice(("replace", "add" if len(active) == n else "remove"))
        honest = sorted(active - byz)
        if kind == "add":
            changes.append(PlannedChange("add", -1, next_index))
            active.add(next_index)
            next_index += 1
        elif kind == "remove":
            bad = sorted(active & byz)
            target = rng.choice(bad) if bad and rng.random() < 0.5 else rng.choice(honest)
            if len(active & byz - {target}) > max_faulty(len(active) - 1):
                target = rng.choice(bad)  # an honest removal would leave too many faulty
            changes.append(PlannedChange("remove", target, -1))
            active.discard(target)
        else:
            target = rng.choice(honest)
            changes.append(PlannedChange("replace", target, next_index))
            active = (active - {target}) | {next_index}
            next_index += 1
    return tuple(changes)


def final_members(n: int, changes: tuple[PlannedChange, ...]) -> set[int]:
    active = set(range(n))
    for c in changes:
        active.discard(c.target)
        if c.new_index >= 0:
            active.add(c.new_index)
    return active


def member_card(seed: int, index: int) -> dict[str, Any]:
    """A real self-signed card (ed25519) for a simulated joiner."""
    suite = get_suite("ed25519")
    key = suite.keypair_from_seed(seed.to_bytes(8, "big") + index.to_bytes(4, "big") * 6)
    return make_card("ed25519", key, f"sim-{index}", "other", f"sim-peer-{index}",
                     f"/sim/{index}", "http://sim")  # fmt: skip


def change_tx(
    epoch: int,
    change: PlannedChange,
    roster: list[bytes],
    active: list[int],
    signers: dict[int, MacSigner],
    honest: set[int],
    seed: int,
) -> Transaction:
    """The membership transaction of `change`, approved by a quorum of honest members."""
    ops: tuple[tuple[Any, ...], ...]
    if change.kind == "add":
        ops = (("add", member_card(seed, change.new_index)),)
    elif change.kind == "remove":
        ops = (("remove", roster[change.target]),)
    else:
        ops = (("replace", roster[change.target], member_card(seed, change.new_index)),)
    message = change_bytes(epoch, ops)
    approvers = [i for i in active if i in honest][: quorum_size(len(active))]
    approvals = tuple((i, signers[i].sign(message)) for i in approvers)
    payload = make_change(epoch, ops, approvals)
    unsigned = Transaction(COORDINATOR, epoch + 1, KIND_MEMBERSHIP, payload, b"",
                           chain_tag(SIM_CHAIN))  # fmt: skip
    return Transaction(COORDINATOR, epoch + 1, KIND_MEMBERSHIP, payload,
                       client_signature(unsigned), chain_tag(SIM_CHAIN))  # fmt: skip
