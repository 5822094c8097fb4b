"""`metroledger oracle simulate` through the SDK's gateways on four real daemons:
vehicles sending their own readings and smart meters reporting through concentrators,
from two worker processes; every reading committed once, the device registry counting
each device's readings, every journal row settled, and the SDK's CPU per reading in the
summary."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from node.testnet import running
from oracle.sim.fleet import Fleet, FleetConfig, MeterFleet
from tests.e2e.test_network import wait_until


def test_vehicles_and_concentrated_meters_commit_every_reading(tmp_path: Path) -> None:
    with running(tmp_path, 4, "ed25519") as nodes:
        journal = tmp_path / "journal"
        done = subprocess.run(
            [sys.executable, "-m", "metroledger", "oracle", "simulate", "--testnet", str(tmp_path),
             "--vehicles", "40", "--dispensers", "8", "--meters", "300", "--rate", "40/s",
             "--meter-rate", "150/s", "--duration", "4", "--processes", "2",
             "--concentrators", "3", "--journal", str(journal), "--seed", "5"],
            capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        summary = json.loads(done.stdout)
        assert summary["outcomes"] == {"committed": summary["submitted"]}
        assert summary["submitted"] >= 0.9 * 190 * 4 and summary["sdk_cpu_us_per_reading"] > 0
        assert summary["requests"] < summary["submitted"]  # the meters' readings were batched
        rows = [r for f in journal.rglob("worker-*.sqlite3")
                for r in sqlite3.connect(f).execute("SELECT status FROM txs")]  # fmt: skip
        assert len(rows) == summary["submitted"] and {r[0] for r in rows} == {"committed"}
        fleet = Fleet(FleetConfig(vehicles=40, dispensers=8, seed=5))
        devices = [v.vehicle_id for v in fleet.vehicles]
        devices += [m.meter_id for m in MeterFleet(300, 5).meters]
        counted = sum(nodes[2].get(f"/v1/devices/{d}")["readings"] for d in devices)
        assert counted == summary["submitted"]  # each committed once, by the registry
        wait_until("every node at one height and root", lambda: len(
            {(d.get("/v1/status")["height"], d.get("/v1/status")["state_root"]) for d in nodes}
        ) == 1)  # fmt: skip
