"""`metroledger demo`: a local network of 4 daemons, a short load, what committed."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from node.load import sample_txs, submit_all
from node.testnet import Daemon, daemons, init_testnet, wait_ready


def add_demo_parser(commands: Any) -> None:
    p = commands.add_parser(
        "demo", help="start 4 local daemons, send sample readings, print results"
    )
    p.add_argument("--txs", type=int, default=500, help="transactions to send (default 500)")
    p.add_argument("--suite", default="ed25519", choices=["ed25519", "sm2"])
    p.add_argument("--dir", type=Path, help="keep the network here (default: a temporary folder)")
    p.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    directory = args.dir or Path(tempfile.mkdtemp(prefix="metroledger-demo-"))
    print(f"creating a 4-node network ({args.suite}) in {directory}")
    init_testnet(directory, 4, args.suite)
    nodes = daemons(directory)
    try:
        for d in nodes:
            d.start()
        wait_ready(nodes)
        print("4 daemons up (py-libp2p on loopback, SQLite on disk, HTTP APIs)")
        started = time.monotonic()
        txs = sample_txs(args.suite, args.txs)
        hashes = submit_all([d.api for d in nodes], txs, args.suite)
        print(f"sent {len(hashes)} signed transactions in {time.monotonic() - started:.1f}s")
        if not wait_committed(nodes, hashes[-1]):
            print("not everything committed within 60 s", file=sys.stderr)
            return 1
        print_table(nodes)
        return 0
    finally:
        for d in nodes:
            d.stop()
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


def wait_committed(nodes: list[Daemon], last_hash: str, timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if all(d.get(f"/v1/tx/{last_hash}")["status"] == "committed" for d in nodes):
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def print_table(nodes: list[Daemon]) -> None:
    print(f"\n{'node':6} {'height':>6} {'txs':>6} {'view':>4}  state root")
    for d in nodes:
        status = d.get("/v1/status")
        print(f"{d.config.parent.name:6} {status['height']:>6} {committed_txs(d):>6} "
              f"{status['view']:>4}  {status['state_root'][:16]}")  # fmt: skip


def committed_txs(node: Daemon) -> int:
    text = urllib.request.urlopen(node.api + "/metrics", timeout=2).read().decode()
    line = next(x for x in text.splitlines() if x.startswith("metroledger_tx_committed_total "))
    return int(float(line.split()[-1]))
