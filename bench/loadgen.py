"""Load generator: pre-signed transactions offered in batches over HTTP (asyncio + uvloop).

Signing happens before the timed phase (in worker processes), so the generator's own
crypto does not limit the result. Open loop: every `tick_s` a batch of rate * tick_s
transactions goes to the next node in turn, whatever the answers; closed loop: C clients
each send a batch and wait for the answer. Submission times are kept per transaction so
latency can be joined with the blocks' commit times afterwards.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from ledger.crypto import get_suite
from ledger.types import join_encoded
from node.load import sample_txs
from oracle.http_pool import HttpError, HttpPool

CLIENTS = 4_000  # signers: a client's consecutive txs are far apart (anti-replay window)


def _sign_range(args: tuple[str, int, int, int, bytes]) -> list[bytes]:
    suite_name, first, count, payload_bytes, chain = args
    txs = sample_txs(
        suite_name, count, CLIENTS, start=first, payload_bytes=payload_bytes, chain=chain
    )
    return [tx.encoded() for tx in txs]


def presign(
    suite: str, count: int, chain: bytes, payload_bytes: int = 120, jobs: int = 2
) -> list[bytes]:
    """`count` encoded note transactions of about 250 bytes for the chain `chain`, signed
    in `jobs` processes."""
    chunk = max(1, -(-count // jobs))
    ranges = [
        (suite, i, min(chunk, count - i), payload_bytes, chain) for i in range(0, count, chunk)
    ]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return [tx for part in pool.map(_sign_range, ranges) for tx in part]


@dataclass
class LoadLog:
    submitted_at: dict[bytes, float] = field(default_factory=dict)  # tx hash -> wall time
    offered: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    admitted: set[bytes] = field(default_factory=set)  # answered "pending" by a node
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)  # why, per transaction
    cpu_seconds: float = 0.0  # the generator's own CPU time while it offered the load
    # closed loop waiting for commits: per client, (wall time sent, ms until its node said
    # committed), as BFT-SMaRt's ThroughputLatencyClient records each ordered reply
    client_commits: dict[int, list[tuple[float, float]]] = field(default_factory=dict)

    def count_refused(self, reason: str, count: int) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + count

    def count_error(self, kind: str, count: int) -> None:
        self.errors += count
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + count


async def _post(
    http: HttpPool, url: str, txs: list[bytes], hashes: list[bytes], log: LoadLog
) -> None:
    now = time.time()
    for h in hashes:
        log.submitted_at[h] = now
    log.offered += len(txs)
    try:
        status, body = await http.post(url, "/v1/txs", join_encoded(txs))
    except HttpError as exc:
        log.count_error(exc.kind, len(txs))
        return
    if status == 202:
        log.admitted.update(hashes)
        return
    if status == 429:  # back-pressure: counted, not retried (open loop)
        log.count_refused("mempool_full", len(txs))
        return
    if status != 200:
        log.count_error(f"http_{status}", len(txs))
        return
    for tx_hash, result in zip(hashes, json.loads(body)["results"], strict=True):
        if result["status"] == "pending":
            log.admitted.add(tx_hash)
        else:
            log.count_refused(result["error"], 1)


async def open_loop(
    urls: Callable[[], list[str]],
    txs: list[bytes],
    hashes: list[bytes],
    rate_at: Callable[[float], float],
    duration_s: float,
    log: LoadLog,
    tick_s: float = 0.02,
    tls: ssl.SSLContext | None = None,
) -> int:
    """Offer txs at rate_at(t) per second for duration_s; returns how many were offered."""
    started = time.monotonic()
    sent, turn, due = 0, 0, 0.0
    tasks: set[asyncio.Task[None]] = set()
    http = HttpPool(timeout_s=30.0, tls=tls)
    try:
        while (elapsed := time.monotonic() - started) < duration_s and sent < len(txs):
            due += rate_at(elapsed) * tick_s
            count = min(int(due), len(txs) - sent)
            due -= count
            live = urls()
            if count and live:
                url = live[turn % len(live)]
                turn += 1
                task = asyncio.create_task(
                    _post(http, url, txs[sent : sent + count], hashes[sent : sent + count], log)
                )
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += count
            await asyncio.sleep(
                max(0.0, started + (elapsed // tick_s + 1) * tick_s - time.monotonic())
            )
        if tasks:
            await asyncio.wait(tasks, timeout=30)
    finally:
        await http.aclose()
    return sent


def tx_hashes(suite: str, encoded: list[bytes]) -> list[bytes]:
    s = get_suite(suite)
    return [s.hash(e) for e in encoded]


async def closed_loop(
    urls: Callable[[], list[str]],
    txs: list[bytes],
    hashes: list[bytes],
    clients: int,
    batch: int,
    duration_s: float,
    log: LoadLog,
    tls: ssl.SSLContext | None = None,
) -> int:
    """`clients` clients each send a batch and wait for the answer, for duration_s."""
    started = time.monotonic()
    cursor = 0

    async def client(index: int, http: HttpPool) -> None:
        nonlocal cursor
        turn = index
        while time.monotonic() - started < duration_s and cursor < len(txs):
            first, cursor = cursor, min(cursor + batch, len(txs))
            live = urls()
            if not live:
                await asyncio.sleep(0.1)
                continue
            turn += 1
            await _post(http, live[turn % len(live)], txs[first:cursor], hashes[first:cursor], log)

    await _run_clients(clients, client, HttpPool(timeout_s=30.0, per_host=clients, tls=tls))
    return cursor


async def _run_clients(
    clients: int, client: Callable[[int, HttpPool], Awaitable[None]], http: HttpPool
) -> None:
    """Run `clients` copies of `client` on one pool of keep-alive connections."""
    try:
        await asyncio.gather(*(client(i, http) for i in range(clients)))
    finally:
        await http.aclose()


COMMIT_WAIT_S = 5  # one long-poll; a client asks again until COMMIT_GIVE_UP_S
COMMIT_GIVE_UP_S = 30.0


async def closed_loop_commit(
    urls: Callable[[], list[str]],
    txs: list[bytes],
    hashes: list[bytes],
    clients: int,
    duration_s: float,
    log: LoadLog,
    tls: ssl.SSLContext | None = None,
) -> int:
    """`clients` clients, each sending one signed transaction to its node and waiting until
    that node says it is committed (`POST /v1/tx?wait_s=5` answers then; a `GET
    /v1/tx/{hash}?wait_s=5` follows if it did not), then the next: the closed loop of
    BFT-SMaRt's benchmark client. Client i uses node i mod n while it is up. A refusal
    (429) is counted and the client goes on."""
    started = time.monotonic()
    cursor = 0

    async def client(index: int, http: HttpPool) -> None:
        nonlocal cursor
        while time.monotonic() - started < duration_s and cursor < len(txs):
            i, cursor = cursor, cursor + 1
            live = urls()
            if not live:
                await asyncio.sleep(0.1)
                continue
            url = live[index % len(live)]
            log.submitted_at[hashes[i]] = time.time()
            log.offered += 1
            sent = time.monotonic()
            answer = await _submit_one(http, url, txs[i], hashes[i], log)
            if answer == "pending":  # not committed within the POST's own wait: poll
                answer = "committed" if await _wait_committed(http, url, hashes[i], log) else ""
            if answer == "committed":
                elapsed_ms = 1000 * (time.monotonic() - sent)
                log.client_commits.setdefault(index, []).append((time.time(), elapsed_ms))

    pool = HttpPool(COMMIT_GIVE_UP_S + 5, per_host=2 * clients, tls=tls)
    await _run_clients(clients, client, pool)
    return cursor


async def _submit_one(http: HttpPool, url: str, tx: bytes, tx_hash: bytes, log: LoadLog) -> str:
    """POST /v1/tx?wait_s=5: the node answers once the transaction is committed (200) or,
    after that wait, pending (202). "committed", "pending" or "" (refused, error)."""
    try:
        status, body = await http.post(url, f"/v1/tx?wait_s={COMMIT_WAIT_S}", tx)
    except HttpError as exc:
        log.count_error(exc.kind, 1)
        return ""
    if status in (200, 202):
        log.admitted.add(tx_hash)
        return str(json.loads(body)["status"]) if status == 200 else "pending"
    if status == 429:
        log.count_refused("mempool_full", 1)
    elif status < 500:
        log.count_refused(json.loads(body).get("error", f"http_{status}"), 1)
    else:
        log.count_error(f"http_{status}", 1)
    return ""


async def _wait_committed(http: HttpPool, url: str, tx_hash: bytes, log: LoadLog) -> bool:
    deadline = time.monotonic() + COMMIT_GIVE_UP_S
    path = f"/v1/tx/{tx_hash.hex()}?wait_s={COMMIT_WAIT_S}"
    while time.monotonic() < deadline:
        try:
            status, body = await http.get(url, path)
        except HttpError as exc:
            log.count_error(f"wait_{exc.kind}", 1)
            return False
        if status == 200 and json.loads(body)["status"] == "committed":
            return True
        if status != 200:  # 404: the node lost track of it (restarted, say)
            log.count_error(f"wait_http_{status}", 1)
            return False
    log.count_error("wait_gave_up", 1)
    return False
