"""Delivered blocks executed and stored in order, beside the core's event loop.

The replica delivers a block when it holds its commit certificate; executing it and
appending it to disk (an fsync) then took the core 5 ms to seconds, and the core
handled no vote, request or proposal meanwhile: under load a primary whose own
execution lagged proposed nothing for over a second, and its backups suspected it. Here
one task takes the delivered blocks in order (`Delivery.put`), executes and stores each
(nobody hears of a block before it is on disk), then tells the replica (`Executed`); a
second task writes each batch of derived rows to its own file (`node.storage`), one at a
time. The core's loop goes on with consensus in between.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

import trio

from consensus.events import Deliver, Executed
from node.derived import DerivedBatch
from node.logs import event, jsonable

if TYPE_CHECKING:
    from node.core import Core

log = logging.getLogger("metroledger.node")


class Delivery:
    def __init__(self, core: Core):
        self.core = core
        # unbounded: the core waits for it past `MAX_DELIVERY_LAG` blocks
        self.blocks_in, self.blocks_out = trio.open_memory_channel[Deliver](math.inf)
        # at most one batch is in flight: `pending.due` waits for it to be written
        self.flushes, self.flushes_out = trio.open_memory_channel[DerivedBatch](1)
        self.queued = 0  # blocks put and not yet stored
        self._drained = trio.Event()

    def put(self, action: Deliver) -> None:
        self.queued += 1
        self.blocks_in.send_nowait(action)

    async def drained(self) -> None:
        """Until every block put is stored. The core waits here when no event waits for
        it: its next group then gathers what arrives meanwhile, as before this task
        existed (measured: not waiting made its groups, and their fsyncs, more numerous,
        and cost the closed loop of 50 clients about a tenth of its rate)."""
        if self.queued:
            if self._drained.is_set():
                self._drained = trio.Event()
            await self._drained.wait()

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._flush_derived)
            async for action in self.blocks_out:
                await self._deliver(action)
                self.queued -= 1
                if not self.queued:
                    self._drained.set()

    async def _deliver(self, action: Deliver) -> None:
        """Execute, store (one fsync), then commit the state and tell the waiters."""
        core, block = self.core, action.block
        hashes = core._hashes(block.txs) if core.tracer.every else []
        core.tracer.mark("delivered", hashes)
        result = core.executor.compute(block, action.replays)
        await trio.to_thread.run_sync(core.storage.append_block, block, action.certificate, result)
        core.executor.commit(result)
        core.tracer.mark("stored", hashes)
        core.stored_height = block.header.height
        core.pending.add(result, action.windows)
        if core.pending.due():
            self.flushes.send_nowait(core.pending.take())
        core.commits.stored(tx_hash for tx_hash, _, _ in result.tx_results)
        self._count_block(action, len(block.txs))
        for index, name, data in result.events:
            event(log, "contract_event", height=block.header.height, tx_index=index, kind=name,
                  data=jsonable(data))  # fmt: skip
        event(log, "block_committed", height=block.header.height, txs=len(block.txs),
              view=action.certificate.view, state_root=result.state_root.hex())  # fmt: skip
        core.snapshot = core._snapshot(block.header.hash(core.storage.suite))
        executed = Executed(block.header.height, result.state_root, core.now_ms())
        await core._perform(core.replica.handle(executed))

    def _count_block(self, action: Deliver, txs: int) -> None:
        metrics = self.core.metrics
        metrics.height.set(action.block.header.height)
        metrics.last_commit.set_to_current_time()
        metrics.txs.inc(txs - len(action.replays))
        metrics.block_txs.observe(txs)
        metrics.mempool.set(len(self.core.replica.requests))

    async def _flush_derived(self) -> None:
        """Write each batch of derived rows, in a worker thread, to the derived file."""
        core = self.core
        async for batch in self.flushes_out:
            started = time.monotonic()
            await trio.to_thread.run_sync(core.storage.write_derived, batch)
            core.pending.written()
            event(log, "derived_written", height=batch.height, blocks=batch.blocks,
                  txs=len(batch.txs), clients=len(batch.clients), keys=len(batch.writes),
                  ms=round(1000 * (time.monotonic() - started), 1))  # fmt: skip
