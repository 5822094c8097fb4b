"""Reading and registry payloads: round trips, and each range check's reason."""

from __future__ import annotations

import contextlib
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.encoding import encode
from ledger.readings import (
    PAYLOAD_TYPES,
    EndorseDevice,
    InvalidReading,
    MeterReading,
    RefuelReading,
    RegisterDevice,
    RevokeDevice,
    RotateKey,
    TankCalibration,
    TypeApproval,
    parse_payload,
)

REFUEL = RefuelReading(
    "veh-1", "disp-1", "st-1", 40_000, 39_500, 30, 210, 12_345_000, 1_800_000_000_000
)
SAMPLES = [
    REFUEL,
    MeterReading("meter-1", 123_456, 900, 1_800_000_000_000),
    RegisterDevice("meter-1", "meter", b"\x01" * 32, "EM-3", "1"),
    EndorseDevice("meter-1", b"\x01" * 32),
    RevokeDevice("meter-1", 50, "seal broken"),
    RotateKey("meter-1", b"\x02" * 32, b"\x03" * 64),
    TypeApproval("EM-3", "meter", "TA-2026-7", "1", (b"\x04" * 32, b"\x05" * 32)),
    RegisterDevice("car-1", "vehicle", b"\x01" * 32, "OBD-X", "2", "tank-50L"),
    TankCalibration("tank-50L", ((0, 0), (20, 2_500), (235, 47_500), (255, 50_000))),
]


@pytest.mark.parametrize("payload", SAMPLES, ids=lambda p: p.KIND)
def test_round_trip(payload: object) -> None:
    assert parse_payload(payload.KIND, payload.encode()) == payload  # type: ignore[attr-defined]


def test_every_kind_has_a_sample() -> None:
    assert {p.KIND for p in SAMPLES} == set(PAYLOAD_TYPES)


def test_a_registration_without_tank_model_keeps_its_encoding() -> None:
    plain = RegisterDevice("car-1", "vehicle", b"\x01" * 32, "OBD-X", "2")
    assert plain.encode() == encode([32, "car-1", "vehicle", b"\x01" * 32, "OBD-X", "2"])
    with pytest.raises(InvalidReading) as err:  # an empty one would be a second encoding
        parse_payload(
            "device.register", encode([32, "car-1", "vehicle", b"\x01" * 32, "X", "2", ""])
        )
    assert err.value.reason == "malformed_payload"
    meter = encode([32, "m-1", "meter", b"\x01" * 32, "EM-3", "1", "tank-50L"])
    with pytest.raises(InvalidReading) as err:
        parse_payload("device.register", meter)
    assert err.value.reason == "tank_model_not_vehicle"


@pytest.mark.parametrize(
    "points",
    [
        [[0, 0]],  # one point
        [[1, 0], [255, 50_000]],  # does not start at level 0
        [[0, 0], [254, 50_000]],  # does not reach 255
        [[0, 0], [100, 30_000], [100, 31_000], [255, 50_000]],  # a level twice
        [[0, 0], [100, 30_000], [255, 20_000]],  # volume falls
        [[0, 5], [255, 5]],  # never rises
        [[0, 0], [256, 50_000]],  # level out of range
        [[0, 0], [255, 2_000_001]],  # volume out of range
        [[0, 0], [255]],  # not a pair
        [[0, 0]] + [[i, i] for i in range(1, 64)] + [[255, 50_000]],  # 65 points
    ],
)
def test_tank_calibrations_are_checked(points: list[list[int]]) -> None:
    with pytest.raises(InvalidReading) as err:
        parse_payload("device.tank", encode([37, "tank-50L", points]))
    assert err.value.reason == "invalid_tank_points"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"dispensed_volume_ml": 0}, "volume_out_of_range"),
        ({"measured_volume_ml": 2_000_001}, "volume_out_of_range"),
        ({"tank_level_before_obd": 256}, "tank_level_out_of_range"),
        ({"odometer_m": 10**11}, "odometer_out_of_range"),
        ({"time_ms": 0}, "time_out_of_range"),
        ({"vehicle_id": "has space"}, "invalid_id"),
        ({"station_id": "-leading-dash"}, "invalid_id"),
    ],
)
def test_refuel_ranges(change: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidReading) as err:
        parse_payload("refuel", replace(REFUEL, **change).encode())  # type: ignore[arg-type]
    assert err.value.reason == reason


def test_meter_and_registry_ranges() -> None:
    cases = {
        "energy_out_of_range": MeterReading("m-1", 10**16, 900, 1_800_000_000_000).encode(),
        "interval_out_of_range": MeterReading("m-1", 1, 0, 1_800_000_000_000).encode(),
        "unknown_device_kind": encode([32, "m-1", "toaster", b"\x01" * 32, "x", "1"]),
        "malformed_payload": encode([31, "m-1", 1]),
        "unknown_kind": b"",
    }
    for reason, data in cases.items():
        kind = (
            "nonsense"
            if reason == "unknown_kind"
            else ("device.register" if "device" in reason else "meter")
        )
        with pytest.raises(InvalidReading) as err:
            parse_payload(kind, data)
        assert err.value.reason == reason


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_else(data: bytes) -> None:
    for kind in PAYLOAD_TYPES:
        with contextlib.suppress(InvalidReading):
            parse_payload(kind, data)
