"""`metroledger bench run|compare` and `metroledger surveil eval`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


def add_surveil_parser(commands: Any) -> None:
    surveil = commands.add_parser("surveil", help="fuel-dispenser surveillance")
    sub = surveil.add_subparsers(dest="surveil_cmd", required=True)
    ev = sub.add_parser("eval", help="sensitivity, specificity and time to detection over a grid")
    ev.add_argument("--quick", action="store_true", help="a smaller grid (a few minutes)")
    ev.add_argument(
        "--issue-fleet",
        action="store_true",
        help="issue 20's fleet instead (1,000 vehicles, 50 dispensers, bias sd "
        "2 %%; its settings, framing, late cheats; default 20 seeds)",
    )
    ev.add_argument("--wide", action="store_true",
                    help="fleets of 500-5,000 vehicles over 20-100 dispensers, 3 or 6 homes, "
                         "bias sd 1-2 %%, honest dispensers off by up to 0.3 %% (default 2 "
                         "seeds)")  # fmt: skip
    ev.add_argument("--seeds", type=int, default=0, help="seeds per cell (default 2 quick, 3 full)")
    ev.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ev.add_argument("--out", type=Path, default=Path("surveil-eval"), help="report folder")
    ev.set_defaults(run=run_eval)


def add_bench_parsers(commands: Any) -> None:
    bench = commands.add_parser("bench", help="benchmark scenarios on real daemons")
    sub = bench.add_subparsers(dest="bench_cmd", required=True)
    run = sub.add_parser("run", help="run a scenario file (bench/scenarios/*.toml)")
    run.add_argument("scenario", type=Path)
    run.add_argument("--out", type=Path, help="result folder (default: bench-out/NAME)")
    run.set_defaults(run=run_bench)
    cmp = sub.add_parser("compare", help="ratios between two results (folders or result.json)")
    cmp.add_argument("a", type=Path)
    cmp.add_argument("b", type=Path)
    cmp.set_defaults(run=run_compare)
    proj = sub.add_parser("project", help="fit CPU costs to measured runs and project n = 4..31")
    proj.add_argument("results", type=Path, nargs="+", help="result folders with blocks_committed")
    proj.add_argument("--batch", type=int, default=24, help="transactions per block (24)")
    proj.add_argument("--clients", type=int, default=50, help="closed-loop clients (50)")
    proj.add_argument("--out", type=Path, help="write the projection as JSON")
    proj.set_defaults(run=run_project)


def run_bench(args: argparse.Namespace) -> int:
    from bench.runner import execute
    from bench.scenario import ScenarioError, load_scenario
    from node.netns import unavailable as netns_unavailable

    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(f"metroledger bench run: {exc}", file=sys.stderr)
        return 2
    if scenario.hosts == "netns" and (reason := netns_unavailable()) is not None:
        print(f"metroledger bench run: {args.scenario}: {reason}", file=sys.stderr)
        return 2
    out = args.out or Path("bench-out") / scenario.name
    result = execute(scenario, out)
    lat = result["latency_ms"]
    print(
        f"{scenario.name}: {result['throughput_tps']} tx/s, latency p50 {lat['p50']} ms "
        f"p99 {lat['p99']} ms, crypto limit {result['crypto_limit_tps']} tx/s "
        f"({result['crypto_limit_fraction']}), safety_ok={result['safety_ok']}; {out}/result.json"
    )
    return 0 if result["safety_ok"] else 1


def run_compare(args: argparse.Namespace) -> int:
    from bench.report import compare

    try:
        print(compare(args.a, args.b))
    except (OSError, ValueError, KeyError) as exc:
        print(f"metroledger bench compare: {exc}", file=sys.stderr)
        return 2
    return 0


def run_project(args: argparse.Namespace) -> int:
    from bench.scaling import project_from

    try:
        doc = project_from(args.results, args.batch, args.clients)
    except (OSError, ValueError, KeyError) as exc:
        print(f"metroledger bench project: {exc}", file=sys.stderr)
        return 2
    print(f"fitted (us per block and node): {doc['costs']}")
    for link, rows in doc["projection"].items():
        print(f"one core per node, {link} links, blocks of {args.batch}, {args.clients} clients:")
        for row in rows:
            print(
                f"  n={row['n']:2}  cpu {row['cpu_ms_per_block']:6.2f} ms/block  bound "
                f"{row['cpu_bound_tps']:5} tx/s  closed loop {row['closed_loop_tps']:5} tx/s "
                f"at {row['closed_loop_latency_ms']:6.1f} ms  messages {row['message_share']:.0%}"
            )
    if args.out:
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from bench.surveil_eval import evaluate, evaluate_issue_fleet
    from bench.surveil_wide import evaluate_wide

    wide = getattr(args, "wide", False)
    seeds = args.seeds or (20 if args.issue_fleet else 2 if args.quick or wide else 3)
    if seeds < 1 or args.jobs < 1:
        print("metroledger surveil eval: --seeds and --jobs must be positive")
        return 2
    if args.issue_fleet and wide:
        print("metroledger surveil eval: --issue-fleet or --wide, not both")
        return 2
    if wide:
        evaluate_wide(seeds, args.jobs, args.out)
    elif args.issue_fleet:
        evaluate_issue_fleet(seeds, args.jobs, args.out)
    else:
        evaluate(args.quick, seeds, args.jobs, args.out)
    return 0
