"""`metroledger oracle simulate|key` and `metroledger receipt verify`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ledger.crypto import KeyPair
from ledger.receipt import ReceiptInvalid, load_trust_anchor, verify_receipt_json
from oracle.keys import load_signing_key, write_device_key
from oracle.sim.fleet import FleetConfig
from oracle.sim.scale import ScaleConfig, run_scale
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
    sim.add_argument("--calibrated-tanks", action="store_true",
                     help="publish the fleet's tank calibrations first: the ledger then "
                          "computes each refuel's volume from its OBD levels")  # fmt: skip
    sim.add_argument("--readings", type=int, default=1000,
                     help="refuel readings, at --rate (unless --duration is given)")  # fmt: skip
    sim.add_argument("--rate", default="200/s", help="refuel readings offered per second")
    sim.add_argument("--meters", type=int, default=0, help="smart meters (default none)")
    sim.add_argument("--meter-rate", default="0/s", help="meter readings offered per second")
    sim.add_argument("--concentrators", type=int, default=0,
                     help="data concentrators relaying the meters (one per 2,000)")  # fmt: skip
    sim.add_argument("--duration", type=float, help="seconds of offered load")
    sim.add_argument("--processes", type=int, default=1, help="simulator worker processes")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--manufacturer-key", type=Path, help="key file of a manufacturer")
    sim.add_argument("--authority-keys", help="comma-separated key files of k authorities")
    sim.add_argument("--journal", type=Path, default=Path("oracle-journal"),
                     help="store-and-forward folder (per network and worker)")  # fmt: skip
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


def parse_rate(raw: str, name: str = "--rate") -> float:
    value = raw.removesuffix("/s")
    try:
        rate = float(value)
    except ValueError:
        raise ValueError(f"{name} {raw!r}: expected a number per second, e.g. 200/s") from None
    if rate < 0 or rate != rate:
        raise ValueError(f"{name} must not be negative")
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
        fleet = FleetConfig(vehicles=args.vehicles, dispensers=args.dispensers, seed=args.seed,
                            fraud_fraction=args.fraud, fraud_shortfall_pct=args.shortfall_pct,
                            collude_fraction=args.collude, noise_pct=args.noise_pct,
                            calibrated_tanks=args.calibrated_tanks)  # fmt: skip
        rate, meter_rate = parse_rate(args.rate), parse_rate(args.meter_rate, "--meter-rate")
        duration = args.duration or (args.readings / rate if rate else 0)
        cfg = ScaleConfig(fleet, args.meters, rate, meter_rate, duration, args.processes,
                          args.concentrators, args.journal)  # fmt: skip
    except ValueError as exc:
        print(f"metroledger oracle simulate: {exc}", file=sys.stderr)
        return 2
    print(f"seed {args.seed}; {args.vehicles} vehicles at {rate:g}/s, {args.meters} meters at "
          f"{meter_rate:g}/s through {cfg.concentrator_count if args.meters else 0} "
          f"concentrators, {duration:g} s, {args.processes} processes; journal {args.journal}",
          file=sys.stderr)  # fmt: skip
    try:
        report = run_scale(urls, suite, cfg, maker, authorities,
                           lambda text: print(text, end="", file=sys.stderr))  # fmt: skip
    except (RuntimeError, OSError, ValueError) as exc:
        print(f"\nmetroledger oracle simulate: {exc}", file=sys.stderr)
        return 1
    print(file=sys.stderr)
    print(json.dumps(report.summary(), indent=2))
    return 0 if report.outcomes.get("committed", 0) == report.submitted else 1


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
