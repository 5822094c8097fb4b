"""Any n >= 1 forms a network, with f = floor((n - 1) / 3): the Tianjin specification's
provincial chain has three nodes. Below four, f = 0 (every member must vote) and each
node warns at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.load import sample_txs, submit_all
from node.testnet import running
from tests.e2e.test_network import settled, wait_until

SUITE = "ed25519"


@pytest.mark.parametrize("n", [1, 3])
def test_a_network_below_four_commits_and_warns(tmp_path: Path, n: int) -> None:
    with running(tmp_path, n, SUITE) as nodes:
        wait_until("linked", lambda: all(d.get("/v1/status")["peers_connected"] == n - 1
                                         for d in nodes))  # fmt: skip
        txs = sample_txs(SUITE, 30, chain=nodes[0].chain())
        hashes = submit_all([d.api for d in nodes], txs, SUITE)
        wait_until(f"committed by all {n}", lambda: settled(nodes, hashes))
        for d in nodes:
            log = (d.config.parent / "node.log").read_text()
            assert "tolerate no faulty or stopped member" in log
