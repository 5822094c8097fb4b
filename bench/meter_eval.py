"""`metroledger meter eval`: detection power of the remote error model over a grid.

Each cell simulates seeded transformer areas (oracle/areas.py), feeds their readings to
the model in integer arithmetic (analysis/error_model.py) and judges every user meter
at checkpoints (day 3, 5, 7, 10, 14, 21 and the last) against its class limit (class 2:
±2 %). At the last checkpoint: sensitivity = faulty meters reported out of tolerance /
faulty meters, specificity = good meters not reported / good meters; the time to
detection is the first checkpoint at which a faulty meter is reported. The CPU of one
evaluation (`judge`) per area is recorded.
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from analysis.error_model import Accumulator, judge
from oracle.areas import Area, AreaConfig

LIMIT_PPM = 20_000  # class 2
CHECKPOINT_DAYS = (3, 5, 7, 10, 14, 21)
QUICK_GRID: dict[str, tuple[Any, ...]] = {
    "meters": (50, 100),
    "period_s": (3600, 86400),
    "noise_ppm": (2_000, 5_000),
    "loss_ppm": (30_000,),
    "bad_error_ppm": (30_000, 50_000),
}
FULL_GRID: dict[str, tuple[Any, ...]] = {  # daily readings give no estimate (see --quick)
    "meters": (50, 100, 200, 300),
    "period_s": (3600,),
    "noise_ppm": (1_000, 2_000, 5_000),
    "loss_ppm": (30_000, 80_000),
    "bad_error_ppm": (25_000, 30_000, 50_000),
}


@dataclass(frozen=True)
class CellResult:
    cell: dict[str, Any]
    faulty: int
    found: int
    good: int
    false_alarms: int
    undecided_good: int
    days_to_detect: list[int]
    cpu_ms_per_evaluation: float
    computable: int  # areas whose errors the data determined at the last checkpoint

    @property
    def sensitivity(self) -> float:
        return self.found / self.faulty if self.faulty else float("nan")

    @property
    def specificity(self) -> float:
        return 1 - self.false_alarms / self.good if self.good else float("nan")


def run_area(cfg: AreaConfig) -> dict[str, Any]:
    """One area: counts at the last checkpoint, and each faulty meter's detection day."""
    area, acc = Area(cfg), Accumulator(cfg.meters)
    per_day = 86400 // cfg.period_s
    checkpoints = [d for d in CHECKPOINT_DAYS if d < cfg.days] + [cfg.days]
    detected: dict[int, int] = {}
    cpu, evaluations, verdicts, judged = 0.0, 0, ["undecided"] * cfg.meters, None
    for index, (users, summary) in enumerate(area.periods(), start=1):
        acc.add(users, summary)
        day = index // per_day
        if index % per_day or day not in checkpoints:
            continue
        started = time.process_time()
        judged = judge(acc, [LIMIT_PPM] * cfg.meters)
        cpu, evaluations = cpu + time.process_time() - started, evaluations + 1
        verdicts = judged[1] if judged else ["undecided"] * cfg.meters
        for i, v in enumerate(verdicts):
            if v == "out_of_tolerance" and area.is_faulty(i, LIMIT_PPM, day):
                detected.setdefault(i, day)
    faulty = [i for i in range(cfg.meters) if area.is_faulty(i, LIMIT_PPM, cfg.days)]
    good = [i for i in range(cfg.meters) if i not in faulty]
    return {
        "faulty": len(faulty),
        "found": sum(verdicts[i] == "out_of_tolerance" for i in faulty),
        "good": len(good),
        "false_alarms": sum(verdicts[i] == "out_of_tolerance" for i in good),
        "undecided_good": sum(verdicts[i] == "undecided" for i in good),
        "days": [detected[i] for i in faulty if i in detected],
        "cpu_s": cpu / max(evaluations, 1),
        "computable": judged is not None,
    }


def run_cell(cell: dict[str, Any], seeds: int, days: int) -> CellResult:
    areas = [run_area(AreaConfig(**cell, days=days, seed=s)) for s in range(1, seeds + 1)]
    return CellResult(
        {**cell, "days": days}, sum(a["faulty"] for a in areas), sum(a["found"] for a in areas),
        sum(a["good"] for a in areas), sum(a["false_alarms"] for a in areas),
        sum(a["undecided_good"] for a in areas), sorted(d for a in areas for d in a["days"]),
        round(1000 * statistics.mean(a["cpu_s"] for a in areas), 1),
        sum(a["computable"] for a in areas),
    )  # fmt: skip


def evaluate(grid: dict[str, tuple[Any, ...]], seeds: int, days: int, jobs: int
             ) -> list[CellResult]:  # fmt: skip
    cells = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    with ProcessPoolExecutor(jobs) as pool:
        futures = [pool.submit(run_cell, cell, seeds, days) for cell in cells]
        results = []
        for done, future in enumerate(futures, start=1):
            results.append(future.result())
            print(f"  cell {done}/{len(cells)}", file=sys.stderr, flush=True)
    return results


def table(results: list[CellResult]) -> str:
    lines = ["| meters | period | noise | loss | error | sensitivity | specificity | "
             "undecided good | days to detect (median) | CPU per evaluation |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        c = r.cell
        days = statistics.median(r.days_to_detect) if r.days_to_detect else "-"
        period = "hour" if c["period_s"] == 3600 else "day"
        if not r.computable:
            periods = c["days"] * 86400 // c["period_s"]
            lines.append(f"| {c['meters']} | {period} | {c['noise_ppm'] / 1e4:g} % "
                         f"| {c['loss_ppm'] / 1e4:g} % | {c['bad_error_ppm'] / 1e4:g} % "
                         f"| no estimate: {periods} periods for {c['meters'] + 2} unknowns "
                         "| | | | |")  # fmt: skip
            continue
        lines.append(
            f"| {c['meters']} | {period} | {c['noise_ppm'] / 1e4:g} % | {c['loss_ppm'] / 1e4:g} % "
            f"| {c['bad_error_ppm'] / 1e4:g} % | {r.found}/{r.faulty} = {r.sensitivity:.1%} "
            f"| {r.specificity:.2%} | {r.undecided_good}/{r.good} | {days} "
            f"| {r.cpu_ms_per_evaluation} ms |"
        )
    return "\n".join(lines)


def run_eval(quick: bool, seeds: int, days: int, jobs: int, out: Path | None) -> int:
    grid = QUICK_GRID if quick else FULL_GRID
    started = time.time()
    results = evaluate(grid, seeds, days, jobs)
    print(table(results))
    if out is not None:
        out.write_text(json.dumps({
            "grid": {k: list(v) for k, v in grid.items()}, "seeds": seeds, "days": days,
            "limit_ppm": LIMIT_PPM, "area": asdict(replace(AreaConfig(), seed=0)),
            "wall_s": round(time.time() - started, 1),
            "cells": [{**asdict(r), "sensitivity": r.sensitivity,
                       "specificity": r.specificity} for r in results],
        }, indent=1))  # fmt: skip
        print(f"written {out}", file=sys.stderr)
    return 0
