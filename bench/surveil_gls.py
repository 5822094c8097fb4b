"""How close can any method that does not know the vehicles' biases get to the bound?
(issue 20's no-collusion target: 95 % of bench.bound's sensitivity.)

A reference detector, offline and in floats: generalised least squares on the two-way
model reading = dispenser offset + vehicle bias + noise, with the biases as random
effects, given every *other* dispenser's true offset and the true bias spread and noise.
A vehicle's vote at a dispenser is its mean error there less its bias shrunk from its
readings elsewhere, weighted by the inverse of the vote's variance (v/h + p v / (p e + v));
the decision is the contract's (mean + z SE from the votes' spread below -tolerance, at
min_vehicles). That is the best linear unbiased use of the data when the other offsets
are known, which no real method knows: a ceiling for the contract, lower than the bound.

    python -m bench.surveil_gls --seeds 100
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict
from multiprocessing import Pool

from analysis.surveillance import SurveillanceRules
from bench.surveil_eval import ISSUE_FLEET, Cell, fleet_for, run_cell

Readings = dict[int, dict[str, list[float]]]  # vehicle -> dispenser -> relative errors


def gls_suspects(readings: Readings, offsets: dict[str, float], prior_var: float,
                 noise_var: float, rules: SurveillanceRules) -> set[str]:  # fmt: skip
    votes: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for by_dispenser in readings.values():
        for d, here in by_dispenser.items():
            other = [x - offsets[e] for e, xs in by_dispenser.items() if e != d for x in xs]
            shrunk = prior_var * len(other) + noise_var
            bias = sum(other) * prior_var / shrunk
            variance = noise_var / len(here) + prior_var * noise_var / shrunk
            votes[d].append((sum(here) / len(here) - bias, 1 / variance))
    tolerance, z = rules.tolerance_ppm / 1e6, rules.z_milli / 1000
    found = set()
    for d, vs in votes.items():
        if len(vs) < max(2, rules.min_vehicles):
            continue
        weight = sum(w for _, w in vs)
        mean = sum(w * x for x, w in vs) / weight
        se = math.sqrt(sum(w * (x - mean) ** 2 for x, w in vs) / (len(vs) - 1) / weight)
        if mean + z * se < -tolerance:
            found.add(d)
    return found


def run_seed(seed: int) -> tuple[int, int, int, int]:
    """(fraudulent, found by the contract, by the GLS reference, by the bound)."""
    cell = Cell(5.0, 10, 2.0, 0.0, seed, **ISSUE_FLEET)  # type: ignore[arg-type]
    rules = SurveillanceRules()
    result = run_cell(cell, rules)  # the contract and the bound
    fleet = fleet_for(cell)
    readings: Readings = defaultdict(lambda: defaultdict(list))
    for _ in range(cell.vehicles * cell.refuels_per_vehicle):
        index, r = fleet.refuel()
        readings[index][r.dispenser_id].append(r.measured_volume_ml / r.dispensed_volume_ml - 1)
    offsets = {d.dispenser_id: -d.shortfall * d.cheat_probability if d.fraudulent else d.offset
               for d in fleet.dispensers}  # fmt: skip
    fraud = {d.dispenser_id for d in fleet.dispensers if d.fraudulent}
    gls = gls_suspects(readings, offsets, (cell.bias_sd_pct / 100) ** 2,
                       (cell.noise_pct / 100) ** 2, rules)  # fmt: skip
    return (result.fraudulent, result.flagged_fraudulent, len(fraud & gls),
            result.bound_flagged_fraudulent)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with Pool(args.jobs) as pool:
        rows = pool.map(run_seed, range(args.seeds))
    fraud, contract, gls, bound = (sum(r[i] for r in rows) for i in range(4))
    print("| detector | fraudulent found | of the bound |\n|---|---|---|")
    for name, found in (("bound (knows every bias)", bound),
                        ("GLS knowing the other dispensers' offsets", gls),
                        ("the contract", contract)):  # fmt: skip
        print(f"| {name} | {found}/{fraud} | {100 * found / bound:.1f} % |")


if __name__ == "__main__":
    main()
