"""The supervision workflow end to end, on four sm2 daemons (issue 17's main test):
three arrival batches of 500 meters, first verification by two institutions (one passes
failing meters), a GB/T 2828.1 sampling task per batch drawn from the chain, the
regulator's laboratory re-checking the drawn meters physically (its supervision records
and the re-check import), and the outcome: the dishonest institution's batch fails by the
batch rule and by the plan, the warning names it, the other batches pass, and every node
holds the same state root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis.sampling import draw
from ledger.types import Transaction
from node.keys import load_keys
from node.load import submit_all
from node.testnet import Daemon, running
from oracle.supervision import Supervision, SupervisionConfig
from tests.e2e.test_network import settled, wait_until

SUITE = "sm2"


def committer(nodes: list[Daemon]) -> Any:
    def submit(txs: list[Transaction]) -> list[str]:
        hashes = submit_all([d.api for d in nodes], txs, SUITE)
        wait_until(f"{len(txs)} transactions committed", lambda: settled(nodes, hashes), 180)
        return hashes

    return submit


def test_three_batches_two_institutions_sampling_and_recheck(tmp_path: Path) -> None:
    # batch 3's manufacturer fails 30 % of its meters and its institution passes them all:
    # a draw of 50 then holds 3 or more failing meters with probability 1 - 1e-6
    cfg = SupervisionConfig(batches=3, meters=500, failure_rate_pct=(0, 0, 30), lax_batches=(2,))
    with running(tmp_path, 4, SUITE) as nodes:
        keys = [load_keys(tmp_path / f"node{i}" / "keys" / "node_key.json").signing for i in (0, 1)]
        sim = Supervision(cfg, SUITE, nodes[0].chain(), *keys)
        outcomes = sim.run(committer(nodes), nodes[2].get)
        for b in range(3):  # anyone re-derives each draw from the chain
            task = nodes[3].get(f"/v1/meter/tasks/R17x{b}")
            assert (task["plan"]["sample_size"], task["plan"]["accept"]) == (50, 1)  # H: 500
            assert task["seed"] == nodes[0].get(f"/v1/blocks/{task['created_at'] - 1}")["hash"]
            lot = [sim.barcode(b, i) for i in range(500)]
            assert task["barcodes"] == draw(lot, 50, bytes.fromhex(task["seed"]))
        summary = [(o.institution, o.first_verification, o.lot, o.warnings) for o in outcomes]
        assert summary == [
            ("INST-A", "open", "accepted", []),
            ("INST-A", "open", "accepted", []),
            ("INST-B", "first_verification_failed", "not_accepted", ["INST-B"]),
        ]
        assert len({d.get("/v1/status")["state_root"] for d in nodes}) == 1
        lab = next(r for r in nodes[0].get("/v1/meter/overview")["institutions"]
                   if r["id"] == "REG-LAB")  # fmt: skip
        assert lab["sampling"]["records"] == 150
