"""`metroledger device register|endorse|revoke|rotate|approve-type|calibrate-tank|show`:
the registry from a shell."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx

from ledger.crypto import KeyPair, get_suite
from ledger.encoding import decode
from ledger.readings import (
    SOFTWARE_HASH_BYTES,
    EndorseDevice,
    Payload,
    RegisterDevice,
    RevokeDevice,
    RotateKey,
    TankCalibration,
    TypeApproval,
    rotation_proof_bytes,
)
from oracle.client import OracleClient, run
from oracle.keys import load_signing_key


def add_device_parsers(commands: Any) -> None:
    device = commands.add_parser("device", help="the on-ledger device registry")
    sub = device.add_subparsers(dest="device_cmd", required=True)

    def command(name: str, help_text: str, signed: bool = True) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        p.add_argument("--nodes", required=True, help="comma-separated node API URLs")
        p.add_argument("--id", required=True, help="device id")
        if signed:
            p.add_argument("--key", type=Path, required=True, help="signer's key file")
            p.add_argument("--journal", default="oracle-journal.sqlite3")
            p.add_argument("--timeout", type=float, default=60.0, help="seconds to await commit")
        return p

    reg = command("register", "a manufacturer registers a device and its public key")
    reg.add_argument("--kind", required=True, choices=["vehicle", "meter"])
    reg.add_argument("--device-key", type=Path, required=True, help="the device's key file")
    reg.add_argument("--model", required=True)
    reg.add_argument("--accuracy-class", required=True)
    reg.add_argument("--tank-model", default="", help="a vehicle's tank model (calibrate-tank)")
    reg.set_defaults(run=run_register)
    endorse = command("endorse", "an authority endorses the device's registered key")
    endorse.add_argument("--public-key", required=True, help="hex key it inspected")
    endorse.set_defaults(run=run_endorse)
    revoke = command("revoke", "an authority (or the manufacturer) votes to revoke")
    revoke.add_argument("--from-height", type=int, default=0, help="0: as soon as possible")
    revoke.add_argument("--reason", required=True)
    revoke.set_defaults(run=run_revoke)
    rotate = command("rotate", "the device's current key (--key) hands over to --new-key")
    rotate.add_argument("--new-key", type=Path, required=True)
    rotate.set_defaults(run=run_rotate)
    command("show", "the device's status and history", signed=False).set_defaults(run=run_show)
    approve = command("approve-type", "an authority approves a model (--id) and its software")
    approve.add_argument("--kind", required=True, choices=["vehicle", "meter"])
    approve.add_argument("--approval-no", required=True, help="the type approval's number")
    approve.add_argument("--accuracy-class", required=True)
    approve.add_argument(
        "--software",
        default="",
        help="comma-separated hex SHA-256/SM3 "
        "hashes of the approved legally relevant software (none: unchecked)",
    )
    approve.set_defaults(run=run_approve_type)
    tank = command("calibrate-tank", "an authority publishes a tank model's (--id) calibration")
    tank.add_argument("--points", required=True, help="OBD level:ml pairs from level 0 to 255, "
                      "comma-separated (linear between them), e.g. 0:0,255:50000")  # fmt: skip
    tank.set_defaults(run=run_calibrate_tank)


def run_register(args: argparse.Namespace) -> int:
    device_key = load_signing_key(args.device_key)[1]
    return _submit(
        args,
        lambda key: RegisterDevice(
            args.id,
            args.kind,
            device_key.public_key,
            args.model,
            args.accuracy_class,
            args.tank_model,
        ),
    )


def run_endorse(args: argparse.Namespace) -> int:
    return _submit(args, lambda key: EndorseDevice(args.id, bytes.fromhex(args.public_key)))


def run_revoke(args: argparse.Namespace) -> int:
    return _submit(args, lambda key: RevokeDevice(args.id, args.from_height, args.reason))


def run_rotate(args: argparse.Namespace) -> int:
    suite, new = load_signing_key(args.new_key)

    def payload(old: KeyPair) -> Payload:
        proof_bytes = rotation_proof_bytes(args.id, old.public_key, new.public_key)
        return RotateKey(
            args.id, new.public_key, get_suite(suite).sign(new.secret_key, proof_bytes)
        )

    return _submit(args, payload)


def run_approve_type(args: argparse.Namespace) -> int:
    def payload(key: KeyPair) -> Payload:
        try:
            hashes = sorted({bytes.fromhex(h) for h in args.software.split(",") if h})
        except ValueError:
            raise ValueError("--software: hex hashes, comma-separated") from None
        if any(len(h) != SOFTWARE_HASH_BYTES for h in hashes):
            raise ValueError(f"--software: each hash is {SOFTWARE_HASH_BYTES} bytes")
        return TypeApproval(args.id, args.kind, args.approval_no, args.accuracy_class,
                            tuple(hashes))  # fmt: skip

    return _submit(args, payload)


def run_calibrate_tank(args: argparse.Namespace) -> int:
    def payload(key: KeyPair) -> Payload:
        try:
            pairs = [item.split(":") for item in args.points.split(",") if item]
            points = tuple((int(level), int(ml)) for level, ml in pairs)
        except ValueError:
            raise ValueError("--points: level:ml pairs, comma-separated") from None
        calibration = TankCalibration(args.id, points)
        return TankCalibration.from_wire(decode(calibration.encode()))  # its errors, here

    return _submit(args, payload)


def run_show(args: argparse.Namespace) -> int:
    for url in args.nodes.split(","):
        try:
            response = httpx.get(f"{url.rstrip('/')}/v1/devices/{args.id}", timeout=5)
        except httpx.HTTPError:
            continue
        print(json.dumps(response.json(), indent=2))
        return 0 if response.status_code == 200 else 1
    print("metroledger device show: no node answered", file=sys.stderr)
    return 2


def _submit(args: argparse.Namespace, make: Any) -> int:
    try:
        suite, key = load_signing_key(args.key)
        payload = make(key)
    except ValueError as exc:
        print(f"metroledger device {args.device_cmd}: {exc}", file=sys.stderr)
        return 2
    urls = [u for u in args.nodes.split(",") if u]

    async def go() -> Any:
        async with OracleClient(urls, key, suite=suite, journal=args.journal, max_in_flight=4) as c:
            tx_hash = c.submit(payload)
            print(f"tx {tx_hash} journaled in {args.journal}", file=sys.stderr)
            return await c.wait(tx_hash, timeout_s=args.timeout)

    outcome = run(go())
    print(json.dumps(vars(outcome)))
    if outcome.status == "queued":
        print("not committed yet; it stays journaled and is resent next time", file=sys.stderr)
    return 0 if outcome.status == "committed" else 1
