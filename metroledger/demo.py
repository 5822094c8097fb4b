"""`metroledger demo`: 4 local daemons, a simulated fleet pushing signed refuel readings
through the oracle SDK, the dispenser verdicts and an offline receipt check, then meter
verification supervision (oracle.supervision), a transformer area judged by the remote
error model with calibration requests and a work order (metroledger.demo_area), and what
committed on every node."""

from __future__ import annotations

import argparse
import hashlib
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from ledger.crypto import KeyPair
from ledger.readings import TypeApproval
from ledger.receipt import load_trust_anchor, verify_receipt_json
from ledger.types import Transaction
from metroledger.demo_area import run_area, wait_committed
from node.load import submit_all
from node.testnet import Daemon, daemons, init_testnet, wait_ready
from oracle.client import OracleClient, run
from oracle.keys import load_signing_key
from oracle.sim.fleet import Fleet, FleetConfig, station_coordinates
from oracle.sim.run import Simulation, render_progress
from oracle.supervision import Supervision, SupervisionConfig

# the hash of the vehicles' legally relevant software, fixed by the model's type approval
DEMO_SOFTWARE = hashlib.sha256(b"sim-OBD refuel firmware 3.1").digest()


def demo_fleet(vehicles: int) -> FleetConfig:
    return FleetConfig(
        vehicles=vehicles, dispensers=8, seed=1, fraud_fraction=0.25, fraud_shortfall_pct=4.0,
        noise_pct=1.0, stations=4, software_hash=DEMO_SOFTWARE,
    )  # fmt: skip


def approve_vehicle_type(nodes: list[Daemon], suite: str, authority: KeyPair) -> bool:
    """An authority approves the fleet's model and fixes its software (INMETRO's case):
    from then on a reading with another software hash is refused."""
    approval = TypeApproval("sim-OBD", "vehicle", "INMETRO-2026-041", "2", (DEMO_SOFTWARE,))

    async def approve() -> str:
        async with OracleClient([d.api for d in nodes], authority, suite=suite) as client:
            return (await client.wait(client.submit(approval), timeout_s=60)).status

    status: str = run(approve())
    committed = status == "committed"
    print(
        f"type approval {approval.approval_no} of model sim-OBD: software "
        f"{DEMO_SOFTWARE.hex()[:16]}… fixed ({'committed' if committed else 'NOT committed'})"
    )
    return committed


def demo_contracts(vehicles: int, accept_limit_s: int = 86_400) -> dict[str, Any]:
    """The demo chain's contract settings: decide after 10 vehicles' votes (the default,
    40, suits real fleets) and place the fleet's stations on the dashboard's map."""
    fleet = demo_fleet(vehicles)
    return {"surveillance": {"min_vehicles": 10, "stations": station_coordinates(fleet)},
            "service": {"accept_limit_s": accept_limit_s}}  # fmt: skip


def add_demo_parser(commands: Any) -> None:
    p = commands.add_parser(
        "demo", help="start 4 local daemons, send sample readings, print results"
    )
    p.add_argument("--readings", type=int, default=500, help="refuel readings (default 500)")
    p.add_argument("--vehicles", type=int, default=40)
    p.add_argument("--suite", default="ed25519", choices=["ed25519", "sm2"])
    p.add_argument("--dir", type=Path, help="keep the network here (default: a temporary folder)")
    p.add_argument("--serve", action=argparse.BooleanOptionalAction, default=None,
                   help="keep the network running for the dashboard until Ctrl-C (default: "
                        "when run from a terminal)")  # fmt: skip
    p.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    directory = args.dir or Path(tempfile.mkdtemp(prefix="metroledger-demo-"))
    print(f"creating a 4-node network ({args.suite}) in {directory}")
    init_testnet(directory, 4, args.suite, contracts=demo_contracts(args.vehicles))
    nodes = daemons(directory)
    try:
        for d in nodes:
            d.start()
        wait_ready(nodes)
        print("4 daemons up (py-libp2p on loopback, SQLite on disk, HTTP APIs)")
        if not populate(nodes, directory, args.suite, args.readings, args.vehicles):
            return 1
        serve = sys.stdin.isatty() if args.serve is None else args.serve
        if serve:
            wait_for_interrupt(nodes)
        else:
            print(f"\ndashboard: `metroledger demo --serve` keeps the network up for "
                  f"{nodes[0].api}/dashboard/")  # fmt: skip
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not orphan nodes
        for d in nodes:
            d.stop()
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


