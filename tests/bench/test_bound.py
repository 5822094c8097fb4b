"""The bias-knowing detector (bench.bound): it removes each vehicle's true bias, so honest
dispensers read by biased vehicles stay clear and a 2 % short one is found; it decides
nothing before the contract's minimum of distinct vehicles."""

from __future__ import annotations

import random

from analysis.surveillance import SurveillanceRules
from bench.bound import BiasKnowingDetector
from ledger.readings import RefuelReading


def feed(detector: BiasKnowingDetector, dispenser: str, short: float, vehicles: int,
         rng: random.Random) -> None:  # fmt: skip
    for v in range(vehicles):
        bias = rng.gauss(0, 0.03)  # large biases: they cancel only if known
        for _ in range(5):
            delivered = 40_000 * (1 - short)
            measured = round(delivered * (1 + bias + rng.gauss(0, 0.01)))
            detector.add(RefuelReading(f"v{v}", dispenser, "s", 40_000, measured, 10, 200, 0,
                                       1_800_000_000_000), bias)  # fmt: skip


def test_known_biases_separate_a_short_dispenser_from_honest_ones() -> None:
    rng = random.Random(1)
    detector = BiasKnowingDetector(SurveillanceRules(min_vehicles=40))
    feed(detector, "honest", 0.0, 60, rng)
    feed(detector, "short", 0.02, 60, rng)
    feed(detector, "few", 0.05, 39, rng)  # short, but fewer vehicles than a decision needs
    assert detector.suspects() == {"short"}
