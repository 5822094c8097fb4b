"""The refuel volume computed from raw OBD levels, on real daemons: the simulated fleet's
authority publishes its tank calibrations and every honest reading commits; then a
vehicle reporting a volume its own levels contradict is refused at the API with its
reason, `metroledger device calibrate-tank` publishes (or refuses) a calibration, and
every node holds the same state."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from analysis.tanks import volume_from_levels_ml
from ledger.crypto import get_suite
from ledger.readings import RefuelReading, sign_payload
from node.load import post_tx
from node.testnet import Daemon, running
from oracle.sim.fleet import Fleet, tank_model
from tests.e2e.test_network import caught_up, wait_until
from tests.e2e.test_oracles import key_file, simulation
from tests.e2e.test_type_approval import last_refuel


def calibrate(
    nodes: list[Daemon], tmp_path: Path, model: str, points: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "metroledger", "device", "calibrate-tank",
         "--nodes", ",".join(d.api for d in nodes), "--id", model, "--points", points,
         "--key", str(key_file(nodes[1].config.parent)),
         "--journal", str(tmp_path / "authority.sqlite3")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_volume_its_own_levels_contradict_is_refused_on_real_daemons(tmp_path: Path) -> None:
    with running(tmp_path, 4, "ed25519") as nodes:
        sim = simulation("ed25519", nodes, tmp_path / "journal.sqlite3", seed=5)
        sim.fleet, sim.readings = replace(sim.fleet, calibrated_tanks=True), 40
        report = asyncio.run(sim.run())
        assert report.outcomes == {"committed": 40}, report.reasons  # honest levels pass

        last = last_refuel(nodes[0].get, nodes[0].get("/v1/status")["height"])
        vehicle = next(v for v in Fleet(sim.fleet).vehicles if v.vehicle_id == last.vehicle_id)
        tank = nodes[2].get(f"/v1/tanks/{tank_model(vehicle.tank_ml)}")
        assert tank["points"] == [[0, 0], [255, vehicle.tank_ml]]
        twin = nodes[2].get(f"/v1/twins/{last.vehicle_id}")
        assert twin["type"]["tank"]["tank_model"] == tank_model(vehicle.tank_ml)

        key, suite = sim.vehicle_key(last.vehicle_id), get_suite("ed25519")
        seq = int(nodes[0].get(f"/v1/devices/{last.vehicle_id}")["last_seq"]) + 1

        def post(reading: RefuelReading) -> tuple[int, str]:
            answer = post_tx(nodes[3].api, sign_payload(suite, key, seq, reading, nodes[0].chain()),
                             wait_s=10)  # fmt: skip
            return answer.status, answer.body.get("error") or answer.body.get("status", "")

        fresh = replace(last, time_ms=last.time_ms + 60_000)
        made_up = replace(fresh, measured_volume_ml=fresh.measured_volume_ml + 3_000)
        assert post(made_up) == (422, "volume_contradicts_levels")
        levels = volume_from_levels_ml(tank["points"], fresh.tank_level_before_obd,
                                       fresh.tank_level_after_obd)  # fmt: skip
        assert abs(fresh.measured_volume_ml - levels) <= 1  # the sim's firmware is honest
        assert post(fresh) == (200, "committed")

        bad = calibrate(nodes, tmp_path, "tank-x", "0:0,128:30000,255:20000")
        assert bad.returncode == 2 and "invalid_tank_points" in bad.stderr
        good = calibrate(nodes, tmp_path, "tank-x", "0:0,128:30000,255:55000")
        assert good.returncode == 0, good.stderr
        caught_up(nodes, 1)
        assert nodes[1].get("/v1/tanks/tank-x")["points"] == [[0, 0], [128, 30_000], [255, 55_000]]
        roots = lambda: {d.get("/v1/status")["state_root"] for d in nodes}  # noqa: E731
        wait_until("the same state everywhere", lambda: len(roots()) == 1)
