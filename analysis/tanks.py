"""The refuel volume computed on the ledger from the raw OBD levels (INMETRO's legally
relevant software as a contract).

A refuel reading carries the tank's OBD fuel levels before and after (PID 0x2F, 0..255)
and the volume the vehicle's firmware derived. Once an authority has published the
calibration of the vehicle's tank model (`device.tank`: level points to millilitres,
linear between them), the contracts compute the volume themselves, V(after) - V(before),
and the surveillance contract uses that one. A reading whose reported volume differs
from it by more than the levels can resolve (one level step at each end: the firmware
may read its sensor more finely than OBD reports it) is refused,
`volume_contradicts_levels`: a firmware cannot simply report a made-up volume. Integer
floor arithmetic: every node computes the same millilitres.

State (in the device registry's state):
  tank/<model> = {points[[level, ml]], calibrated_by, calibrated_at, history[[height, by]]}
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from analysis.contracts import TxResult
from analysis.state import ContractState
from ledger.readings import MAX_OBD_LEVEL, RefuelReading, TankCalibration
from ledger.types import Transaction


def tank_key(model: str) -> str:
    return f"tank/{model}"


def calibrate_tank(
    state: ContractState,
    tx: Transaction,
    p: TankCalibration,
    h: int,
    authorities: frozenset[bytes],
) -> TxResult:
    if tx.sender not in authorities:
        return TxResult(False, "not_authority")
    earlier = state.get(tank_key(p.tank_model))
    history = [*(earlier["history"] if earlier else []), [h, tx.sender]]
    state.put(tank_key(p.tank_model), {
        "calibrated_at": h, "calibrated_by": tx.sender, "history": history,
        "points": [list(point) for point in p.points],
    })  # fmt: skip
    return TxResult(True, events=(("tank_calibrated", {"tank_model": p.tank_model}),))


def volume_at_ml(points: list[list[int]], level: int) -> int:
    """The tank's content at an OBD level: linear between the calibration points, floor."""
    i = max(0, min(bisect_right([p[0] for p in points], level), len(points) - 1) - 1)
    (l0, v0), (l1, v1) = points[i], points[i + 1]
    return v0 + (v1 - v0) * (level - l0) // (l1 - l0)


def volume_from_levels_ml(points: list[list[int]], before: int, after: int) -> int:
    """What went into the tank by its levels (negative if the level fell)."""
    return volume_at_ml(points, after) - volume_at_ml(points, before)


def step_ml(points: list[list[int]], level: int) -> int:
    """The most one level step is worth around `level` (rounded up)."""
    lo, hi = max(0, level - 1), min(MAX_OBD_LEVEL, level + 1)
    return max(volume_at_ml(points, level) - volume_at_ml(points, lo),
               volume_at_ml(points, hi) - volume_at_ml(points, level)) + 1  # fmt: skip


def volume_problem(calibration: dict[str, Any] | None, p: RefuelReading) -> str | None:
    """Why the reported volume contradicts the reading's own levels, or None."""
    if calibration is None:
        return None
    points = calibration["points"]
    computed = volume_from_levels_ml(points, p.tank_level_before_obd, p.tank_level_after_obd)
    resolution = step_ml(points, p.tank_level_before_obd) + step_ml(points, p.tank_level_after_obd)
    if abs(p.measured_volume_ml - computed) > resolution:
        return "volume_contradicts_levels"
    return None


def calibration_of(devices: ContractState | None, vehicle_id: str) -> dict[str, Any] | None:
    """The tank calibration in force for a vehicle, from the device registry's state."""
    if devices is None:
        return None
    device = devices.get(f"device/{vehicle_id}")
    model = device.get("tank_model") if device else None
    return devices.get(tank_key(model)) if model else None


def ledger_volume_ml(devices: ContractState | None, p: RefuelReading) -> int:
    """The volume the contracts use: from the levels when the vehicle's tank model is
    calibrated (never below 0), else the one the vehicle reported."""
    calibration = calibration_of(devices, p.vehicle_id)
    if calibration is None:
        return p.measured_volume_ml
    points = calibration["points"]
    return max(0, volume_from_levels_ml(points, p.tank_level_before_obd, p.tank_level_after_obd))


def tank_view(model: str, calibration: dict[str, Any]) -> dict[str, Any]:
    """A tank calibration for the API, JSON-ready."""
    return {
        "tank_model": model,
        "points": calibration["points"],
        "calibrated_by": calibration["calibrated_by"].hex(),
        "calibrated_at": calibration["calibrated_at"],
        "history": [{"height": hh, "by": by.hex()} for hh, by in calibration["history"]],
    }
