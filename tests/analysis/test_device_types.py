"""Type approval on the ledger and the approved legally relevant software: a reading whose
software hash is not approved for its model is refused with a named reason."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from analysis.device_types import type_view
from analysis.devices import device_key, device_view
from ledger.readings import InvalidReading, RefuelReading, TypeApproval, parse_payload
from tests.analysis.test_devices import T0_MS, World

V1 = hashlib.sha256(b"OBD-X firmware 1.0").digest()
V2 = hashlib.sha256(b"OBD-X firmware 2.0").digest()
ROGUE = hashlib.sha256(b"OBD-X firmware patched to under-report").digest()


def reading(software: bytes) -> RefuelReading:
    return RefuelReading("car-1", "d-1", "s-1", 40_000, 39_800, 20, 200, 1_000_000, T0_MS,
                         software)  # fmt: skip


@pytest.fixture
def world() -> World:
    w = World("ed25519")
    assert w.register() == "" and w.endorse(0) == "" and w.endorse(1) == ""
    return w


def test_a_model_with_approved_software_refuses_readings_of_any_other(world: World) -> None:
    assert world.apply(world.vehicle, reading(ROGUE)) == ""  # no approval yet: not checked
    approval = TypeApproval("OBD-X", "vehicle", "INMETRO-2026-17", "2", (V1,))
    assert world.apply(world.stranger, approval) == "not_authority"
    assert world.apply(world.members[2], approval) == ""
    before = dict(world.state)
    assert world.apply(world.vehicle, reading(ROGUE)) == "unapproved_software"
    assert world.apply(world.vehicle, reading(b"")) == "software_hash_missing"
    assert world.state == before  # a refusal changes nothing
    assert world.apply(world.vehicle, reading(V1)) == ""
    # a new version approved (sorted, each once); the old one is withdrawn
    update = TypeApproval("OBD-X", "vehicle", "INMETRO-2026-17/1", "2", tuple(sorted((V2,))))
    assert world.apply(world.members[0], update) == ""
    assert world.apply(world.vehicle, reading(V1)) == "unapproved_software"
    assert world.apply(world.vehicle, reading(V2)) == ""
    shown = type_view("OBD-X", world.state["type/OBD-X"])
    assert shown["approved_software"] == [V2.hex()] and len(shown["history"]) == 2
    history = device_view(world.state[device_key("car-1")], world.height)["history"]
    assert [h["detail"] for h in history if h["action"] == "software"] == [
        ROGUE.hex(), V1.hex(), V2.hex()]  # fmt: skip


def test_the_mempool_precheck_names_the_same_reason(world: World) -> None:
    from analysis.state import ContractState

    assert world.apply(world.members[2], TypeApproval("OBD-X", "vehicle", "A-1", "2", (V1,))) == ""
    tx = world.tx(world.vehicle, reading(ROGUE))
    assert world.registry.precheck(ContractState(world.state), tx, world.height) == (
        "unapproved_software"
    )


def test_a_model_keeps_its_device_kind(world: World) -> None:
    assert world.apply(world.members[0], TypeApproval("OBD-X", "vehicle", "A-1", "2", ())) == ""
    assert world.apply(world.members[0], TypeApproval("OBD-X", "meter", "A-2", "2", ())) == (
        "wrong_device_kind"
    )
    assert world.apply(world.vehicle, reading(ROGUE)) == ""  # approves no software: unchecked


def test_readings_without_a_hash_keep_their_encoding_and_bad_hashes_are_refused() -> None:
    plain = reading(b"")
    assert plain.encode() == dataclasses.replace(plain).encode()
    assert len(reading(V1).encode()) == len(plain.encode()) + 34  # one 32-byte blob more
    assert parse_payload("refuel", plain.encode()) == plain
    assert parse_payload("refuel", reading(V1).encode()) == reading(V1)
    from ledger.encoding import decode, encode

    short = encode([*decode(plain.encode()), b"\x01" * 31])
    with pytest.raises(InvalidReading, match="software_hash"):
        parse_payload("refuel", short)
    empty = encode([*decode(plain.encode()), b""])  # a second encoding of `plain`: refused
    with pytest.raises(InvalidReading):
        parse_payload("refuel", empty)
    unsorted = TypeApproval("M", "meter", "A", "1", (V2, V1)).encode()
    with pytest.raises(InvalidReading, match="invalid_software_list"):
        parse_payload("device.type", unsorted)
