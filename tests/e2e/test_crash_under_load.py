"""A backup killed (SIGKILL) while blocks stream in, and started again while they still do:
blocks that it had delivered but not yet stored (its delivery task runs beside the core)
are lost with the process, and it must get them back from its peers. Nothing committed is
lost; it ends with the same blocks and state roots as the others."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path

from ledger.crypto import get_suite
from ledger.types import Transaction, compute_tx_hash, join_encoded
from node.load import sample_txs
from node.testnet import Daemon, running, wait_ready
from tests.e2e.test_network import chain, settled, wait_until

SUITE = "ed25519"
TXS, BATCH = 6_000, 200
HASHING = get_suite(SUITE)


def post_batch(api: str, txs: list[Transaction]) -> list[str]:
    """The hashes of the batch's transactions the node took (pending or committed)."""
    request = urllib.request.Request(
        api + "/v1/txs",
        data=join_encoded([tx.encoded() for tx in txs]),
        method="POST",
        headers={"content-type": "application/octet-stream"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        results = json.loads(response.read())["results"]
    return [r["tx_hash"] for r in results if r["status"] != "refused"]


def stream(
    apis: list[str], txs: list[Transaction], taken: list[str], third: threading.Event
) -> None:
    for k in range(0, len(txs), BATCH):
        batch = txs[k : k + BATCH]
        for _ in range(50):  # a full mempool refuses some: offer those again
            got = set(post_batch(apis[(k // BATCH) % len(apis)], batch))
            taken += sorted(got)
            batch = [tx for tx in batch if compute_tx_hash(HASHING, tx).hex() not in got]
            if not batch:
                break
            time.sleep(0.2)
        if k >= len(txs) // 3:
            third.set()


def test_a_backup_killed_under_load_recovers_every_block(tmp_path: Path) -> None:
    with running(tmp_path, 4, SUITE) as nodes:
        victim: Daemon = nodes[3]  # a backup: the primary of view 0 is member 0
        txs = sample_txs(SUITE, TXS, clients=200, chain=nodes[0].chain())
        taken: list[str] = []
        third = threading.Event()
        load = threading.Thread(target=stream, args=([d.api for d in nodes[:3]], txs, taken, third))
        load.start()
        assert third.wait(120), "the load did not get going"
        height_at_kill = victim.get("/v1/status")["height"]
        victim.kill()
        time.sleep(0.5)
        victim.start()
        wait_ready([victim])
        restored = victim.get("/v1/status")["height"]
        load.join(300)
        assert not load.is_alive()
        assert len(set(taken)) == TXS
        wait_until("all committed everywhere", lambda: settled(nodes, taken[::97]), 120)
        print(f"killed at height {height_at_kill}, restarted at {restored}, "
              f"now {victim.get('/v1/status')['height']}")  # fmt: skip
        assert chain(victim) == chain(nodes[0])
        assert all(victim.get(f"/v1/tx/{h}")["status"] == "committed" for h in taken[::53])
