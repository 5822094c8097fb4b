"""`metroledger surveil eval --wide`: the contract over fleets built unlike its default
one (issue 20, item 2), beside the bound.

Axes: fleet size and dispensers (so readings per dispenser run from 100 to 1,000), the
number of home dispensers (3 or 6, and a tenth of refuels elsewhere), the spread of
vehicle sensor biases (σ 1 or 2 %), noise (2 or 5 %) and covering/framing colluders
(none or 20 %). Every cell has honest dispensers that are themselves off by up to
±0.3 % (inside the 0.5 % tolerance, so they must not be flagged), 10 % of dispensers
2 % short, 10 refuels per vehicle, refuels of about 10-60 L read through OBD steps.
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from analysis.surveillance import SurveillanceRules
from bench.surveil_eval import Cell, pct, run_cells, summarise

FLEETS = ((500, 50), (1_000, 50), (2_000, 20), (5_000, 100))  # (vehicles, dispensers)
HOMES = (3, 6)
BIAS_SD_PCT = (1.0, 2.0)
NOISE_PCT = (2.0, 5.0)
COLLUDING = (0.0, 0.2)
FIXED = {"fraud_fraction": 0.1, "away_fraction": 0.1, "honest_offset_pct": 0.3}


def wide_cells(seeds: int) -> list[Cell]:
    return [
        Cell(noise, 10, 2.0, colluding, seed, vehicles=v, dispensers=d, bias_sd_pct=bias,
             home_dispensers=homes, **FIXED)  # type: ignore[arg-type]
        for (v, d), homes, bias, noise, colluding in itertools.product(
            FLEETS, HOMES, BIAS_SD_PCT, NOISE_PCT, COLLUDING)
        for seed in range(seeds)
    ]  # fmt: skip


def wide_table(rows: list[dict[str, Any]]) -> str:
    head = ("| vehicles / dispensers | readings per dispenser | homes | bias σ | noise "
            "| colluding | sensitivity | specificity | false alarms | bound | of the bound "
            "| knowing colluders |\n" + "|---" * 12 + "|\n")  # fmt: skip
    body = "".join(
        f"| {r['vehicles']:,} / {r['fleet_dispensers']} "
        f"| {r['vehicles'] * r['refuels_per_vehicle'] // r['fleet_dispensers']:,} "
        f"| {r['home_dispensers']} | {r['bias_sd_pct']:g} % | {r['noise_pct']:g} % "
        f"| {pct(r['collude_fraction'])} | {pct(r['sensitivity'])} | {pct(r['specificity'])} "
        f"| {pct(r['false_alarm_rate'])} | {pct(r['bound_sensitivity'])} "
        f"| {pct(r['of_bound'])} | {pct(r['aware_sensitivity'])} |\n"
        for r in rows
    )
    return head + body


def evaluate_wide(seeds: int, jobs: int, out: Path) -> list[dict[str, Any]]:
    """The wide grid, seeds 0..seeds-1; OUT/surveil_wide.json and .md."""
    cells = wide_cells(seeds)
    print(f"wide grid: {len(cells)} cells ({seeds} seeds each)", file=sys.stderr)
    rows = summarise(run_cells(cells, jobs))
    config = {"fleets": FLEETS, "homes": HOMES, "bias_sd_pct": BIAS_SD_PCT,
              "noise_pct": NOISE_PCT, "colluding": COLLUDING, "fixed": FIXED,
              "refuels_per_vehicle": 10, "fraud_pct": 2.0, "seeds": seeds,
              "rules": asdict(SurveillanceRules())}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "surveil_wide.json").write_text(json.dumps({"config": config, "rows": rows}, indent=1))
    table = wide_table(rows)
    of_bound = [r["of_bound"] for r in rows if r["of_bound"] is not None]
    clean = [r for r in rows if not r["collude_fraction"]]
    summary = (f"\nMean sensitivity of the bound's: {100 * statistics.mean(of_bound):.1f} % over "
               f"{len(of_bound)} cells; lowest specificity without collusion: "
               f"{100 * min(r['specificity'] for r in clean):.1f} %.\n")  # fmt: skip
    (out / "surveil_wide.md").write_text(table + summary)
    print(f"wrote {out / 'surveil_wide.json'} and surveil_wide.md", file=sys.stderr)
    print(table + summary)
    return rows
