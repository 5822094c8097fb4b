"""The approved legally relevant software on real daemons: an authority approves the
fleet's vehicle model with one software hash (`metroledger device approve-type`); then a
reading with another hash, or none, is refused at the API with its reason, one with the
approved hash commits, and the instrument's twin shows the approval and the version."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ledger.crypto import get_suite
from ledger.encoding import decode
from ledger.readings import RefuelReading, sign_payload
from ledger.types import Block
from node.load import post_tx
from node.testnet import running
from tests.e2e.test_network import caught_up, wait_until
from tests.e2e.test_oracles import key_file, simulation

APPROVED = hashlib.sha256(b"sim-OBD firmware 3.1, as type-approved").digest()
ROGUE = hashlib.sha256(b"sim-OBD firmware 3.1, patched").digest()


def last_refuel(api_get: Callable[[str], Any], height: int) -> RefuelReading:
    for h in range(height, 0, -1):
        block = Block.decode(bytes.fromhex(api_get(f"/v1/blocks/{h}")["encoded"]))
        for tx in reversed(block.txs):
            if tx.kind == "refuel":
                return RefuelReading.from_wire(decode(tx.payload))
    raise AssertionError("no refuel committed")


def test_a_reading_with_unapproved_software_is_refused_with_its_reason(tmp_path: Path) -> None:
    with running(tmp_path, 4, "ed25519") as nodes:
        sim = simulation("ed25519", nodes, tmp_path / "journal.sqlite3", seed=3)
        sim.readings = 20
        report = asyncio.run(sim.run())
        assert report.outcomes == {"committed": 20}, report.reasons
        approve = subprocess.run(
            [sys.executable, "-m", "metroledger", "device", "approve-type",
             "--nodes", ",".join(d.api for d in nodes), "--id", "sim-OBD", "--kind", "vehicle",
             "--approval-no", "INMETRO-2026-041", "--accuracy-class", "2",
             "--software", APPROVED.hex(), "--key", str(key_file(nodes[1].config.parent)),
             "--journal", str(tmp_path / "authority.sqlite3")],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert approve.returncode == 0, approve.stderr
        caught_up(nodes, 2)
        approval = nodes[2].get("/v1/types/sim-OBD")
        assert approval["approved_software"] == [APPROVED.hex()]
        assert approval["approval_no"] == "INMETRO-2026-041"

        last = last_refuel(nodes[0].get, nodes[0].get("/v1/status")["height"])
        vehicle = sim.vehicle_key(last.vehicle_id)
        seq = int(nodes[0].get(f"/v1/devices/{last.vehicle_id}")["last_seq"]) + 1
        suite = get_suite("ed25519")

        def post(reading: RefuelReading) -> tuple[int, str]:
            tx = sign_payload(suite, vehicle, seq, reading, nodes[0].chain())
            answer = post_tx(nodes[3].api, tx, wait_s=10)
            return answer.status, answer.body.get("error") or answer.body.get("status", "")

        fresh = replace(last, time_ms=last.time_ms + 60_000)
        assert post(replace(fresh, software_hash=ROGUE)) == (422, "unapproved_software")
        assert post(fresh) == (422, "software_hash_missing")
        assert post(replace(fresh, software_hash=APPROVED)) == (200, "committed")
        caught_up(nodes, 1)
        twin = nodes[1].get(f"/v1/twins/{last.vehicle_id}")
        assert twin["type"]["type_approval"]["approved_software"] == [APPROVED.hex()]
        assert twin["instance"]["software_hash"] == APPROVED.hex()
        assert ["software", APPROVED.hex()] in [[e["event"], e["detail"]] for e in twin["log"]]
        roots = lambda: {d.get("/v1/status")["state_root"] for d in nodes}  # noqa: E731
        wait_until("the same state everywhere", lambda: len(roots()) == 1)
