"""Client transactions on their way into the core: the signature cache, and the queue
items that carry a batch of requests and collect the core's answers."""

from __future__ import annotations

from collections import OrderedDict

import trio

from ledger.crypto import get_suite
from ledger.types import Transaction, compute_tx_hash, is_valid_tx_signature

SIG_CACHE = 200_000


class SignatureCache:
    """Verify each client transaction once per node (cache by tx hash, LRU)."""

    def __init__(self, suite_name: str, size: int = SIG_CACHE):
        self.suite = get_suite(suite_name)
        self.size = size
        self.seen: OrderedDict[bytes, bool] = OrderedDict()

    def is_valid(self, tx: Transaction) -> bool:
        key = compute_tx_hash(self.suite, tx)
        cached = self.seen.get(key)
        if cached is None:
            cached = is_valid_tx_signature(self.suite, tx)
            self.seen[key] = cached
            if len(self.seen) > self.size:
                self.seen.popitem(last=False)
        return cached


class BatchAnswers:
    """The core's answers for one batch of client requests (a channel per request cost
    more than the request itself)."""

    def __init__(self, count: int):
        self.answers: list[list[str]] = [[] for _ in range(count)]
        self.left = count
        self.done = trio.Event()

    async def wait(self) -> list[list[str]]:
        if self.left:
            await self.done.wait()
        return self.answers


class Requests:
    """Client requests that arrived together (an HTTP batch or a forwarded frame): one
    queue item for all of them; `answers` collects the core's verdicts if someone waits."""

    __slots__ = ("answers", "txs")

    def __init__(self, txs: list[Transaction], answers: BatchAnswers | None):
        self.txs, self.answers = txs, answers


class Answer:
    __slots__ = ("batch", "index")

    def __init__(self, batch: BatchAnswers, index: int):
        self.batch, self.index = batch, index

    def send_nowait(self, reasons: list[str]) -> None:
        self.batch.answers[self.index] = reasons
        self.batch.left -= 1
        if not self.batch.left:
            self.batch.done.set()
