"""The refuel volume computed on the ledger from the raw OBD levels: the interpolation
against exact rationals, the registry's refusal of a volume its own levels contradict,
and the surveillance contract using the ledger's volume, the same on two executors."""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise
from math import floor

from hypothesis import given
from hypothesis import strategies as st

from analysis.build import build_registry
from analysis.tanks import step_ml, volume_at_ml, volume_from_levels_ml
from ledger.readings import (
    EndorseDevice,
    RefuelReading,
    RegisterDevice,
    TankCalibration,
    sign_payload,
)
from ledger.types import Block, BlockHeader, Transaction
from node.executor import Executor
from tests.analysis.test_devices import World
from tests.factories import CHAIN, SUITE, member_keys, proposal_for

# a 60 L tank whose middle steps hold more than its ends (its shape)
POINTS = [[0, 0], [30, 4_000], [225, 56_000], [255, 60_000]]
T0_MS = 1_800_000_000_000


@st.composite
def tables(draw: st.DrawFn) -> list[list[int]]:
    inner = sorted(draw(st.sets(st.integers(1, 254), max_size=8)))
    volumes = sorted(draw(st.lists(st.integers(0, 2_000_000), min_size=len(inner) + 2,
                                   max_size=len(inner) + 2)))  # fmt: skip
    if volumes[0] == volumes[-1]:
        volumes[-1] += 1
    return [[level, ml] for level, ml in zip([0, *inner, 255], volumes, strict=True)]


@given(tables(), st.integers(0, 255))
def test_volume_at_a_level_is_the_floor_of_the_exact_interpolation(
    points: list[list[int]], level: int
) -> None:
    for (l0, v0), (l1, v1) in pairwise(points):
        if l0 <= level <= l1:
            exact = Fraction(v0) + Fraction(v1 - v0) * Fraction(level - l0, l1 - l0)
            assert volume_at_ml(points, level) == floor(exact)
            break


def test_levels_give_litres_through_the_shape() -> None:
    assert volume_at_ml(POINTS, 0) == 0 and volume_at_ml(POINTS, 255) == 60_000
    assert volume_at_ml(POINTS, 15) == 2_000  # half-way along the first segment
    assert volume_from_levels_ml(POINTS, 30, 225) == 52_000
    assert step_ml(POINTS, 100) == 267 + 1  # 52,000 ml over 195 steps, rounded up
    assert step_ml(POINTS, 10) == 133 + 1


def calibrated_world() -> World:
    world = World("ed25519")
    calibration = TankCalibration("tank-60L", tuple((lv, ml) for lv, ml in POINTS))
    assert world.apply(world.maker, calibration) == "not_authority"
    assert world.apply(world.members[0], calibration) == ""
    register = RegisterDevice("car-1", "vehicle", world.vehicle.public_key, "OBD-X", "2",
                              "tank-60L")  # fmt: skip
    assert world.apply(world.maker, register) == ""
    assert world.endorse(0) == "" and world.endorse(1) == ""
    return world


def refuel(measured_ml: int, before: int = 40, after: int = 200) -> RefuelReading:
    return RefuelReading("car-1", "d-1", "s-1", 40_000, measured_ml, before, after, 1_000, T0_MS)


def test_a_volume_its_own_levels_contradict_is_refused() -> None:
    world = calibrated_world()
    computed = volume_from_levels_ml(POINTS, 40, 200)  # 42,667 ml
    resolution = step_ml(POINTS, 40) + step_ml(POINTS, 200)
    assert world.apply(world.vehicle, refuel(39_000)) == "volume_contradicts_levels"
    assert world.apply(world.vehicle, refuel(computed + resolution + 1)) == (
        "volume_contradicts_levels"
    )
    assert world.apply(world.vehicle, refuel(computed - resolution)) == ""
    assert world.apply(world.vehicle, refuel(computed + resolution)) == ""
    assert world.view()["readings"] == 2 and world.view()["tank_model"] == "tank-60L"
    # levels that fell while the vehicle claims a fill
    assert world.apply(world.vehicle, refuel(30_000, 200, 40)) == "volume_contradicts_levels"


def test_a_vehicle_without_a_calibrated_tank_is_not_checked() -> None:
    world = World("ed25519")
    assert world.register() == "" and world.endorse(0) == "" and world.endorse(1) == ""
    assert world.apply(world.vehicle, refuel(39_000)) == ""  # levels say 42,667 ml


MEMBERS = member_keys(4)
VEHICLE = SUITE.keypair_from_seed(b"car")


def chain(readings: list[RefuelReading], calibrated: bool) -> list[Block]:
    calibration = TankCalibration("tank-60L", tuple((lv, ml) for lv, ml in POINTS))
    first = [sign_payload(SUITE, MEMBERS[3], 1, calibration, CHAIN)] if calibrated else []
    register = RegisterDevice("car-1", "vehicle", VEHICLE.public_key, "m", "2", "tank-60L")
    batches: list[list[Transaction]] = [
        [*first, sign_payload(SUITE, MEMBERS[0], 1, register, CHAIN)],
        [
            sign_payload(SUITE, MEMBERS[i], 1, EndorseDevice("car-1", VEHICLE.public_key), CHAIN)
            for i in (1, 2)
        ],
        [sign_payload(SUITE, VEHICLE, seq, r, CHAIN) for seq, r in enumerate(readings, start=1)],
    ]
    return [Block(BlockHeader(b"\x00" * 32, proposal_for(h, tuple(txs))), tuple(txs))
            for h, txs in enumerate(batches, start=1)]  # fmt: skip


def run(blocks: list[Block]) -> Executor:
    executor = Executor(SUITE, build_registry("ed25519", {}, tuple(k.public_key for k in MEMBERS)))
    for block in blocks:
        executor.apply(block, ())
    return executor


def test_surveillance_uses_the_ledger_volume_the_same_on_two_executors() -> None:
    # reported volumes within the levels' resolution, but not the levels' own
    readings = [refuel(42_500, 40, 200), refuel(42_800, 40, 200)]
    a, b = run(chain(readings, True)), run(chain(readings, True))
    assert a.state == b.state and a.state_root == b.state_root
    computed = volume_from_levels_ml(POINTS, 40, 200)
    error_ppm = (computed - 40_000) * 1_000_000 // 40_000
    assert a.state["surveillance"]["global"]["sum_ppm"] == 2 * error_ppm
    uncalibrated = run(chain(readings, False))  # the reported volumes count instead
    reported = sum((r.measured_volume_ml - 40_000) * 1_000_000 // 40_000 for r in readings)
    assert uncalibrated.state["surveillance"]["global"]["sum_ppm"] == reported
