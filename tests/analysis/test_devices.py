"""The device registry: life cycle, every rejection reason, replays, rotation; both suites."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from analysis.devices import DeviceRegistry, DeviceRules, device_key, device_view
from analysis.state import ContractState
from ledger.crypto import KeyPair, SignatureSuite, get_suite
from ledger.readings import (
    EndorseDevice,
    MeterReading,
    Payload,
    RefuelReading,
    RegisterDevice,
    RevokeDevice,
    RotateKey,
    rotation_proof_bytes,
    sign_payload,
)
from ledger.types import Transaction
from tests.factories import CHAIN

T0_MS = 1_800_000_000_000


class World:
    """One registry, its state, and keys: members m0..m3 (authorities), a maker, a vehicle."""

    def __init__(self, suite_name: str, k: int = 2):
        self.suite: SignatureSuite = get_suite(suite_name)
        key = self.suite.keypair_from_seed
        self.members = [key(f"member-{i}".encode()) for i in range(4)]
        self.maker = key(b"maker")
        self.vehicle = key(b"vehicle-1")
        self.meter = key(b"meter-1")
        self.stranger = key(b"stranger")
        rules = DeviceRules.from_config(
            suite_name,
            {"endorsements_required": k, "manufacturers": [self.maker.public_key.hex()]},
            tuple(m.public_key for m in self.members),
        )
        self.registry = DeviceRegistry(rules)
        self.state: dict[str, Any] = {}
        self.height = 1
        self.seqs: dict[bytes, int] = {}

    def tx(self, key: KeyPair, payload: Payload, seq: int | None = None) -> Transaction:
        if seq is None:
            seq = self.seqs.get(key.public_key, 0) + 1
        self.seqs[key.public_key] = max(seq, self.seqs.get(key.public_key, 0))
        return sign_payload(self.suite, key, seq, payload, CHAIN)

    def apply(self, key: KeyPair, payload: Payload, seq: int | None = None) -> str:
        """Apply in a new block; "" if accepted, else the reason."""
        self.height += 1
        view = ContractState(self.state)
        result = self.registry.apply(view, self.tx(key, payload, seq), self.height)
        self.state.update(view.writes)  # as the executor commits a block's writes
        return "" if result.ok else result.reason

    def register(
        self, device: str = "car-1", key: KeyPair | None = None, kind: str = "vehicle"
    ) -> str:
        key = key or self.vehicle
        return self.apply(self.maker, RegisterDevice(device, kind, key.public_key, "OBD-X", "2"))

    def endorse(self, member: int, device: str = "car-1", key: KeyPair | None = None) -> str:
        public = (key or self.vehicle).public_key
        return self.apply(self.members[member], EndorseDevice(device, public))

    def refuel(
        self, seq: int | None = None, key: KeyPair | None = None, device: str = "car-1"
    ) -> str:
        reading = RefuelReading(device, "d-1", "s-1", 40_000, 39_800, 20, 200, 1_000_000, T0_MS)
        return self.apply(key or self.vehicle, reading, seq)

    def view(self, device: str = "car-1") -> dict[str, Any]:
        return device_view(self.state[device_key(device)], self.height)


@pytest.fixture(params=["ed25519", "sm2"])
def world(request: pytest.FixtureRequest) -> World:
    return World(request.param)


def test_life_cycle_register_endorse_read_rotate_revoke(world: World) -> None:
    assert world.register() == ""
    assert world.view()["status"] == "registered"
    assert world.refuel() == "device_not_active"
    assert world.endorse(0) == ""
    assert world.refuel() == "device_not_active"  # one endorsement of two
    assert world.endorse(1) == ""
    assert world.view()["status"] == "active"
    assert world.refuel() == ""
    assert world.refuel() == ""
    assert world.view()["readings"] == 2

    new_key = world.suite.keypair_from_seed(b"vehicle-1-new")
    proof = world.suite.sign(
        new_key.secret_key,
        rotation_proof_bytes("car-1", world.vehicle.public_key, new_key.public_key),
    )
    assert world.apply(world.vehicle, RotateKey("car-1", new_key.public_key, proof)) == ""
    assert world.refuel() == "wrong_device_key"  # the old key no longer speaks for it
    last = world.view()["last_seq"]
    assert world.refuel(seq=last + 1, key=new_key) == ""

    assert world.apply(world.members[2], RevokeDevice("car-1", 0, "seal broken")) == ""
    assert world.view()["status"] == "active"  # one vote of two
    assert world.refuel(seq=last + 2, key=new_key) == ""
    assert world.apply(world.members[3], RevokeDevice("car-1", 0, "seal broken")) == ""
    assert world.view()["status"] == "revoked"
    assert world.refuel(seq=last + 3, key=new_key) == "device_revoked"
    actions = [entry["action"] for entry in world.view()["history"]]
    assert actions == [
        "registered", "endorsed", "endorsed", "activated", "key_rotated",
        "revocation_vote", "revocation_vote", "revoked",
    ]  # fmt: skip


def test_revocation_takes_effect_at_the_given_height(world: World) -> None:
    world.register()
    world.endorse(0)
    world.endorse(1)
    future = world.height + 4
    assert world.apply(world.maker, RevokeDevice("car-1", future, "recall")) == ""
    assert world.refuel() == ""  # still before the effective height
    while world.height + 1 < future:
        world.height += 1
    assert world.refuel() == "device_revoked"
    assert world.view()["revoked_from"] == future


def test_revocation_is_never_retroactive(world: World) -> None:
    world.register()
    assert world.apply(world.maker, RevokeDevice("car-1", 1, "recall")) == ""
    assert world.view()["revoked_from"] == world.height


def test_replayed_and_old_sequence_numbers_are_refused(world: World) -> None:
    world.register()
    world.endorse(0)
    world.endorse(1)
    assert world.refuel(seq=5) == ""
    assert world.refuel(seq=5) == "sequence_not_increasing"
    assert world.refuel(seq=3) == "sequence_not_increasing"
    assert world.refuel(seq=6) == ""


def test_each_rejection_reason(world: World) -> None:
    w = world
    assert w.refuel() == "unknown_device"
    reg = RegisterDevice("car-1", "vehicle", w.vehicle.public_key, "m", "2")
    assert w.apply(w.stranger, reg) == "not_manufacturer"
    assert w.register() == ""
    assert w.register() == "device_exists"
    assert w.register("car-2") == "key_in_use"
    short = dataclasses.replace(reg, device_id="car-3", public_key=b"\x01" * 33)
    assert w.apply(w.maker, short) == "bad_public_key"
    assert w.endorse(0, key=w.meter) == "endorsed_key_mismatch"
    assert w.apply(w.stranger, EndorseDevice("car-1", w.vehicle.public_key)) == "not_authority"
    assert w.endorse(0, device="car-9") == "unknown_device"
    assert w.endorse(0) == ""
    assert w.endorse(0) == "already_endorsed"
    assert w.endorse(1) == ""
    assert w.refuel(key=w.stranger) == "wrong_device_key"
    assert w.apply(w.vehicle, MeterReading("car-1", 5, 900, T0_MS)) == "wrong_device_kind"
    assert w.apply(w.stranger, RevokeDevice("car-1", 0, "x")) == "not_authority"
    assert w.apply(w.members[0], RevokeDevice("car-1", 0, "x")) == ""
    assert w.apply(w.members[0], RevokeDevice("car-1", 0, "x")) == "already_voted"
    bad_proof = RotateKey("car-1", w.stranger.public_key, b"\x00" * 64)
    assert w.apply(w.stranger, bad_proof) == "wrong_device_key"
    assert w.apply(w.vehicle, bad_proof) == "bad_key_proof"
    assert (
        w.apply(w.vehicle, RotateKey("car-1", w.vehicle.public_key, b"\x00" * 64)) == "key_in_use"
    )


def test_meter_energy_must_not_decrease(world: World) -> None:
    assert world.register("meter-1", world.meter, "meter") == ""
    world.endorse(0, "meter-1", world.meter)
    world.endorse(1, "meter-1", world.meter)
    assert world.apply(world.meter, MeterReading("meter-1", 1_000, 900, T0_MS)) == ""
    assert (
        world.apply(world.meter, MeterReading("meter-1", 999, 900, T0_MS + 1)) == "energy_decreased"
    )
    assert world.apply(world.meter, MeterReading("meter-1", 1_000, 900, T0_MS + 2)) == ""


def test_out_of_range_readings_are_refused_with_their_reason(world: World) -> None:
    world.register()
    world.endorse(0)
    world.endorse(1)
    good = RefuelReading("car-1", "d-1", "s-1", 40_000, 39_800, 20, 200, 1_000, T0_MS)
    cases = {
        "volume_out_of_range": dataclasses.replace(good, dispensed_volume_ml=0),
        "tank_level_out_of_range": dataclasses.replace(good, tank_level_after_obd=256),
        "time_out_of_range": dataclasses.replace(good, time_ms=1_000),
        "invalid_id": dataclasses.replace(good, dispenser_id="bad id!"),
    }
    for reason, reading in cases.items():
        assert world.apply(world.vehicle, reading) == reason
    assert world.view()["readings"] == 0
    assert world.apply(world.vehicle, good) == ""


def test_unparseable_payload_is_refused() -> None:
    w = World("ed25519")
    tx = w.tx(w.vehicle, RegisterDevice("car-1", "vehicle", w.vehicle.public_key, "m", "2"))
    broken = dataclasses.replace(tx, payload=b"\x93\x01\x02")
    view = ContractState(w.state)
    assert w.registry.apply(view, broken, 2).reason == "malformed_payload"
    assert view.writes == {}


def test_rules_from_config_refuse_bad_settings() -> None:
    members = (b"\x01" * 32, b"\x02" * 32)
    with pytest.raises(ValueError, match="endorsements_required"):
        DeviceRules.from_config("ed25519", {"endorsements_required": 3}, members)
    with pytest.raises(ValueError, match="hex"):
        DeviceRules.from_config("ed25519", {"authorities": ["zz"]}, members)


def test_refused_requests_write_nothing(world: World) -> None:
    world.register()
    before = dict(world.state)
    for outcome in (world.refuel(), world.endorse(0, device="car-9"), world.register()):
        assert outcome  # each one refused
    assert world.state == before
