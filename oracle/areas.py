"""A seeded simulator of transformer areas: user meters with known errors, a summary meter.

Each household draws its daily consumption (log-normal around 8 kWh) and spreads it over
the day with a morning and an evening peak, shifted by up to two hours per household;
each hour is multiplied by a log-normal factor (σ 0.6: appliances switch on and off, so
hourly loads vary about as much as they do in measured household data). A user meter
registers its household's energy times (1 + its error), rounded to the Wh.

The summary meter registers what the transformer delivers: the households' true energy
plus the line loss, a fixed part (no-load loss) and a part quadratic in the load (I²R),
with the relative noise of its own reading. The loss is calibrated so that its mean is
`loss_ppm` of the energy delivered.

Meters that go wrong, each with its truth kept for the evaluation:
- `bad`: a constant error of `bad_error_ppm` (its sign drawn);
- `drifting`: an error growing linearly from 0 to `bad_error_ppm` over the window;
- `failing`: stops registering (reads 0) from a day drawn in the window's second half;
- `theft`: a bypass around the meter, which registers only 60 % of its household's load.
The good meters' errors are drawn uniformly within ±`good_error_ppm`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

PPM = 1_000_000
THEFT_SHARE_PCT = 60  # what a bypassed meter still registers


@dataclass(frozen=True)
class AreaConfig:
    meters: int = 50
    days: int = 30
    period_s: int = 3600  # 3600 hourly readings, 86400 daily
    noise_ppm: int = 2_000  # the summary meter's relative noise (1 σ)
    loss_ppm: int = 30_000  # the mean line loss, of the energy delivered
    fixed_loss_pct: int = 30  # the share of the loss that does not depend on the load
    bad: int = 1
    bad_error_ppm: int = 50_000
    good_error_ppm: int = 5_000
    drifting: int = 0
    failing: int = 0
    theft: int = 0
    seed: int = 1

    def __post_init__(self) -> None:
        if self.period_s not in (3600, 86400):
            raise ValueError("period_s: 3600 (hourly) or 86400 (daily)")
        if self.bad + self.drifting + self.failing + self.theft > self.meters:
            raise ValueError("more faulty meters than meters")
        if self.meters < 1 or self.days < 1:
            raise ValueError("meters and days must be at least 1")


class Area:
    """One simulated area; `kinds[i]` says what meter i is, `periods()` yields readings."""

    def __init__(self, cfg: AreaConfig):
        self.cfg, rng = cfg, random.Random(cfg.seed)
        n = cfg.meters
        faulty = (["bad"] * cfg.bad + ["drifting"] * cfg.drifting + ["failing"] * cfg.failing
                  + ["theft"] * cfg.theft)  # fmt: skip
        self.kinds = faulty + ["good"] * (n - len(faulty))
        rng.shuffle(self.kinds)
        self.base_error = [rng.uniform(-1, 1) * cfg.good_error_ppm / PPM for _ in range(n)]
        self.sign = [rng.choice((-1, 1)) for _ in range(n)]
        self.daily_wh = [8_000 * rng.lognormvariate(0, 0.4) for _ in range(n)]
        self.shift_h = [rng.uniform(-2, 2) for _ in range(n)]
        self.fails_at_day = [rng.randrange(cfg.days // 2, cfg.days) for _ in range(n)]
        self.rng = rng
        mean_load = sum(self.daily_wh) / 24 * cfg.period_s / 3600
        mean_loss = mean_load * cfg.loss_ppm / PPM
        self.fixed_loss = mean_loss * cfg.fixed_loss_pct / 100
        # E[T²] ≈ (1 + cv²) E[T]², the hourly total's cv being about 0.35
        cv2 = 0.12 if cfg.period_s == 3600 else 0.01
        self.quadratic = mean_loss * (100 - cfg.fixed_loss_pct) / 100 / (mean_load**2 * (1 + cv2))

    def error_at(self, meter: int, day: float) -> float:
        """Meter i's relative error on `day` (what it registers is (1 + error) × true)."""
        kind, bad = self.kinds[meter], self.cfg.bad_error_ppm / PPM
        if kind == "bad":
            return self.sign[meter] * bad
        if kind == "drifting":
            return self.sign[meter] * bad * day / self.cfg.days
        if kind == "failing" and day >= self.fails_at_day[meter]:
            return -1.0
        if kind == "theft":
            return THEFT_SHARE_PCT / 100 - 1
        return self.base_error[meter]

    def is_faulty(self, meter: int, limit_ppm: int, day: float) -> bool:
        """The truth to judge a verdict by: the error beyond the class limit on `day`."""
        return abs(self.error_at(meter, day)) * PPM > limit_ppm

    def periods(self) -> Iterator[tuple[list[int], int]]:
        """(each user meter's Wh, the summary meter's Wh) per period, in time order."""
        cfg, rng = self.cfg, self.rng
        hours_per_period = cfg.period_s // 3600
        for day in range(cfg.days):
            hourly = [self._day_of(i) for i in range(cfg.meters)]
            for first in range(0, 24, hours_per_period):
                true = [sum(h[first : first + hours_per_period]) for h in hourly]
                when = day + (first + hours_per_period / 2) / 24
                users = [round(t * (1 + self.error_at(i, when))) for i, t in enumerate(true)]
                total = sum(true)
                loss = self.fixed_loss + self.quadratic * total * total
                summary = round((total + loss) * (1 + rng.gauss(0, cfg.noise_ppm / PPM)))
                yield users, summary

    def _day_of(self, meter: int) -> list[float]:
        """A household's 24 hourly energies (Wh) for one day."""
        rng, shift = self.rng, self.shift_h[meter]
        shape = [0.5 + math.exp(-(((h - 8 - shift) / 1.5) ** 2))
                 + 1.5 * math.exp(-(((h - 19 - shift) / 2.0) ** 2)) for h in range(24)]  # fmt: skip
        weights = [s * rng.lognormvariate(0, 0.6) for s in shape]
        total = sum(weights)
        day_wh = self.daily_wh[meter] * rng.lognormvariate(0, 0.2)
        return [day_wh * w / total for w in weights]
