"""Committed tx/s and commit latency of 4 real daemons on this machine.

Starts a fresh local network, pre-signs the transactions, submits them over
HTTP from `--clients` threads (round-robin over the nodes) and waits until the
last one has committed on every node. Latency is the nodes' own histogram of
admission-to-commit (metroledger_commit_latency_seconds), merged over nodes.

    python -m bench.daemon_load [--txs 3000] [--clients 32] [--suite ed25519]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.micro_consensus import machine
from node.load import chain_of, post_tx, sample_txs
from node.testnet import daemons, init_testnet, stop_all, wait_ready


def histogram(api: str) -> list[tuple[float, float]]:
    text = urllib.request.urlopen(api + "/metrics", timeout=5).read().decode()
    out = []
    for line in text.splitlines():
        if line.startswith("metroledger_commit_latency_seconds_bucket"):
            le = line.split('le="')[1].split('"')[0]
            out.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
    return out


def quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Upper bound of the bucket holding quantile q (histograms are coarse)."""
    total = buckets[-1][1]
    for bound, count in buckets:
        if count >= q * total:
            return bound
    return float("inf")


def run(txs_total: int, clients: int, suite: str) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="metroledger-bench-"))
    init_testnet(directory, 4, suite)
    nodes = daemons(directory)
    try:
        for d in nodes:
            d.start()
        wait_ready(nodes)
        txs = sample_txs(
            suite, txs_total, clients=max(clients, 20), chain=chain_of(directory / "genesis.json")
        )
        apis = [d.api for d in nodes]
        started = time.monotonic()
        with ThreadPoolExecutor(clients) as pool:
            results = list(
                pool.map(lambda k: post_tx(apis[k % 4], txs[k]).status, range(txs_total))
            )
        submitted = time.monotonic()
        target = int(nodes[0].get("/v1/status")["height"])
        while True:
            st = [d.get("/v1/status") for d in nodes]
            if all(s["mempool_size"] == 0 for s in st) and len({s["height"] for s in st}) == 1:
                break
            time.sleep(0.05)
        finished = time.monotonic()
        merged: dict[float, float] = {}
        for d in nodes:
            for bound, count in histogram(d.api):
                merged[bound] = merged.get(bound, 0) + count
        buckets = sorted(merged.items())
        accepted = sum(1 for s in results if s == 202)
        return {
            "nodes": 4, "suite": suite, "txs": txs_total, "accepted": accepted,
            "clients": clients, "tx_bytes": len(txs[0].encoded()),
            "submit_s": round(submitted - started, 2), "total_s": round(finished - started, 2),
            "committed_tps": round(accepted / (finished - started)),
            "latency_ms": {
                "p50_le": quantile(buckets, 0.5) * 1000, "p99_le": quantile(buckets, 0.99) * 1000
            },
            "blocks": int(st[0]["height"]), "height_before": target,
        }  # fmt: skip
    finally:
        stop_all(nodes)
        shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--txs", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--suite", default="ed25519", choices=["ed25519", "sm2"])
    parser.add_argument("--out", default="bench/results/daemon_load.json")
    args = parser.parse_args(argv)
    result = {"benchmark": "daemon_load", "date": time.strftime("%Y-%m-%d"), "machine": machine(),
              "result": run(args.txs, args.clients, args.suite)}  # fmt: skip
    print(json.dumps(result["result"]))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
