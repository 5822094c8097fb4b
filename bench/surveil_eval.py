"""`metroledger surveil eval`: detection power of the surveillance contract over a grid.

Each cell runs the contract itself (analysis/surveillance.py, integer arithmetic) over
the readings of a seeded simulated fleet (oracle/sim/fleet.py) and compares its final
verdicts with the ground truth. Colluding vehicles cover fraudulent dispensers (report
the claimed volume) and frame honest ones (report a shortfall of the fraud's size).
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from analysis.state import DirectState
from analysis.surveillance import SUSPECT, DispenserSurveillance, SurveillanceRules
from bench.bound import BiasKnowingDetector
from oracle.sim.fleet import Fleet, FleetConfig

FULL_GRID = {
    "noise_pct": (1.0, 2.0, 5.0),
    "refuels_per_vehicle": (5, 10, 20),
    "fraud_pct": (0.5, 1.0, 2.0, 5.0),
    "collude_fraction": (0.0, 0.1, 0.2, 0.3),
}
QUICK_GRID = {
    "noise_pct": (2.0, 5.0),
    "refuels_per_vehicle": (10, 20),
    "fraud_pct": (1.0, 2.0),
    "collude_fraction": (0.0, 0.2),
}


@dataclass(frozen=True)
class Cell:
    noise_pct: float
    refuels_per_vehicle: int
    fraud_pct: float
    collude_fraction: float
    seed: int
    vehicles: int = 2000
    dispensers: int = 40
    fraud_fraction: float = 0.2
    bias_sd_pct: float = 1.0
    cheats_from: float = 0.0  # fraudulent dispensers cheat from this share of the readings on
    collusion: str = "cover+frame"  # oracle.sim.fleet: or "frame", targets only
    frame_pct: float = 0.0  # the shortfall framers report (0: the fraud's)
    home_dispensers: int = 5  # each vehicle's home dispensers
    away_fraction: float = 0.0  # of refuels elsewhere
    honest_offset_pct: float = 0.0  # honest dispensers' own errors, up to this either way
    mimic_sensor: bool = False  # colluders dress their lies as sensor readings


@dataclass(frozen=True)
class CellResult:
    cell: Cell
    fraudulent: int
    flagged_fraudulent: int
    honest: int
    flagged_honest: int  # at the end
    ever_flagged_honest: int  # at any time: the sequential false alarms
    readings_to_detect: list[int]  # readings at a fraudulent dispenser when first flagged
    colluders: int
    suspected_colluders: int
    honest_vehicles: int
    suspected_honest_vehicles: int
    readings: int
    bound_flagged_fraudulent: int = 0  # bench.bound: what knowing every bias would find
    bound_flagged_honest: int = 0
    aware_flagged_fraudulent: int = 0  # the same, knowing who colludes too
    aware_flagged_honest: int = 0


def fleet_for(cell: Cell) -> Fleet:
    """The seeded fleet a cell describes (the same readings every time)."""
    return Fleet(
        FleetConfig(
            vehicles=cell.vehicles,
            dispensers=cell.dispensers,
            seed=cell.seed,
            fraud_fraction=cell.fraud_fraction,
            fraud_shortfall_pct=cell.fraud_pct,
            noise_pct=cell.noise_pct,
            collude_fraction=cell.collude_fraction,
            collusion=cell.collusion,
            frame_pct=cell.frame_pct,
            dispensers_per_vehicle=cell.home_dispensers,
            away_fraction=cell.away_fraction,
            honest_offset_pct=cell.honest_offset_pct,
            bias_sd_pct=cell.bias_sd_pct,
            mimic_sensor=cell.mimic_sensor,
            fraud_from_refuel=int(cell.cheats_from * cell.vehicles * cell.refuels_per_vehicle),
        )
    )


def run_cell(cell: Cell, rules: SurveillanceRules | None = None) -> CellResult:
    fleet = fleet_for(cell)
    rules = rules or SurveillanceRules()
    contract, state = DispenserSurveillance(rules), DirectState({})
    bound, aware = BiasKnowingDetector(rules), BiasKnowingDetector(rules)
    ever_flagged: set[str] = set()
    readings = cell.vehicles * cell.refuels_per_vehicle
    change_at = int(cell.cheats_from * readings)
    before: dict[str, int] = {}  # readings at each dispenser when the cheating starts
    for k in range(readings):
        if k == change_at and change_at:
            before = {d: r["n"] for d, r in state.committed.items() if d.startswith("disp/")}
        index, reading = fleet.refuel()
        bound.add(reading, fleet.vehicles[index].bias)
        if not fleet.vehicles[index].colluding:
            aware.add(reading, fleet.vehicles[index].bias)
        for name, evidence in contract.observe(state, reading).events:
            if name == "dispenser_flagged":
                ever_flagged.add(evidence["dispenser_id"])
    records = {d.dispenser_id: state.get(f"disp/{d.dispenser_id}") for d in fleet.dispensers}
    flagged = {i for i, r in records.items() if r is not None and r["status"] == SUSPECT}
    fraud = {d.dispenser_id for d in fleet.dispensers if d.fraudulent}
    honest = set(records) - fraud
    colluders = {v.vehicle_id for v in fleet.vehicles if v.colluding}
    suspected = {
        v.vehicle_id
        for v in fleet.vehicles
        if (state.get(f"veh/{v.vehicle_id}") or {}).get("suspect", False)
    }
    detect = sorted(records[d]["flagged_at"] - before.get(f"disp/{d}", 0)
                    for d in fraud & flagged if records[d]["flagged_at"])  # fmt: skip
    bound_flagged, aware_flagged = bound.suspects(), aware.suspects()
    return CellResult(
        cell,
        len(fraud),
        len(fraud & flagged),
        len(honest),
        len(honest & flagged),
        len(honest & ever_flagged),
        detect,
        len(colluders),
        len(colluders & suspected),
        cell.vehicles - len(colluders),
        len(suspected - colluders),
        readings,
        len(fraud & bound_flagged),
        len(honest & bound_flagged),
        len(fraud & aware_flagged),
        len(honest & aware_flagged),
    )


def summarise(results: list[CellResult]) -> list[dict[str, Any]]:
    """One row per grid point, pooled over seeds."""
    rows = []
    key = lambda r: (  # noqa: E731
        r.cell.noise_pct,
        r.cell.refuels_per_vehicle,
        r.cell.fraud_pct,
        r.cell.collude_fraction,
        r.cell.cheats_from,
        r.cell.collusion,
        r.cell.frame_pct,
        r.cell.vehicles,
        r.cell.dispensers,
        r.cell.home_dispensers,
        r.cell.bias_sd_pct,
        r.cell.honest_offset_pct,
        r.cell.mimic_sensor,
    )
    for point, group in itertools.groupby(sorted(results, key=key), key=key):
        g = list(group)
        fraud, honest = sum(r.fraudulent for r in g), sum(r.honest for r in g)
        detect = [x for r in g for x in r.readings_to_detect]
        colluders, honest_v = sum(r.colluders for r in g), sum(r.honest_vehicles for r in g)
        rows.append(
            {
                "noise_pct": point[0],
                "refuels_per_vehicle": point[1],
                "fraud_pct": point[2],
                "collude_fraction": point[3],
                "cheats_from": point[4],
                "collusion": point[5],
                "frame_pct": point[6],
                "vehicles": point[7],
                "fleet_dispensers": point[8],
                "home_dispensers": point[9],
                "bias_sd_pct": point[10],
                "honest_offset_pct": point[11],
                "mimic_sensor": point[12],
                "seeds": len(g),
                "sensitivity": sum(r.flagged_fraudulent for r in g) / fraud,
                "specificity": 1 - sum(r.flagged_honest for r in g) / honest,
                "false_alarm_rate": sum(r.ever_flagged_honest for r in g) / honest,
                "median_readings_to_detect": statistics.median(detect) if detect else None,
                "colluders_found": sum(r.suspected_colluders for r in g) / colluders
                if colluders
                else None,
                "honest_vehicles_suspected": sum(r.suspected_honest_vehicles for r in g) / honest_v,
                "dispensers": fraud + honest,
                **bound_columns(g, fraud, honest),
            }
        )
    return rows


def bound_columns(g: list[CellResult], fraud: int, honest: int) -> dict[str, float | None]:
    """The bias-knowing detector's sensitivity and specificity, and the contract's
    sensitivity as a fraction of the bound's."""
    bound = sum(r.bound_flagged_fraudulent for r in g) / fraud
    found = sum(r.flagged_fraudulent for r in g) / fraud
    colluding = any(r.colluders for r in g)
    aware = sum(r.aware_flagged_fraudulent for r in g) / fraud if colluding else None
    return {"bound_sensitivity": bound,
            "bound_specificity": 1 - sum(r.bound_flagged_honest for r in g) / honest,
            "of_bound": found / bound if bound else None,
            "aware_sensitivity": aware,
            "aware_specificity": 1 - sum(r.aware_flagged_honest for r in g) / honest
                                 if colluding else None}  # fmt: skip


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| noise % | refuels/vehicle | fraud % | colluding | cheats from | sensitivity "
        "| specificity "
        "| false alarms | readings to detect | colluders found | honest vehicles suspected "
        "| bound: sensitivity | bound: specificity | sensitivity of the bound's "
        "| knowing colluders: sensitivity | knowing colluders: specificity |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )

    def colluding(r: dict[str, Any]) -> str:
        if not r["collude_fraction"]:
            return pct(0.0)
        frame = r.get("frame_pct") or r["fraud_pct"]
        mimic = ", mimicking a sensor" if r.get("mimic_sensor") else ""
        how = f"{r.get('collusion', 'cover+frame')} {frame:g} %{mimic}"
        return f"{pct(r['collude_fraction'])} {how}"

    body = "".join(
        f"| {r['noise_pct']:g} | {r['refuels_per_vehicle']} | {r['fraud_pct']:g} "
        f"| {colluding(r)} | {pct(r['cheats_from'])} | {pct(r['sensitivity'])} "
        f"| {pct(r['specificity'])} "
        f"| {pct(r['false_alarm_rate'])} | {r['median_readings_to_detect'] or '-'} "
        f"| {pct(r['colluders_found'])} | {pct(r['honest_vehicles_suspected'])} "
        f"| {pct(r['bound_sensitivity'])} | {pct(r['bound_specificity'])} "
        f"| {pct(r['of_bound'])} | {pct(r['aware_sensitivity'])} "
        f"| {pct(r['aware_specificity'])} |\n"
        for r in rows
    )
    return head + body


