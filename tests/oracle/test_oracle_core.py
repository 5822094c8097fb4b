"""Oracle parts without a network: the journal, the fleet models, key files, the CLI parsing."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from ledger.crypto import get_suite
from ledger.readings import RefuelReading, sign_payload
from ledger.types import compute_tx_hash
from oracle.cli import parse_rate
from oracle.client import OracleClient
from oracle.journal import COMMITTED, QUEUED, Journal
from oracle.keys import load_signing_key, write_device_key
from oracle.sim.fleet import Fleet, FleetConfig, MeterFleet

SUITE = get_suite("ed25519")
CHAIN = b"\x05" * 32  # a chain hash: these tests reach no node
KEY = SUITE.keypair_from_seed(b"vehicle")
READING = RefuelReading("veh-1", "d-1", "s-1", 30_000, 29_000, 10, 120, 5, 1_800_000_000_000)


def test_journal_survives_reopening_and_keeps_order(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    txs = [sign_payload(SUITE, KEY, seq, READING, CHAIN) for seq in (1, 2, 3)]
    for tx in txs:
        journal.add(tx, compute_tx_hash(SUITE, tx))
    journal.settle(compute_tx_hash(SUITE, txs[0]), COMMITTED, height=4)
    journal.close()
    again = Journal(path)
    assert again.high_seq(KEY.public_key) == 3
    assert [e.tx.seq for e in again.unfinished(KEY.public_key)] == [2, 3]
    assert again.counts() == {COMMITTED: 1, QUEUED: 2}
    found = again.find_payload(KEY.public_key, READING.KIND, READING.encode())
    assert found is not None and found.tx.seq == 3  # the newest one the ledger did not refuse


def test_client_signs_one_sequence_number_per_payload_across_restarts(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite3"
    dead = ["http://127.0.0.1:9"]  # discard port: nothing answers

    async def session(readings: list[RefuelReading]) -> list[str]:
        async with OracleClient(dead, KEY, journal=journal, chain=CHAIN) as client:
            return [client.submit(r) for r in readings]

    second = RefuelReading(**{**vars(READING), "time_ms": READING.time_ms + 1})
    first_hashes = asyncio.run(session([READING]))
    later = asyncio.run(session([READING, second]))
    assert later[0] == first_hashes[0]
    entries = Journal(journal).unfinished(KEY.public_key)
    assert [e.tx.seq for e in entries] == [1, 2]


def test_submit_before_start_is_refused() -> None:
    client = OracleClient(["http://127.0.0.1:9"], KEY, chain=CHAIN)
    with pytest.raises(RuntimeError, match="start"):
        client.submit(READING)


def test_fleet_is_reproducible_from_its_seed() -> None:
    config = FleetConfig(
        vehicles=30, dispensers=8, seed=5, fraud_fraction=0.25, collude_fraction=0.1
    )
    a, b = Fleet(config), Fleet(config)
    assert [a.refuel() for _ in range(200)] == [b.refuel() for _ in range(200)]
    other = Fleet(FleetConfig(vehicles=30, dispensers=8, seed=6))
    assert [r for _, r in (other.refuel() for _ in range(5))] != [
        r for _, r in (a.refuel() for _ in range(5))
    ]


def test_fleet_models_fraud_and_quantisation() -> None:
    fleet = Fleet(
        FleetConfig(
            vehicles=200,
            dispensers=10,
            seed=1,
            fraud_fraction=0.2,
            fraud_shortfall_pct=5,
            noise_pct=0.5,
            bias_sd_pct=0,
        )
    )
    assert sum(d.fraudulent for d in fleet.dispensers) == 2
    ratios: dict[str, list[float]] = {}
    for _ in range(3000):
        index, r = fleet.refuel()
        vehicle = fleet.vehicles[index]
        step_ml = vehicle.tank_ml / 255
        assert abs(r.measured_volume_ml / step_ml - round(r.measured_volume_ml / step_ml)) < 0.01
        ratios.setdefault(r.dispenser_id, []).append(r.measured_volume_ml / r.dispensed_volume_ml)
    for d in fleet.dispensers:
        mean = sum(ratios[d.dispenser_id]) / len(ratios[d.dispenser_id])
        expected = 0.95 if d.fraudulent else 1.0
        assert abs(mean - expected) < 0.01, (d, mean)


def test_colluding_vehicles_cover_a_fraudulent_dispenser() -> None:
    fleet = Fleet(
        FleetConfig(vehicles=50, dispensers=4, seed=2, fraud_fraction=0.25, collude_fraction=1.0)
    )
    for _ in range(100):
        _index, r = fleet.refuel()
        dispenser = next(d for d in fleet.dispensers if d.dispenser_id == r.dispenser_id)
        if dispenser.fraudulent:
            assert r.measured_volume_ml == r.dispensed_volume_ml


def test_meter_energy_is_cumulative() -> None:
    meters = MeterFleet(5, seed=1)
    readings = [meters.reading(0) for _ in range(20)]
    energies = [r.energy_wh for r in readings]
    assert energies == sorted(energies) and energies[0] > 0


def test_device_key_files(tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    key = write_device_key(path, "sm2")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_signing_key(path) == ("sm2", key)
    with pytest.raises(FileExistsError):
        write_device_key(path, "sm2")
    path.write_text("{}")
    with pytest.raises(ValueError, match="not a usable key file"):
        load_signing_key(path)


def test_parse_rate() -> None:
    assert parse_rate("200/s") == 200.0 and parse_rate("0/s") == 0.0  # none of that kind
    for bad in ("fast", "nan/s", "-3"):
        with pytest.raises(ValueError, match="rate"):
            parse_rate(bad)


def test_a_scale_run_refuses_settings_that_offer_nothing_or_have_no_meters() -> None:
    from oracle.sim.fleet import FleetConfig
    from oracle.sim.scale import ScaleConfig

    cases = (({"vehicle_rate": 0.0}, "offer some"), ({"meter_rate": 5.0}, "--meters"),
             ({"processes": 0}, "processes"), ({"duration_s": 0}, "duration"))  # fmt: skip
    for bad, match in cases:
        with pytest.raises(ValueError, match=match):
            ScaleConfig(FleetConfig(), **bad)  # type: ignore[arg-type]
    assert ScaleConfig(FleetConfig(), meters=4001).concentrator_count == 3


def test_export_outside_a_testnet_needs_an_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import argparse

    from bench.lake import run_export

    monkeypatch.chdir(tmp_path)  # not a testnet folder
    assert run_export(argparse.Namespace(api=None, dir=tmp_path / "lake")) == 2
    assert not (tmp_path / "lake").exists()


def test_a_calibrated_fleet_reports_volumes_its_levels_agree_with() -> None:
    """With `calibrated_tanks`, each reading's volume is its levels' difference (honest
    firmware, and colluders who fake the level along with the volume), so the ledger's
    check passes them; the readings' errors still carry the sensor's noise."""
    from analysis.tanks import volume_from_levels_ml, volume_problem

    fleet = Fleet(FleetConfig(vehicles=50, dispensers=8, seed=4, collude_fraction=0.2,
                              collusion="cover+frame", calibrated_tanks=True))  # fmt: skip
    points = {c.tank_model: [list(p) for p in c.points] for c in fleet.tank_calibrations()}
    tanks = {v.vehicle_id: f"sim-tank-{v.tank_ml // 1000}L" for v in fleet.vehicles}
    errors = set()
    for _ in range(400):
        _, r = fleet.refuel()
        table = points[tanks[r.vehicle_id]]
        assert volume_problem({"points": table}, r) is None
        levels = volume_from_levels_ml(table, r.tank_level_before_obd, r.tank_level_after_obd)
        assert abs(r.measured_volume_ml - levels) <= 1
        errors.add(round(100 * r.measured_volume_ml / r.dispensed_volume_ml))
    assert len(errors) > 5  # not all one value: the noise is in the levels


def test_framers_accuse_their_targets_only() -> None:
    fleet = Fleet(FleetConfig(vehicles=30, dispensers=10, seed=2, fraud_fraction=0.2,
                              collude_fraction=1.0, collusion="frame", frame_pct=4.0))  # fmt: skip
    fraudulent = {d.dispenser_id for d in fleet.dispensers if d.fraudulent}
    assert len(fleet.framed) == 2 and not fleet.framed & fraudulent
    for _ in range(300):
        _, r = fleet.refuel()
        framed = r.measured_volume_ml == round(r.dispensed_volume_ml * 0.96)
        assert framed == (r.dispenser_id in fleet.framed)
