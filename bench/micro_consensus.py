"""How many client transactions per second the pure PBFT core orders.

n in-process replicas, zero network delay, no faults; every replica runs in
this one process, on one core. Client transaction signatures are not verified
(the mempool does that once per node, outside the core); consensus messages are
signed and verified with the chosen suite. Reports the aggregate rate (all n
replicas sharing one core) and the per-replica rate (CPU time of one replica).

    python -m bench.micro_consensus [--txs 50000] [--batch 1000] [--suite ed25519]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from consensus.config import ProtocolConfig
from consensus.events import Broadcast, ClientRequest, Deliver, Receive, Send, Tick
from consensus.replica import Replica
from consensus.signer import Signer, SuiteSigner
from ledger.crypto import get_suite
from ledger.types import Transaction
from sim.fakes import MacSigner, make_client_tx, member_secret


class TrustAll:
    """Client signatures were checked by the mempool before the core saw them."""

    def is_valid(self, tx: Transaction) -> bool:
        return True


def make_signers(n: int, suite_name: str) -> tuple[tuple[bytes, ...], list[Signer]]:
    if suite_name == "mac":
        secrets = tuple(member_secret(0, i) for i in range(n))
        return secrets, [MacSigner(secrets, i) for i in range(n)]
    suite = get_suite(suite_name)
    keys = [suite.keypair_from_seed(f"bench-{i}".encode()) for i in range(n)]
    members = tuple(k.public_key for k in keys)
    chain = ProtocolConfig.genesis_hash  # the in-process network's (default) chain hash
    return members, [SuiteSigner(suite, members, k.secret_key, chain) for k in keys]


def run(n: int, txs_total: int, batch: int, suite_name: str) -> dict[str, Any]:
    members, signers = make_signers(n, suite_name)
    cfg = ProtocolConfig(
        members=members, batch_max_txs=batch, checkpoint_interval=16, watermark_window=64,
        max_pending_requests=txs_total + 1, request_timeout_ms=10**9, censorship_timeout_ms=10**9,
    )  # fmt: skip
    replicas = [Replica(cfg, i, signers[i], TrustAll()) for i in range(n)]
    payload = bytes(160)  # a ~270-byte transaction, the size of a signed reading
    txs = [make_client_tx(k % 5000, k // 5000 + 1, payload) for k in range(txs_total)]
    cpu: defaultdict[int, float] = defaultdict(float)
    delivered = [0] * n
    queue: deque[tuple[int, int, bytes]] = deque()

    def feed(i: int, event: Any) -> None:
        started = time.perf_counter()
        actions = replicas[i].handle(event)
        cpu[i] += time.perf_counter() - started
        for a in actions:
            if isinstance(a, Broadcast):
                queue.extend((j, i, a.data) for j in range(n) if j != i)
            elif isinstance(a, Send):
                queue.append((a.to, i, a.data))
            elif isinstance(a, Deliver):
                delivered[i] += len(a.block.txs)

    wall = time.perf_counter()
    now_ms = 0
    chunk = batch * 4
    for start in range(0, txs_total, chunk):
        for tx in txs[start : start + chunk]:
            for i in range(n):
                feed(i, ClientRequest(tx))
        drain(queue, feed, replicas, now_ms)
        now_ms += 1
    while min(delivered) < txs_total:
        now_ms += cfg.batch_timeout_ms
        for i in range(n):
            feed(i, Tick(now_ms))
        drain(queue, feed, replicas, now_ms)
    wall = time.perf_counter() - wall
    heights = {r.delivered_height for r in replicas}
    return {
        "n": n, "suite": suite_name, "txs": txs_total, "batch_max_txs": batch,
        "tx_bytes": len(txs[0].encoded()), "blocks": max(heights),
        "wall_s": round(wall, 3),
        "aggregate_tps": round(txs_total / wall),
        "per_replica_tps": round(txs_total / (sum(cpu.values()) / n)),
    }  # fmt: skip


def drain(
    queue: deque[tuple[int, int, bytes]], feed: Any, replicas: list[Replica], now_ms: int
) -> None:
    while queue:
        dst, src, data = queue.popleft()
        feed(dst, Receive(src, data))


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--txs", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--suite", default="ed25519", choices=["ed25519", "sm2", "mac"])
    parser.add_argument("--out", default="bench/results/micro_consensus.json")
    args = parser.parse_args(argv)
    result = {"benchmark": "micro_consensus", "machine": machine(),
              "result": run(args.n, args.txs, args.batch, args.suite),
              "date": time.strftime("%Y-%m-%d")}  # fmt: skip
    print(json.dumps(result["result"]))
    if args.out:
        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        runs = json.loads(path.read_text()) if path.exists() else []
        runs = [r for r in runs if r["result"]["suite"] != args.suite or r["result"]["n"] != args.n
                or r["result"]["batch_max_txs"] != args.batch]  # fmt: skip
        path.write_text(json.dumps([*runs, result], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
