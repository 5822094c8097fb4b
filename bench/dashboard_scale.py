"""How long the reads behind the dashboard's pages take at 100,000 records: the route
handlers of a node, called on contract states of that size (`python -m
bench.dashboard_scale`, results in bench/results/dashboard_scale.json).

The states are synthetic but shaped as the contracts write them (registry entries,
work orders, vehicles' votes); the handlers are the ones the node serves, so this is
the server's part of a page load. The browser's part (rendering 50 registry rows or
500 orders) is small beside it and measured by no one here.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from analysis.contracts import Registry
from analysis.state import ContractState
from analysis.surveillance import DispenserSurveillance, SurveillanceRules
from node.routes import Route, Router
from node.web import Request

RESULTS = Path(__file__).parent / "results" / "dashboard_scale.json"


def registry_state(records: int) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for k in range(records):
        barcode = f"{1230001000000000000000 + k}"
        day = f"20{18 + k % 8}-{1 + k % 12:02d}-{1 + k % 28:02d}"
        state[f"entry/{barcode}/F{k // 2000}/first"] = {
            "barcode": barcode, "task": f"F{k // 2000}", "kind": "first",
            "date": f"{day} 10:00:00", "result": "合格", "certificate_no": f"JDF{k:09d}",
            "institution": f"INST-{k % 5}", "meter_type": "DDZY", "manufacturer": f"Maker-{k % 7}",
            "wiring": "01", "owner": f"Station-{k % 40}", "valid_until": f"20{26 + k % 8}-01-01",
        }  # fmt: skip
    return state


def service_state(orders: int) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for k in range(orders):
        done = k % 3 == 0
        state[f"order/R-{k}"] = {
            "kind": "replacement", "barcode": f"99{k:020d}",
            "status": "evaluated" if done else "created",
            "created_ms": 1_700_000_000_000 + k * 1000, "accepted_ms": 0, "processed_ms": 0,
            "visited_ms": 0, "evaluated_ms": 0, "alerts": [], "staff": [], "result": "",
            "satisfaction": "", "opinion": "", "origin": f"flag/{k}", "task_no": "",
            "model": {"area": f"TA-{k % 300}", "verdict": "out_of_tolerance", "error_ppm": 30_000,
                      "stderr_ppm": 5_000},
        }  # fmt: skip
    return state


def surveillance_state(vehicles: int, dispensers: int) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for d in range(dispensers):
        state[f"disp/disp-{d:04d}"] = {
            "n": 0, "k": 0, "sum_ppm": 0, "sum_sq": 0, "status": "undecided", "flagged_at": 0,
            "estimate": 0, "lower": -1, "upper": 1, "station": f"station-{d // 4:03d}",
        }  # fmt: skip
    for v in range(vehicles):
        home = [f"disp-{(v + j * 7) % dispensers:04d}" for j in range(5)]
        state[f"veh/veh-{v:05d}"] = {"s": {}, "n": {d: 2 for d in home},
                                     "m": {d: -1000 for d in home}, "suspect": False}  # fmt: skip
    return state


@dataclass
class ScaledNode:
    """What the handlers read of a node: its snapshot's contract views and registry."""

    views: dict[str, ContractState]
    registry: Any = None
    snapshot: Any = field(init=False)

    def __post_init__(self) -> None:
        self.snapshot = self

    def view_of(self, contract: str) -> ContractState:
        return self.views.get(contract, ContractState({}))


def build_routes(node: Any) -> list[Route]:
    from node.dashboard_api import dashboard_routes
    from node.registry_api import registry_routes
    from node.service_api import service_routes

    return [*registry_routes(node), *service_routes(node), *dashboard_routes(node, {})]


PAGE_READS = {  # page -> the reads it makes that grow with the records
    "registry, first page": ["/v1/registry?page=1&limit=50"],
    "registry, serial search": ["/v1/registry?serial=1230001000000000099999&page=1&limit=50"],
    "registry, a date range": ["/v1/registry?from=2020-01-01&to=2020-12-31&page=1&limit=50"],
    "registry, a page as CSV": ["/v1/registry.csv?page=1&limit=50"],
    "calibration page": ["/v1/meter/kpis", "/v1/meter/work_orders?limit=500",
                         "/v1/meter/alerts?limit=1", "/v1/meter/anomalies?limit=1"],
    "fuel page (stations, one dispenser's votes)": ["/v1/stations",
                                                    "/v1/dispensers/disp-0003/votes"],
}  # fmt: skip


async def time_reads(router: Router, paths: list[str], runs: int) -> tuple[float, int]:
    """The median over `runs` of the time all `paths` take, and their bytes."""
    times, size = [], 0
    for _ in range(runs):
        started, size = time.perf_counter(), 0
        for path in paths:
            route, _, query = path.partition("?")
            q = dict(p.split("=", 1) for p in query.split("&") if p)
            answer = await router(Request("GET", route, q, [], b"", "1.1", True))
            assert answer.status == 200, (path, answer.body[:200])
            size += len(answer.body)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2], size


def measure(records: int, runs: int) -> dict[str, Any]:
    built = time.perf_counter()
    node = ScaledNode(
        {"registry": ContractState(registry_state(records)),
         "service": ContractState(service_state(records)),
         "surveillance": ContractState(surveillance_state(records // 10, 200))},
        Registry([DispenserSurveillance(SurveillanceRules())]),
    )  # fmt: skip
    print(f"states of {records} records built in {time.perf_counter() - built:.1f} s")
    gc.freeze()  # long-lived, as in a node (where they sit in the oldest generation)
    router = Router(build_routes(node))
    rows = []
    for page, paths in PAGE_READS.items():
        median_s, size = trio.run(time_reads, router, paths, runs)
        rows.append({"page": page, "reads": paths, "median_ms": round(1000 * median_s, 1),
                     "bytes": size})  # fmt: skip
        print(f"{page:45} {1000 * median_s:8.1f} ms  {size:>9} bytes")
    return {"records": records, "vehicles": records // 10, "dispensers": 200, "runs": runs,
            "machine": {"cpu": platform.processor() or platform.machine(),
                        "python": platform.python_version()},
            "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "pages": rows}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = measure(args.records, args.runs)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
