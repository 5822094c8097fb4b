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