# issue 20's fleet: about 200 readings per dispenser, per-vehicle bias sd 2 %, 10 % of
# dispensers cheating; (noise %, refuels per vehicle, fraud %, colluding fraction)
ISSUE_FLEET = {"vehicles": 1000, "dispensers": 50, "fraud_fraction": 0.1, "bias_sd_pct": 2.0}
ISSUE_SETTINGS = ((5.0, 10, 2.0, 0.0), (5.0, 10, 2.0, 0.2), (2.0, 10, 1.0, 0.0))
# dispensers that start cheating half-way, once most honest-looking ones are cleared: the
# change test's cells (readings to detect count from the start of the cheating)
CHANGE_SETTINGS = ((5.0, 10, 2.0, 0.0), (2.0, 10, 2.0, 0.0), (2.0, 20, 2.0, 0.0))


# covering colluders (issue 20), 20 % of the vehicles at 5 % noise and 2 % fraud:
# (collusion, whether they mimic a sensor instead of echoing the claimed volume)
COVER_SETTINGS = (("cover", False), ("cover", True), ("cover+frame", True))

# framing (issue 20): colluders accuse a fifth of the dispensers (honest ones) by 3-5 %,
# and report honestly elsewhere; (noise %, colluding fraction, frame %), 2 % fraud
FRAME_SETTINGS = tuple((noise, c, f) for noise in (2.0, 5.0) for c in (0.1, 0.2)
                       for f in (3.0, 5.0))  # fmt: skip


