"""Contract state as keys and values, with the writes of one block kept apart.

A contract reads with `get` (never mutate what it returns) and writes with `put`,
or takes a private copy to change with `edit`. The executor commits a block's
writes only after the whole block applied, and the state root chains the hash of
each block's sorted writes, so a block costs what it changes, not the size of the
whole state.
"""

from __future__ import annotations

from typing import Any


def plain_copy(value: Any) -> Any:
    """A deep copy of state data (maps, lists, tuples and immutable scalars: what the
    canonical encoding holds), several times cheaper than copy.deepcopy, which the
    contracts' hot path spent half its time in."""
    if isinstance(value, dict):
        return {k: plain_copy(v) if isinstance(v, NESTED) else v for k, v in value.items()}
    if isinstance(value, list):
        return [plain_copy(v) if isinstance(v, NESTED) else v for v in value]
    if isinstance(value, tuple):
        return tuple(plain_copy(v) if isinstance(v, NESTED) else v for v in value)
    return value


NESTED = (dict, list, tuple)


class ContractState:
    def __init__(self, committed: dict[str, Any], prev_hash: bytes = b"", time_ms: int = 0):
        self.committed = committed
        self.writes: dict[str, Any] = {}
        self.shallow: set[str] = set()  # written by `update`: nested values still shared
        # the hash of the block before the one being executed: a seed no transaction of
        # this block could choose (the sampling draw uses it)
        self.prev_hash = prev_hash
        self.time_ms = time_ms  # the block's time (consensus.clock), the same on every node
        # the other contracts' states in this block, to read what they publish
        self.peers: dict[str, ContractState] = {}

    def peer(self, contract: str) -> ContractState:
        """Another contract's state as this block sees it (read it, never write)."""
        return self.peers[contract]

    def get(self, key: str, default: Any = None) -> Any:
        if key in self.writes:
            return self.writes[key]
        return self.committed.get(key, default)

    def edit(self, key: str) -> Any:
        """A copy of the value to change in place, recorded as written; None if absent."""
        if key in self.shallow:
            self.shallow.discard(key)
            self.writes[key] = plain_copy(self.writes[key])
        if key not in self.writes:
            value = self.committed.get(key)
            if value is None:
                return None
            self.writes[key] = plain_copy(value)
        return self.writes[key]

    def update(self, key: str, **fields: Any) -> None:
        """Set top-level fields of a map that exists: a shallow copy, so its nested values
        are shared with the committed one (`edit` copies them before any change). A hot
        path's cheap write: a reading changes a device's counters, not its history."""
        if key in self.writes:
            self.writes[key].update(fields)
            return
        value = dict(self.committed[key])
        value.update(fields)
        self.writes[key] = value
        self.shallow.add(key)

    def put(self, key: str, value: Any) -> None:
        self.writes[key] = value
        self.shallow.discard(key)

    def forget_since(self, mark: int) -> None:
        """Drop the keys first written after `mark` (= len(writes) then): a refused
        transaction's. A contract must not change an already written value before it
        refuses; its tests check that a refusal leaves the writes as they were."""
        while len(self.writes) > mark:
            key, _ = self.writes.popitem()  # the last inserted first
            self.shallow.discard(key)

    def __contains__(self, key: str) -> bool:
        return key in self.writes or key in self.committed


def in_force(state: ContractState, key: str, genesis: Any, height: int) -> Any:
    """A value that a membership change replaces from its epoch on, stored under `key` as
    {current, next: {after: B, value} | None}: the one governing block `height`."""
    raw = state.get(key)
    if raw is None:
        return genesis
    upcoming = raw["next"]
    return upcoming["value"] if upcoming and height > upcoming["after"] else raw["current"]


def schedule(
    state: ContractState, key: str, genesis: Any, height: int, value: Any, after: int
) -> None:
    """`value` replaces what is in force at `height` once block `after` is passed."""
    current = in_force(state, key, genesis, height)
    state.put(key, {"current": current, "next": {"after": after, "value": value}})


class DirectState(ContractState):
    """State changed in place, with no block boundaries: offline evaluation runs contracts
    over many readings without the copies a ledger needs for atomic blocks."""

    def edit(self, key: str) -> Any:
        return self.committed.get(key)

    def put(self, key: str, value: Any) -> None:
        self.committed[key] = value

    def update(self, key: str, **fields: Any) -> None:
        self.committed[key].update(fields)
