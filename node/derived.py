"""What a node derives from its blocks: the tx index, the clients' anti-replay windows
and the contracts' state. Kept in memory for a few dozen blocks, then written to SQLite
in one sorted batch.

Why: written with every block, each transaction, client and contract key touched a
random B-tree page, and SQLite writes every page it touches to the WAL whole (4 KiB).
A block of 327 transactions cost 12 ms of CPU that way, about 35 µs per transaction
and a fifth of a node's CPU at 3,000 tx/s. One batch every FLUSH_BLOCKS blocks touches
each page once for many rows.

Blocks themselves (with certificate, state root and contract events) are still written
and synced one by one, before anyone is told they committed. The derived tables are a
checkpoint at `applied_height`; at start a node re-executes the blocks above it
(`node.core.restore`), checking each state root against the stored one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from consensus.state import ClientWindow
from ledger.encoding import encode
from node.executor import BlockResult

FLUSH_BLOCKS = 256  # derived rows written at least every this many blocks
FLUSH_TXS = 20_000  # or once this many transactions wait (bounds replay at start)
# or once this many contract keys wait: a batch of 15,000 rows (verification records, each
# a new key) took 2.2 s to write at 1,000 records/s; the core no longer waits for a batch
# (it is written to its own file beside it), but 4,000 keep each batch short and the
# rows held in memory and replayed at a start few
FLUSH_KEYS = 4_000
REPLAY_CHUNK = 16  # blocks read from SQLite at a time while replaying
log = logging.getLogger("metroledger.node")

TxStatus = tuple[int, int, str]  # (height, index in block, "" or the reason refused)
TxRow = tuple[bytes, int, int, str]  # (tx hash, *TxStatus): the row SQLite gets as it is


@dataclass
class DerivedBatch:
    """Derived rows of the blocks up to `height` that SQLite does not hold yet."""

    height: int = 0
    txs: dict[bytes, TxRow] = field(default_factory=dict)
    clients: dict[bytes, ClientWindow] = field(default_factory=dict)
    writes: dict[tuple[str, str], bytes] = field(default_factory=dict)  # -> encoded value
    blocks: int = 0

    def add(self, result: BlockResult, windows: tuple[tuple[bytes, ClientWindow], ...]) -> None:
        height, txs = result.height, self.txs
        for tx_hash, index, reason in result.tx_results:
            if tx_hash not in txs:  # the first commit counts
                txs[tx_hash] = (tx_hash, height, index, reason)
        self.clients.update(windows)
        values = result.encoded_values or tuple(encode(v) for _, _, v in result.writes)
        for (contract, key, _), value in zip(result.writes, values, strict=True):
            self.writes[contract, key] = value  # encoded once, by the executor
        self.height, self.blocks = height, self.blocks + 1


class PendingDerived:
    """The derived rows not yet in SQLite, readable until they are."""

    def __init__(self, flush_blocks: int = FLUSH_BLOCKS, flush_txs: int = FLUSH_TXS):
        self.flush_blocks, self.flush_txs = flush_blocks, flush_txs
        self.current = DerivedBatch()
        self.writing: DerivedBatch | None = None  # handed to storage, not yet committed

    def add(self, result: BlockResult, windows: tuple[tuple[bytes, ClientWindow], ...]) -> None:
        """Call once the block itself is stored."""
        self.current.add(result, windows)

    def due(self) -> bool:
        """Time to hand the current batch to storage (never while one is being written)."""
        if self.writing is not None:
            return False
        batch = self.current
        return (batch.blocks >= self.flush_blocks or len(batch.txs) >= self.flush_txs
                or len(batch.writes) >= FLUSH_KEYS)  # fmt: skip

    def take(self) -> DerivedBatch:
        """The batch to write; its rows stay readable until `written`."""
        self.writing, self.current = self.current, DerivedBatch()
        return self.writing

    def written(self) -> None:
        self.writing = None

    def tx_status(self, tx_hash: bytes) -> TxStatus | None:
        """Ask SQLite first: a transaction committed twice keeps its first block."""
        for batch in (self.writing, self.current):
            if batch is not None and tx_hash in batch.txs:
                _, height, index, reason = batch.txs[tx_hash]
                return height, index, reason
        return None

    def committed(self, tx_hashes: list[bytes]) -> dict[bytes, int]:
        """tx hash -> height, for those of `tx_hashes` in the batches (the earlier batch
        is read last, so its height wins for a transaction committed twice)."""
        found: dict[bytes, int] = {}
        for batch in (self.current, self.writing):
            if batch is not None and batch.txs:
                txs = batch.txs
                found.update((h, txs[h][1]) for h in tx_hashes if h in txs)
        return found
