"""Seeded device models: a vehicle fleet refuelling at dispensers, and smart meters.

Vehicles measure what a refuel put in their tank with a noisy, biased sensor
read through OBD-II's fuel level (PID 0x2F: steps of 100/255 % of the tank).
Dispensers are honest, short-deliver by a fixed fraction, or do so only some of
the time. Colluding vehicles report what a fraudulent dispenser wants (the
claimed volume) and, with `collusion="cover+frame"`, also accuse honest
dispensers. Everything derives from the seed; the ground truth stays here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ledger.readings import MAX_OBD_LEVEL, MeterReading, RefuelReading, TankCalibration

T0_MS = 1_800_000_000_000  # 2027-01-15, a fixed epoch so runs are reproducible
OBD_STEPS = 255


@dataclass(frozen=True)
class FleetConfig:
    vehicles: int = 100
    dispensers: int = 10
    seed: int = 1
    fraud_fraction: float = 0.1  # of dispensers
    fraud_shortfall_pct: float = 2.0
    intermittent_fraction: float = 0.0  # of fraudulent dispensers, which cheat half the time
    noise_pct: float = 2.0  # sensor noise, standard deviation of the relative error
    bias_sd_pct: float = 1.0  # spread of per-vehicle sensor bias
    collude_fraction: float = 0.0  # of vehicles
    collusion: str = "cover"  # or "cover+frame", or "frame" (only the targets below)
    frame_pct: float = 0.0  # the shortfall framers report (0: fraud_shortfall_pct)
    frame_targets: float = 0.2  # with "frame": the share of dispensers framed (honest ones)
    dispensers_per_vehicle: int = 5
    stations: int = 0  # 0: one station per 4 dispensers
    software_hash: bytes = b""  # what every vehicle's readings carry (b"": none)
    fraud_from_refuel: int = 0  # fraudulent dispensers cheat from the fleet's n-th refuel on
    # the OBD levels carry the sensor's reading and the reported volume is their
    # difference (so the ledger can compute it from a published tank calibration); off,
    # the levels are the true ones and only the reported volume carries the sensor
    calibrated_tanks: bool = False
    # honest dispensers off by up to this much either way (inside the legal tolerance)
    honest_offset_pct: float = 0.0
    away_fraction: float = 0.0  # of refuels at a dispenser that is not one of the homes
    # colluders dress their lies as sensor readings (their bias, noise and OBD steps
    # around the volume they pretend), instead of echoing the claimed volume
    mimic_sensor: bool = False

    def __post_init__(self) -> None:
        if self.vehicles < 1 or self.dispensers < 1:
            raise ValueError("need at least one vehicle and one dispenser")
        for name in ("fraud_fraction", "intermittent_fraction", "collude_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be within 0..1")
        if self.collusion not in ("cover", "cover+frame", "frame"):
            raise ValueError("collusion must be 'cover', 'cover+frame' or 'frame'")


@dataclass
class Dispenser:
    dispenser_id: str
    station_id: str
    shortfall: float  # fraction not delivered when cheating (0 = honest)
    cheat_probability: float
    offset: float = 0.0  # an honest dispenser's own error: it delivers (1 + offset) x claimed

    @property
    def fraudulent(self) -> bool:
        return self.shortfall > 0


@dataclass
class Vehicle:
    vehicle_id: str
    tank_ml: int
    bias: float
    colluding: bool
    home: list[int]
    level: float = 0.5  # fraction of the tank
    odometer_m: int = 0
    refuels: int = 0
    seq: int = 0


CENTRE_E6 = (39_084_000, 117_200_000)  # Tianjin, in millionths of a degree


def station_coordinates(cfg: FleetConfig) -> dict[str, list[int]]:
    """Where the fleet's stations are (within about 15 km of the centre), seeded by the
    fleet's seed but from a generator of their own, so readings stay as they were."""
    rng = random.Random(f"stations-{cfg.seed}")
    stations = cfg.stations or max(1, cfg.dispensers // 4)
    return {f"station-{k:03d}": [CENTRE_E6[0] + rng.randint(-130_000, 130_000),
                                 CENTRE_E6[1] + rng.randint(-170_000, 170_000)]
            for k in range(stations)}  # fmt: skip


@dataclass
class Fleet:
    config: FleetConfig
    dispensers: list[Dispenser] = field(default_factory=list)
    vehicles: list[Vehicle] = field(default_factory=list)

    def __post_init__(self) -> None:
        cfg = self.config
        self.rng = random.Random(cfg.seed)
        self.time_ms = T0_MS
        self.refuels_done = 0
        stations = cfg.stations or max(1, cfg.dispensers // 4)
        fraudulent = set(
            self.rng.sample(range(cfg.dispensers), round(cfg.fraud_fraction * cfg.dispensers))
        )
        intermittent = set(
            self.rng.sample(sorted(fraudulent), round(cfg.intermittent_fraction * len(fraudulent)))
        )
        for d in range(cfg.dispensers):
            shortfall = cfg.fraud_shortfall_pct / 100 if d in fraudulent else 0.0
            cheat = 0.5 if d in intermittent else 1.0
            self.dispensers.append(
                Dispenser(f"disp-{d:04d}", f"station-{d % stations:03d}", shortfall, cheat)
            )
        colluders = set(
            self.rng.sample(range(cfg.vehicles), round(cfg.collude_fraction * cfg.vehicles))
        )
        # the framers' targets, from a generator of their own so the rest stays as it was
        honest = sorted(set(range(cfg.dispensers)) - fraudulent)
        count = min(len(honest), round(cfg.frame_targets * cfg.dispensers))
        targets = random.Random(f"targets-{cfg.seed}").sample(honest, count)
        self.framed = {self.dispensers[d].dispenser_id for d in targets}
        offsets, x = random.Random(f"offsets-{cfg.seed}"), cfg.honest_offset_pct / 100
        for disp in self.dispensers:  # honest dispensers' own errors, from their own generator
            disp.offset = 0.0 if disp.fraudulent or not x else offsets.uniform(-x, x)
        self.away = random.Random(f"away-{cfg.seed}")
        per_vehicle = min(cfg.dispensers_per_vehicle, cfg.dispensers)
        for v in range(cfg.vehicles):
            self.vehicles.append(
                Vehicle(
                    f"veh-{cfg.seed}-{v:05d}",
                    self.rng.choice((40_000, 50_000, 60_000, 70_000)),
                    self.rng.gauss(0, cfg.bias_sd_pct / 100),
                    v in colluders,
                    self.rng.sample(range(cfg.dispensers), per_vehicle),
                    level=self.rng.uniform(0.1, 0.4),
                )
            )

    def refuel(self, vehicle_index: int | None = None) -> tuple[int, RefuelReading]:
        """One refuel of a (random) vehicle at one of its dispensers, as the vehicle reports it."""
        rng, cfg = self.rng, self.config
        index = rng.randrange(len(self.vehicles)) if vehicle_index is None else vehicle_index
        v = self.vehicles[index]
        d = self.dispensers[rng.choice(v.home)]
        if cfg.away_fraction and self.away.random() < cfg.away_fraction:
            d = self.dispensers[self.away.randrange(len(self.dispensers))]
        self._drive(v)
        room_ml = (1 - v.level) * v.tank_ml
        claimed_ml = max(1_000, int(rng.uniform(0.5, 0.95) * room_ml))
        self.refuels_done += 1
        started = self.refuels_done > cfg.fraud_from_refuel
        cheating = d.fraudulent and rng.random() < d.cheat_probability and started
        delivered_ml = claimed_ml * (1 - d.shortfall) if cheating else claimed_ml * (1 + d.offset)
        before_obd = _obd(v.level)
        v.level = min(1.0, v.level + delivered_ml / v.tank_ml)
        after_obd = _obd(v.level)
        error = 1 + v.bias + rng.gauss(0, cfg.noise_pct / 100)
        step_ml = v.tank_ml / OBD_STEPS
        measured_ml = _sensed_ml(delivered_ml, error, step_ml)
        frame = (cfg.frame_pct or cfg.fraud_shortfall_pct) / 100
        pretend_ml = None
        if v.colluding and d.fraudulent and cfg.collusion != "frame":
            pretend_ml = claimed_ml  # cover the fraud
        elif v.colluding and self._frames(d):
            pretend_ml = round(claimed_ml * (1 - frame))  # accuse an honest dispenser
        if pretend_ml is not None and cfg.mimic_sensor:
            measured_ml = _sensed_ml(pretend_ml, error, step_ml)
        elif pretend_ml is not None:
            measured_ml = pretend_ml
        if cfg.calibrated_tanks:  # the level after is what the sensor (or a colluder) says
            after_obd = min(OBD_STEPS, before_obd + round(measured_ml / step_ml))
            measured_ml = round((after_obd - before_obd) * step_ml)
        v.refuels += 1
        v.seq += 1
        self.time_ms += rng.randrange(1_000, 60_000)
        reading = RefuelReading(
            v.vehicle_id, d.dispenser_id, d.station_id, claimed_ml, min(measured_ml, 2_000_000),
            before_obd, after_obd, v.odometer_m, self.time_ms, cfg.software_hash,
        )  # fmt: skip
        return index, reading

    def _frames(self, d: Dispenser) -> bool:
        """Whether colluders accuse this (honest) dispenser."""
        c = self.config.collusion
        return c == "cover+frame" or (c == "frame" and d.dispenser_id in self.framed)

    def tank_calibrations(self) -> list[TankCalibration]:
        """What an authority publishes for each of the fleet's tank models: linear, one
        level step a 255th of the tank (as the fleet's sensors read them)."""
        tanks = sorted({v.tank_ml for v in self.vehicles})
        return [TankCalibration(tank_model(ml), ((0, 0), (MAX_OBD_LEVEL, ml))) for ml in tanks]

    def _drive(self, v: Vehicle) -> None:
        used = self.rng.uniform(0.4, 0.8) * v.level
        v.level -= used
        v.odometer_m += int(used * v.tank_ml / 70 * 1_000)  # about 14 km per litre


def tank_model(tank_ml: int) -> str:
    return f"sim-tank-{tank_ml // 1000}L"


def _sensed_ml(volume_ml: float, error: float, step_ml: float) -> int:
    """What a tank sensor with this relative error reports for a volume: whole level
    steps, in millilitres."""
    return max(0, round(round(volume_ml * error / step_ml) * step_ml))


def _obd(level: float) -> int:
    return max(0, min(OBD_STEPS, round(level * OBD_STEPS)))


@dataclass
class Meter:
    meter_id: str
    accuracy_class: int  # 1 or 2 (IEC 62053-21: +-1 %, +-2 %)
    error: float  # relative error now
    drift_per_reading: float
    energy_wh: int = 0
    seq: int = 0


class MeterFleet:
    """Smart meters reporting cumulative active energy every `interval_s`; some drift."""

    def __init__(
        self, meters: int, seed: int = 1, drifting_fraction: float = 0.1, interval_s: int = 900
    ):
        self.rng = random.Random(seed)
        self.interval_s = interval_s
        drifting = set(self.rng.sample(range(meters), round(drifting_fraction * meters)))
        self.meters = []
        for m in range(meters):
            cls = self.rng.choice((1, 2))
            drift = 0.0005 if m in drifting else 0.0
            error = self.rng.uniform(-cls, cls) / 200  # well within the class at installation
            self.meters.append(Meter(f"meter-{seed}-{m:05d}", cls, error, drift))

    def reading(self, meter_index: int) -> MeterReading:
        m = self.meters[meter_index]
        m.seq += 1
        true_wh = self.rng.uniform(50, 2_000)
        m.energy_wh += max(0, round(true_wh * (1 + m.error)))
        m.error += m.drift_per_reading
        return MeterReading(
            m.meter_id, m.energy_wh, self.interval_s, T0_MS + m.seq * self.interval_s * 1_000
        )
