"""Oracles against real daemons, in both signature suites: a simulated fleet is enrolled
and pushes readings through the SDK while the primary is down; every accepted reading is
committed exactly once; receipts verify offline and fail with one changed byte; readings
journaled while no node was reachable are delivered later."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from ledger.crypto import get_suite
from ledger.encoding import decode
from ledger.readings import KIND_REFUEL, RefuelReading, RevokeDevice, sign_payload
from ledger.receipt import ReceiptInvalid, load_trust_anchor, verify_receipt_json
from ledger.types import Block, compute_tx_hash
from node.load import post_tx
from node.testnet import Daemon, free_port, running
from oracle.client import OracleClient
from oracle.keys import load_signing_key
from oracle.sim.fleet import FleetConfig
from oracle.sim.run import Simulation
from tests.e2e.test_network import wait_until

READINGS = 150


@pytest.fixture(params=["ed25519", "sm2"])
def network(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, list[Daemon]]]:
    with running(tmp_path, 4, request.param) as nodes:
        yield request.param, nodes


def key_file(home: Path) -> Path:
    return home / "keys" / "node_key.json"


def simulation(suite: str, nodes: list[Daemon], journal: Path, seed: int) -> Simulation:
    homes = [d.config.parent for d in nodes]
    return Simulation(
        [d.api for d in nodes],
        suite,
        FleetConfig(vehicles=20, dispensers=6, seed=seed, fraud_fraction=0.2),
        load_signing_key(key_file(homes[0]))[1],
        [load_signing_key(key_file(h))[1] for h in homes[1:3]],
        journal,
        readings=READINGS,
        rate_per_s=100,
    )


def committed_refuels(node: Daemon) -> list[tuple[bytes, int, str]]:
    """(sender, seq, tx hash) of every refuel transaction in the chain, with its result."""
    suite_txs = []
    height = int(node.get("/v1/status")["height"])
    for h in range(1, height + 1):
        body = node.get(f"/v1/blocks/{h}")
        block = Block.decode(bytes.fromhex(body["encoded"]))
        for tx, tx_hash in zip(block.txs, body["txs"], strict=True):
            if tx.kind == KIND_REFUEL:
                suite_txs.append((tx.sender, tx.seq, tx_hash))
    return suite_txs


def test_fleet_through_sdk_with_a_node_down_exactly_once_and_receipts(
    network: tuple[str, list[Daemon]], tmp_path: Path
) -> None:
    suite, nodes = network
    nodes[0].kill()  # the primary: a view change, and every client starts by failing over
    sim = simulation(suite, nodes, tmp_path / "journal.sqlite3", seed=7)
    report = asyncio.run(sim.run())
    assert report.submitted == READINGS
    assert report.outcomes == {"committed": READINGS}, report.reasons

    live = nodes[1]
    assert int(live.get("/v1/status")["view"]) > 0
    in_chain = committed_refuels(live)
    hashes = [h for _, _, h in in_chain]
    assert Counter(hashes) == Counter(report.tx_hashes), "each reading exactly once"
    assert len({(s, q) for s, q, _ in in_chain}) == len(in_chain)
    assert all(live.get(f"/v1/tx/{h}")["status"] == "committed" for h in hashes[::10])

    anchor = load_trust_anchor(tmp_path / "genesis.json")
    for tx_hash in report.tx_hashes[::15]:
        doc = live.get(f"/v1/tx/{tx_hash}/receipt")
        receipt = verify_receipt_json(json.loads(json.dumps(doc)), anchor)
        assert compute_tx_hash(anchor.suite, receipt.tx).hex() == tx_hash
        reading = RefuelReading.from_wire(decode(receipt.tx.payload))
        assert reading.vehicle_id.startswith("veh-7-")
    tampered = bytearray.fromhex(doc["receipt"])
    tampered[len(tampered) // 2] ^= 0x01
    with pytest.raises(ReceiptInvalid):
        verify_receipt_json({**doc, "receipt": tampered.hex()}, anchor)

    device = live.get(f"/v1/devices/{reading.vehicle_id}")
    assert device["status"] == "active" and len(device["endorsers"]) == 2
    assert device["readings"] == device["last_seq"] >= 1
    check_early_refusals(suite, sim, nodes[1:], reading)


def check_early_refusals(
    suite: str, sim: Simulation, live: list[Daemon], last: RefuelReading
) -> None:
    """The API refuses, before consensus, readings the registry would refuse."""
    suite_ = get_suite(suite)
    vehicle = sim.vehicle_key(last.vehicle_id)
    stranger = suite_.keypair_from_seed(b"not registered")
    fresh = replace(last, time_ms=last.time_ms + 2)
    high = int(live[0].get(f"/v1/devices/{last.vehicle_id}")["last_seq"])
    cases = [
        (
            vehicle,
            high + 1,
            replace(fresh, dispensed_volume_ml=0),
            400,
            "volume_out_of_range",
        ),
        (stranger, 1, replace(fresh, vehicle_id="veh-unknown"), 422, "unknown_device"),
        (stranger, 1, fresh, 422, "wrong_device_key"),
        (vehicle, high, fresh, 422, "sequence_not_increasing"),
    ]
    for key, seq, payload, status, reason in cases:
        refused = post_tx(live[0].api, sign_payload(suite_, key, seq, payload, live[0].chain()))
        assert (refused.status, refused.body["error"]) == (status, reason)

    async def revoke() -> str:
        urls = [d.api for d in live]
        async with OracleClient(urls, sim.manufacturer, suite=suite, max_in_flight=4) as maker:
            tx_hash = maker.submit(RevokeDevice(last.vehicle_id, 0, "seal broken"))
            return (await maker.wait(tx_hash, timeout_s=60)).status

    assert asyncio.run(revoke()) == "committed"
    wait_until(
        "revoked everywhere",
        lambda: all(d.get(f"/v1/devices/{last.vehicle_id}")["status"] == "revoked" for d in live),
    )
    refused = post_tx(live[1].api, sign_payload(suite_, vehicle, high + 1, fresh, live[1].chain()))
    assert (refused.status, refused.body["error"]) == (422, "device_revoked")


def test_readings_journaled_while_no_node_is_reachable_are_delivered_later(
    network: tuple[str, list[Daemon]], tmp_path: Path
) -> None:
    suite, nodes = network
    journal = tmp_path / "journal.sqlite3"
    asyncio.run(simulation(suite, nodes, journal, seed=3).run())  # enrols the fleet
    vehicle_key = simulation(suite, nodes, journal, seed=3).vehicle_key("veh-3-00000")
    reading = RefuelReading(
        "veh-3-00000", "disp-0000", "station-000", 30_000, 29_900, 10, 140, 5, 1_800_000_000_000
    )

    async def offline() -> str:
        dead = [f"http://127.0.0.1:{free_port()}"]
        async with OracleClient(dead, vehicle_key, suite=suite, journal=journal) as client:
            # the client has not heard the ledger's sequence; the journal has it
            tx_hash = client.submit(reading)
            assert client.submit(reading) == tx_hash  # idempotent: same payload, same tx
            outcome = await client.wait(tx_hash, timeout_s=1.0)
            assert outcome.status == "queued"
            return tx_hash

    async def online(tx_hash: str) -> str:
        async with OracleClient(
            [d.api for d in nodes], vehicle_key, suite=suite, journal=journal
        ) as client:
            return (await client.wait(tx_hash, timeout_s=60)).status

    tx_hash = asyncio.run(offline())
    assert asyncio.run(online(tx_hash)) == "committed"
    wait_until(
        "committed everywhere",
        lambda: all(d.get(f"/v1/tx/{tx_hash}")["status"] == "committed" for d in nodes),
    )