def run_grid(grid: dict[str, tuple[Any, ...]], seeds: int, jobs: int) -> list[CellResult]:
    cells = [
        Cell(noise, refuels, fraud, collude, seed)
        for noise, refuels, fraud, collude in itertools.product(*grid.values())
        for seed in range(1, seeds + 1)
    ]
    return run_cells(cells, jobs)


def run_cells(cells: list[Cell], jobs: int) -> list[CellResult]:
    results: list[CellResult] = []
    started = time.monotonic()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for done, result in enumerate(pool.map(run_cell, cells), start=1):
            results.append(result)
            elapsed = time.monotonic() - started
            print(f"\r{done}/{len(cells)} cells  {elapsed:.0f}s", end="", file=sys.stderr)
    print(file=sys.stderr)
    return results


def write_reports(rows: list[dict[str, Any]], config: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "surveil_eval.json").write_text(json.dumps({"config": config, "rows": rows}, indent=2))
    (out / "surveil_eval.md").write_text(markdown_table(rows))
    return [out / "surveil_eval.json", out / "surveil_eval.md", *plot(rows, out)]


COLOURS = ("tab:blue", "tab:green", "tab:orange", "tab:red")  # by colluding fraction
STYLES = {1.0: ":", 2.0: "--", 5.0: "-"}  # by sensor noise


