"""The supervision workflow end to end, on four sm2 daemons (issue 17's main test):
three arrival batches of 500 meters, first verification by two institutions (one passes
failing meters), a GB/T 2828.1 sampling task per batch drawn from the chain, the
regulator's laboratory re-checking the drawn meters physically (its supervision records
and the re-check import), and the outcome: the dishonest institution's batch fails by the
batch rule and by the plan, the warning names it, the other batches pass, and every node
holds the same state root."""

from __future__ import annotations

import random
from pathlib import Path

from analysis.sampling import draw
from ledger.crypto import get_suite
from ledger.verification import (
    ITEMS,
    NOT_QUALIFIED,
    QUALIFIED,
    InstitutionChange,
    MeterAsset,
    RecheckImport,
    SamplingTask,
    VerificationRecord,
)
from node.keys import load_keys
from node.load import submit_all
from node.testnet import running
from tests.e2e.test_network import settled, wait_until
from tests.e2e.test_verification import SUITE, Signer

METERS, BATCHES = 500, ("B1", "B2", "B3")
DATE = "2024-12-31 13:57:19"


def code(batch: int, i: int) -> str:
    return f"123000100{batch}{i:012d}"


def items(result: str) -> tuple[tuple[str, str, int], ...]:
    return tuple((c, result if c == "BASICERR_Meter_CONC" else QUALIFIED, 1_000) for c in ITEMS)


def asset(b: int, i: int, batch: str) -> MeterAsset:
    return MeterAsset(code(b, i), f"{batch}-{i}", batch, "Maker", "DDZY", "01", "2", "Tianjin")


def sampled(b: int, barcode: str, result: str) -> VerificationRecord:
    return VerificationRecord(f"S{b}", barcode, DATE, "REG-LAB", "sampling", items(result), result)


def test_three_batches_two_institutions_sampling_and_recheck(tmp_path: Path) -> None:
    rng = random.Random(17)
    # ground truth: batch B3 has 30 % failing meters, which its institution passes (a draw
    # of 50 then holds 3 or more with probability 1 - 1e-6: the batch rule must fire)
    bad = {code(3, i) for i in rng.sample(range(METERS), METERS * 3 // 10)}
    with running(tmp_path, 4, SUITE) as nodes:
        suite, s = get_suite(SUITE), Signer(nodes[0].chain())
        apis = [d.api for d in nodes]
        regulator = load_keys(tmp_path / "node0" / "keys" / "node_key.json").signing
        utility = load_keys(tmp_path / "node1" / "keys" / "node_key.json").signing
        honest, lax, lab = (suite.keypair_from_seed(x) for x in (b"inst-a", b"inst-b", b"lab"))
        txs = [s.tx(regulator, InstitutionChange("register", iid, iid, key.public_key))
               for iid, key in (("INST-A", honest), ("INST-B", lax), ("REG-LAB", lab))]  # fmt: skip
        for b, batch in enumerate(BATCHES, 1):
            txs += [s.tx(utility, asset(b, i, batch)) for i in range(METERS)]
        verifiers = [("INST-A", honest), ("INST-A", honest), ("INST-B", lax)]
        for b, (iid, key) in enumerate(verifiers, 1):
            txs += [s.tx(key, VerificationRecord(f"F{b}", code(b, i), DATE, iid, "first",
                                                 items(QUALIFIED), QUALIFIED))
                    for i in range(METERS)]  # fmt: skip
        hashes = submit_all(apis, txs, SUITE)
        wait_until("registries and first verification committed", lambda: settled(nodes, hashes),
                   timeout_s=180)  # fmt: skip
        tasks = [s.tx(regulator, SamplingTask(f"R{b}", batch, "II", "1.0", "normal", "physical"))
                 for b, batch in enumerate(BATCHES, 1)]  # fmt: skip
        hashes = submit_all(apis, tasks, SUITE)
        wait_until("sampling tasks committed", lambda: settled(nodes, hashes))
        follow_up = []
        for b, batch in enumerate(BATCHES, 1):
            task = nodes[b].get(f"/v1/meter/tasks/R{b}")
            assert (task["plan"]["sample_size"], task["plan"]["accept"]) == (50, 1)  # H: 500
            seed = bytes.fromhex(task["seed"])  # the hash of the block before the task's
            height = task["created_at"]
            assert seed.hex() == nodes[0].get(f"/v1/blocks/{height - 1}")["hash"]
            assert task["barcodes"] == draw([code(b, i) for i in range(METERS)], 50, seed)
            truth = {c: NOT_QUALIFIED if c in bad else QUALIFIED for c in task["barcodes"]}
            follow_up += [s.tx(lab, sampled(b, c, r)) for c, r in truth.items()]
            rows = tuple((c, r, tuple((i, r if i == "BASICERR_Meter_CONC" else QUALIFIED)
                                      for i in ITEMS)) for c, r in truth.items())  # fmt: skip
            follow_up.append(s.tx(regulator, RecheckImport(f"R{b}", batch, rows)))
        hashes = submit_all(apis, follow_up, SUITE)
        wait_until("sampling records and re-checks committed", lambda: settled(nodes, hashes))
        verdicts = {b: nodes[2].get(f"/v1/meter/tasks/R{i}")["result"]
                    for i, b in enumerate(BATCHES, 1)}  # fmt: skip
        assert verdicts == {"B1": "accepted", "B2": "accepted", "B3": "not_accepted"}
        statuses = {b: nodes[3].get(f"/v1/meter/batches/{b}")["status"] for b in BATCHES}
        assert statuses == {"B1": "open", "B2": "open", "B3": "first_verification_failed"}
        warnings = nodes[1].get("/v1/events?name=warning")["events"]
        assert [w["data"]["to"] for w in warnings] == ["INST-B"]
        assert len({d.get("/v1/status")["state_root"] for d in nodes}) == 1
        overview = nodes[0].get("/v1/meter/overview")
        lab_row = next(r for r in overview["institutions"] if r["id"] == "REG-LAB")
        assert lab_row["sampling"]["records"] == 150
