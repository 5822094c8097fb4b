"""Applies committed blocks to the contracts and computes the state root.

State is kept per contract as keys and values (`analysis.state.ContractState`).
A block's writes are collected apart and committed only after the whole block
applied; the root after block h is H(root after h-1 || H(encode([sorted writes
of h, the accepted transactions' events as (tx hash, name, evidence)]))), or the root
after h-1 when h wrote nothing and raised no event. It commits to the whole history of
the state and of every event while a block costs what it changes, and a refused
transaction changes nothing of it: its reason is kept with the transaction's status
(`GET /v1/tx/HASH`), a function of the committed state and the block, as is the
position of an event in its block.

Contracts read the block's time (`ContractState.time_ms`: the proposal's, never earlier
than the block before's), which the executor keeps as its own write `clock/time_ms`; a
contract with deadlines has `begin_block(state, height) -> events`, run before the
block's transactions, whose events carry an empty tx hash. A contract reads what
another publishes with `state.peer(name)`, as this block sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis.contracts import Contract, Registry, TxResult
from analysis.state import ContractState
from ledger.crypto import SignatureSuite
from ledger.encoding import encode, packb
from ledger.types import Block, Transaction, compute_tx_hash, join_encoded

StateWrites = tuple[tuple[str, str, Any], ...]  # (contract, key, value), sorted
CLOCK = "clock"  # the executor's own state: the last block's time
REPLAYED, UNKNOWN_KIND = TxResult(False, "replay"), TxResult(False, "unknown_kind")


@dataclass(frozen=True)
class BlockResult:
    height: int
    state_root: bytes
    writes: StateWrites
    tx_results: tuple[tuple[bytes, int, str], ...]  # (tx hash, index, "" or reason)
    events: tuple[tuple[int, str, Any], ...] = ()  # (tx index, name, evidence)
    encoded_values: tuple[bytes, ...] = ()  # each write's value, encoded (storage keeps them)


class Executor:
    def __init__(
        self,
        suite: SignatureSuite,
        registry: Registry,
        state: dict[str, dict[str, Any]] | None = None,
        state_root: bytes = b"\x00" * 32,
    ):
        self.suite, self.registry = suite, registry
        # kind -> (deciding contract, observers), asked for every transaction; the
        # registry's contracts are fixed once a node runs
        self.routes: dict[str, tuple[Contract | None, list[Contract]]] = {}
        self.state: dict[str, dict[str, Any]] = state if state is not None else {}
        self.state_root = state_root

    def view(self, contract: str) -> ContractState:
        """Read-only access to a contract's committed state (for queries)."""
        return ContractState(self.state.get(contract, {}))

    def apply(self, block: Block, replays: tuple[int, ...]) -> BlockResult:
        """Execute the block and commit its writes at once (replay, tests)."""
        result = self.compute(block, replays)
        self.commit(result)
        return result

    def compute(self, block: Block, replays: tuple[int, ...]) -> BlockResult:
        """Execute the block against the committed state, changing nothing: the node
        commits the result once the block is stored, so what queries read is always the
        state at the stored height."""
        prev, time_ms = block.header.prev_hash, self.block_time_ms(block)
        views = {c.name: ContractState(self.state.get(c.name, {}), prev, time_ms)
                 for c in self.registry.contracts}  # fmt: skip
        for view in views.values():
            view.peers = views
        if time_ms != self.time_ms():
            views[CLOCK] = ContractState({})
            views[CLOCK].put("time_ms", time_ms)
        results: list[tuple[bytes, int, str]] = []
        events = self._begin_block(views, block.header.height)
        skipped, height, suite = set(replays), block.header.height, self.suite
        for index, tx in enumerate(block.txs):
            outcome = REPLAYED if index in skipped else self._apply_tx(views, tx, height)
            results.append(
                (compute_tx_hash(suite, tx), index, "" if outcome.ok else outcome.reason)
            )
            if outcome.ok and outcome.events:
                events += [(index, name, data) for name, data in outcome.events]
        writes = tuple(
            (name, key, value)
            for name in sorted(views)
            for key, value in sorted(views[name].writes.items())
        )
        root, values = self.state_root, tuple(encode(value) for _, _, value in writes)
        if writes or events:
            raised = [(results[i][0] if i >= 0 else b"", name, data) for i, name, data in events]
            pairs = zip(writes, values, strict=True)  # each write as [name, key, value]:
            encoded = join_encoded([b"\x93" + packb(n) + packb(k) + v for (n, k, _), v in pairs])
            diff = join_encoded([encoded, encode(raised)])  # = encode([writes, raised])
            root = self.suite.hash(root + self.suite.hash(diff))
        return BlockResult(block.header.height, root, writes, tuple(results), tuple(events), values)

    def time_ms(self) -> int:
        """The time of the last block executed (0 before the first)."""
        return int(self.state.get(CLOCK, {}).get("time_ms", 0))

    def block_time_ms(self, block: Block) -> int:
        """consensus.clock.block_time_ms: a null proposal (time 0) keeps the time before."""
        return max(self.time_ms(), block.header.proposal.timestamp_ms)

    def _begin_block(
        self, views: dict[str, ContractState], height: int
    ) -> list[tuple[int, str, Any]]:
        """Contracts with deadlines act on the block's time before its transactions;
        their events belong to no transaction (index -1)."""
        events: list[tuple[int, str, Any]] = []
        for contract in self.registry.contracts:
            hook = getattr(contract, "begin_block", None)
            if hook is not None:
                events += [(-1, name, data) for name, data in hook(views[contract.name], height)]
        return events

    def commit(self, result: BlockResult) -> None:
        for name, key, value in result.writes:
            self.state.setdefault(name, {})[key] = value
        self.state_root = result.state_root

    def _apply_tx(self, views: dict[str, ContractState], tx: Transaction, height: int) -> TxResult:
        route = self.routes.get(tx.kind)
        if route is None:
            route = (self.registry.for_kind(tx.kind), self.registry.observers_of(tx.kind))
            if route[0] is not None:  # kept for known kinds only: clients choose the kind
                self.routes[tx.kind] = route
        contract, observers = route
        if contract is None:
            return UNKNOWN_KIND
        view = views[contract.name]
        mark = len(view.writes)
        outcome = contract.apply(view, tx, height)
        if not outcome.ok:
            view.forget_since(mark)  # a refusal writes nothing, even a key it looked up
            return outcome
        if not observers:
            return outcome
        events = list(outcome.events)
        for observer in observers:  # they see, never refuse
            events += observer.apply(views[observer.name], tx, height).events
        return TxResult(True, events=tuple(events))
