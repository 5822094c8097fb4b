"""The narrow interface between the executor and the contracts, and the registry.

A contract turns one committed transaction into a change of its own state
(`analysis.state.ContractState`, keys and values), deterministically: integers
and bytes only, no clock, no randomness, sorted iteration. The executor routes
each transaction by its `kind`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from analysis.state import ContractState
from ledger.types import Transaction


@dataclass(frozen=True)
class TxResult:
    ok: bool
    reason: str = ""
    events: tuple[tuple[str, Any], ...] = ()


class Contract(Protocol):
    name: str
    kinds: tuple[str, ...]  # transactions it decides on (accept or refuse)
    observes: tuple[str, ...]  # transactions it sees after another contract accepted them

    def apply(self, state: ContractState, tx: Transaction, height: int) -> TxResult: ...


@dataclass
class NoteContract:
    """Built-in trivial contract: counts notes per sender (kind "note", payload <= 1 KiB)."""

    name: str = "notes"
    kinds: tuple[str, ...] = ("note",)
    observes: tuple[str, ...] = ()
    max_payload_bytes: int = 1024

    def apply(self, state: ContractState, tx: Transaction, height: int) -> TxResult:
        if len(tx.payload) > self.max_payload_bytes:
            return TxResult(False, "payload_too_large")
        key = f"count/{tx.sender.hex()}"
        state.put(key, state.get(key, 0) + 1)
        state.put("total", state.get("total", 0) + 1)
        state.put("last_height", height)
        return TxResult(True)


@dataclass
class Registry:
    contracts: list[Contract] = field(default_factory=lambda: [NoteContract()])

    def named(self, name: str) -> Contract | None:
        return next((c for c in self.contracts if c.name == name), None)

    def observers_of(self, kind: str) -> list[Contract]:
        return [c for c in self.contracts if kind in c.observes]

    def for_kind(self, kind: str) -> Contract | None:
        for contract in self.contracts:
            if kind in contract.kinds:
                return contract
        return None
