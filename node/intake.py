"""Client transactions on their way into the core: the signature cache, the queue items
that carry a batch of requests and collect the core's answers, and the intake component."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import TYPE_CHECKING

import trio

from consensus.reasons import Reason
from ledger.crypto import get_suite
from ledger.errors import InvalidEncoding
from ledger.types import (
    Transaction,
    compute_tx_hash,
    decode_tx_list,
    encode_tx_list,
    is_valid_tx_signature,
)
from node.commits import Commits
from node.metrics import Metrics
from node.transport import CHANNEL_TX, Transport

if TYPE_CHECKING:
    from node.core import Core

SIG_CACHE = 200_000


class SignatureCache:
    """Verify each client transaction once per node (cache by tx hash, LRU)."""

    def __init__(self, suite_name: str, chain_hash: bytes, size: int = SIG_CACHE):
        self.suite, self.chain = get_suite(suite_name), chain_hash
        self.size = size
        self.seen: OrderedDict[bytes, bool] = OrderedDict()

    def is_valid(self, tx: Transaction) -> bool:
        key = compute_tx_hash(self.suite, tx)
        cached = self.seen.get(key)
        if cached is None:
            cached = is_valid_tx_signature(self.suite, tx, self.chain)
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


FORWARD_WAIT_S = 1.0  # longest a client's answer waits for its forward to be written
MAX_FORWARD = 5_000  # transactions in one forwarded frame
# Forwarded frames waiting for verification, bounded in bytes: a frame holds one to
# 5,000 transactions, and a bound of 1,000 frames dropped single-transaction forwards
# at 2,000 tx/s while the core handled a long group (their requests then waited for the
# 10 s re-forward, and their clients' admissions filled the backups' share: 429s).
FORWARD_QUEUE_BYTES = 64 * 1024 * 1024


class Intake:
    """Client transactions into the core: from this node's API (`submit`) and from peers'
    forwards (`on_forwarded`, which only enqueues; `run` verifies and relays)."""

    def __init__(
        self,
        core: Core,
        transport: Transport,
        commits: Commits,
        sig_cache: SignatureCache,
        metrics: Metrics,
    ):
        self.core, self.transport, self.commits = core, transport, commits
        self.sig_cache, self.metrics = sig_cache, metrics
        self.suite = sig_cache.suite
        self.send_forwarded, self.receive_forwarded = trio.open_memory_channel[tuple[int, bytes]](
            math.inf
        )
        self.queued_bytes = 0

    async def submit(self, txs: list[Transaction]) -> list[list[str]]:
        """Admit verified client transactions; per tx, rejection reasons ([] = accepted).
        The accepted ones are forwarded in one frame: a backup's to the primary, the
        primary's to every backup, so a crash of the primary strands none."""
        batch = BatchAnswers(len(txs))
        if not self.core.enqueue_requests(Requests(txs, batch)):
            for index in range(len(txs)):
                Answer(batch, index).send_nowait([Reason.MEMPOOL_FULL.value])
        answers = await batch.wait()
        accepted = [tx for tx, reasons in zip(txs, answers, strict=True) if not reasons]
        hashes = [compute_tx_hash(self.suite, tx) for tx in accepted]
        self.commits.admitted(hashes)
        self.core.tracer.mark("admitted", hashes)
        if accepted:
            snapshot = self.core.snapshot
            is_primary = snapshot.primary == self.core.me
            await self._await_written(self._forward(encode_tx_list(accepted), is_primary))
            self.core.tracer.mark("forward_written", hashes)
        return answers

    def _forward(self, data: bytes, everyone: bool) -> trio.Event | None:
        """Client requests (an encoded list) to every other member, or to the primary; the
        event returned is set once one of them holds the frame in its kernel socket
        buffer; None if no link to them is up."""
        written = trio.Event()  # set by whichever link writes first
        targets = self.core.others() if everyone else [self.primary()]
        for member in targets:
            self.transport.send(member, CHANNEL_TX, data, written)
        return written if any(self.transport.is_up(m) for m in targets) else None

    def primary(self) -> int:
        return self.core.snapshot.primary

    async def _await_written(self, written: trio.Event | None) -> None:
        """Answer a client `pending` only once its requests left this process: a crash
        then loses them only if two members fail. Waits at most FORWARD_WAIT_S, and not
        at all while no link to them is up (the requests wait for the core's reforward)."""
        if written is not None:
            with trio.move_on_after(FORWARD_WAIT_S):
                await written.wait()

    def on_forwarded(self, member: int, payload: bytes) -> None:
        """The transport's callback for a peer's forward: queued, nothing more."""
        if self.queued_bytes + len(payload) > FORWARD_QUEUE_BYTES:
            self.metrics.rejected.labels("forward_queue_full").inc()
            return
        self.queued_bytes += len(payload)
        self.send_forwarded.send_nowait((member, payload))

    async def run(self) -> None:
        async for member, payload in self.receive_forwarded:
            self.queued_bytes -= len(payload)
            self.admit_forwarded(member, payload)

    def admit_forwarded(self, member: int, payload: bytes) -> None:
        """A peer forwards the client transactions it admitted, as one list.

        A backup sends to another backup only requests that waited too long (a share);
        those go on to the primary at once, so a backup whose own link to the primary is
        slow or down still gets its requests proposed."""
        try:
            txs = decode_tx_list(payload, MAX_FORWARD)
        except InvalidEncoding:
            self.metrics.rejected.labels(Reason.MALFORMED.value).inc()
            return
        valid = [tx for tx in txs if self.sig_cache.is_valid(tx)]
        if len(valid) < len(txs):
            self.metrics.rejected.labels(Reason.INVALID_TX.value).inc(len(txs) - len(valid))
        if not valid:
            return
        self.core.tracer.mark("forward_received", (compute_tx_hash(self.suite, tx) for tx in valid))
        if not self.core.enqueue_requests(Requests(valid, None)):
            self.metrics.rejected.labels("event_queue_full").inc(len(valid))
        primary = self.primary()
        if member != primary and self.core.me != primary:
            relayed = payload if len(valid) == len(txs) else encode_tx_list(valid)
            self.transport.send(primary, CHANNEL_TX, relayed)
