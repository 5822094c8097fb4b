"""Who waits for which transaction: the clients' admissions and the long-polls.

The intake records each admission, the core reports each stored block, and the API asks
what is pending or waits for a commit. Each poller registers its own event: one poller
timing out never takes the wake-up away from another waiting for the same transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import trio

from node.metrics import Metrics


class Commits:
    def __init__(self, metrics: Metrics):
        self.metrics = metrics
        self.admitted_at: dict[bytes, float] = {}  # tx hash -> monotonic time, oldest first
        self.waiters: dict[bytes, set[trio.Event]] = {}
        self.block_stored = trio.Event()  # set (and replaced) at each stored block

    def admitted(self, tx_hashes: Iterable[bytes]) -> None:
        now = time.monotonic()
        for tx_hash in tx_hashes:
            self.admitted_at[tx_hash] = now

    def is_pending(self, tx_hash: bytes) -> bool:
        return tx_hash in self.admitted_at

    def pending_count(self) -> int:
        return len(self.admitted_at)

    async def wait(self, tx_hash: bytes, timeout_s: float) -> bool:
        """Wait until the transaction is in a stored block, at most timeout_s; True if it
        was reported meanwhile."""
        woken = trio.Event()
        self.waiters.setdefault(tx_hash, set()).add(woken)
        try:
            with trio.move_on_after(timeout_s):
                await woken.wait()
        finally:
            mine = self.waiters.get(tx_hash)
            if mine is not None:
                mine.discard(woken)
                if not mine:
                    del self.waiters[tx_hash]
        return woken.is_set()

    def stored(self, tx_hashes: Iterable[bytes]) -> None:
        """A block holding these transactions is stored and its state committed."""
        self.block_stored.set()
        self.block_stored = trio.Event()
        now = time.monotonic()
        for tx_hash in tx_hashes:
            for woken in self.waiters.pop(tx_hash, ()):
                woken.set()
            admitted = self.admitted_at.pop(tx_hash, None)
            if admitted is not None:
                self.metrics.latency.observe(now - admitted)

    def forget_older_than(self, age_s: float) -> None:
        """Admissions this old will not commit (their node crashed, say): they must not
        count against this node's clients for ever (`node.submit.full`)."""
        cutoff = time.monotonic() - age_s
        while self.admitted_at:
            first = next(iter(self.admitted_at))
            if self.admitted_at[first] >= cutoff:
                return
            del self.admitted_at[first]
