"""The bound the surveillance evaluation measures the contract against (issue 20): a
detector that knows every vehicle's true sensor bias.

Given the bias b, a reading's delivery error is exactly recoverable but for the noise:
(measured / claimed) / (1 + b) - 1. The detector averages that over every reading at a
dispenser and decides with the contract's own rule, tolerance and z (suspect when the
mean plus z standard errors is below minus the tolerance), once the dispenser has the
contract's minimum number of distinct vehicles. No method that does not know the biases
can do better on the same data, so a cell's sensitivity is reported as a fraction of
this one's. Where vehicles collude, a second one also knows who colludes and leaves
their readings out: what could be reached if every colluder were found. Floats are fine
here: it is an evaluation, not consensus state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from analysis.surveillance import SurveillanceRules
from ledger.readings import RefuelReading


@dataclass
class BiasKnowingDetector:
    rules: SurveillanceRules
    sums: dict[str, list[float]] = field(default_factory=dict)  # dispenser -> [n, sum, sum sq]
    vehicles: dict[str, set[str]] = field(default_factory=dict)

    def add(self, reading: RefuelReading, bias: float) -> None:
        error = reading.measured_volume_ml / reading.dispensed_volume_ml / (1 + bias) - 1
        s = self.sums.setdefault(reading.dispenser_id, [0.0, 0.0, 0.0])
        s[0], s[1], s[2] = s[0] + 1, s[1] + error, s[2] + error * error
        self.vehicles.setdefault(reading.dispenser_id, set()).add(reading.vehicle_id)

    def suspects(self) -> set[str]:
        tolerance, z = self.rules.tolerance_ppm / 1e6, self.rules.z_milli / 1000
        found = set()
        for dispenser, (n, total, squares) in self.sums.items():
            if len(self.vehicles[dispenser]) < self.rules.min_vehicles or n < 2:
                continue
            mean = total / n
            variance = max(0.0, (squares - n * mean * mean) / (n - 1))
            if mean + z * math.sqrt(variance / n) < -tolerance:
                found.add(dispenser)
        return found
