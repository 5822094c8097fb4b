"""What queries read of the ledger: the stored rows and the derived rows not written yet
(`node.derived`), published by the core; never the replica or the executor."""

from __future__ import annotations

from typing import Any

from ledger.types import Block, CommitCertificate
from node.derived import PendingDerived, TxStatus
from node.storage import Storage


class Reads:
    """Committed rows for queries: SQLite first (a transaction committed twice keeps its
    first block), then the derived rows the core has not written yet."""

    def __init__(self, reader: Storage, pending: PendingDerived):
        self.reader, self.pending = reader, pending

    def tx_status(self, tx_hash: bytes) -> TxStatus | None:
        found = self.reader.tx_status(tx_hash)
        return found if found is not None else self.pending.tx_status(tx_hash)

    def committed(self, tx_hashes: list[bytes]) -> dict[bytes, int]:
        """tx hash -> height, for those of `tx_hashes` in a block."""
        return {**self.pending.committed(tx_hashes), **self.reader.committed(tx_hashes)}

    def block(self, height: int) -> tuple[Block, CommitCertificate, bytes] | None:
        return self.reader.block(height)

    def events(self, name: str | None, from_height: int, limit: int) -> list[dict[str, Any]]:
        return self.reader.events(name, from_height, limit)

    def events_after(
        self, after_id: int, names: tuple[str, ...], limit: int
    ) -> list[dict[str, Any]]:
        return self.reader.events_after(after_id, names, limit)

    def evidence(self) -> list[dict[str, Any]]:
        return self.reader.evidence()

    def client_high(self, sender: bytes) -> int:
        for batch in (self.pending.current, self.pending.writing):
            if batch is not None and sender in batch.clients:
                return batch.clients[sender][0]
        return self.reader.client_high(sender) or 0
