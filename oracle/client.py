"""Oracle SDK: sign readings, deliver them to any live node, and never lose one.

`submit` signs and journals a payload and returns its tx hash at once (store and
forward); a worker per client delivers journaled transactions in sequence order,
fails over between nodes, backs off while none is reachable, resubmits until the
transaction is committed or refused for good (resubmitting is safe: the ledger
deduplicates by signer and sequence number), and records the outcome. A device
keeps one transaction in flight by default, because the registry refuses a
reading whose sequence number is not above the last committed one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ledger.crypto import KeyPair, get_suite
from ledger.readings import Payload, sign_payload
from ledger.types import Transaction, compute_tx_hash
from oracle.journal import COMMITTED, QUEUED, REJECTED, Entry, Journal

BACKOFF_MIN_S, BACKOFF_MAX_S = 0.2, 5.0
MAX_IN_FLIGHT = 32  # half the ledger's per-signer anti-replay window


class NoNodeReachable(ConnectionError):
    pass


@dataclass(frozen=True)
class Outcome:
    tx_hash: str
    status: str  # committed | rejected | queued
    reason: str = ""
    height: int = 0


class OracleClient:
    def __init__(
        self,
        node_urls: Sequence[str],
        key: KeyPair,
        *,
        suite: str = "ed25519",
        journal: Journal | Path | str = ":memory:",
        http: httpx.AsyncClient | None = None,
        max_in_flight: int = 1,
        resubmit_after_s: float = 5.0,
        chain: bytes | None = None,
    ):
        """`chain`: the hash of the network's genesis (`metroledger genesis show`), which
        every transaction's signature binds; if None, the journal's, else `start` asks a
        node once (trust on first use: a device given it from the genesis file trusts no
        node for it) and the journal keeps it."""
        if not node_urls:
            raise ValueError("OracleClient needs at least one node URL")
        if not 1 <= max_in_flight <= MAX_IN_FLIGHT:
            raise ValueError(f"max_in_flight must be 1..{MAX_IN_FLIGHT}")
        self.urls = [u.rstrip("/") for u in node_urls]
        self.key, self.suite = key, get_suite(suite)
        self.journal = journal if isinstance(journal, Journal) else Journal(journal)
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(timeout=10.0)
        self.max_in_flight, self.resubmit_after_s = max_in_flight, resubmit_after_s
        self._preferred = 0
        self._queue: asyncio.Queue[Entry] = asyncio.Queue()
        self._in_flight: set[int] = set()  # sequence numbers being delivered
        self._settled = asyncio.Event()
        self._done: dict[bytes, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._next_seq = 0
        self.chain = chain

    async def __aenter__(self) -> OracleClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Resume journaled work and learn the ledger's sequence number (if a node answers)."""
        committed = 0
        self.chain = self.chain or self.journal.chain()
        with contextlib.suppress(NoNodeReachable):
            body = await self._get_json(f"/v1/clients/{self.key.public_key.hex()}")
            committed = int(body["committed_high_seq"])
            if self.chain is None:
                self.chain = bytes.fromhex((await self._get_json("/v1/status"))["chain_hash"])
        if self.chain is not None:
            self.journal.set_chain(self.chain)  # a journal signs for one network
        self._next_seq = max(self.journal.high_seq(self.key.public_key), committed) + 1
        for entry in self.journal.unfinished(self.key.public_key):
            self._track(entry)
        self._worker = asyncio.create_task(self._deliver_in_order())

    async def close(self) -> None:
        """Stop delivering; queued transactions stay in the journal for the next start."""
        for task in [*self._tasks, *([self._worker] if self._worker else [])]:
            task.cancel()
        for task in [*self._tasks, *([self._worker] if self._worker else [])]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._own_http:
            await self.http.aclose()

    # ---- the public calls ------------------------------------------------------------

    def submit(self, payload: Payload) -> str:
        """Sign (once per distinct payload), journal and queue; returns the tx hash hex."""
        data = payload.encode()
        existing = self.journal.find_payload(self.key.public_key, payload.KIND, data)
        if existing is not None:
            return existing.tx_hash.hex()
        if not self._next_seq:
            raise RuntimeError("call start() (or use `async with`) before submit()")
        if self.chain is None:
            raise NoNodeReachable("the chain hash is unknown: pass chain= (from the genesis file), "
                                  "or start() once while a node answers")  # fmt: skip
        tx = sign_payload(self.suite, self.key, self._next_seq, payload, self.chain)
        self._next_seq += 1
        tx_hash = compute_tx_hash(self.suite, tx)
        self.journal.add(tx, tx_hash)  # journaled before it can leave the device
        self._track(Entry(tx, tx_hash, QUEUED, "", 0))
        return tx_hash.hex()

    async def wait(self, tx_hash: str, timeout_s: float | None = None) -> Outcome:
        """The outcome once committed or refused (or `queued` if `timeout_s` passes first)."""
        key = bytes.fromhex(tx_hash)
        event = self._done.get(key)
        if event is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout_s)
        entry = self.journal.get(key)
        if entry is None:
            raise KeyError(f"{tx_hash} was not submitted through this journal")
        return Outcome(tx_hash, entry.status, entry.reason, entry.height)

    async def receipt(self, tx_hash: str) -> dict[str, Any]:
        """The receipt of a committed transaction, from any node that answers."""
        return await self._get_json(f"/v1/tx/{tx_hash}/receipt")

    def pending(self) -> int:
        return len(self._done)

    # ---- delivery ------------------------------------------------------------------------

    def _track(self, entry: Entry) -> None:
        self._done[entry.tx_hash] = asyncio.Event()
        self._queue.put_nowait(entry)

    async def _deliver_in_order(self) -> None:
        """Start deliveries in sequence order, never more than `max_in_flight` sequence
        numbers past the oldest unfinished one: the ledger's anti-replay window (64)
        refuses a sequence number that far behind the newest committed."""
        while True:
            entry = await self._queue.get()
            while self._in_flight and entry.tx.seq >= min(self._in_flight) + self.max_in_flight:
                self._settled.clear()
                await self._settled.wait()
            self._in_flight.add(entry.tx.seq)
            task = asyncio.create_task(self._deliver(entry))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, entry: Entry) -> None:
        try:
            status, reason, height = await self._until_final(entry.tx, entry.tx_hash.hex())
            self.journal.settle(entry.tx_hash, status, reason, height)
            event = self._done.pop(entry.tx_hash, None)
            if event is not None:
                event.set()
        finally:
            self._in_flight.discard(entry.tx.seq)
            self._settled.set()

    async def _until_final(self, tx: Transaction, tx_hash: str) -> tuple[str, str, int]:
        backoff_s = BACKOFF_MIN_S
        while True:
            try:
                outcome = await self._post(tx)
                if outcome is None:  # accepted or already known: wait for the commit
                    outcome = await self._await_commit(tx_hash)
                if outcome is not None:
                    return outcome
                backoff_s = BACKOFF_MIN_S
            except NoNodeReachable:
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, BACKOFF_MAX_S)

    async def _post(self, tx: Transaction) -> tuple[str, str, int] | None:
        """None if a node holds the tx now; a final outcome if it is refused for good."""
        body = tx.encoded()
        for url in self._rotation():
            try:
                response = await self.http.post(
                    url + "/v1/tx",
                    content=body,
                    headers={"content-type": "application/octet-stream"},
                )
            except httpx.HTTPError:
                continue
            if response.status_code == 202:
                self._preferred = self.urls.index(url)
                return None
            if response.status_code == 409:  # this signer's seq is committed: ours or not?
                return await self._status_after_replay(compute_tx_hash(self.suite, tx).hex())
            if response.status_code == 422:  # refused against state our own tx may have changed
                reason = str(response.json().get("error", 422))
                known = await self._status_after_replay(compute_tx_hash(self.suite, tx).hex())
                return known if known[0] == COMMITTED else (REJECTED, reason, 0)
            if response.status_code in (400, 413):
                return REJECTED, str(response.json().get("error", response.status_code)), 0
        raise NoNodeReachable("no node accepted the transaction")  # down, 429 or 5xx

    async def _await_commit(self, tx_hash: str) -> tuple[str, str, int] | None:
        """Long-poll the node that took the tx; None means resubmit (it may have been lost)."""
        url = self.urls[self._preferred]
        path = f"/v1/tx/{tx_hash}?wait_s={self.resubmit_after_s}"
        try:
            response = await self.http.get(url + path, timeout=self.resubmit_after_s + 5)
        except httpx.HTTPError:
            return None
        return _final(response)

    async def _status_after_replay(self, tx_hash: str) -> tuple[str, str, int]:
        for url in self._rotation():
            try:
                outcome = _final(await self.http.get(f"{url}/v1/tx/{tx_hash}"))
            except httpx.HTTPError:
                continue
            if outcome is not None:
                return outcome
        return REJECTED, "replay", 0  # another tx with this sequence number was committed

    async def _get_json(self, path: str) -> dict[str, Any]:
        for url in self._rotation():
            try:
                response = await self.http.get(url + path)
            except httpx.HTTPError:
                continue
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                return body
            if response.status_code < 500:
                raise LookupError(f"{url}{path}: {response.status_code} {response.text}")
        raise NoNodeReachable(f"no node answered {path}")

    def _rotation(self) -> list[str]:
        start = self._preferred
        return [self.urls[(start + i) % len(self.urls)] for i in range(len(self.urls))]


def _final(response: httpx.Response) -> tuple[str, str, int] | None:
    if response.status_code != 200:
        return None
    body = response.json()
    if body.get("status") == "committed":
        return COMMITTED, "", int(body["height"])
    if body.get("status") == "rejected":
        return REJECTED, str(body.get("reason") or ""), int(body["height"])
    return None


def run(main: Any) -> Any:
    """Run an asyncio entry point on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
