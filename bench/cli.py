"""`metroledger surveil eval`: the surveillance contract's detection power."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any


def add_surveil_parser(commands: Any) -> None:
    surveil = commands.add_parser("surveil", help="fuel-dispenser surveillance")
    sub = surveil.add_subparsers(dest="surveil_cmd", required=True)
    ev = sub.add_parser("eval", help="sensitivity, specificity and time to detection over a grid")
    ev.add_argument("--quick", action="store_true", help="a smaller grid (a few minutes)")
    ev.add_argument("--seeds", type=int, default=0, help="seeds per cell (default 2 quick, 3 full)")
    ev.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ev.add_argument("--out", type=Path, default=Path("surveil-eval"), help="report folder")
    ev.set_defaults(run=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from bench.surveil_eval import evaluate

    seeds = args.seeds or (2 if args.quick else 3)
    if seeds < 1 or args.jobs < 1:
        print("metroledger surveil eval: --seeds and --jobs must be positive")
        return 2
    evaluate(args.quick, seeds, args.jobs, args.out)
    return 0
