"""`metroledger sim`: seeded Byzantine simulations of the PBFT core."""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from typing import Any

from sim.plan import FAULT_KINDS, SimParams
from sim.runner import print_summary, run_one, summarise, write_json
from sim.world import RunResult, World


def add_sim_parser(commands: Any) -> None:
    p = commands.add_parser(
        "sim",
        help="run seeded simulations of n replicas with network faults and Byzantine members",
        description="Each run draws its faults from its seed; a failing seed replays exactly "
        "with --seed S (and the same --n/--byzantine/--faults).",
    )
    p.add_argument(
        "--runs", type=int, default=None, help="number of runs (default 1 with --seed, else 100)"
    )
    p.add_argument("--seed", type=int, default=None, help="first seed (default 0)")
    p.add_argument("--n", type=int, default=4, help="replicas, n = 3f + 1 (default 4)")
    p.add_argument("--byzantine", type=int, default=1, help="Byzantine replicas, at most f")
    p.add_argument(
        "--faults",
        default=",".join(FAULT_KINDS),
        help=f"comma-separated fault kinds (default all): {','.join(FAULT_KINDS)}",
    )
    p.add_argument(
        "--reconfig",
        action="store_true",
        help="membership changes in every run: joins, removals (also of a Byzantine "
        "member) and key replacements, each a quorum-signed transaction",
    )
    p.add_argument("--requests", type=int, default=24, help="client requests per run")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    p.add_argument("--json", metavar="PATH", help="also write the summary as JSON to PATH")
    p.set_defaults(run=run_sim_command)


def run_sim_command(args: argparse.Namespace) -> int:
    try:
        faults = frozenset(f.strip() for f in args.faults.split(",") if f.strip())
        base = SimParams(n=args.n, byzantine=args.byzantine, faults=faults,
                         requests=args.requests, reconfig=args.reconfig)  # fmt: skip
    except ValueError as exc:
        print(f"metroledger sim: {exc}", file=sys.stderr)
        return 2
    runs = args.runs if args.runs is not None else (1 if args.seed is not None else 100)
    first = args.seed if args.seed is not None else 0
    if runs < 1:
        print("metroledger sim: --runs must be at least 1", file=sys.stderr)
        return 2
    if runs == 1:
        print(f"plan: {World(replace(base, seed=first)).plan}")
    started = time.monotonic()
    results = _run_all(base, runs, first, max(1, args.jobs))
    summary = summarise(base, results)
    summary["elapsed_s"] = round(time.monotonic() - started, 1)
    print_summary(summary)
    if args.json:
        write_json(summary, args.json)
    return 0 if summary["safety_violations"] == 0 and summary["liveness_failures"] == 0 else 1


def _run_all(base: SimParams, runs: int, first: int, jobs: int) -> list[RunResult]:
    params = [replace(base, seed=first + k) for k in range(runs)]
    results: list[RunResult] = []
    step = max(1, runs // 20)
    if jobs == 1 or runs < 8:
        for p in params:
            results.append(run_one(p))
            _progress(len(results), runs, results, step)
        return results
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for result in pool.map(run_one, params, chunksize=8):
            results.append(result)
            _progress(len(results), runs, results, step)
    return results


def _progress(done: int, total: int, results: list[RunResult], step: int) -> None:
    if done % step == 0 or done == total:
        failed = sum(not (r.safety_ok and r.liveness_ok) for r in results)
        print(f"sim: {done}/{total} runs, {failed} failed", file=sys.stderr, flush=True)
