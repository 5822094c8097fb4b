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
]


@pytest.mark.parametrize("payload", SAMPLES, ids=lambda p: p.KIND)
def test_round_trip(payload: object) -> None:
    assert parse_payload(payload.KIND, payload.encode()) == payload  # type: ignore[attr-defined]


def test_every_kind_has_a_sample() -> None:
    assert {p.KIND for p in SAMPLES} == set(PAYLOAD_TYPES)


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
