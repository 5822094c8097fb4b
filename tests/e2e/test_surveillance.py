"""A fraudulent dispenser in a simulated fleet is flagged through the HTTP API of every node,
identically, on 4 real daemons."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.testnet import Daemon, running
from oracle.keys import load_signing_key
from oracle.sim.fleet import Fleet, FleetConfig
from oracle.sim.run import Simulation
from tests.e2e.test_network import wait_until

FLEET = FleetConfig(
    vehicles=60, dispensers=3, seed=11, fraud_fraction=1 / 3, fraud_shortfall_pct=5.0, noise_pct=1.0
)


@pytest.fixture
def network(tmp_path: Path) -> Iterator[list[Daemon]]:
    with running(tmp_path, 4, "ed25519", {"surveillance": {"min_vehicles": 15}}) as nodes:
        yield nodes


def test_fraudulent_dispenser_is_flagged_identically_on_every_node(
    network: list[Daemon], tmp_path: Path
) -> None:
    nodes = network
    homes = [d.config.parent / "keys" / "node_key.json" for d in nodes]
    sim = Simulation(
        [d.api for d in nodes],
        "ed25519",
        FLEET,
        load_signing_key(homes[0])[1],
        [load_signing_key(h)[1] for h in homes[1:3]],
        tmp_path / "journal.sqlite3",
        readings=240,
        rate_per_s=100,
    )
    report = asyncio.run(sim.run())
    assert report.outcomes == {"committed": 240}, report.reasons
    truth = {d.dispenser_id for d in Fleet(FLEET).dispensers if d.fraudulent}
    assert len(truth) == 1

    def same_height() -> bool:
        return len({d.get("/v1/status")["state_root"] for d in nodes}) == 1

    wait_until("same state everywhere", same_height)
    suspects = [d.get("/v1/dispensers?status=suspect") for d in nodes]
    assert all(s == suspects[0] for s in suspects), "nodes disagree"
    assert {x["dispenser_id"] for x in suspects[0]["dispensers"]} == truth
    (flagged,) = suspects[0]["dispensers"]
    assert flagged["interval_ppm"][1] < -5_000 and flagged["vehicles"] >= 15
    honest = nodes[0].get("/v1/dispensers")["dispensers"]
    assert {x["status"] for x in honest if x["dispenser_id"] not in truth} <= {
        "cleared",
        "undecided",
    }
    events = nodes[2].get("/v1/events?name=dispenser_flagged")["events"]
    assert [e["data"]["dispenser_id"] for e in events] == sorted(truth)
    vehicle = nodes[3].get("/v1/vehicles/veh-11-00000")
    assert (
        vehicle["device_status"] == "active" and sum(vehicle["readings_by_dispenser"].values()) >= 1
    )


def test_the_lake_holds_what_the_contract_counted(network: list[Daemon], tmp_path: Path) -> None:
    """`metroledger export` writes the committed refuels as Parquet; DuckDB reads them with
    the queries of docs/lake.md: per dispenser, the contract's reading counts, and the
    cheating dispenser's shortfall the largest; the contract replayed over the lake gives
    every dispenser's estimate, interval and status exactly. A second run adds only new
    blocks."""
    import json

    import duckdb

    from bench.lake import export, replay_surveillance
    from ledger.crypto import get_suite
    from ledger.readings import RefuelReading, sign_payload
    from ledger.types import compute_tx_hash
    from node.load import submit_all

    nodes = network
    homes = [d.config.parent / "keys" / "node_key.json" for d in nodes]
    sim = Simulation([d.api for d in nodes], "ed25519", FLEET, load_signing_key(homes[0])[1],
                     [load_signing_key(h)[1] for h in homes[1:3]], tmp_path / "journal.sqlite3",
                     readings=90, rate_per_s=100)  # fmt: skip
    assert asyncio.run(sim.run()).outcomes == {"committed": 90}
    lake = tmp_path / "lake"
    first = export(nodes[1].api, lake)
    manifest = json.loads((lake / "_export.json").read_text())
    assert first["refuel"] == 90 and first["block"] == manifest["height"] > 0
    refuels = f"read_parquet('{lake}/kind=refuel/*/*.parquet', hive_partitioning = true)"
    rows = duckdb.sql(f"""
        SELECT dispenser_id, count(*) AS readings,
               avg(measured_volume_ml / dispensed_volume_ml - 1) AS mean_shortfall
        FROM {refuels} GROUP BY dispenser_id ORDER BY mean_shortfall""").fetchall()  # fmt: skip
    counted = {
        d["dispenser_id"]: d["readings"] for d in nodes[1].get("/v1/dispensers")["dispensers"]
    }
    assert {r[0]: r[1] for r in rows} == counted
    truth = next(d.dispenser_id for d in Fleet(FLEET).dispensers if d.fraudulent)
    assert rows[0][0] == truth
    # the contract run again over the lake reproduces every dispenser's record exactly
    genesis = json.loads((tmp_path / "genesis.json").read_text())
    replayed = replay_surveillance(lake, genesis["contracts"])
    for d in nodes[1].get("/v1/dispensers")["dispensers"]:
        again = replayed[d["dispenser_id"]]
        assert [again["estimate"], again["lower"], again["upper"], again["status"]] == [
            d["estimate_ppm"], *d["interval_ppm"], d["status"]], d  # fmt: skip
    again = export(nodes[1].api, lake)  # nothing new yet but the blocks since
    assert again["refuel"] == 0
    vehicle = Fleet(FLEET).vehicles[0]
    key = sim.vehicle_key(vehicle.vehicle_id)
    high = nodes[0].get(f"/v1/clients/{key.public_key.hex()}")["committed_high_seq"]
    reading = RefuelReading(vehicle.vehicle_id, "disp-0000", "station-000", 30_000, 29_000, 10,
                            200, 1_000_000, 1_900_000_000_000)  # fmt: skip
    suite = get_suite("ed25519")
    tx = sign_payload(suite, key, high + 1, reading, nodes[0].chain())
    assert submit_all([nodes[0].api], [tx], "ed25519")
    path = f"/v1/tx/{compute_tx_hash(suite, tx).hex()}"
    wait_until("the new reading committed", lambda: nodes[1].get(path)["status"] == "committed")
    assert export(nodes[1].api, lake)["refuel"] == 1
    (total,) = duckdb.sql(f"SELECT count(*), count(DISTINCT tx_hash) FROM {refuels}").fetchall()
    assert total == (91, 91)
