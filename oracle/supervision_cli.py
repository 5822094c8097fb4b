"""`metroledger meter simulate`: run the supervision simulator against a running local
network (`testnet init` + `testnet up` in DIR): arrival batches, institutions, GB/T 2828.1
sampling and the laboratory's re-check, then each batch's verdicts."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ledger.types import Transaction
from node.config import load_genesis, load_node_config
from node.load import submit_all
from node.testnet import daemons
from node.tls import client_context
from oracle.keys import load_signing_key
from oracle.meter_submit import add_submit_parser
from oracle.supervision import Supervision, SupervisionConfig


def add_meter_parser(commands: Any) -> None:
    meter = commands.add_parser("meter", help="meter verification supervision (Tianjin spec)")
    sub = meter.add_subparsers(dest="meter_cmd", required=True)
    sim = sub.add_parser("simulate", help="batches, institutions, sampling, re-check")
    sim.add_argument("--dir", type=Path, required=True, help="a running testnet's folder")
    sim.add_argument("--batches", type=int, default=3)
    sim.add_argument("--meters", type=int, default=500, help="meters per arrival batch")
    lax = "the batch (1-based) whose institution passes failing meters"
    sim.add_argument("--lax-batch", type=int, default=3, help=lax)
    sim.add_argument("--failure-pct", type=int, default=30, help="that batch's failing share")
    sim.add_argument("--seed", type=int, default=17)
    sim.set_defaults(run=run_simulate)
    add_submit_parser(sub)
    ev = sub.add_parser("eval", help="detection power of the remote error model (§6.1.3)")
    ev.add_argument("--quick", action="store_true", help="a small grid (16 cells)")
    ev.add_argument("--seeds", type=int, default=20, help="areas per cell")
    ev.add_argument("--days", type=int, default=30, help="the window judged")
    ev.add_argument("--jobs", type=int, default=2, help="processes")
    ev.add_argument("--json", type=Path, help="write every cell's counts here")
    ev.set_defaults(run=run_meter_eval)


def run_meter_eval(args: argparse.Namespace) -> int:
    from bench.meter_eval import run_eval

    if args.seeds < 1 or args.days < 2 or args.jobs < 1:
        print("metroledger meter eval: --seeds >= 1, --days >= 2, --jobs >= 1", file=sys.stderr)
        return 2
    return run_eval(args.quick, args.seeds, args.days, args.jobs, args.json)


def run_simulate(args: argparse.Namespace) -> int:
    nodes = daemons(args.dir)
    if (
        len(nodes) < 2
        or not 1 <= args.lax_batch <= args.batches
        or not 0 <= args.failure_pct <= 100
    ):
        print("metroledger meter simulate: need a testnet of 2+ nodes, 1 <= --lax-batch <= "
              "--batches, 0 <= --failure-pct <= 100", file=sys.stderr)  # fmt: skip
        return 2
    rates = tuple(args.failure_pct if b == args.lax_batch - 1 else 0 for b in range(args.batches))
    cfg = SupervisionConfig(args.batches, args.meters, args.seed, rates, (args.lax_batch - 1,))
    genesis = load_genesis(load_node_config(nodes[0].config).genesis_file)
    keys = [load_signing_key(d.config.parent / "keys" / "node_key.json")[1] for d in nodes[:2]]
    sim = Supervision(cfg, genesis.suite, genesis.genesis_hash, *keys)
    apis = [d.api for d in nodes]
    ca = args.dir / "tls" / "ca.crt"
    tls = client_context(ca) if ca.exists() else None

    def submit(txs: list[Transaction]) -> list[str]:
        hashes = submit_all(apis, txs, genesis.suite, tls)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if all(d.get(f"/v1/tx/{hashes[-1]}")["status"] != "pending" for d in nodes):
                    return hashes
            except OSError:  # not seen by that node yet (404)
                pass
            time.sleep(0.5)
        raise RuntimeError("transactions did not commit within 300 s")

    try:
        outcomes = sim.run(submit, nodes[0].get)
    except (RuntimeError, OSError) as exc:
        print(f"metroledger meter simulate: {exc}", file=sys.stderr)
        return 1
    for o in outcomes:
        print(f"{o.batch}: verified by {o.institution}; batch rule {o.first_verification}; plan "
              f"n={o.plan['sample_size']} Ac={o.plan['accept']} Re={o.plan['reject']}; "
              f"{o.nonconforming} nonconforming; lot {o.lot}; warnings to "
              f"{', '.join(o.warnings) or 'nobody'}")  # fmt: skip
    return 0
