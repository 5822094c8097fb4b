"""`metroledger oracle simulate|key` and `metroledger receipt verify`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ledger.crypto import KeyPair
from ledger.receipt import ReceiptInvalid, load_trust_anchor, verify_receipt_json
from oracle.client import run
from oracle.keys import load_signing_key, write_device_key
from oracle.sim.fleet import FleetConfig
from oracle.sim.run import Simulation, render_progress
from oracle.testnet_keys import find_testnet, load_testnet_roles


def add_oracle_parsers(commands: Any) -> None:
    oracle = commands.add_parser("oracle", help="device side: keys, simulated fleets")
    sub = oracle.add_subparsers(dest="oracle_cmd", required=True)
    key = sub.add_parser("key", help="write a new device key file (mode 0600)")
    key.add_argument("--out", type=Path, required=True)
    key.add_argument("--suite", default="ed25519", choices=["ed25519", "sm2"])
    key.set_defaults(run=run_key)

    sim = sub.add_parser("simulate", help="register a simulated fleet and push its readings")
    sim.add_argument(
        "--testnet",
        type=Path,
        help="a `testnet init` folder: its node URLs, member 0 as manufacturer, members 1..k "
        "as authorities (default: the current folder if it is one)",
    )
    sim.add_argument("--nodes", help="comma-separated node API URLs (default: the testnet's)")
    sim.add_argument("--vehicles", type=int, default=100)
    sim.add_argument("--dispensers", type=int, default=10)
    sim.add_argument("--fraud", type=float, default=0.1, help="fraction of dispensers cheating")
    sim.add_argument("--shortfall-pct", type=float, default=2.0)
    sim.add_argument("--collude", type=float, default=0.0, help="fraction of colluding vehicles")
    sim.add_argument("--noise-pct", type=float, default=2.0)
    sim.add_argument("--readings", type=int, default=1000)
    sim.add_argument("--rate", default="200/s", help="offered readings per second, e.g. 200/s")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--manufacturer-key", type=Path, help="key file of a manufacturer")
    sim.add_argument("--authority-keys", help="comma-separated key files of k authorities")
    sim.add_argument("--journal", default="oracle-journal.sqlite3", help="store-and-forward file")
    sim.set_defaults(run=run_simulate)

    receipt = commands.add_parser("receipt", help="offline receipts")
    rsub = receipt.add_subparsers(dest="receipt_cmd", required=True)
    verify = rsub.add_parser("verify", help="check a receipt file against a genesis file")
    verify.add_argument("file", type=Path)
    verify.add_argument("--genesis", type=Path, required=True)
    changes_help = "JSON list of the membership changes' receipts (for later epochs)"
    verify.add_argument("--changes", type=Path, help=changes_help)
    verify.set_defaults(run=run_receipt_verify)


def run_key(args: argparse.Namespace) -> int:
    if args.out.exists():
        print(f"metroledger oracle key: {args.out} exists; refusing to overwrite", file=sys.stderr)
        return 2
    key = write_device_key(args.out, args.suite)
    print(f"wrote {args.out}\npublic_key {key.public_key.hex()}")
    return 0


def parse_rate(raw: str) -> float:
    value = raw.removesuffix("/s")
    try:
        rate = float(value)
    except ValueError:
        raise ValueError(f"--rate {raw!r}: expected a number per second, e.g. 200/s") from None
    if rate <= 0:
        raise ValueError("--rate must be positive")
    return rate


def simulation_roles(args: argparse.Namespace) -> tuple[str, list[str], KeyPair, list[KeyPair]]:
    """Keys and URLs from the arguments, else from a testnet folder; ValueError if neither."""
    if args.manufacturer_key and args.authority_keys and args.nodes:
        suite, maker = load_signing_key(args.manufacturer_key)
        authorities = [load_signing_key(Path(p))[1] for p in args.authority_keys.split(",")]
        return suite, [u for u in args.nodes.split(",") if u], maker, authorities
    folder = args.testnet or find_testnet(Path.cwd())
    if folder is None:
        raise ValueError(
            "give --testnet DIR (a `testnet init` folder), run from inside one, or give "
            "--nodes, --manufacturer-key and --authority-keys"
        )
    roles = load_testnet_roles(folder)
    urls = [u for u in args.nodes.split(",") if u] if args.nodes else roles.node_urls
    return roles.suite, urls, roles.manufacturer, roles.authorities


def run_simulate(args: argparse.Namespace) -> int:
    try:
        suite, urls, maker, authorities = simulation_roles(args)
        fleet = FleetConfig(
            vehicles=args.vehicles,
            dispensers=args.dispensers,
            seed=args.seed,
            fraud_fraction=args.fraud,
            fraud_shortfall_pct=args.shortfall_pct,
            collude_fraction=args.collude,
            noise_pct=args.noise_pct,
        )
        simulation = Simulation(
            urls,
            suite,
            fleet,
            maker,
            authorities,
            args.journal,
            args.readings,
            parse_rate(args.rate),
        )
    except ValueError as exc:
        print(f"metroledger oracle simulate: {exc}", file=sys.stderr)
        return 2
    print(f"seed {args.seed}; journal {args.journal}", file=sys.stderr)
    report = run(simulation.run(lambda p: print(render_progress(p), end="", file=sys.stderr)))
    print(file=sys.stderr)
    summary = {
        "submitted": report.submitted,
        "outcomes": report.outcomes,
        "reasons": report.reasons,
        "elapsed_s": round(report.elapsed_s, 2),
    }
    print(json.dumps(summary, indent=2))
    return 0 if report.committed == report.submitted else 1


def run_receipt_verify(args: argparse.Namespace) -> int:
    try:
        anchor = load_trust_anchor(args.genesis)
        if args.changes:
            anchor = anchor.with_changes(json.loads(args.changes.read_text(encoding="utf-8")))
        doc = json.loads(args.file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"metroledger receipt verify: {exc}", file=sys.stderr)
        return 2
    try:
        receipt = verify_receipt_json(doc, anchor)
    except ReceiptInvalid as exc:
        print(f"INVALID: {exc}")
        return 1
    print(
        f"VALID: tx {doc.get('tx_hash')} is in block {receipt.proposal.height} of chain "
        f"{anchor.chain_id}, committed by {len(receipt.certificate.votes)} of "
        f"{len(anchor.members)} members"
    )
    return 0
