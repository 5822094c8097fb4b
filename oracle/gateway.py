"""Readings of many devices delivered over shared keep-alive connections, cheaply.

`OracleClient` suits one device; a fleet simulator or a collection system relays the
readings of thousands, and paid about 8 ms of CPU per reading through it (httpx, one
journal write and one long-poll per reading). A `Gateway` holds many devices' keys:

- `submit` signs a reading with the device's next sequence number and queues it; the
  queued readings are journaled together (one SQLite transaction per round) before any
  of them is sent, so a crash loses at most the readings of one flush, none of which
  left the gateway;
- a **concentrator** (`batch=True`) uploads every `flush_s` what it collected: up to
  `max_batch` readings, at most one per device, in one `POST /v1/txs?wait_s=W`, with
  several batches in flight; a gateway of
  **vehicles** (`batch=False`) sends each reading in its own `POST /v1/tx?wait_s=W`,
  each vehicle on its own as a vehicle would. Either way one request brings the commit:
  there is no separate long-poll;
- a device keeps one reading in flight (the registry refuses a reading whose sequence
  number is not above the last committed one), the next waits for its outcome;
- pending after the wait, a full mempool, or an unreachable node: the same transaction
  is sent again later (the ledger deduplicates); after a full mempool or an unreachable
  node the gateway sends nothing new for `BACKOFF_S` and then tries the next node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from ledger.crypto import KeyPair, get_suite
from ledger.readings import Payload, sign_payload
from ledger.types import Transaction, compute_tx_hash, join_encoded
from oracle.http_pool import HttpError, HttpPool
from oracle.journal import COMMITTED, REJECTED, Journal

BACKOFF_S = 0.5
RETRY_LATER = {"mempool_full"}  # a refusal that says "not now"
REPLAYED = ("replay", "", 0)  # refused as committed already: look the transaction up


@dataclass
class Queued:
    tx: Transaction
    tx_hash: bytes
    submitted_s: float  # monotonic, for latency


@dataclass
class GatewayStats:
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    requests: int = 0
    retries: int = 0


class Gateway:
    def __init__(self, urls: Sequence[str], suite: str, chain: bytes, journal: Journal,
                 pool: HttpPool, *, batch: bool, max_batch: int = 500, batches_in_flight: int = 4,
                 wait_s: float = 30.0, flush_s: float = 0.25):  # fmt: skip
        if not urls:
            raise ValueError("a gateway needs at least one node URL")
        self.urls, self.suite, self.chain = [u.rstrip("/") for u in urls], get_suite(suite), chain
        self.journal, self.pool, self.batch = journal, pool, batch
        self.max_batch, self.batches_in_flight = max_batch, batches_in_flight
        self.wait_s, self.flush_s = wait_s, flush_s
        self.seqs = journal.high_seqs()
        self.queues: dict[bytes, deque[Queued]] = {}
        self.queued = 0  # readings in the queues: asked on every pass of the loop
        self.ready: dict[bytes, None] = {}  # devices with a reading to send, oldest first
        self.in_flight: set[bytes] = set()
        self.unjournaled: list[tuple[Transaction, bytes]] = []
        self.settled: list[tuple[bytes, int, str, str, int]] = []
        self.requests: set[asyncio.Task[None]] = set()
        self.stats, self.preferred, self.wake = GatewayStats(), 0, asyncio.Event()
        self.paused_until = 0.0  # monotonic: no new request before (after a 429, say)

    def submit(self, key: KeyPair, payload: Payload) -> bytes:
        """Sign and queue a device's reading; its tx hash."""
        seq = self.seqs.get(key.public_key, 0) + 1
        self.seqs[key.public_key] = seq
        tx = sign_payload(self.suite, key, seq, payload, self.chain)
        tx_hash = compute_tx_hash(self.suite, tx)
        self.unjournaled.append((tx, tx_hash))
        self.queued += 1
        self.queues.setdefault(key.public_key, deque()).append(
            Queued(tx, tx_hash, time.monotonic())
        )
        if key.public_key not in self.in_flight:
            self.ready[key.public_key] = None
        self.wake.set()
        return tx_hash

    def pending(self) -> int:
        return self.queued

    async def run(self, until: asyncio.Event) -> None:
        """Deliver until `until` is set and nothing is left to deliver."""
        while not (until.is_set() and not self.pending()):
            self.wake.clear()
            self._flush_journal()
            self._start_requests()
            if self.batch:  # a concentrator uploads what it collected once per interval
                await asyncio.sleep(self.flush_s)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.flush_s)
        self._flush_journal()

    def _flush_journal(self) -> None:
        if self.unjournaled:
            self.journal.add_many(self.unjournaled)
            self.unjournaled = []
        if self.settled:
            self.journal.settle_many(self.settled)
            self.settled = []

    def _start_requests(self) -> None:
        if time.monotonic() < self.paused_until:
            return
        limit = self.batches_in_flight if self.batch else len(self.ready) + len(self.requests)
        while self.ready and len(self.requests) < limit:
            count = self.max_batch if self.batch else 1
            devices = [self._take() for _ in range(min(count, len(self.ready)))]
            task = asyncio.ensure_future(self._deliver(devices))
            self.requests.add(task)
            task.add_done_callback(self._done)

    def _take(self) -> bytes:
        device = next(iter(self.ready))
        del self.ready[device]
        self.in_flight.add(device)
        return device

    def _done(self, task: asyncio.Task[None]) -> None:
        self.requests.discard(task)
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
        self.wake.set()

    async def _deliver(self, devices: list[bytes]) -> None:
        """Send the oldest reading of each device; settle or keep each by its answer."""
        entries = [self.queues[d][0] for d in devices]
        self.stats.requests += 1
        answers = await self._send(entries)
        for i, answer in enumerate(answers):
            if answer == REPLAYED:  # this sequence number is committed: ours, or another?
                answers[i] = await self._status(entries[i].tx_hash)
        for device, entry, answer in zip(devices, entries, answers, strict=True):
            if answer is None:  # not final: this reading again, later
                self.stats.retries += 1
            else:
                self._settle(device, entry, *answer)
            self.in_flight.discard(device)
            if self.queues[device]:
                self.ready[device] = None
            else:
                del self.queues[device]

    def _settle(self, device: bytes, entry: Queued, status: str, reason: str, height: int) -> None:
        self.queues[device].popleft()
        self.queued -= 1
        self.settled.append((entry.tx.sender, entry.tx.seq, status, reason, height))
        self.stats.outcomes[status] += 1
        if reason:
            self.stats.reasons[reason] += 1
        if status == COMMITTED:
            self.stats.latencies_s.append(time.monotonic() - entry.submitted_s)

    async def _send(self, entries: list[Queued]) -> list[tuple[str, str, int] | None]:
        """Each entry's final (status, reason, height), or None to send it again."""
        url = self.urls[self.preferred]
        try:
            if self.batch:
                body = join_encoded([e.tx.encoded() for e in entries])
                code, raw = await self.pool.post(url, f"/v1/txs?wait_s={self.wait_s}", body)
            else:
                code, raw = await self.pool.post(url, f"/v1/tx?wait_s={self.wait_s}",
                                                 entries[0].tx.encoded())  # fmt: skip
        except HttpError:
            return await self._back_off(len(entries))
        if code == 429 or code >= 500:
            return await self._back_off(len(entries))
        answer = json.loads(raw)
        results = answer["results"] if self.batch and code in (200, 202) else [answer]
        if not self.batch and code not in (200, 202):
            results = [{"status": "refused", "http_status": code, "error": answer.get("error")}]
        if any(r.get("error") in RETRY_LATER for r in results):
            self.paused_until = time.monotonic() + BACKOFF_S  # the node sheds load: ease off
        return [final(r) for r in results]

    async def _status(self, tx_hash: bytes) -> tuple[str, str, int] | None:
        try:
            code, raw = await self.pool.get(self.urls[self.preferred], f"/v1/tx/{tx_hash.hex()}")
        except HttpError:
            return None
        found = final(json.loads(raw)) if code == 200 else None
        return found if found != REPLAYED else None

    async def _back_off(self, count: int) -> list[tuple[str, str, int] | None]:
        self.preferred = (self.preferred + 1) % len(self.urls)
        self.paused_until = time.monotonic() + BACKOFF_S
        return [None] * count


def final(result: dict[str, object]) -> tuple[str, str, int] | None:
    """A node's answer for one transaction as (status, reason, height), or None if it is
    not final: pending, or refused for now (a full mempool)."""
    status = result.get("status")
    if status in (COMMITTED, "rejected"):
        return str(status), str(result.get("reason") or ""), int(str(result.get("height", 0)))
    if status == "refused":
        error = str(result.get("error") or result.get("http_status"))
        if error in RETRY_LATER:
            return None
        return REPLAYED if error == "replay" else (REJECTED, error, 0)
    return None