def plot(rows: list[dict[str, Any]], out: Path) -> list[Path]:
    """Sensitivity and specificity against fraud size, one line per (noise, collusion)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for refuels in sorted({r["refuels_per_vehicle"] for r in rows}):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
        series = sorted({(r["noise_pct"], r["collude_fraction"]) for r in rows})
        for noise, collude in series:
            pts = sorted(
                (r["fraud_pct"], r["sensitivity"], r["specificity"])
                for r in rows
                if (r["noise_pct"], r["collude_fraction"], r["refuels_per_vehicle"])
                == (noise, collude, refuels)
            )
            label = f"noise {noise:g} %, colluding {100 * collude:.0f} %"
            colour = COLOURS[round(collude * 10) % len(COLOURS)]
            style = {"color": colour, "linestyle": STYLES.get(noise, "-."), "marker": "o"}
            style["label"] = label
            ax1.plot([p[0] for p in pts], [100 * p[1] for p in pts], **style)
            ax2.plot([p[0] for p in pts], [100 * p[2] for p in pts], **style)
        ax1.set(xlabel="short delivery (%)", ylabel="sensitivity (%)", ylim=(-2, 102))
        ax2.set(xlabel="short delivery (%)", ylabel="specificity (%)", ylim=(-2, 102))
        ax1.set_title(f"{refuels} refuels per vehicle")
        ax2.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"surveil_eval_refuels{refuels}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def evaluate(quick: bool, seeds: int, jobs: int, out: Path) -> list[dict[str, Any]]:
    grid = QUICK_GRID if quick else FULL_GRID
    rules = SurveillanceRules()
    print(f"grid {'quick' if quick else 'full'}: {grid}; seeds 1..{seeds}", file=sys.stderr)
    results = run_grid(grid, seeds, jobs)
    rows = summarise(results)
    config = {
        "grid": {k: list(v) for k, v in grid.items()},
        "seeds": seeds,
        "rules": asdict(rules),
        "fleet": {
            "vehicles": Cell(0, 0, 0, 0, 0).vehicles,
            "dispensers": Cell(0, 0, 0, 0, 0).dispensers,
            "fraud_fraction": 0.2,
            "bias_sd_pct": 1.0,
            "dispensers_per_vehicle": 5,
            "collusion": "cover+frame",
        },
    }
    for path in write_reports(rows, config, out):
        print(f"wrote {path}", file=sys.stderr)
    print(markdown_table(rows))
    return rows


def evaluate_issue_fleet(seeds: int, jobs: int, out: Path) -> list[dict[str, Any]]:
    """The issue's three settings on its fleet, seeds 0..seeds-1, beside the bound;
    written to OUT/bound_issue_fleet.json."""
    cells = [Cell(*setting, seed, **ISSUE_FLEET)  # type: ignore[arg-type]
             for setting in ISSUE_SETTINGS for seed in range(seeds)]  # fmt: skip
    cells += [Cell(*setting, seed, **ISSUE_FLEET, cheats_from=0.5)  # type: ignore[arg-type]
              for setting in CHANGE_SETTINGS for seed in range(seeds)]  # fmt: skip
    cells += [Cell(noise, 10, 2.0, c, seed, **ISSUE_FLEET, collusion="frame", frame_pct=f)  # type: ignore[arg-type]
              for noise, c, f in FRAME_SETTINGS for seed in range(seeds)]  # fmt: skip
    cells += [Cell(5.0, 10, 2.0, 0.2, seed, **ISSUE_FLEET, collusion=how, mimic_sensor=mimic)  # type: ignore[arg-type]
              for how, mimic in COVER_SETTINGS for seed in range(seeds)]  # fmt: skip
    rows = summarise(run_cells(cells, jobs))
    config = {**ISSUE_FLEET, "seeds": seeds, "settings": [list(x) for x in ISSUE_SETTINGS],
              "change_settings": [list(x) for x in CHANGE_SETTINGS], "cheats_from": 0.5,
              "frame_settings": [list(x) for x in FRAME_SETTINGS], "frame_targets": 0.2,
              "cover_settings": [list(x) for x in COVER_SETTINGS],
              "rules": asdict(SurveillanceRules())}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    path = out / "bound_issue_fleet.json"
    path.write_text(json.dumps({"config": config, "rows": rows}, indent=1) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    print(markdown_table(rows))
    return rows
