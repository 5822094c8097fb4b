"""Applies committed blocks to the contracts and computes the state root.

The state is a dict per contract, encoded canonically; the root after block h is
H(root after h-1 || H(encode(state))), so it commits to the whole history.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from analysis.contracts import Registry, TxResult
from ledger.crypto import SignatureSuite
from ledger.encoding import decode, encode
from ledger.types import Block, compute_tx_hash


@dataclass(frozen=True)
class BlockResult:
    height: int
    state_root: bytes
    state_blob: bytes
    tx_results: tuple[tuple[bytes, int, str], ...]  # (tx hash, index, "" or reason)


class Executor:
    def __init__(
        self,
        suite: SignatureSuite,
        registry: Registry,
        state_blob: bytes = b"",
        state_root: bytes = b"\x00" * 32,
    ):
        self.suite, self.registry = suite, registry
        self.state: dict[str, Any] = decode(state_blob) if state_blob else {}
        self.state_root = state_root

    def apply(self, block: Block, replays: tuple[int, ...]) -> BlockResult:
        state = copy.deepcopy(self.state)  # a failed block must leave the state untouched
        results = []
        for index, tx in enumerate(block.txs):
            outcome = (
                TxResult(False, "replay") if index in replays else self._apply_tx(state, tx, block)
            )
            results.append(
                (compute_tx_hash(self.suite, tx), index, "" if outcome.ok else outcome.reason)
            )
        blob = encode(state)
        root = self.suite.hash(self.state_root + self.suite.hash(blob))
        self.state, self.state_root = state, root
        return BlockResult(block.header.height, root, blob, tuple(results))

    def _apply_tx(self, state: dict[str, Any], tx: Any, block: Block) -> TxResult:
        contract = self.registry.for_kind(tx.kind)
        if contract is None:
            return TxResult(False, "unknown_kind")
        return contract.apply(state.setdefault(contract.name, {}), tx, block.header.height)
