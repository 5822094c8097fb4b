"""The membership contract: ledger.membership's rules as contract state.

The replica follows the same rules on its own to know who votes; this contract records
the outcome on the ledger (every node's state root covers it), refuses a bad change
with its reason, and keeps what the API and a restarted node read: the roster with its
cards, the current and the scheduled epoch, and where each accepted change is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis.contracts import TxResult
from analysis.state import ContractState
from ledger.crypto import SignatureSuite
from ledger.membership import (
    KIND_MEMBERSHIP,
    Epoch,
    Membership,
    MembershipError,
    parse_change,
    schedule,
)
from ledger.types import Transaction, compute_tx_hash, member_verifier


@dataclass
class MembershipContract:
    suite: SignatureSuite
    suite_name: str
    genesis: Membership
    chain_hash: bytes
    checkpoint_interval: int
    watermark_window: int
    name: str = "membership"
    kinds: tuple[str, ...] = (KIND_MEMBERSHIP,)
    observes: tuple[str, ...] = ()

    def apply(self, state: ContractState, tx: Transaction, height: int) -> TxResult:
        current = load_membership(state.get("membership"), self.genesis)
        verify = member_verifier(self.suite, current.keys, self.chain_hash)
        try:
            change = parse_change(tx.payload)
            after = schedule(current, change, height, self.checkpoint_interval,
                             self.watermark_window, verify, self.suite_name)  # fmt: skip
        except MembershipError as exc:
            return TxResult(False, f"membership_refused: {exc}")
        state.put("membership", dump_membership(after))
        history = list(state.get("history", []))
        tx_hash = compute_tx_hash(self.suite, tx).hex()
        assert after.next is not None  # schedule always schedules
        history.append({"height": height, "tx_hash": tx_hash, "epoch": after.next.number,
                        "start_after": after.next.start_height})  # fmt: skip
        state.put("history", history)
        data = {"epoch": after.next.number, "start_after": after.next.start_height,
                "members": list(after.next.active)}  # fmt: skip
        return TxResult(True, events=(("membership_scheduled", data),))


def dump_membership(m: Membership) -> dict[str, Any]:
    return {"keys": list(m.keys), "cards": [dict(c) for c in m.cards],
            "epoch": _dump_epoch(m.epoch), "next": _dump_epoch(m.next)}  # fmt: skip


def load_membership(raw: Any, genesis: Membership) -> Membership:
    """The membership a contract state holds (the genesis one before any change)."""
    if raw is None:
        return genesis
    epoch = _load_epoch(raw["epoch"])
    assert epoch is not None
    return Membership(tuple(raw["keys"]), tuple(raw["cards"]), epoch, _load_epoch(raw["next"]))


def _dump_epoch(e: Epoch | None) -> list[Any] | None:
    return None if e is None else [e.number, e.start_height, list(e.active)]


def _load_epoch(raw: Any) -> Epoch | None:
    return None if raw is None else Epoch(raw[0], raw[1], tuple(raw[2]))
