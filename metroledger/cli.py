"""`metroledger` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from bench.cli import add_bench_parsers, add_surveil_parser
from bench.lake import add_export_parser
from metroledger.demo import add_demo_parser
from node.commands import add_node_parsers
from oracle.cli import add_oracle_parsers
from oracle.device_cli import add_device_parsers
from oracle.supervision_cli import add_meter_parser
from sim.cli import add_sim_parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metroledger", description="BFT ledger network for legal metrology"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_demo_parser(commands)
    add_sim_parser(commands)
    add_node_parsers(commands)
    add_oracle_parsers(commands)
    add_device_parsers(commands)
    add_meter_parser(commands)
    add_surveil_parser(commands)
    add_bench_parsers(commands)
    add_export_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
