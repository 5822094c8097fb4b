"""Restoring the executor after a restart: the state the derived tables hold, then the
stored blocks above their height executed again (a node stopped between two batches)."""

from __future__ import annotations

import logging
import time

from analysis.contracts import Registry
from analysis.state import ContractState
from consensus.state import ClientWindow, RequestQueue
from ledger.crypto import SignatureSuite
from node.derived import REPLAY_CHUNK, DerivedBatch
from node.executor import Executor
from node.logs import event
from node.storage import Storage, StorageError, derived_path_of

log = logging.getLogger("metroledger.node")


def restore(
    storage: Storage, suite: SignatureSuite, registry: Registry
) -> tuple[Executor, dict[bytes, ClientWindow]]:
    """The executor and the clients' windows after the last stored block: the state the
    derived tables hold, then the stored blocks above their height re-executed (a node
    stopped between two batches), with what those derive written."""
    applied, top = storage.applied_height(), storage.height()
    if applied > top:  # say, the two files restored from backups of different times
        raise StorageError(
            f"the derived rows reach height {applied}, above the stored chain's {top}: "
            f"remove {derived_path_of(storage.path).name} (with its -wal and -shm files) "
            "to rebuild them from the blocks"
        )
    executor = Executor(suite, registry, storage.contract_state(), storage.state_root_at(applied))
    return executor, _replay(storage, executor, storage.clients(), applied)


def membership_state(executor: Executor) -> ContractState:
    """The membership contract's state after the restored chain (`node.membership`)."""
    return executor.view("membership")


def _replay(
    storage: Storage, executor: Executor, clients: dict[bytes, ClientWindow], applied: int
) -> dict[bytes, ClientWindow]:
    started = time.monotonic()
    queue = RequestQueue(max_pending=0, clients=clients)
    batch = DerivedBatch(height=applied)
    top = storage.height()
    for first in range(batch.height + 1, top + 1, REPLAY_CHUNK):
        for block, stored_root in storage.blocks_with_roots(first, first + REPLAY_CHUNK - 1):
            replays, windows = queue.apply_committed(block.txs)
            result = executor.apply(block, replays)
            if result.state_root != stored_root:
                raise StorageError(
                    f"block {block.header.height}: re-executed state root "
                    f"{result.state_root.hex()} differs from the stored "
                    f"{stored_root.hex()} (the database or the contracts changed)"
                )
            batch.add(result, windows)
    if batch.blocks:
        storage.write_derived(batch)
        event(log, "derived_replayed", height=top, blocks=batch.blocks, txs=len(batch.txs),
              ms=round(1000 * (time.monotonic() - started), 1))  # fmt: skip
    return queue.clients