def wait_for_interrupt(nodes: list[Daemon]) -> None:
    print(
        f"\ndashboard: {nodes[0].api}/dashboard/ (every node serves it: "
        f"{', '.join(d.api + '/dashboard/' for d in nodes[1:])})"
    )
    print("the network keeps running; Ctrl-C stops it", flush=True)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the nodes too
    try:
        while all(d.process is None or d.process.poll() is None for d in nodes):
            time.sleep(0.5)
        print("a daemon stopped; stopping the network", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nstopping the network")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def populate(nodes: list[Daemon], directory: Path, suite: str, readings: int,
             vehicles: int) -> bool:  # fmt: skip
    """The demo's data on a running network: the fleet's refuels and the verdicts, a
    receipt checked offline, meter verification supervision, transformer areas with
    calibration requests and work orders; False (with the reason printed) if any part
    did not commit."""
    homes = [d.config.parent for d in nodes]
    if not approve_vehicle_type(
        nodes, suite, load_signing_key(homes[1] / "keys" / "node_key.json")[1]
    ):
        return False
    sim = Simulation(
        [d.api for d in nodes],
        suite,
        demo_fleet(vehicles),
        load_signing_key(homes[0] / "keys" / "node_key.json")[1],
        [load_signing_key(h / "keys" / "node_key.json")[1] for h in homes[1:3]],
        directory / "oracle-journal.sqlite3",
        readings=readings,
    )
    print(f"enrolling {vehicles} vehicles (register + 2 endorsements each), then "
          f"{readings} refuel readings through the oracle SDK")  # fmt: skip
    report = run(sim.run(lambda p: print(render_progress(p), end="", file=sys.stderr)))
    print(file=sys.stderr)
    print(f"readings: {report.outcomes} in {report.elapsed_s:.1f}s")
    if report.committed != report.submitted or not wait_committed(nodes, report.tx_hashes[-1]):
        print("not everything committed", file=sys.stderr)
        return False
    print_dispensers(nodes, demo_fleet(vehicles))
    show_receipt(nodes[1], report.tx_hashes[len(report.tx_hashes) // 2], directory)
    if not run_supervision(nodes, suite, homes) or not run_area(nodes, suite, homes):
        return False
    print_table(nodes)
    return True


def run_supervision(nodes: list[Daemon], suite: str, homes: list[Path]) -> bool:
    """Meter verification supervision (Tianjin spec): 3 batches, one verified by an
    institution that passes failing meters, GB/T 2828.1 sampling and re-check."""
    cfg = SupervisionConfig(batches=3, meters=200, failure_rate_pct=(0, 0, 30))
    keys = [load_signing_key(h / "keys" / "node_key.json")[1] for h in homes[:2]]
    sim = Supervision(cfg, suite, nodes[0].chain(), *keys)
    apis = [d.api for d in nodes]

    def submit(txs: list[Transaction]) -> list[str]:
        hashes = submit_all(apis, txs, suite)
        if not wait_committed(nodes, hashes[-1]):
            raise RuntimeError("meter verification transactions did not commit")
        return hashes

    print(
        f"\nmeter verification: {cfg.batches} arrival batches of {cfg.meters} meters, first "
        "verification by two institutions (INST-B passes failing meters), GB/T 2828.1 "
        "sampling drawn from the chain, physical re-check by the regulator's laboratory"
    )
    try:
        outcomes = sim.run(submit, nodes[1].get)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return False
    print(f"{'batch':7} {'verified by':11} {'batch rule (5.2)':26} {'plan':16} {'bad':>3} "
          f"{'lot':13} warning to")  # fmt: skip
    for o in outcomes:
        plan = f"n={o.plan['sample_size']} Ac={o.plan['accept']} Re={o.plan['reject']}"
        print(f"{o.batch:7} {o.institution:11} {o.first_verification:26} {plan:16} "
              f"{o.nonconforming:>3} {o.lot:13} {', '.join(o.warnings) or '-'}")  # fmt: skip
    return True


def print_table(nodes: list[Daemon]) -> None:
    print(f"\n{'node':6} {'height':>6} {'txs':>6} {'view':>4}  state root")
    for d in nodes:
        status = d.get("/v1/status")
        print(f"{d.config.parent.name:6} {status['height']:>6} {committed_txs(d):>6} "
              f"{status['view']:>4}  {status['state_root'][:16]}")  # fmt: skip


def committed_txs(node: Daemon) -> int:
    text = urllib.request.urlopen(node.api + "/metrics", timeout=2).read().decode()
    line = next(x for x in text.splitlines() if x.startswith("metroledger_tx_committed_total "))
    return int(float(line.split()[-1]))


def show_receipt(node: Daemon, tx_hash: str, directory: Path) -> None:
    """Fetch one reading's receipt and check it offline against genesis only."""
    doc = node.get(f"/v1/tx/{tx_hash}/receipt")
    receipt = verify_receipt_json(doc, load_trust_anchor(directory / "genesis.json"))
    print(
        f"\nreceipt of tx {tx_hash[:16]}: in block {receipt.proposal.height}, "
        f"{len(receipt.certificate.votes)} member signatures, verified offline against genesis"
    )


def print_dispensers(nodes: list[Daemon], fleet: FleetConfig) -> None:
    """The surveillance verdicts (identical on every node) against the simulator's truth."""
    verdicts = [d.get("/v1/dispensers")["dispensers"] for d in nodes]
    same = all(v == verdicts[0] for v in verdicts)
    truth = {d.dispenser_id: d.fraudulent for d in Fleet(fleet).dispensers}
    print(f"\ndispenser surveillance ({'identical on all 4 nodes' if same else 'NODES DIFFER'}):")
    print(f"{'dispenser':10} {'status':10} {'estimate':>9} {'interval':>19} {'votes':>5}  truth")
    for v in verdicts[0]:
        low, high = (x / 10_000 for x in v["interval_ppm"])
        actual = "short by 4 %" if truth.get(v["dispenser_id"]) else "honest"
        print(f"{v['dispenser_id']:10} {v['status']:10} {v['estimate_ppm'] / 10_000:8.2f}% "
              f"[{low:7.2f}%, {high:6.2f}%] {v['vehicles']:>5}  {actual}")  # fmt: skip
