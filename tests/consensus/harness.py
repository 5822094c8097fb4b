"""Drive single replicas by hand in table tests."""

from __future__ import annotations

from consensus.events import (
    Action,
    Broadcast,
    ClientRequest,
    Event,
    Persist,
    Receive,
    Rejected,
    Send,
    Tick,
)
from consensus.messages import Message, decode_message, encode_message
from consensus.reasons import Reason
from consensus.replica import Replica
from consensus.signer import SuiteTxVerifier
from consensus.state import RestoredState
from tests.factories import CHAIN, SUITE, protocol_config, signers


def make_replica(me: int, restored: RestoredState | None = None, **overrides: object) -> Replica:
    return Replica(
        protocol_config(4, **overrides), me, signers()[me], SuiteTxVerifier(SUITE, CHAIN), restored
    )


def receive(replica: Replica, peer: int, message: Message | bytes) -> list[Action]:
    data = message if isinstance(message, bytes) else encode_message(message)
    return replica.handle(Receive(peer, data))


def rejections(actions: list[Action]) -> list[Reason]:
    return [a.reason for a in actions if isinstance(a, Rejected)]


def sent(actions: list[Action]) -> list[Message]:
    return [decode_message(a.data) for a in actions if isinstance(a, Broadcast | Send)]


def persisted(actions: list[Action]) -> list[object]:
    return [a.record for a in actions if isinstance(a, Persist)]


def snapshot(replica: Replica) -> tuple[object, ...]:
    """The protocol state an invalid input must not change."""
    slots = {
        s: (sl.digest, sorted(sl.prepares), sorted(sl.commits))
        for s, sl in replica.slots.items()
        if sl.pre_prepare or sl.prepares or sl.commits
    }
    return (
        replica.view, replica.in_view_change, replica.delivered_height, replica.stable_seq,
        slots, dict(replica.votes), len(replica.requests), sorted(replica.checkpoints),
        {v: sorted(d) for v, d in replica.view_changes.items()},
    )  # fmt: skip


def feed(replica: Replica, *events: Event) -> list[Action]:
    out: list[Action] = []
    for event in events:
        out.extend(replica.handle(event))
    return out


__all__ = [
    "ClientRequest",
    "Tick",
    "feed",
    "make_replica",
    "persisted",
    "receive",
    "rejections",
    "sent",
    "snapshot",
]
