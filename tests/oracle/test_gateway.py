"""The SDK's gateway against two scripted nodes on loopback: a concentrator's first batch
meets a full mempool (it eases off and sends to the other node), a reading still pending
after the wait is sent again, one answered as a replay is looked up and found committed,
one is refused for good; every reading ends with one outcome, and the journal has it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from ledger.readings import MeterReading, parse_payload
from ledger.types import compute_tx_hash, decode_tx_list
from oracle.gateway import Gateway
from oracle.http_pool import HttpPool
from oracle.journal import COMMITTED, REJECTED, Journal
from tests.factories import CHAIN, SUITE

KEYS = {f"m{i}": SUITE.keypair_from_seed(f"meter-{i}".encode()) for i in range(4)}
T_MS = 1_800_000_000_000


class Script:
    def __init__(self) -> None:
        self.requests: list[tuple[int, str]] = []
        self.pending_left = 1  # m1 is pending once, then commits

    def answer(self, node: int, path: str, body: bytes) -> tuple[int, Any]:
        self.requests.append((node, path.split("?")[0]))
        if path.startswith("/v1/tx/"):  # the lookup after a replay: it is committed
            return 200, {"tx_hash": path[7:], "status": "committed", "height": 4, "index": 1}
        if len(self.requests) == 1:
            return 429, {"error": "mempool_full", "detail": "retry in 1 s"}
        results = [self.result(tx) for tx in decode_tx_list(body, 100)]
        return (202 if any(r["status"] == "pending" for r in results) else 200), {
            "results": results
        }

    def result(self, tx: Any) -> dict[str, Any]:
        meter = parse_payload(tx.kind, tx.payload).meter_id  # type: ignore[union-attr]
        done = {"tx_hash": compute_tx_hash(SUITE, tx).hex(), "height": 7, "index": 0}
        if meter == "m1" and self.pending_left:
            self.pending_left -= 1
            return {**done, "status": "pending"}
        if meter == "m2":
            return {**done, "status": "refused", "http_status": 409, "error": "replay"}
        if meter == "m3":
            return {**done, "status": "refused", "http_status": 422, "error": "unknown_device"}
        return {**done, "status": "committed", "reason": None}


async def fake_node(node: int, script: Script) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = (await reader.readuntil(b"\r\n\r\n")).decode()
            except asyncio.IncompleteReadError:
                break
            lines = head.split("\r\n")
            sizes = [int(h.split(":")[1]) for h in lines if h.lower().startswith("content-length")]
            body = await reader.readexactly(sizes[0] if sizes else 0)
            status, answer = script.answer(node, lines[0].split(" ")[1], body)
            data = json.dumps(answer).encode()
            writer.write(
                b"HTTP/1.1 %d X\r\ncontent-length: %d\r\n\r\n%s" % (status, len(data), data)
            )
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def deliver(tmp_path: Path) -> tuple[Gateway, Script, Journal]:
    script = Script()
    servers = [await fake_node(i, script) for i in range(2)]
    urls = [f"http://127.0.0.1:{s.sockets[0].getsockname()[1]}" for s in servers]
    journal, pool = Journal(tmp_path / "j.sqlite3"), HttpPool(timeout_s=5)
    gateway = Gateway(urls, "ed25519", CHAIN, journal, pool, batch=True, flush_s=0.01)
    for meter, key in KEYS.items():
        gateway.submit(key, MeterReading(meter, 100, 900, T_MS))
    gateway.submit(KEYS["m0"], MeterReading("m0", 200, 900, T_MS + 900_000))  # after the first
    done = asyncio.Event()
    done.set()  # deliver what is queued, then return
    await asyncio.wait_for(gateway.run(done), 20)
    await pool.aclose()
    for s in servers:
        s.close()
    return gateway, script, journal


def test_every_reading_gets_one_outcome(tmp_path: Path) -> None:
    gateway, script, journal = asyncio.run(deliver(tmp_path))
    assert gateway.stats.outcomes == {COMMITTED: 4, REJECTED: 1}
    assert dict(gateway.stats.reasons) == {"unknown_device": 1}
    assert script.requests[0] == (0, "/v1/txs") and script.requests[1][0] == 1  # eased off
    lookups = [p for _, p in script.requests if p.startswith("/v1/tx/")]
    assert len(lookups) == 1  # the replay, found committed
    batches = [p for _, p in script.requests if p == "/v1/txs"]
    assert len(batches) >= 3  # the 429, the first round, m1 again with m0's second reading
    assert journal.counts() == {COMMITTED: 4, REJECTED: 1}
    assert gateway.pending() == 0
