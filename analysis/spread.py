"""How noisy the readings are and how far vehicle sensor biases spread, learned from the
readings themselves (a random-effects analysis of variance, by the method of moments),
so the surveillance contract need not be told the fleet's bias spread.

With N readings from V vehicles, vehicle i having N_i readings with sum S_i:
  within  = sum r^2 - sum S_i^2 / N_i            E = (N - V) v
  between = sum S_i^2 / N_i - (sum r)^2 / N      E = (V - 1) v + (N - sum N_i^2 / N) p
(v: the per-reading noise variance, p: the variance of biases). Every sum is kept as an
integer in the contract's global record, each vehicle's S_i^2 // N_i with it so that a
new reading replaces that vehicle's term; the estimates are floor divisions, the same on
every node.
"""

from __future__ import annotations

from typing import Any

MIN_WITHIN_DOF = 200  # readings beyond one per vehicle before the data replace the prior


def count_vehicle(g: dict[str, Any], vehicle: dict[str, Any]) -> None:
    """Replace the vehicle's terms in the global sums by its current ones."""
    n_i, s_i = sum(vehicle["n"].values()), sum(vehicle["s"].values())
    old_term, old_n = vehicle.get("t", [0, 0])
    if "t" not in vehicle:
        g["v"] = g.get("v", 0) + 1
    term = s_i * s_i // n_i
    g["a"] = g.get("a", 0) + term - old_term
    g["b"] = g.get("b", 0) + n_i * n_i - old_n * old_n
    vehicle["t"] = [term, n_i]


def learned_spread(g: dict[str, Any] | None, prior_var: int, learn: bool) -> tuple[int, int]:
    """(bias variance, noise variance) in ppm^2: learned from the data once there are
    enough repeat readings, the bias variance never below a sixteenth of the prior's nor
    the noise below a quarter of it; before that (or not learning) the prior, with the
    noise the rest of the readings' total variance."""
    if g is None or g["n"] < 2:
        return prior_var, prior_var * 4
    n, total, squares = g["n"], g["sum_ppm"], g["sum_sq"]
    vehicles = g.get("v", 0)
    if not learn or n - vehicles < MIN_WITHIN_DOF:
        total_var = (n * squares - total * total) // (n * (n - 1))
        return prior_var, max(total_var - prior_var, prior_var // 4)
    noise = max((squares - g["a"]) // (n - vehicles), prior_var // 4)
    between = g["a"] - total * total // n
    effective = n - g["b"] // n  # N - sum N_i^2 / N, > 0 with more than one vehicle
    bias = (between - (vehicles - 1) * noise) // effective if effective > 0 else prior_var
    return max(bias, prior_var // 16), noise
