"""What the core publishes after each group of events: one frozen snapshot.

The API, the intake and the metrics read only this (and the stored rows), never the
replica or the executor: a snapshot is taken once a block is stored and its state
committed, so a height seen here can always be read back (`GET /v1/blocks/{height}`)
and the state root is the root at that height.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from analysis.state import ContractState


@dataclass(frozen=True)
class Snapshot:
    height: int  # the highest stored block
    block_hash: bytes  # its hash (the genesis hash at height 0)
    state_root: bytes  # the contracts' state root after that block
    view: int
    primary: int
    in_view_change: bool
    stable_checkpoint: int
    epoch: int  # the membership epoch (ledger.membership)
    members: tuple[int, ...]  # its members' roster indices
    is_member: bool  # False: this node only follows the chain (joining, or removed)
    mempool_size: int  # client requests waiting in the replica
    max_pending: int  # what the replica's mempool holds at most
    views: Mapping[str, ContractState]  # each contract's state at `height`, read-only

    def view_of(self, contract: str) -> ContractState:
        found = self.views.get(contract)
        return found if found is not None else ContractState({})
