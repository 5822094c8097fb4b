"""Fuel-dispenser surveillance: many noisy vehicle sensors average out (law of large numbers).

Each accepted refuel reading gives the relative error r = (measured - claimed) / claimed,
in parts per million; "measured" is the volume the ledger computes from the reading's OBD
levels when the vehicle's tank model is calibrated (analysis.tanks), else the reported one.
A vehicle's sensor bias is learned from its readings at the
*other* dispensers it uses, each corrected by that dispenser's current estimate; the
vehicle's bias-corrected mean error at a dispenser is its one *vote* there (a vehicle
has one vote per dispenser however often it refuels, and votes are clipped, so a few
vehicles cannot swamp a dispenser). A dispenser's estimated delivery error is the mean
of its votes, with a standard error from their spread; it is

  suspect  when estimate + z * SE < -tolerance  (short delivery beyond tolerance), and
  cleared  when estimate - z * SE > -tolerance  (within tolerance),

re-decided after every reading (a sequential test: it decides as early as the data
allows). A vehicle whose votes disagree with the others' at several dispensers is
reported as a suspected colluder and stops voting. A reading that repeats the claimed
volume (within `echo_ppm`) is an echo, not a measurement: it does not vote, and a vehicle
that echoes more often than its noise allows is suspected too (a colluder covering for
its dispenser; one that dresses its cover as a sensor reading is not caught this way).
Integers only: two nodes reach identical state.

State: global    = {n, sum_ppm, sum_sq} over every reading, and {v, a, b}: vehicles, and
                   sums of S_i^2 // N_i and N_i^2 over them (analysis.spread)
       disp/<id> = {n, k, w, sum_ppm, sum_sq, status, flagged_at, estimate, lower, upper,
                    station (of its first reading), cusum, changed_at, q}: k votes, w the
                    sum of their weights, sum_ppm and sum_sq their weighted sums; the
                    change test's statistic and when it fired (analysis.change), q the
                    vehicles that echoed there (absent: none)
       veh/<id>  = {s: {disp: sum_ppm}, n: {disp: count}, m: {disp: vote_ppm},
                    w: {disp: weight_milli}, suspect, t: [S_i^2 // N_i, N_i],
                    e: {disp: echoed readings} (absent: none)}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import comb, isqrt
from typing import Any

from analysis.change import cusum_alarm, cusum_step
from analysis.chi2 import QUANTILES_MILLI, chi_square_limit_milli
from analysis.contracts import TxResult
from analysis.spread import count_vehicle, learned_spread
from analysis.state import ContractState
from analysis.tanks import ledger_volume_ml
from ledger.readings import KIND_REFUEL, RefuelReading, parse_payload
from ledger.types import Transaction

PPM = 1_000_000
UNDECIDED, SUSPECT, CLEARED = "undecided", "suspect", "cleared"


@dataclass(frozen=True)
class SurveillanceRules:
    tolerance_ppm: int = 5_000  # shortfall allowed: 0.5 % (OIML R117 class 0.5)
    z_milli: int = 2_500  # one-sided z of each decision (2.5: 0.62 % per look at the limit)
    min_vehicles: int = 40  # vehicles before any decision: votes, and echoers (step 7)
    vote_clip_ppm: int = 100_000  # no single vote counts beyond +-10 %
    bias_sd_ppm: int = 10_000  # prior spread of vehicle sensor biases (1 %)
    learn_spread: int = 1  # 1: learn bias spread and noise from the data (analysis.spread)
    vehicle_min_dispensers: int = 3
    # the colluder test's levels, in millionths: one of analysis.chi2's (1, 1,000 or
    # 10,000); past the first a vehicle is suspected, past the second its votes pause
    vehicle_alpha_ppm: int = 1
    doubt_alpha_ppm: int = 10_000  # votes withdrawn (no accusation) past this level; 0: never
    # the most one vote weighs, in thousandths of a reading whose vehicle's bias is known:
    # a vehicle that refuels often at one dispenser cannot outweigh many (colluders)
    max_vote_weight_milli: int = 6_000
    change_h_milli: int = 40_000  # the change test's threshold, in noise sigmas (change.py)
    # a reading within this of the claimed volume echoes the claim rather than measuring
    # it (a sensor with 2-5 % noise lands there 0.2-0.4 % of the time): it does not vote,
    # and a vehicle that echoes too often for its noise is suspected (0: off)
    echo_ppm: int = 100
    # where each station is, for maps: (station id, latitude, longitude in millionths of a
    # degree); configuration only, no decision depends on it
    stations: tuple[tuple[str, int, int], ...] = ()

    @classmethod
    def from_config(cls, raw: dict[str, Any]) -> SurveillanceRules:
        raw = dict(raw)
        stations = parse_stations(raw.pop("stations", {}))
        rules = cls()
        for key, value in raw.items():
            if not hasattr(rules, key):
                raise ValueError(f"unknown setting {key!r}")
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{key} must be a non-negative integer")
        rules = cls(**raw, stations=stations)
        if rules.min_vehicles < 2 or rules.vote_clip_ppm == 0 or rules.max_vote_weight_milli == 0:
            raise ValueError(
                "min_vehicles must be >= 2, vote_clip_ppm and max_vote_weight_milli > 0"
            )
        if rules.vehicle_alpha_ppm not in QUANTILES_MILLI or (
            rules.doubt_alpha_ppm and rules.doubt_alpha_ppm not in QUANTILES_MILLI
        ):
            raise ValueError(
                f"vehicle_alpha_ppm and doubt_alpha_ppm (or 0) must be one of "
                f"{sorted(QUANTILES_MILLI)}"
            )
        return rules


def parse_stations(raw: Any) -> tuple[tuple[str, int, int], ...]:
    """`{"station-000": [lat_e6, lon_e6], ...}`: integers, inside the globe."""
    if not isinstance(raw, dict):
        raise ValueError("stations: expected {station id: [latitude_e6, longitude_e6]}")
    out = []
    for station, where in sorted(raw.items()):
        ok = isinstance(where, list) and len(where) == 2
        ok = ok and all(isinstance(x, int) and not isinstance(x, bool) for x in where)
        if not ok or not (-90_000_000 <= where[0] <= 90_000_000
                          and -180_000_000 <= where[1] <= 180_000_000):  # fmt: skip
            raise ValueError(f"stations.{station}: expected [latitude_e6, longitude_e6]")
        out.append((station, where[0], where[1]))
    return tuple(out)


def relative_error_ppm(reading: RefuelReading, measured_ml: int | None = None) -> int:
    claimed = reading.dispensed_volume_ml
    measured = reading.measured_volume_ml if measured_ml is None else measured_ml
    return (measured - claimed) * PPM // claimed


def dispenser_bounds(d: dict[str, Any], z_milli: int) -> tuple[int, int, int]:
    """(estimate, lower, upper) in ppm from the weighted vote sums: the weighted mean of
    the votes, and its standard error from their weighted spread (a vote's variance is
    taken as a common factor over its weight, the factor estimated from the spread, so a
    wrong noise level does not make the interval too narrow); floor arithmetic."""
    k, weight, total, total_sq = d["k"], d["w"], d["sum_ppm"], d["sum_sq"]
    if k == 0 or weight == 0:
        return 0, -PPM, PPM
    estimate = total // weight
    if k < 2:
        return estimate, -PPM, PPM
    spread = max(0, weight * total_sq - total * total)  # = W * sum w (x - mean)^2
    se = isqrt(spread // (weight * weight * (k - 1)))
    half = z_milli * se // 1000
    return estimate, estimate - half, estimate + half


def vote_weight_milli(here: int, elsewhere: int, prior_var: int, noise_var: int) -> int:
    """How much one vehicle's vote at a dispenser is worth, in thousandths of a reading
    whose vehicle's bias is known: the inverse of the vote's variance in units of the
    noise variance. The vote averages `here` readings (variance 1/here) and subtracts a
    bias shrunk from `elsewhere` readings (posterior variance p / (p * elsewhere + v)),
    so a vehicle seen at one dispenser only weighs little, however often it refuels."""
    shrunk = prior_var * elsewhere + noise_var
    return 1000 * here * shrunk // (shrunk + here * prior_var)


@dataclass
class DispenserSurveillance:
    rules: SurveillanceRules = field(default_factory=SurveillanceRules)
    name: str = "surveillance"
    kinds: tuple[str, ...] = ()  # handles no kind itself
    observes: tuple[str, ...] = (KIND_REFUEL,)  # sees refuels the registry accepted

    def apply(self, state: ContractState, tx: Transaction, height: int) -> TxResult:
        reading = parse_payload(tx.kind, tx.payload)
        assert isinstance(reading, RefuelReading)
        return self.observe(state, reading)

    def observe(self, state: ContractState, reading: RefuelReading) -> TxResult:
        """Fold one accepted refuel reading into the statistics; events for any decision."""
        vkey = f"veh/{reading.vehicle_id}"
        vehicle = state.edit(vkey)
        if vehicle is None:
            vehicle = {"s": {}, "n": {}, "m": {}, "w": {}, "suspect": False}
            state.put(vkey, vehicle)
        measured_ml = ledger_volume_ml(state.peers.get("devices"), reading)
        d, r = reading.dispenser_id, relative_error_ppm(reading, measured_ml)
        events: list[tuple[str, Any]] = []
        self._count_reading(state, d, reading.station_id)
        echo = self.rules.echo_ppm and abs(r) <= self.rules.echo_ppm
        if echo:  # counted, judged, but no vote (step 7 of docs/surveillance.md)
            events += self._count_echo(state, vehicle, reading)
        else:
            self._count_global(state, r)
            vehicle["s"][d] = vehicle["s"].get(d, 0) + r
            vehicle["n"][d] = vehicle["n"].get(d, 0) + 1
            if self.rules.learn_spread:
                count_vehicle(state.edit("global"), vehicle)
        if vehicle["suspect"]:  # a suspected colluder's readings are kept but do not vote
            return TxResult(True, events=tuple(events))
        spread = self._spread(state)  # fixed for the rest of this reading
        if not echo:
            events += self._test_change(state, vehicle, d, r, spread)
        judged, votes = self._judge_vehicle(state, vehicle, reading.vehicle_id, spread[1])
        events += judged
        for dispenser in sorted(vehicle["n"]) if votes else ():
            events += self._revote(state, vehicle, dispenser, spread)
        return TxResult(True, events=tuple(events))

    # ---- dispensers --------------------------------------------------------------------

    def _count_global(self, state: ContractState, r_ppm: int) -> None:
        g = state.edit("global")
        if g is None:
            g = {"n": 0, "sum_ppm": 0, "sum_sq": 0}
            state.put("global", g)
        g["n"] += 1
        g["sum_ppm"] += r_ppm
        g["sum_sq"] += r_ppm * r_ppm

    def _count_reading(self, state: ContractState, dispenser_id: str, station_id: str) -> None:
        key = f"disp/{dispenser_id}"
        d = state.edit(key)
        if d is None:
            d = {"n": 0, "k": 0, "w": 0, "sum_ppm": 0, "sum_sq": 0, "status": UNDECIDED,
                 "flagged_at": 0, "estimate": 0, "lower": -PPM, "upper": PPM,
                 "station": station_id}  # fmt: skip
            state.put(key, d)
        d["n"] += 1

    def _bias_without(
        self, state: ContractState, vehicle: dict[str, Any], skip: str, spread: tuple[int, int]
    ) -> tuple[int, int]:
        """The vehicle's sensor bias from its other dispensers, each corrected by its
        estimate, and the number of readings it comes from."""
        total, count = 0, 0
        for other in sorted(vehicle["n"]):
            if other == skip:
                continue
            record = state.get(f"disp/{other}")
            estimate = record["sum_ppm"] // record["w"] if record and record["w"] else 0
            total += vehicle["s"][other] - vehicle["n"][other] * estimate
            count += vehicle["n"][other]
        if not count:
            return 0, 0
        # Shrink towards 0 as empirical Bayes does: a bias learned from few noisy readings
        # is mostly noise, and a colluder's invented readings should not move it far.
        prior_var, noise_var = spread
        return total * prior_var // (prior_var * count + noise_var), count

    def _spread(self, state: ContractState) -> tuple[int, int]:
        """(bias variance, per-reading noise variance): learned from the readings
        (analysis.spread), or the configured bias spread and the rest of the variance."""
        prior_var = self.rules.bias_sd_ppm**2
        return learned_spread(state.get("global"), prior_var, bool(self.rules.learn_spread))

    def _revote(
        self,
        state: ContractState,
        vehicle: dict[str, Any],
        dispenser_id: str,
        spread: tuple[int, int],
    ) -> list[tuple[str, Any]]:
        clip = self.rules.vote_clip_ppm
        here = vehicle["n"][dispenser_id]
        mean = vehicle["s"][dispenser_id] // here
        bias, elsewhere = self._bias_without(state, vehicle, dispenser_id, spread)
        vote = max(-clip, min(clip, mean - bias))
        weight = min(vote_weight_milli(here, elsewhere, *spread),
                     self.rules.max_vote_weight_milli)  # fmt: skip
        old, old_weight = vehicle["m"].get(dispenser_id), vehicle["w"].get(dispenser_id, 0)
        if old == vote and old_weight == weight:
            return []
        d = state.edit(f"disp/{dispenser_id}")
        if old is not None:
            _count_vote(d, -1, old, old_weight)
        _count_vote(d, 1, vote, weight)
        vehicle["m"][dispenser_id], vehicle["w"][dispenser_id] = vote, weight
        return self._decide(d, dispenser_id)

    def _test_change(
        self,
        state: ContractState,
        vehicle: dict[str, Any],
        dispenser_id: str,
        r_ppm: int,
        spread: tuple[int, int],
    ) -> list[tuple[str, Any]]:
        """One CUSUM step on this reading's bias-corrected error (analysis.change)."""
        d = state.edit(f"disp/{dispenser_id}")
        if d.get("changed_at") or d["status"] == SUSPECT or seen(d) < self.rules.min_vehicles:
            return []  # suspect already, or too few vehicles yet to decide anything
        bias, _ = self._bias_without(state, vehicle, dispenser_id, spread)
        # the error against the dispenser's own estimate so far: what has always been
        # there (framing colluders' steady lies among it) is no change
        error = r_ppm - bias - d["estimate"]
        d["cusum"] = cusum_step(d.get("cusum", 0), error, self.rules.tolerance_ppm)
        if not cusum_alarm(d["cusum"], spread[1], self.rules.change_h_milli):
            return []
        d["changed_at"] = d["n"]
        return self._decide(d, dispenser_id)

    def _decide(self, d: dict[str, Any], dispenser_id: str) -> list[tuple[str, Any]]:
        estimate, lower, upper = dispenser_bounds(d, self.rules.z_milli)
        d["estimate"], d["lower"], d["upper"] = estimate, lower, upper
        status = UNDECIDED
        if d.get("changed_at"):
            status = SUSPECT  # the change test's verdict stands (analysis.change)
        elif seen(d) >= self.rules.min_vehicles:
            if upper < -self.rules.tolerance_ppm:
                status = SUSPECT
            elif lower > -self.rules.tolerance_ppm:
                status = CLEARED
        if status == d["status"]:
            return []
        d["status"] = status
        if status == SUSPECT and not d["flagged_at"]:
            d["flagged_at"] = d["n"]
        name = {SUSPECT: "dispenser_flagged", CLEARED: "dispenser_cleared"}.get(
            status, "dispenser_undecided"
        )
        evidence = {"dispenser_id": dispenser_id, "readings": d["n"], "vehicles": d["k"],
                    "estimate_ppm": estimate, "lower_ppm": lower, "upper_ppm": upper,
                    "test": "change" if d.get("changed_at") else "estimate"}  # fmt: skip
        return [(name, evidence)]

    # ---- vehicles ------------------------------------------------------------------------

    def _count_echo(
        self, state: ContractState, vehicle: dict[str, Any], reading: RefuelReading
    ) -> list[tuple[str, Any]]:
        """An echoed claim: counted, not voted. A colluder covering for its dispenser
        reports the claimed volume; an honest sensor agrees that closely with chance p at
        most 2 * echo / (sigma * sqrt(2 pi)) per reading, so e echoes among n readings
        have chance at most C(n, e) p^e, and below `vehicle_alpha_ppm` the vehicle is
        suspected (its votes stop counting)."""
        by_dispenser, events = vehicle.setdefault("e", {}), []
        if reading.dispenser_id not in by_dispenser:  # one more vehicle seen there
            d = state.edit(f"disp/{reading.dispenser_id}")
            d["q"] = d.get("q", 0) + 1
            events += self._decide(d, reading.dispenser_id)
        by_dispenser[reading.dispenser_id] = by_dispenser.get(reading.dispenser_id, 0) + 1
        if vehicle["suspect"]:
            return events
        echoes = sum(by_dispenser.values())
        readings = sum(vehicle["n"].values()) + echoes
        sigma_ppm = max(1, isqrt(self._spread(state)[1]))
        p_ppm = min(PPM, 2 * self.rules.echo_ppm * PPM * 1000 // (sigma_ppm * 2507))
        chance = comb(readings, echoes) * p_ppm**echoes * PPM
        if chance >= self.rules.vehicle_alpha_ppm * PPM**echoes:
            return events
        vehicle["suspect"] = True
        evidence = {"vehicle_id": reading.vehicle_id, "test": "echo", "echoes": echoes,
                    "readings": readings}  # fmt: skip
        return [*events, ("vehicle_suspected", evidence), *self._withdraw_votes(state, vehicle)]

    def _withdraw_votes(
        self, state: ContractState, vehicle: dict[str, Any]
    ) -> list[tuple[str, Any]]:
        events: list[tuple[str, Any]] = []
        for dispenser_id, vote in sorted(vehicle["m"].items()):
            d = state.edit(f"disp/{dispenser_id}")
            _count_vote(d, -1, vote, vehicle["w"][dispenser_id])
            events += self._decide(d, dispenser_id)
        vehicle["m"], vehicle["w"] = {}, {}
        return events

    def _judge_vehicle(
        self, state: ContractState, vehicle: dict[str, Any], vehicle_id: str, noise_var: int
    ) -> tuple[list[tuple[str, Any]], bool]:
        """(events, whether the vehicle votes). Past the strict level it is a suspected
        colluder for good (an event; its votes stop counting). Past the lax level
        (`doubt_alpha_ppm`) its votes are withdrawn quietly until its readings are
        consistent again: a framer's lies at a few dispensers seldom reach the strict
        level, and an honest vehicle loses its votes at that rate only, accused of
        nothing."""
        found = self._consistency(state, vehicle, noise_var)
        if found is None:
            return [], True
        t_milli, dof = found
        events: list[tuple[str, Any]] = []
        if t_milli > chi_square_limit_milli(dof, self.rules.vehicle_alpha_ppm):
            vehicle["suspect"] = True
            evidence = {"vehicle_id": vehicle_id, "test": "consistency",
                        "chi_square_milli": t_milli, "dof": dof}  # fmt: skip
            events.append(("vehicle_suspected", evidence))
        elif not self.rules.doubt_alpha_ppm or t_milli <= chi_square_limit_milli(
            dof, self.rules.doubt_alpha_ppm
        ):
            vehicle.pop("doubt", None)
            return [], True
        else:
            vehicle["doubt"] = True
        return events + self._withdraw_votes(state, vehicle), False  # its votes stop counting

    def _consistency(
        self, state: ContractState, vehicle: dict[str, Any], noise_var: int
    ) -> tuple[int, int] | None:
        """(T x 1000, degrees of freedom) of the vehicle's consistency with the
        population, or None before it has `vehicle_min_dispensers` to compare. At each
        dispenser with enough votes, the vehicle's mean reading there less the others'
        estimate is its bias plus noise of variance about noise/n (n: its readings
        there); the deviations less their weighted mean (the bias) give T, chi-square
        with m-1 degrees of freedom for an honest vehicle. Raw means, not votes: a
        vote's bias comes from the vehicle's other dispensers, so votes' deviations
        would share that noise and inflate T. Echoes count here, as readings of 0 (they
        are within `echo_ppm` of it), though they do not vote: a colluder who echoes the
        claim where it covers and frames elsewhere is inconsistent, and left out of this
        test the framers would all look like one biased group, which pulls every
        dispenser's estimate by their share times their framing."""
        weights, deviations = [], []
        echoes = vehicle.get("e", {})
        for dispenser_id in sorted(vehicle["n"].keys() | echoes.keys()):
            d = state.get(f"disp/{dispenser_id}")
            if d is None or d["k"] < self.rules.min_vehicles:
                continue
            vote, weight = vehicle["m"].get(dispenser_id, 0), vehicle["w"].get(dispenser_id, 0)
            others = d["w"] - weight
            here = vehicle["n"].get(dispenser_id, 0) + echoes.get(dispenser_id, 0)
            mean = vehicle["s"].get(dispenser_id, 0) // here
            deviations.append(mean - (d["sum_ppm"] - weight * vote) // others if others else 0)
            weights.append(here)  # 1 / variance, in units of 1/noise
        dof = len(deviations) - 1
        if dof + 1 < self.rules.vehicle_min_dispensers:
            return None
        centre = sum(w * x for w, x in zip(weights, deviations, strict=True)) // sum(weights)
        t_milli = sum(
            w * (x - centre) ** 2 * 1000 // noise_var
            for w, x in zip(weights, deviations, strict=True)
        )
        return t_milli, dof


def seen(d: dict[str, Any]) -> int:
    """The vehicles a dispenser's decisions count: its votes, and the vehicles that
    echoed the claim there (`q`), so that colluders who echo where they cover cannot keep
    a small dispenser below `min_vehicles` by abstaining (a vehicle that echoes and
    votes at one dispenser counts twice: 0.2-0.4 % of honest readings echo)."""
    return int(d["k"]) + int(d.get("q", 0))


def _count_vote(d: dict[str, Any], sign: int, vote: int, weight: int) -> None:
    """Add (sign 1) or take back (sign -1) one weighted vote in a dispenser's sums."""
    d["k"] += sign
    d["w"] += sign * weight
    d["sum_ppm"] += sign * weight * vote
    d["sum_sq"] += sign * weight * vote * vote
