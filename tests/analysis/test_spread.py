"""The bias spread and noise learned from the readings (analysis.spread): the kept sums
equal a direct recomputation, and on a seeded random-effects fleet the estimates land
near the spreads it was drawn with."""

from __future__ import annotations

import random

from analysis.spread import MIN_WITHIN_DOF, count_vehicle, learned_spread


def fold(
    readings: list[tuple[str, int]],
) -> tuple[dict[str, int], dict[str, dict[str, dict[str, int]]]]:
    g = {"n": 0, "sum_ppm": 0, "sum_sq": 0}
    vehicles: dict[str, dict[str, dict[str, int]]] = {}
    for vehicle_id, r in readings:
        v = vehicles.setdefault(vehicle_id, {"s": {}, "n": {}})
        v["s"]["d"] = v["s"].get("d", 0) + r
        v["n"]["d"] = v["n"].get("d", 0) + 1
        g["n"], g["sum_ppm"], g["sum_sq"] = g["n"] + 1, g["sum_ppm"] + r, g["sum_sq"] + r * r
        count_vehicle(g, v)  # type: ignore[arg-type]
    return g, vehicles


def fleet(
    vehicles: int, per_vehicle: int, bias_ppm: int, noise_ppm: int, seed: int
) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    biases = {f"v{i}": rng.gauss(0, bias_ppm) for i in range(vehicles)}
    out = [
        (v, round(b + rng.gauss(0, noise_ppm)))
        for v, b in biases.items()
        for _ in range(per_vehicle)
    ]
    rng.shuffle(out)
    return out


def test_kept_sums_equal_a_direct_recomputation() -> None:
    g, vehicles = fold(fleet(50, 7, 20_000, 50_000, seed=1))
    totals = [(sum(v["s"].values()), sum(v["n"].values())) for v in vehicles.values()]
    assert g["v"] == 50
    assert g["a"] == sum(s * s // n for s, n in totals)
    assert g["b"] == sum(n * n for _, n in totals)


def test_learned_spreads_are_near_the_true_ones() -> None:
    g, _ = fold(fleet(1_000, 10, 20_000, 50_000, seed=2))
    bias_var, noise_var = learned_spread(g, 10_000**2, learn=True)
    assert 0.8 * 20_000**2 < bias_var < 1.25 * 20_000**2
    assert 0.9 * 50_000**2 < noise_var < 1.1 * 50_000**2
    prior, _ = learned_spread(g, 10_000**2, learn=False)
    assert prior == 10_000**2  # not learning: the configured spread


def test_the_prior_holds_until_there_are_enough_repeat_readings() -> None:
    g, _ = fold(fleet(100, 2, 20_000, 50_000, seed=3))  # 100 repeat readings
    assert g["n"] - g["v"] < MIN_WITHIN_DOF
    assert learned_spread(g, 10_000**2, learn=True)[0] == 10_000**2
